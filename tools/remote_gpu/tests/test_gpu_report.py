"""tools/remote_gpu/gpu_report.sh on a CPU: the device call's archive, log, budget and merge, end to end; the
staged data's parts and the call's ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from cifarnb.archive import merge

HERE = Path(__file__).resolve().parents[1]  # tools/remote_gpu
SCRIPT = HERE / "gpu_report.sh"
sys.path.insert(0, str(HERE))


def gpu_report(tmp_path: Path, cifar_root: Path, step: str | None = None,
               **environment: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "out"
    settings = dict(OUT=str(out), STORE=str(tmp_path / "store"), PROFILE="smoke", DEVICE="cpu", SECTIONS="model_zoo",
                    SEEDS="5", WORKERS="2", BUDGET_S="300", CIFARNB_DATA=str(cifar_root))
    result = subprocess.run(["bash", str(SCRIPT), *([step] if step else [])],
                            env={**os.environ, **settings, **environment}, text=True, capture_output=True, timeout=600)
    return result, out


def test_one_call_returns_one_archive_that_merges_and_a_second_call_trains_nothing(tmp_path, cifar_root):
    result, out = gpu_report(tmp_path, cifar_root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert files == ["gpu_report.log", "ledger.json", "results.tar.gz"]  # a device call returns at most 8 files
    ledger = json.loads((out / "ledger.json").read_text())  # where the call's seconds went
    assert ledger["runs"] == 3 and ledger["training_flops"] > 0 and ledger["card"] == "cpu"
    assert ledger["phases"]["training steps"] > 0 and "sweep overhead" in ledger["phases"]
    assert ledger["phases"]["packing"] > 0  # the archive's rewrites, timed in the workers (sweep_call.py)
    assert abs(sum(ledger["phases"].values()) - ledger["wall_seconds"]) < 0.01 * ledger["wall_seconds"] + 0.01
    log = (out / "gpu_report.log").read_text()
    assert "gpu_selftest: skipped, CUDA is not available" in log and "3 computed, 0 already stored, 0 left" in log
    with tarfile.open(out / "results.tar.gz") as archive:
        members = sorted(archive.getnames())
    assert len(members) == 3 and all(name.endswith("/run.json") for name in members)  # never weights

    fresh = tmp_path / "fresh"
    report = merge(out / "results.tar.gz", fresh)
    assert sorted(str(p) for p in report.added) == members and not report.conflicts
    for name in members:
        assert (fresh / name).read_bytes() == (tmp_path / "store" / name).read_bytes()

    again, _ = gpu_report(tmp_path, cifar_root)
    assert again.returncode == 0 and "0 computed, 3 already stored, 0 left" in again.stdout
    assert "trained in" not in again.stdout


def test_a_small_budget_starts_no_run_and_ends_cleanly(tmp_path, cifar_root):
    result, out = gpu_report(tmp_path, cifar_root, BUDGET_S="12", SELFTEST="0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "not started, needs ~" in result.stdout and "0 computed, 0 already stored, 3 left" in result.stdout
    with tarfile.open(out / "results.tar.gz") as archive:
        assert archive.getnames() == []


def test_an_unknown_step_is_one_line(tmp_path):
    result, _ = gpu_report(tmp_path, tmp_path, step="report")
    assert result.returncode == 2
    assert result.stdout.strip() == ("gpu_report: the step is probe, warm, sweep (the default) or rehearse, "
                                     "not 'report'")


def test_staged_parts_are_recut_into_the_fewest_that_fit_a_call(tmp_path):
    from stage_parts import resplit

    blob = os.urandom(300_000)
    for number, start in enumerate(range(0, len(blob), 70_000), start=1):  # five parts, as the stage tool cuts
        (tmp_path / f"part-{number}").write_bytes(blob[start:start + 70_000])
    written = resplit(tmp_path, 110_000)
    assert [p.name for p in written] == ["part-1", "part-2", "part-3"] and sorted(tmp_path.iterdir()) == written
    assert all(p.stat().st_size <= 110_000 for p in written)
    assert b"".join(p.read_bytes() for p in written) == blob  # unpack joins part-1, part-2, ... in number order


def test_a_call_ledger_scales_overlapping_runs_to_the_wall_time_they_shared():
    from ledger import call_ledger, slot_ledger, summary

    run = {"config": {"model": "lenet5", "n_train": 1000, "epochs": 2}, "history": [
        {"epoch": 1, "seconds": 10.0, "eval_seconds": 2.0}, {"epoch": 2, "seconds": 10.0, "eval_seconds": 2.0}],
        "meta": {"resumed_from_epoch": 1, "phases": {"fit_seconds": 16.0, "setup_seconds": 3.0,
                                                      "warmup_seconds": 0.0, "checkpoint_seconds": 1.0}}}
    marks = [("start", 0.0), ("self-test", 5.0), ("sweep", 10.0), ("end", 30.0)]
    # Two such runs side by side (each trained epoch 2 here: 10 s of steps) in a sweep of 20 s, 2 s of packing.
    compiled = {**run, "config": {**run["config"], "compile": True},
                "meta": {**run["meta"], "phases": {**run["meta"]["phases"], "warmup_seconds": 0.0}}}
    ledger = call_ledger(marks, [run, compiled], {"packing_seconds": 2.0}, "NVIDIA H200", 989e12)
    assert ledger["compile_seconds_by_model"] == {"lenet5": 0.0}  # the compiled run's warm-up, by model
    phases = ledger["phases"]
    assert ledger["concurrency"] == round(32 / 18, 2) and phases["packing"] == 2.0
    assert phases["training steps"] == round(20 / (32 / 18), 3) and phases["other in runs"] == 0.0
    assert phases["start-up"] == 5.0 and phases["self-test"] == 5.0 and phases["idle"] == 0.0
    assert abs(sum(phases.values()) - 30.0) < 1e-6
    from cifarnb.study.estimate import training_flops
    from cifarnb.train import TrainConfig

    one_epoch = training_flops(TrainConfig(model="lenet5", n_train=1000, epochs=2))  # 3 passes of 1,000 images
    assert ledger["training_flops"] == 2 * one_epoch  # one epoch trained here by each of the two runs
    assert ledger["mfu_training"] == round(2 * one_epoch / (phases["training steps"] * 989e12), 4)
    slot = slot_ledger([ledger, {**ledger, "compile_seconds_by_model": {"lenet5": 7.5, "resnet9": 30.0}}], 4.0)
    assert slot["wall_seconds"] == 64.0 and slot["phases"]["idle"] == 4.0
    assert slot["compile_seconds_by_model"] == {"lenet5": 7.5, "resnet9": 30.0}
    assert slot["training_share"] == round(2 * phases["training steps"] / 64.0, 4)
    assert summary(slot).startswith("NVIDIA H200: 64 s of device time, training steps")
