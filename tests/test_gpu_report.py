"""benchmarks/gpu_report.sh on a CPU: the device call's archive, log, budget and merge, end to end."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

from cifarnb.archive import merge

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_report.sh"


def gpu_report(tmp_path: Path, cifar_root: Path, **environment: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "out"
    settings = dict(OUT=str(out), STORE=str(tmp_path / "store"), PROFILE="smoke", DEVICE="cpu", SECTIONS="model_zoo",
                    SEEDS="5", WORKERS="2", BUDGET_S="300", CIFARNB_DATA=str(cifar_root))
    result = subprocess.run(["bash", str(SCRIPT)], env={**os.environ, **settings, **environment}, text=True,
                            capture_output=True, timeout=600)
    return result, out


def test_one_call_returns_one_archive_that_merges_and_a_second_call_trains_nothing(tmp_path, cifar_root):
    result, out = gpu_report(tmp_path, cifar_root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert files == ["gpu_report.log", "results.tar.gz"]  # a device call returns at most 8 files
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
