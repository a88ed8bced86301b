"""The GPU slot rehearsed on the CPU (tools/remote_gpu/rehearse.py): the whole call sequence under the device's
constraints, and the procedure the README states is the one it runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # tools/remote_gpu
sys.path.insert(0, str(HERE))

import rehearse  # noqa: E402
import slot_plan  # noqa: E402


def test_the_readme_states_the_procedure_the_rehearsal_runs():
    readme = (HERE / "README.md").read_text()
    assert slot_plan.markdown() in readme, ("tools/remote_gpu/README.md's procedure drifted: paste `python "
                                            "tools/remote_gpu/slot_plan.py`")
    calls = [step for step in slot_plan.slot_plan() if step.is_call]
    assert all(len(step.command) <= rehearse.COMMAND_CHARS for step in calls)
    assert all(slot_plan.WHEELS in step.carry for step in calls)  # every call can import the run schema
    assert [step.ends_by_minute for step in calls] == sorted(step.ends_by_minute for step in calls)
    assert calls[-1].ends_by_minute < slot_plan.SLOT_SECONDS / 60


def test_the_device_guard_refuses_what_the_device_lacks(tmp_path):
    """An import of a package the device does not have, by the project's code, is refused and logged; the device's
    packages and their dependencies import."""
    allowed = rehearse.allowed_modules(["pydantic"])
    assert {"torch", "numpy", "pandas", "matplotlib", "pydantic", "pydantic_core", "sympy"} <= allowed
    assert not {"papermill", "nbformat", "ray", "jupyter_client"} & allowed
    guard, root = tmp_path / "guard", tmp_path / "device"
    guard.mkdir(), root.mkdir()
    (guard / "sitecustomize.py").write_text(rehearse.GUARD)
    (root / "job.py").write_text("import numpy, torch, pydantic\ntry:\n    import papermill\n"
                                 "except ImportError as error:\n    print('refused:', error)\nimport importlib.util\n"
                                 "print('probe:', importlib.util.find_spec('nbformat'))\n")
    log = tmp_path / "violations.log"
    environment = {**os.environ, "PYTHONPATH": f"{guard}:{root}", "REHEARSAL_ROOT": str(root),
                   "REHEARSAL_SITE": str(rehearse.site_view(tmp_path / "site", allowed)),
                   "REHEARSAL_VIOLATIONS": str(log)}
    result = subprocess.run([sys.executable, "job.py"], cwd=root, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "refused: No module named 'papermill'" in result.stdout  # absent, as on the device
    assert "probe: None" in result.stdout  # a library's probe for an optional package finds nothing either
    assert log.read_text().splitlines() == ["import of papermill, which the device does not have (job.py:3)",
                                            "import of nbformat, which the device does not have (job.py:7)"]


def test_the_whole_slot_rehearses_on_the_cpu_and_its_ledger_adds_up(tmp_path, cifar_root):
    result = subprocess.run(["bash", str(HERE / "gpu_report.sh"), "rehearse", "--work",
                             str(tmp_path / "work"), "--data", str(cifar_root)], capture_output=True, text=True,
                            timeout=900, env={**os.environ, "CIFARNB_DATA": str(cifar_root)})
    out = result.stdout
    assert result.returncode == 0 and "no problem" in out, out[-4000:] + result.stderr[-2000:]
    calls = re.findall(r"^call (\d+): ", out, flags=re.M)
    assert calls == [str(n) for n in range(1, len(calls) + 1)] and len(calls) >= 3
    assert re.search(r"^ledger: cpu: \d+ s of device time, training steps \d+ s", out, flags=re.M)
    share = float(re.search(r"the ledger's phases add up to [\d.]+ s \(([-+][\d.]+)%\)", out).group(1))
    assert abs(share) <= 100 * rehearse.LEDGER_TOLERANCE
    assert list((tmp_path / "work" / "scratch-store").glob("*/run.json"))  # the archive merged back
    work = tmp_path / "work"
    # Call 1 (gpu_report.sh probe, no data needed beside its part): the self-test, then only the decisions.
    first = (work / "call-1.log").read_text()
    probe = json.loads((work / "here" / ".slot" / "call-1" / "probe.json").read_text())
    assert list(probe["sections"]) == ["modes", "workers"]
    assert [r["label"] for r in probe["records"]] == [
        "lenet5 at batch 2, eager", "lenet5 at batch 2, compiled+cuda_graphs", "lenet5 at batch 2, compiled",
        "1 worker, no MPS", "2 workers, no MPS", "MPS"]
    assert probe["records"][2]["fast_path"] == "compiled" and probe["records"][2]["compile_seconds"] > 0
    # Each fast path against eager; the one made to fail is recorded and its fallback named, and the slot goes on.
    checks = {c["name"]: c for c in json.loads((work / "here" / "benchmarks" / "selftest.json").read_text())["checks"]}
    assert checks["compiled lenet5@2"]["ok"] is False and checks["workers"]["ok"] is True
    assert checks["cuda_graphs"]["skipped"] == "CUDA graphs: needs CUDA"
    assert "FAILED  compiled lenet5@2" in first and "(the sweep's fallback: eager)" in first
    assert "1 fast path(s) failed against eager and stay off in the sweep: compiled lenet5@2" in first
    # Call 2 compiles ahead (here: nothing chosen compiled, said) and extends the card's probe; call 3 sweeps with
    # the fallback taken (rehearse.check_fallbacks) and the self-test not run again.
    assert "warm: nothing to compile" in (work / "call-2.log").read_text()
    assert "gpu_selftest: not needed" in (work / f"call-{calls[-1]}.log").read_text()
