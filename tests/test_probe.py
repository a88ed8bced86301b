"""benchmarks/probe.py --cpu: every section of the GPU throughput probe runs on the CPU and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
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
