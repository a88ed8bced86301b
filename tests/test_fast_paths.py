"""Each model's fast path on a card (cifarnb.study.fast_paths): from the probe's timings and the self-test's checks,
compiled only where it pays, eager where a check failed, keys unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from cifarnb.study import profiles
from cifarnb.study.fast_paths import FastPaths, apply, broken_fast_paths
from cifarnb.study.sections import plan
from cifarnb.train import TrainConfig

CARD = "NVIDIA H200"


def timing(model: str, fast_path: str, ms: float, compile_s: float = 0.0, batch: int = 512) -> dict:
    record = {"section": "modes", "model": model, "batch_size": batch, "fast_path": fast_path, "ms_per_step": ms}
    return record | ({"compile_seconds": compile_s} if fast_path != "eager" else {})


def write_probe(folder: Path, records: list[dict], card: str = CARD, date: str = "2026-12-03") -> None:
    slug = card.lower().replace(" ", "-")
    (folder / f"probe-{slug}-{date}.json").write_text(json.dumps({"device": card, "records": records}))


FASTRESNET9 = TrainConfig(model="fastresnet9", batch_size=512, epochs=10, device="cuda")  # 98 steps an epoch
CHECKED = {("compiled", "fastresnet9"), ("compiled+cuda_graphs", "fastresnet9")}  # agreed with eager


def check(name: str, fast_path: str, model: str, ok: bool, error: str = "") -> dict:
    return {"name": name, "fast_path": fast_path, "model": model, "ok": ok} | ({"error": error} if error else {})


def test_compiled_only_where_the_seconds_saved_exceed_the_compiles():
    fast = FastPaths(CARD, [timing("fastresnet9", "eager", 30.0), timing("fastresnet9", "compiled", 20.0, 40.0),
                            timing("fastresnet9", "compiled+cuda_graphs", 15.0, 60.0)], checked=CHECKED)
    many = fast.choose(FASTRESNET9, steps=20_000, compiles=2)  # graphs: 300 s saved for 120 s of compiles
    assert many.mode == "compiled+cuda_graphs"
    assert many.why == "saves 300 s over 20,000 steps for 2 compiles of 120 s in all"
    few = fast.choose(FASTRESNET9, steps=2_000, compiles=4)  # the least loss said: 20 s saved for 160 s compiling
    assert (few.mode, few.why) == ("eager", "compiling costs more than it saves: compiled would save 20 s over "
                                            "2,000 steps for 4 compiles of 160 s in all")
    untimed = fast.choose(FASTRESNET9.replace(batch_size=128), steps=10**6, compiles=1)
    assert (untimed.mode, untimed.why) == ("eager", "the probe did not time its compiled modes on this card at this "
                                                    "batch size")
    unchecked = fast.choose(FASTRESNET9.replace(model="resnet18"), steps=10**6, compiles=1)
    assert (unchecked.mode, unchecked.why) == ("eager", "the self-test did not check compiled for it on this card")
    untested = FastPaths(CARD, fast.records).choose(FASTRESNET9, steps=10**6, compiles=1)
    assert (untested.mode, untested.why) == ("eager", "no self-test of this card to vouch for a compiled mode")
    slower = FastPaths(CARD, [timing("fastresnet9", "eager", 10.0), timing("fastresnet9", "compiled", 12.0, 5.0)],
                       checked=CHECKED)
    assert slower.choose(FASTRESNET9, 10**6, 1).why == "compiled is no faster: 12.0 ms a step against eager's 10.0"


def test_a_failed_self_test_check_rules_its_fast_path_out_for_its_models():
    stamp = {"device": CARD, "checks": [
        check("cuda_graphs fastresnet9@512", "compiled+cuda_graphs", "fastresnet9", False,
              "RuntimeError: losses differ from eager's by 31.0%"),
        check("compiled fastresnet9@512", "compiled", "fastresnet9", True)]}
    broken = broken_fast_paths(stamp)
    assert broken == {"compiled+cuda_graphs": {
        "fastresnet9": "cuda_graphs fastresnet9@512: RuntimeError: losses differ from eager's by 31.0%"}}
    records = [timing("fastresnet9", "eager", 30.0), timing("fastresnet9", "compiled", 20.0, 40.0),
               timing("fastresnet9", "compiled+cuda_graphs", 15.0, 60.0)]
    choice = FastPaths(CARD, records, broken, {("compiled", "fastresnet9")}).choose(FASTRESNET9, 20_000, 2)
    assert choice.mode == "compiled"  # graphs are out; plain compile still pays
    assert choice.why.endswith("the self-test's compiled+cuda_graphs check failed on this card: cuda_graphs "
                               "fastresnet9@512: RuntimeError: losses differ from eager's by 31.0%")
    every = {"compiled": {"fastresnet9": "compiled fastresnet9@512: RuntimeError: inductor crashed"}}
    choice = FastPaths(CARD, records, every, set()).choose(FASTRESNET9, steps=20_000, compiles=2)
    assert (choice.mode, choice.why) == ("eager", "the self-test's compiled check failed on this card: compiled "
                                                  "fastresnet9@512: RuntimeError: inductor crashed")


def test_apply_sets_execution_fields_only_and_says_each_choice(tmp_path):
    profile = profiles.get("quick", device="cuda")
    tasks = plan(["fastresnet9"], profile, seeds=[0])
    # 2 runs of 10 epochs of 98 steps: 29 s saved, for 2 compiles of 5 s
    records = [timing("fastresnet9", "eager", 30.0), timing("fastresnet9", "compiled+cuda_graphs", 15.0, 5.0)]
    fast = FastPaths(CARD, records, {"precision": {"*": "precision: bf16 losses differ"}}, CHECKED, ["probe.json"])
    lines = []
    changed = apply(tasks, fast, workers=4, is_stored=lambda task: False, log=lines.append)
    assert [task.identity for task in changed] == [task.identity for task in tasks]  # no key changed
    compiled = [task.config for task in changed if task.config.compile]
    assert compiled and {(c.model, c.batch_size, c.compile_mode) for c in compiled} == {
        ("fastresnet9", 512, "reduce-overhead")}
    assert lines[0] == f"fast paths ({CARD}; from probe.json):"
    assert any(line.startswith("  fastresnet9 at batch 512: compiled+cuda_graphs (saves ") for line in lines)
    assert "  resnet9 at batch 128: eager (the self-test did not check compiled for it on this card)" in lines
    assert all(task.config.precision != "bf16" for task in changed)  # the broken precision check: the report's
    assert lines[-1] == "  every model: no bf16 where the report's precision differs (precision: bf16 losses differ)"


def test_the_card_files_are_read_and_another_cards_self_test_is_not(tmp_path, monkeypatch):
    write_probe(tmp_path, [timing("lenet5", "eager", 1.0), {"section": "workers", "ms_per_step": 3.0}])
    write_probe(tmp_path, [timing("lenet5", "eager", 2.0)], date="2026-11-01")
    checks = [check("compiled lenet5@2", "compiled", "lenet5", False, "x"), check("workers", "workers", "*", True)]
    (tmp_path / "selftest.json").write_text(json.dumps({"device": "NVIDIA A100-SXM4-80GB", "checks": checks}))
    fast = FastPaths.read(CARD, tmp_path)
    assert fast.sources == ["probe-nvidia-h200-2026-12-03.json"] and fast.broken == {} and fast.checked is None
    assert [r["ms_per_step"] for r in fast.records] == [1.0]  # the newest probe's modes records only
    (tmp_path / "selftest.json").write_text(json.dumps({"device": CARD, "checks": checks}))
    fast = FastPaths.read(CARD, tmp_path)
    assert fast.broken == {"compiled": {"lenet5": "compiled lenet5@2: x"}} and fast.checked == {("workers", "*")}
