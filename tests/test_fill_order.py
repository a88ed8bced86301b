"""The sweep's fill order: table by table within a section and seed, so a slot cut off anywhere leaves whole tables.

Each table's members come from the functions its notebook builds the table from (not from the sections' ``tasks``),
so the plan is checked against the report's tables, not against itself. No training.
"""

from __future__ import annotations

import pytest

from cifarnb.study import profiles, reference
from cifarnb.study.sections import SECTIONS, plan
from cifarnb.study.sections import batchnorm, fastresnet9, feature_maps, model_zoo, optimize_resnet18
from cifarnb.study.tasks import FeatureMapsTask, RunTask


def runs(configs, seed: int) -> list[tuple[str, str]]:
    return [RunTask("", "", config.replace(seed=seed)).identity for config in configs]


def report_tables(section: str, profile, seed: int, first_seed: bool) -> dict[str, list[tuple[str, str]]]:
    """The identities of each table (or figure set) of ``section`` at ``seed``, in the order the plan fills them:
    the report's (its notebook's), a superseded earlier reading last."""
    if section == optimize_resnet18.NAME:
        return {optimize_resnet18.GROUPS[group]: runs(optimize_resnet18.ablation_configs(profile, group).values(), seed)
                for group in reference.ABLATION_FIELDS}
    if section == model_zoo.NAME:
        return {"Table 7": runs((model_zoo.zoo_config(profile, model) for model in profile.zoo_models), seed)}
    if section == fastresnet9.NAME:
        return {"Tables 8-9": runs(fastresnet9.tables_8_9_configs(profile).values(), seed),
                **{f"{recipe} ladder": runs(fastresnet9.trick_ladder(profile, recipe).values(), seed)
                   for recipe in fastresnet9.LADDER_RECIPES}}
    if section == feature_maps.NAME:
        return {"Figs 21-26": [FeatureMapsTask("", "", config, feature_maps.IMAGE_ROW).identity
                               for config in feature_maps.feature_map_configs(profile, seed).values()]
                if first_seed else []}
    assert section == batchnorm.NAME, f"a new section ({section}) needs its tables here"
    landscapes = {method: [task.identity for task in batchnorm.method_tasks(profile, method)] if first_seed else []
                  for method in ("report", "paper", "one_step")}  # one-step differences: the earlier reading
    return {"2.1 accuracy": runs(batchnorm.vgg_configs(profile).values(), seed), **landscapes}


@pytest.mark.parametrize("name", ["smoke", "quick"])
def test_the_plan_is_every_table_in_turn_each_without_what_an_earlier_one_planned(name):
    profile = profiles.get(name, device="cpu")
    expected, seen = [], set()
    for index, seed in enumerate(profile.seeds):
        for section in SECTIONS:
            for members in report_tables(section, profile, seed, first_seed=index == 0).values():
                new = [identity for identity in members if identity not in seen]
                expected += new
                seen |= set(new)
    assert [task.identity for task in plan(list(SECTIONS), profile)] == expected


def test_a_slot_cut_after_any_table_holds_that_table_and_every_earlier_one_whole():
    profile = profiles.get("quick", device="cpu")
    order = [task.identity for task in plan(list(SECTIONS), profile)]
    position = {identity: number for number, identity in enumerate(order)}
    tables = [(f"{section} seed {seed}: {table}", members)
              for index, seed in enumerate(profile.seeds) for section in SECTIONS
              for table, members in report_tables(section, profile, seed, index == 0).items() if members]
    for number, (table, members) in enumerate(tables):
        cut = max(position[identity] for identity in members) + 1  # the slot ends as this table completes
        done = set(order[:cut])
        assert all(set(earlier) <= done for _, earlier in tables[:number]), table
        # Of the tables after it, only runs they share with finished tables are done: none of their own.
        later_own = {identity for _, later in tables[number + 1:] for identity in later} - {
            identity for _, earlier in tables[:number + 1] for identity in earlier}
        assert not later_own & done, table


def test_tables_8_9_come_before_the_trick_ladders_they_share_runs_with():
    tasks = plan(["fastresnet9"], profiles.get("smoke", device="cpu"), seeds=(0,))
    assert [task.label for task in tasks[:4]] == [
        "plain ladder: ResNet9 (seed 0)", "ladder: + flip TTA (= FastResNet9) (seed 0)",
        "plain ladder: + flip TTA (= FastResNet9) (seed 0)", "ResNet18 (seed 0)"]
    assert len(tasks) == 4 + 5 + 4  # the report ladder's other five steps, the plain ladder's other four


def test_the_earlier_guarantees_hold():
    profile = profiles.get("quick", device="cpu")
    tasks = plan(list(SECTIONS), profile)
    seeds = [task.config.seed for task in tasks if isinstance(task, RunTask)]
    assert seeds == sorted(seeds)  # the first seed of every run before any second seed
    assert len({task.identity for task in tasks}) == len(tasks)  # a result two sections need: planned once
    sections = [task.section for task in tasks if task.config.seed == profile.seeds[0]]
    assert list(dict.fromkeys(sections)) == list(SECTIONS)  # sections in the order given
    reverse = plan(list(SECTIONS)[::-1], profile, seeds=profile.seeds[:1])
    assert list(dict.fromkeys(task.section for task in reverse)) == list(SECTIONS)[::-1]
