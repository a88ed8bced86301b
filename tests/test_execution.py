"""One place decides how a run executes (cifarnb.train.execution.decide): "auto" means the same in every entry
point on the same device; the report's precision on a GPU (TF32 convolutions for main.py's and the VGG scripts'
runs, fp16 for the code's FastResNet9) unless the probe shows it costing more than 1.5x bf16; the CPU fast path
(bf16, channels_last, compiled for long runs) on a CPU with native bf16, guarded by a check against fp32; all out of
every key, recorded with each run, shown in the tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cifarnb.results import ResultStore, Run
from cifarnb.study import profiles, reading
from cifarnb.study.fast_paths import FastPaths, evidence_for, report_precision
from cifarnb.study.probes import Probe
from cifarnb.study.sections import SECTIONS, plan
from cifarnb.study.sections import batchnorm, fastresnet9, model_zoo, optimize_resnet18
from cifarnb.study.settings import PRECISION_MAX_COST
from cifarnb.train import TrainConfig, execution
from cifarnb.train.engine import prepare
from cifarnb.train.execution import checked_execution
from cifarnb.train.execution import CPU_COMPILE_MIN_STEPS, Evidence, decide

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


def test_tf32_is_fp32_tensors_with_tf32_convolutions(tiny):
    config = TrainConfig(model="lenet5", precision="tf32", device="cpu")
    assert decide(config, CUDA).autocast is None  # no autocast: fp32 tensors
    assert decide(config, CUDA).precision == "tf32"
    assert decide(config, CPU).precision == "fp32"  # a CPU has no TF32
    assert decide(config.replace(precision="auto"), CUDA).precision == "bf16"  # no reference precision: bf16
    try:
        prepare(config.replace(precision="fp32"), tiny, CPU)
        assert torch.backends.cudnn.allow_tf32 is False  # each run sets the process-wide flag itself
        prepare(config.replace(precision="bf16"), tiny, CPU)
        assert torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cudnn.allow_tf32 = True  # PyTorch's default


def test_auto_on_a_cpu_with_native_bf16_is_the_cpu_fast_path(monkeypatch):
    monkeypatch.setattr(execution, "cpu_has_native_bf16", lambda: True)
    short = TrainConfig(model="lenet5", epochs=1, batch_size=64, n_train=640, device="cpu")
    chosen = decide(short, CPU)
    assert (chosen.precision, chosen.autocast, chosen.cpu_fast_path) == ("bf16", torch.bfloat16, True)
    assert chosen.config.channels_last and not chosen.config.compile  # a short run does not repay a compile
    assert chosen.config.key() == short.key()  # execution fields only
    long = short.replace(n_train=None, epochs=1, batch_size=128)  # 391 steps
    assert execution.training_steps(long) >= CPU_COMPILE_MIN_STEPS and decide(long, CPU).config.compile
    assert decide(long, CPU).record() == {"device": "cpu", "loader": "tensor", "precision": "bf16",
                                          "channels_last": True, "compile": True}
    failed = decide(short, CPU, Evidence(bf16_failed="bf16 loss nan"))
    assert failed.precision == "fp32" and not failed.cpu_fast_path and "bf16 loss nan" in failed.why
    assert decide(short.replace(precision="fp32"), CPU).precision == "fp32"  # an explicit choice is kept
    assert decide(short.replace(precision="bf16"), CPU).autocast == torch.bfloat16
    monkeypatch.setattr(execution, "cpu_has_native_bf16", lambda: False)
    assert decide(short, CPU).precision == "fp32" and not decide(short, CPU).config.channels_last


@pytest.mark.parametrize("drop_last", [False, True])
def test_the_step_count_deciding_compile_is_the_engines(tiny, drop_last):
    """decide() and the estimate count the steps the engine's loader really takes (drop_last included)."""
    config = TrainConfig(model="lenet5", batch_size=24, n_train=64, drop_last=drop_last, device="cpu")
    assert execution.steps_per_epoch(config) == len(prepare(config, tiny, CPU).train_loader) == 2 + (not drop_last)
    assert execution.training_steps(config) == config.epochs * execution.steps_per_epoch(config)


def test_auto_means_the_same_in_every_entry_point(monkeypatch):
    """The command line, the sweep's tasks and the notebooks all hand decide() the study's evidence."""
    monkeypatch.setattr(execution, "cpu_has_native_bf16", lambda: True)
    zoo = model_zoo.zoo_config(profiles.get("quick"), "resnet18")
    task = next(t for t in plan(["model_zoo"], profiles.get("quick"), seeds=[0])
                if getattr(t, "config", None) is not None and t.config.model == "resnet18")
    assert task.config.precision == "auto"  # planning no longer rewrites the config
    assert task.run_evidence == evidence_for(zoo)
    assert decide(zoo, CUDA, task.run_evidence).precision == "tf32"  # the report's, on a GPU
    assert decide(zoo, CPU, task.run_evidence).precision == "bf16"  # the CPU fast path


def test_the_cpu_check_passes_here_and_a_failing_check_falls_back_to_fp32(tiny, monkeypatch, capsys):
    monkeypatch.setattr(execution, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(execution, "_CPU_CHECKS", {})
    config = TrainConfig(model="lenet5", epochs=1, batch_size=32, device="cpu")
    assert checked_execution(config, tiny, CPU).precision == "bf16"
    assert execution._CPU_CHECKS == {("lenet5", "[]"): None}  # checked once, and it agreed
    monkeypatch.setattr(execution, "bf16_agrees_with_fp32", lambda *args: "bf16 loss 9 against fp32's 2.3 at step 1")
    monkeypatch.setattr(execution, "_CPU_CHECKS", {})
    fallen = checked_execution(config, tiny, CPU)
    assert fallen.precision == "fp32" and "against fp32's 2.3" in fallen.why
    assert "the CPU's bf16 check failed" in capsys.readouterr().err


def test_the_check_passes_resnet9_whose_loss_falls_fast_on_16_images(cifar, monkeypatch):
    """The first fill of the plain ladder's ResNet9 fell back to fp32: its loss fell from 2.3 to 0.25 in 3 steps and
    bf16's 0.29 was 18% off that step's own loss; held to 5% of the first loss, a healthy bf16 path passes."""
    monkeypatch.setattr(execution, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(execution, "_CPU_CHECKS", {})
    plain_resnet9 = next(t.config for t in plan(["fastresnet9"], profiles.get("quick", device="cpu"), seeds=[0])
                         if t.label == "plain ladder: ResNet9 (seed 0)")
    assert checked_execution(plain_resnet9, cifar, CPU).precision == "bf16"


def test_the_check_passes_vgg_a_bn_whose_first_step_is_chaotic(cifar, monkeypatch):
    """The first fill of VGG-A + BN fell back to fp32: stepping its own weights, bf16's loss was 1.285 at step 2
    against fp32's 1.485 (one step had taken it from 3.0 to 1.5). On the same weights they agree to 0.5%."""
    monkeypatch.setattr(execution, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(execution, "_CPU_CHECKS", {})
    vgg_a_bn = next(t.config for t in plan(["batchnorm"], profiles.get("quick", device="cpu"), seeds=[0])
                    if t.label == "VGG-A + BN (seed 0)")
    assert checked_execution(vgg_a_bn, cifar, CPU).precision == "bf16"


def test_the_check_catches_a_broken_bf16_path(tiny):
    class Broken(torch.nn.Module):  # right in fp32, wrong under bf16 autocast
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3 * 32 * 32, 10)

        def forward(self, images):
            logits = self.linear(images.flatten(1))
            return logits * 100 if torch.is_autocast_enabled("cpu") else logits

    class WrongBackward(torch.autograd.Function):  # the identity, whose backward under bf16 flips the sign
        @staticmethod
        def forward(ctx, inputs):
            ctx.flip = torch.is_autocast_enabled("cpu")
            return inputs.view_as(inputs)

        @staticmethod
        def backward(ctx, gradient):
            return -gradient if ctx.flip else gradient

    class BrokenBackward(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3 * 32 * 32, 10)

        def forward(self, images):
            return WrongBackward.apply(self.linear(images.flatten(1)))

    images, labels = tiny.x_train[:16].float() / 255, tiny.y_train[:16]
    assert "against fp32's" in execution.bf16_agrees_with_fp32(Broken(), images, labels)
    assert "gradient has cosine" in execution.bf16_agrees_with_fp32(BrokenBackward(), images, labels)
    healthy = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3072, 10))
    state = torch.random.get_rng_state()
    assert execution.bf16_agrees_with_fp32(healthy, images, labels) is None
    assert torch.equal(torch.random.get_rng_state(), state)  # the check leaves the run's random state alone


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

    def precision(config, probe, broken=None):
        fast = FastPaths("NVIDIA H200", probe=probe, broken=broken or {})
        return decide(config, CUDA, evidence_for(config, fast)).precision

    cheap = _probe(tmp_path, {"tf32": 10.0 * PRECISION_MAX_COST, "bf16": 10.0})
    assert cheap.precision_cost("resnet18", "tf32") == pytest.approx(PRECISION_MAX_COST)
    assert precision(config, cheap) == "tf32"
    dear = _probe(tmp_path, {"tf32": 16.0, "bf16": 10.0})
    assert precision(config, dear) == "bf16"
    assert precision(config.replace(model="resnet34"), dear) == "bf16"  # its family's record
    assert precision(config.replace(model="lenet5"), dear) == "tf32"  # no record of its family: the report's
    assert precision(config.replace(precision="fp32"), dear) == "fp32"  # chosen explicitly: kept
    untimed = _probe(tmp_path, {"bf16": 10.0})
    assert untimed.precision_cost("resnet18", "tf32") is None and precision(config, untimed) == "tf32"
    # The self-test's failed precision check (the rollback fast_paths.apply made): the report's precision.
    assert precision(config, dear, {"precision": {"*": "precision: loss differs"}}) == "tf32"
    assert decide(config, CUDA).precision == "bf16"  # the library alone, no reference: bf16


def test_planned_runs_keep_auto_and_their_keys():
    for task in plan(list(SECTIONS), profiles.get("quick"), seeds=[0]):
        config = getattr(task, "config", None)
        if isinstance(config, TrainConfig):
            assert config.precision == "auto"  # decided when it runs, on the device that runs it
            assert config.replace(precision="fp16").key() == config.key()  # execution only
    # LeNet5's committed quick run is found under its key whatever the precision
    assert model_zoo.zoo_config(profiles.get("quick"), "lenet5").key() == "a5b118104aa9b0ee"


def test_a_run_records_its_precision_and_tables_show_it(tiny, tmp_path):
    store = ResultStore(tmp_path)
    config = TrainConfig(model="lenet5", epochs=1, batch_size=32, lr=0.05, device="cpu", precision="tf32",
                         n_train=64, n_test=32)
    run = store.run(config, tiny, progress=False)
    assert run.meta["precision"] == "fp32" and run.meta["execution"]["precision"] == "fp32"  # as it ran
    assert reading.run_precision(run) == "fp32"
    earlier = Run(config.replace(precision="auto"), run.history, "finished",
                  meta={"device": "NVIDIA H200", "execution": {"precision": "auto"}})
    assert reading.run_precision(earlier) == "bf16"  # stored before runs recorded it: "auto" on CUDA
    table = reading.comparison_table({"LeNet5": [run, earlier], "missing": []},
                                     {"acc": ("test_acc", None)})
    assert table.loc["LeNet5", reading.PRECISION_HEADING] == "bf16, fp32"
    assert table.loc["missing", reading.PRECISION_HEADING] == reading.NOT_RUN
