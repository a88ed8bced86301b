"""benchmarks/probe.py --cpu: every section of the GPU throughput probe runs on the CPU and writes its JSON; the
probe's choices (workers, decisions already held) and the self-test's record (benchmarks/gpu_selftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # probe, gpu_selftest
SECTIONS = ["resnet18_eager", "precision", "resnet18_compiled", "fixed_costs", "ghost_bn", "modes", "workers",
            "lenet5_wrn", "families"]
EVERY_RECORD = ("section", "label", "model", "family", "batch_size", "mode", "workers", "device", "torch", "date")


def test_the_probe_runs_every_section_on_the_cpu_and_says_what_it_skipped(tmp_path):
    out = tmp_path / "probe.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "probe.py"), "--cpu", "--out", str(out)],
                            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    probe = json.loads(out.read_text())
    assert probe["device"] == "cpu" and probe["peak_flops"] is None and probe["sweep_execution"] == {}
    assert list(probe["sections"]) == SECTIONS and all(s["status"] == "done" for s in probe["sections"].values())
    records = probe["records"]
    assert not [record for record in records if "error" in record]
    timed = [record for record in records if "images_per_second" in record]
    assert {record["section"] for record in timed} == set(SECTIONS) - {"fixed_costs"}
    for record in timed:
        assert all(record.get(key) is not None for key in EVERY_RECORD), record
        assert record["seconds_per_epoch"] == 50_000 / record["images_per_second"] > 0
        assert record["train_flops_per_image"] > 0 and record["mfu"] is None  # a CPU's peak is not known
    # The CUDA-only measures are there, skipped, with why.
    skipped = {record["label"]: record["skipped"] for record in records if "skipped" in record}
    assert skipped == {"eager, cuDNN autotuning on": "cuDNN autotuning: needs CUDA",
                       "CUDA graphs": "CUDA graphs: needs CUDA", "MPS": "MPS: needs CUDA",
                       "LeNet5, CUDA graphs": "CUDA graphs: needs CUDA",
                       "lenet5 at batch 2, compiled+cuda_graphs": "CUDA graphs: needs CUDA"}
    eager = next(record for record in records if record["label"] == "eager, cuDNN autotuning off")
    assert eager["aten_calls_per_step"] > 0 and eager["gpu_busy_fraction"] == {"skipped": "CUDA kernels: needs CUDA"}
    compiled = next(record for record in records if record["label"] == "compiled")
    assert compiled["mode"] == "compiled" and compiled["compile_seconds"] > compiled["second_instance_warmup_seconds"]
    workers = [record for record in records if record["section"] == "workers" and "images_per_second" in record]
    assert [record["workers"] for record in workers] == [1, 2] and workers[0]["speedup_over_one"] == 1.0
    evaluations = [record for record in records if "seconds_per_10000_images" in record]
    assert {(record["eval_batch_size"], record["tta_flip"]) for record in evaluations} == {
        (8, False), (8, True), (16, False), (16, True)}
    (checkpoint,) = [record for record in records if record["label"].startswith("checkpoint write")]
    assert checkpoint["megabytes"] > 80  # ResNet18's weights are 45 MB, and SGD's momentum as much again
    # Each script's report precision against bf16 (study.fast_paths chooses from these on a GPU)
    precisions = {record["label"]: record["precision"] for record in timed if record["section"] == "precision"}
    assert precisions == {"resnet18 tf32": "tf32", "resnet18 bf16": "bf16", "vgg_a_bn tf32": "tf32",
                          "vgg_a_bn bf16": "bf16", "fastresnet9 fp16": "fp16", "fastresnet9 bf16": "bf16"}
    families = {record["family"] for record in timed}
    assert families >= {"lenet", "alexnet", "resnet", "resnext", "geresnext", "densenet", "wideresnet", "resnet9",
                        "vgg"}
    assert f"0 error(s); {out}" in result.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="here the probe would run on the GPU")
def test_without_cuda_and_without_cpu_it_says_so_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "probe.py"), "--out", str(tmp_path / "p.json")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "probe: CUDA is not available here; --cpu runs every section at tiny sizes on the CPU")


def test_past_its_budget_the_probe_records_what_is_left_as_skipped(tmp_path):
    out = tmp_path / "probe.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "probe.py"), "--cpu", "--decide",
                             "--budget-s", "0", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    records = json.loads(out.read_text())["records"]
    assert records and all(r.get("skipped") == "over the probe's budget (--budget-s)" for r in records)


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


def test_a_committed_probe_that_holds_the_decisions_is_not_measured_again(tmp_path):
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
