"""benchmarks/gpu_report.sh on a CPU: the device call's archive, log, budget and merge, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from cifarnb.archive import merge

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_report.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))


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


def test_past_its_budget_the_probe_records_what_is_left_as_skipped(tmp_path):
    out = tmp_path / "probe.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "probe.py"), "--cpu", "--decide",
                             "--budget-s", "0", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = json.loads(out.read_text())["records"]
    assert records and all(r.get("skipped") == "over the probe's budget (--budget-s)" for r in records)


def test_an_unknown_step_is_one_line(tmp_path):
    result, _ = gpu_report(tmp_path, tmp_path, step="report")
    assert result.returncode == 2
    assert result.stdout.strip() == ("gpu_report: the step is probe, warm, sweep (the default) or rehearse, "
                                     "not 'report'")


def test_the_self_test_runs_again_only_when_the_fast_path_card_or_torch_changed(tmp_path):
    import torch

    from gpu_selftest import fingerprint, recorded_before

    for name, text in (("cifarnb/train/engine.py", "a"), ("benchmarks/gpu_selftest.py", "b"), ("README.md", "c")):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    stamp = tmp_path / "selftest.json"
    checks = [{"name": "compiled lenet5@2", "fast_path": "compiled", "model": "lenet5", "ok": False, "error": "x"}]
    stamp.write_text(json.dumps({"fingerprint": fingerprint(tmp_path), "commit": "abc1234", "device": "NVIDIA H200",
                                 "torch": torch.__version__, "date": "2026-12-01", "checks": checks}))
    assert recorded_before(stamp, "NVIDIA H200", tmp_path) == (
        "gpu_selftest: not needed, the fast path is unchanged since its checks at commit abc1234 (NVIDIA H200, "
        f"torch {torch.__version__}, 2026-12-01); failed then, so the sweep keeps them off: compiled lenet5@2")
    assert recorded_before(stamp, "NVIDIA H100 80GB HBM3", tmp_path) is None  # another card
    (tmp_path / "README.md").write_text("changed")  # not the fast path
    assert recorded_before(stamp, "NVIDIA H200", tmp_path) is not None
    (tmp_path / "cifarnb/train/engine.py").write_text("changed")
    assert recorded_before(stamp, "NVIDIA H200", tmp_path) is None
    assert recorded_before(tmp_path / "absent.json", "NVIDIA H200", tmp_path) is None


def test_staged_parts_are_recut_into_the_fewest_that_fit_a_call(tmp_path):
    from stage_parts import resplit

    blob = os.urandom(300_000)
    for number, start in enumerate(range(0, len(blob), 70_000), start=1):  # five parts, as the stage tool cuts
        (tmp_path / f"part-{number}").write_bytes(blob[start:start + 70_000])
    written = resplit(tmp_path, 110_000)
    assert [p.name for p in written] == ["part-1", "part-2", "part-3"] and sorted(tmp_path.iterdir()) == written
    assert all(p.stat().st_size <= 110_000 for p in written)
    assert b"".join(p.read_bytes() for p in written) == blob  # unpack joins part-1, part-2, ... in number order


def test_workers_and_mps_are_chosen_from_the_probe(tmp_path):
    from probe import choose_workers

    def record(workers, mps, images_per_second):
        return {"section": "workers", "label": f"{workers} workers", "model": "resnet18", "workers": workers,
                "mps": mps, "images_per_second": images_per_second}

    path = tmp_path / "probe-nvidia-h200-2026-12-01.json"
    rows = [record(1, False, 10_000), record(4, False, 15_000), record(8, False, 15_500), record(4, True, 21_000),
            record(8, True, 20_500)]
    path.write_text(json.dumps({"records": rows}))
    assert choose_workers(path)[:2] == (4, True)  # 8 with MPS is within 5%: the fewer processes win
    path.write_text(json.dumps({"records": rows[:3]}))
    workers, mps, why = choose_workers(path)
    assert (workers, mps) == (4, False) and why.startswith("4 workers: 15000 images/s of resnet18 (97% of the best)")


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


def test_a_later_slot_skips_the_decisions_a_committed_probe_already_holds(tmp_path):
    import torch

    from probe import decided

    path = tmp_path / "probe-cpu-2026-12-03.json"
    modes = [{"section": "modes", "model": "lenet5", "batch_size": 2, "fast_path": mode, "ms_per_step": 1.0}
             for mode in ("eager", "compiled")]
    workers = [{"section": "workers", "images_per_second": 100.0}]
    path.write_text(json.dumps({"torch": torch.__version__, "records": modes + workers}))
    assert decided(path, "model_zoo", cpu=True) == (True, f"{path.name} holds the decisions for model_zoo (modes, "
                                                          "workers) under this torch")
    path.write_text(json.dumps({"torch": torch.__version__, "records": modes[:1] + workers}))
    assert decided(path, "model_zoo", cpu=True) == (False, f"{path.name} has no compiled timing of lenet5 at batch 2")
    path.write_text(json.dumps({"torch": "2.0.0", "records": modes + workers}))
    assert decided(path, "model_zoo", cpu=True)[1].endswith(f"was made with torch 2.0.0, this is {torch.__version__}")
    assert decided(None, "model_zoo", cpu=True) == (False, "no probe of this card is committed")
