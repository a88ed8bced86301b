"""The report's precision as an execution choice: TF32 convolutions for main.py's and the VGG scripts' runs, fp16
for the code's FastResNet9, bf16 where the card's probe shows the report's costing more than 1.5x; out of every
key, recorded with each run, shown in the tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cifarnb.results import ResultStore, Run
from cifarnb.study import profiles, reading
from cifarnb.study.precision import report_precision, sweep_precision
from cifarnb.study.probes import Probe
from cifarnb.study.sections import SECTIONS, plan
from cifarnb.study.sections import batchnorm, fastresnet9, model_zoo, optimize_resnet18
from cifarnb.study.settings import PRECISION_MAX_COST
from cifarnb.train import TrainConfig
from cifarnb.train.engine import prepare
from cifarnb.train.precision import autocast_dtype, resolved_precision


def test_tf32_is_fp32_tensors_with_tf32_convolutions(tiny):
    config = TrainConfig(model="lenet5", precision="tf32", device="cpu")
    assert autocast_dtype(config, torch.device("cuda")) is None  # no autocast: fp32 tensors
    assert resolved_precision(config, torch.device("cuda")) == "tf32"
    assert resolved_precision(config, torch.device("cpu")) == "fp32"  # a CPU has no TF32
    assert resolved_precision(config.replace(precision="auto"), torch.device("cuda")) == "bf16"
    try:
        prepare(config.replace(precision="fp32"), tiny, torch.device("cpu"))
        assert torch.backends.cudnn.allow_tf32 is False  # each run sets the process-wide flag itself
        prepare(config, tiny, torch.device("cpu"))
        assert torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cudnn.allow_tf32 = True  # PyTorch's default


def test_the_report_precision_of_each_section():
    quick = profiles.get("quick")
    assert report_precision(model_zoo.zoo_config(quick, "resnet18")) == "tf32"  # main.py
    assert {report_precision(c) for c in optimize_resnet18.ablation_configs(quick, "loss").values()} == {"tf32"}
    assert {report_precision(c) for c in batchnorm.vgg_configs(quick).values()} == {"tf32"}  # VGG_acc.py
    ladder = fastresnet9.trick_ladder(quick, "report")
    assert report_precision(ladder[list(ladder)[-1]]) == "fp16"  # main_fastresnet9.py
    assert {report_precision(c) for c in fastresnet9.trick_ladder(quick, "plain").values()} == {"tf32"}


def _probe(tmp_path: Path, ms: dict[str, float], model: str = "resnet18") -> Probe:
    records = [{"section": "precision", "label": f"{model} {p}", "model": model, "family": "resnet",
                "batch_size": 128, "mode": "eager", "workers": 1, "precision": p, "ms_per_step": t,
                "achieved_flops": 1e12 / t} for p, t in ms.items()]
    path = tmp_path / "probe-nvidia-h200-2026-12-03.json"
    path.write_text(json.dumps({"device": "NVIDIA H200", "records": records}))
    return Probe.read(path)


def test_the_sweep_keeps_the_report_precision_unless_it_costs_more_than_the_limit(tmp_path):
    config = TrainConfig(model="resnet18", device="cuda")
    cheap = _probe(tmp_path, {"tf32": 10.0 * PRECISION_MAX_COST, "bf16": 10.0})
    assert cheap.precision_cost("resnet18", "tf32") == pytest.approx(PRECISION_MAX_COST)
    assert sweep_precision(config, cheap) == "tf32"
    dear = _probe(tmp_path, {"tf32": 16.0, "bf16": 10.0})
    assert sweep_precision(config, dear) == "bf16"
    assert sweep_precision(config.replace(model="resnet34"), dear) == "bf16"  # its family's record
    assert sweep_precision(config.replace(model="lenet5"), dear) == "tf32"  # no record of its family: the report's
    assert sweep_precision(config.replace(precision="fp32"), dear) == "fp32"  # chosen explicitly: kept
    untimed = _probe(tmp_path, {"bf16": 10.0})
    assert untimed.precision_cost("resnet18", "tf32") is None and sweep_precision(config, untimed) == "tf32"
    assert sweep_precision(config.replace(device="cpu"), dear) == "tf32"  # a CPU runs fp32 whatever is asked


def test_planned_runs_carry_the_report_precision_and_keep_their_keys():
    for task in plan(list(SECTIONS), profiles.get("quick"), seeds=[0]):
        config = getattr(task, "config", None)
        if isinstance(config, TrainConfig):
            assert config.precision == report_precision(config)
            assert config.replace(precision="auto").key() == config.key()  # execution only
    # LeNet5's committed quick run is found under its key whatever the precision
    assert model_zoo.zoo_config(profiles.get("quick"), "lenet5").key() == "a5b118104aa9b0ee"


def test_a_run_records_its_precision_and_tables_show_it(tiny, tmp_path):
    store = ResultStore(tmp_path)
    config = TrainConfig(model="lenet5", epochs=1, batch_size=32, lr=0.05, device="cpu", precision="tf32",
                         n_train=64, n_test=32)
    run = store.run(config, tiny, progress=False)
    assert run.meta["precision"] == "fp32" and run.meta["execution"]["precision"] == "tf32"
    assert reading.run_precision(run) == "fp32"
    earlier = Run(config.replace(precision="auto"), run.history, "finished",
                  meta={"device": "NVIDIA H200", "execution": {"precision": "auto"}})
    assert reading.run_precision(earlier) == "bf16"  # stored before runs recorded it: "auto" on CUDA
    table = reading.comparison_table({"LeNet5": [run, earlier], "missing": []},
                                     {"acc": ("test_acc", None)})
    assert table.loc["LeNet5", reading.PRECISION_HEADING] == "bf16, fp32"
    assert table.loc["missing", reading.PRECISION_HEADING] == reading.NOT_RUN
