"""Recipes (cifarnb.recipes), the engine's timing helpers, and the benchmarks' reduced CPU forms."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cifarnb import models
from cifarnb.data import NORMALIZATIONS
from cifarnb.study import recipes
from cifarnb.models.layers import GhostBatchNorm2d
from cifarnb.train import TrainConfig, fit
from cifarnb.train import measure_throughput, time_to_accuracy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", recipes.list_recipes())
def test_every_recipe_gives_a_valid_config(name):
    config = recipes.get(name)
    assert isinstance(config, TrainConfig)
    config.validate()


@pytest.mark.parametrize("model, lr", [("resnet18", 0.1), ("lenet5", 0.1), ("resnet9", 0.01), ("fastresnet9", 0.01)])
def test_plain_recipe_is_the_reports_table_6(model, lr):
    config = recipes.plain(model)
    if model != "fastresnet9":
        assert config == recipes.report(model)  # the report trains every other model plainly
    assert (config.model, config.lr, config.epochs, config.batch_size) == (model, lr, 200, 128)
    assert (config.optimizer, config.momentum, config.nesterov, config.weight_decay) == ("sgd", 0.9, False, 5e-4)
    assert (config.scheduler, config.plateau_factor, config.plateau_patience, config.plateau_cooldown,
            config.min_lr) == ("plateau", 0.5, 5, 5, 1e-6)
    assert config.loss == "cross_entropy"
    # FastResNet9's training tricks belong to its report recipe; the other models train plainly.
    assert (config.label_smoothing > 0, config.tta_flip) == ((True, True) if model == "fastresnet9" else (False, False))


def test_report_fastresnet9_is_the_report_codes_recipe():
    """main_fastresnet9.py, models/fastresnet9.py and utils.py, setting by setting."""
    config = recipes.report("fastresnet9", epochs=10)
    # Batch 512 (partial batches dropped) in ghost batches of 32; Nesterov momentum 0.9 with the rate in the
    # velocity; 2e-3 per summed image = 1.024 on the mean loss, decay 0.256 / 512; BN shifts at 64x, decay 0.004 / 512.
    assert (config.batch_size, config.drop_last, config.optimizer, config.nesterov, config.momentum) == (
        512, True, "sgd_velocity", True, 0.9)
    assert (config.lr, config.weight_decay) == (pytest.approx(1.024), pytest.approx(5e-4))
    assert (config.bias_lr_factor, config.bias_weight_decay) == (64.0, pytest.approx(0.004 / 512))
    assert config.scheduler == "piecewise" and config.lr_knots == ((0, 0), (2, 1), (8, 0.1))
    model = models.build(config.model, **config.model_kwargs())
    assert model.layer1.conv.bn.ghost_batch_size == 32
    # EMA every 5 steps with rho = 0.99**5, evaluated with flip TTA; label smoothing 0.2; logits / 8; reflect
    # padding, one crop per batch, half of each epoch's images mirrored.
    assert (config.ema_every, config.ema_decay, config.tta_flip) == (5, pytest.approx(0.99**5), True)
    assert (config.loss, config.label_smoothing, config.augmentation) == ("cross_entropy", 0.2, "per_batch")
    assert config.model_options == {"stem": "whitening", "frozen_bn_scale": True, "linear_bias": False,
                                    "logit_scale": 0.125}
    assert config.epochs == 10 and recipes.report("fastresnet9").epochs == 200 and config.bn_shards is None
    from cifarnb.train.optim import lr_schedule

    rates = lr_schedule(config, steps_per_epoch=1)  # at the start of each epoch
    assert rates[:3] == pytest.approx([0, 0.512, 1.024]) and rates[8:] == pytest.approx([0.1024, 0.1024])


def test_report_fastresnet9_has_the_reports_trainable_parameters_and_a_frozen_whitening_stem(tiny):
    config = recipes.report("fastresnet9", epochs=1, batch_size=16, device="cpu")
    model = models.build(config.model, **config.model_kwargs())
    assert models.count_parameters(model, trainable_only=True) == 6_570_880  # the report's 6.57 M
    stem = model.prep.whitening
    assert not stem.weight.requires_grad and stem.weight.shape == (27, 3, 3, 3)
    assert all(not m.weight.requires_grad for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    # The stem is set from the training images before the first step, and not trained: a short run leaves it
    # where the data put it, and records the trainable count.
    from cifarnb.results import ResultStore

    run = ResultStore(tiny_store := Path(tempfile.mkdtemp())).run(config.replace(n_train=32, n_test=32),
                                                                 data=tiny, progress=False)
    assert run.meta["trainable_parameters"] == 6_570_880
    assert {"torch_threads", "cpu", "gpu"} <= set(run.meta)
    trained = run.load_model()
    fresh = models.build(config.model, **config.model_kwargs())
    models.init_from_data(fresh, tiny.subset(32, 32).x_train, *NORMALIZATIONS["cifar10"])
    assert torch.equal(trained.prep.whitening.weight, fresh.prep.whitening.weight)
    assert trained.prep.whitening.weight.abs().sum() > 0
    shutil.rmtree(tiny_store)


def test_report_fastresnet9_is_the_notebooks_fastresnet9():
    from cifarnb.study import profiles
    from cifarnb.study.sections import fastresnet9

    ladder = fastresnet9.trick_ladder(profiles.PROFILES["full"])
    notebook = ladder["+ flip TTA (= FastResNet9)"]
    assert recipes.report("fastresnet9").key() == notebook.key()


def test_fast_recipe_has_the_reports_four_tricks_on():
    config = recipes.fast()
    model = models.build(config.model, **config.model_kwargs())
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(isinstance(m, GhostBatchNorm2d) and m.ghost_batch_size == 32 for m in norms)  # ghost BN
    assert all(block.pool_before_bn for block in (model.layer1.conv, model.layer2.conv, model.layer3.conv))
    assert config.label_smoothing > 0 and config.loss == "cross_entropy"  # label smoothing
    assert config.tta_flip  # flip TTA
    # And the fast path's own choices.
    assert config.channels_last and config.loader == "tensor" and config.compile == torch.cuda.is_available()
    # The same experiment as the report's FastResNet9 at 10 epochs: only execution fields differ.
    assert config.key() == recipes.report("fastresnet9", epochs=10).key()


def test_fast_resnet18_is_the_same_experiment_as_the_report_recipe():
    fast = recipes.fast_resnet18()
    assert fast.key() == recipes.report("resnet18").key()
    assert fast.channels_last and fast.cudnn_benchmark and fast.precision == "auto"


def test_overrides_apply_and_unknown_names_are_refused():
    assert recipes.get("fast", epochs=3, seed=7).epochs == 3
    assert recipes.get("report", model="resnet9").lr == 0.01
    assert recipes.get("fast", compile=True).compile is True
    with pytest.raises(ValueError, match="unknown recipe 'airbench'.*fast, fast_resnet18, plain, report"):
        recipes.get("airbench")
    with pytest.raises(ValueError, match="unknown TrainConfig field.*epoch_count"):
        recipes.get("fast", epoch_count=3)


def test_plain_report_recipe_keys_are_unchanged_by_the_new_execution_fields():
    config = recipes.report("resnet18")
    assert config.key() == config.replace(compile_mode="reduce-overhead", cudnn_benchmark=True).key()


def test_time_to_accuracy_sums_training_seconds_up_to_the_first_epoch_at_target():
    history = [{"seconds": 1.0, "test_acc": 90.0}, {"seconds": 1.5, "test_acc": 94.2},
               {"seconds": 1.0, "test_acc": 93.9}]
    assert time_to_accuracy(history, 94.0) == pytest.approx(2.5)
    assert time_to_accuracy(history, 95.0) is None
    assert time_to_accuracy([{"seconds": 1.0, "test_acc": float("nan")}], 0.0) is None


def _strip_timings(history):
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in history]


def test_warm_up_steps_leave_the_run_unchanged(tiny):
    config = TrainConfig(model="alexnet", epochs=2, batch_size=24, lr=0.05, device="cpu", eval_batch_size=64,
                         scheduler="onecycle", ema_decay=0.9)  # dropout, EMA and a smaller last batch
    plain = fit(config, tiny, progress=False)
    warmed = fit(config, tiny, progress=False, warmup_steps=2)
    assert _strip_timings(warmed.history) == _strip_timings(plain.history)
    assert warmed.info["warmup_seconds"] > 0 and "setup_seconds" in warmed.info


def test_measure_throughput_counts_the_timed_images(tiny):
    config = TrainConfig(model="lenet5", batch_size=16, device="cpu")
    for fixed in (False, True):
        measured = measure_throughput(config, tiny, steps=3, warmup_steps=1, fixed_batch=fixed)
        assert measured["images"] == 48 and measured["images_per_second"] > 0
        assert measured["seconds_per_epoch"] == pytest.approx(64 / measured["images_per_second"])
        assert measured["timer"] == "perf_counter"


def _run(script: str, *args: str, cifar_root: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "CIFARNB_DATA": str(cifar_root), "OMP_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_speed_benchmark_runs_in_reduced_form(cifar_root, tmp_path):
    done = _run("speed.py", "--reduced", "--entries", "fastresnet9:fast", "--steps", "1", "--warmup-steps", "1",
                "--set", "batch_size=8", "--train", "fastresnet9:fast@target=5", "--train-set", "n_train=32",
                "n_test=32", "eval_batch_size=32", "--out", str(tmp_path), cifar_root=cifar_root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "report pipeline" in done.stdout and "images/s" in done.stdout
    report = json.loads((tmp_path / "speed.json").read_text())
    assert report["reduced"] and [row["entry"] for row in report["throughput"]] == [
        "fastresnet9:fast", "fastresnet9:report (report pipeline)"]
    assert report["throughput"][0]["vs_report_pipeline"] > 0
    (summary,) = report["training"]
    assert summary["entry"] == "fastresnet9:fast@target=5" and summary["seeds"] == [0]
    (run,) = json.loads((tmp_path / "histories.json").read_text())
    assert run["history"][0]["test_acc"] >= 0 and run["config"]["batch_size"] == 8
    shown = _run("speed.py", "--summary", str(tmp_path), cifar_root=cifar_root)
    assert shown.returncode == 0 and "fastresnet9:fast" in shown.stdout, shown.stderr


def test_loader_benchmark_runs_in_reduced_form(cifar_root, tmp_path):
    # fp32 chosen explicitly: "auto" would compile the 200-epoch run on a CPU with native bf16, and with no warm-up
    # step the compile would fall in the one timed step of this smoke run
    done = _run("loader_speed.py", "--batch-size", "8", "--steps", "1", "--warmup-steps", "0", "--num-workers", "0",
                "--set", "precision=fp32", "--out", str(tmp_path), cifar_root=cifar_root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tensor / torchvision" in done.stdout
    result = json.loads((tmp_path / "loader_speed.json").read_text())
    assert set(result["rows"]) == {"torchvision", "tensor", "fixed batch"}
    assert result["config"]["model"] == "resnet18" and result["tensor_over_torchvision"] > 0


def test_gpu_check_script_parses():
    assert subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_check.sh")]).returncode == 0
