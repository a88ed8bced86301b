"""cifarnb sweep: the notebooks' runs without Jupyter, several workers on one store, a time budget."""

import sys

import pytest

from cifarnb import experiments, profiles
from cifarnb.cli import main
from cifarnb.results import ResultStore, claim
from cifarnb.sweep import SAFETY, SETUP_SECONDS, estimate_hours, plan, sweep


def without_timings(history):
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in history]


def test_sweep_fills_the_store_with_the_notebooks_runs(tmp_path, cifar_root, capsys):
    arguments = ["sweep", "--section", "vgg", "features", "--profile", "smoke", "--results", str(tmp_path),
                 "--data", str(cifar_root), "--device", "cpu"]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    store, smoke = ResultStore(tmp_path), profiles.get("smoke")
    for config in [*experiments.vgg_configs(smoke).values(), *experiments.feature_map_configs(smoke, 0).values()]:
        assert store.load(config) is not None, config.model
    assert len(list((tmp_path / "arrays").glob("feature_maps_*.npz"))) == 3
    assert "feature maps computed, model" in out and "5 computed, 0 already stored, 0 left" in out
    # A second sweep only loads.
    assert main(arguments) == 0
    again = capsys.readouterr().out
    assert "trained" not in again and "0 computed, 5 already stored, 0 left" in again


def test_plan_puts_every_first_seed_before_any_second_and_shares_runs_once():
    tasks = plan(["resnet9", "vgg", "landscape"], profiles.get("smoke"), seeds=(0, 1))
    seeds = [task.config.seed for task in tasks if task.kind == "run"]
    assert seeds == sorted(seeds)  # seed 0 of every section's runs, then seed 1
    assert len({task.identity for task in tasks}) == len(tasks)
    # The fast recipe is the ladder's top step: one task, not two.
    assert not any(task.label.startswith("fast recipe") for task in tasks)
    assert sum(task.kind == "landscape" for task in tasks) == 2 * 3 + 2  # one seed's: report 2 x 3 lrs, paper 2


def test_workers_share_the_runs_and_train_each_once(tmp_path, cifar_root, monkeypatch, capfd):
    monkeypatch.setenv("CIFARNB_DATA", str(cifar_root))  # the spawned workers read the data root from here
    smoke = profiles.get("smoke")
    store = ResultStore(tmp_path / "shared")
    report = sweep(["vgg"], smoke, store, seeds=(7,), device="cpu", workers=2)
    out = capfd.readouterr().out
    assert report.ok and len(report.computed) == 2 and not report.left
    assert out.count("trained in") == 2 and "[worker 1]" in out and "[worker 2]" in out
    # Each run equals the same config trained alone, in this process.
    alone = ResultStore(tmp_path / "alone")
    for config in experiments.vgg_configs(smoke).values():
        config = config.replace(seed=7, device="cpu")
        shared = store.load(config)
        assert without_timings(shared.history) == without_timings(alone.run(config, progress=False).history)


def test_a_claimed_run_is_left_to_its_owner(tmp_path, cifar_root, monkeypatch):
    monkeypatch.setenv("CIFARNB_DATA", str(cifar_root))
    store = ResultStore(tmp_path)
    config = experiments.vgg_configs(profiles.get("smoke"))["VGG-A"].replace(device="cpu")
    with claim(store.claim_path(config)):  # as if another process were training it
        assert store.run(config, progress=False, wait=False) is None
        report = sweep(["vgg"], profiles.get("smoke"), store, device="cpu", log=lambda line: None)
    assert store.load(config) is None and report.left == ["VGG-A (seed 0)"]


def test_no_run_starts_past_the_budget(tmp_path, cifar_root, monkeypatch):
    monkeypatch.setenv("CIFARNB_DATA", str(cifar_root))
    lines = []
    report = sweep(["vgg"], profiles.get("smoke"), ResultStore(tmp_path), device="cpu", budget_seconds=1,
                   log=lines.append)
    assert report.ok and not report.computed and len(report.left) == 2
    assert all("not started, needs ~" in line for line in lines) and not list(tmp_path.glob("*/run.json"))


def test_unknown_section_is_rejected():
    with pytest.raises(ValueError, match="section='plots' is not one of ablations, zoo"):
        plan(["plots"], profiles.get("smoke"))


def test_estimate_hours_come_from_the_stores_measured_epochs(tmp_path, cifar_root, capsys):
    smoke = profiles.get("smoke")
    store = ResultStore(tmp_path)
    sweep(["vgg"], smoke, store, device="cpu", log=lambda line: None, data_root=str(cifar_root))
    expected = 0.0
    for config in experiments.vgg_configs(smoke).values():
        rows = store.load(config).history
        per_epoch = sum(row["seconds"] + row.get("eval_seconds", 0.0) for row in rows) / len(rows)
        expected += SETUP_SECONDS + SAFETY * config.epochs * per_epoch
    hours, guessed = estimate_hours(["vgg"], smoke, store, "cpu")["vgg"]
    assert hours == pytest.approx(expected / 3600) and guessed == []
    # No run of the store was timed on this device: every model's epoch is guessed, and said to be.
    _, guessed = estimate_hours(["vgg"], smoke, store, "NVIDIA H200")["vgg"]
    assert guessed == sorted({config.model for config in experiments.vgg_configs(smoke).values()})
    assert main(["sweep", "--estimate", "cpu", "--section", "vgg", "--profile", "smoke", "--results",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"vgg: {expected / 3600:.1f} h on cpu\n" in out and "total (smoke)" in out and "trained" not in out


def test_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError, as when it is absent
    assert main(["sweep", "--backend", "ray", "--section", "vgg", "--profile", "smoke", "--results",
                 str(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['cifarnb: error: the Ray backend needs the cluster extra: pip install -e ".[cluster]"']
    assert not list(tmp_path.glob("*/run.json"))


def test_local_only_flags_are_refused_with_ray_and_ray_flags_without_it(tmp_path, capsys):
    base = ["sweep", "--section", "vgg", "--profile", "smoke", "--results", str(tmp_path)]
    assert main([*base, "--backend", "ray", "--workers", "2"]) == 2
    assert "--workers and --budget-s work with --backend local" in capsys.readouterr().err
    assert main([*base, "--address", "10.0.0.1:6379"]) == 2
    assert "--address needs --backend ray" in capsys.readouterr().err
