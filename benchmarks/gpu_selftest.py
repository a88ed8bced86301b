"""Self-test of the CUDA-only fast-path branches, on synthetic images, in about a minute.

    python benchmarks/gpu_selftest.py             # exit 0: every branch ran; 1: the first line names what broke

Before a device session trains for minutes, each branch that CPU tests cannot reach runs here once through
``fit``: bf16 autocast (with ghost BN on FastResNet9), channels_last, fused SGD and cuDNN autotuning on one
model of every family; EMA and flip TTA on the EMA model; a checkpoint/resume round trip (CUDA RNG state saved and
restored); ``torch.compile`` (FastResNet9, full batches); and CUDA graphs (``compile_mode="reduce-overhead"``,
LeNet5, the cheapest to compile). Every check runs even after one fails, so one call shows all that is broken.
Without CUDA it says so and exits 0 (the CPU tests in tests/ cover what a CPU can run).
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cifarnb.data import CIFAR10  # noqa: E402
from cifarnb.train import TrainConfig, fit  # noqa: E402

# The smallest model of each family (geresnext29_8x64d is its family's only one).
FAMILY_MODELS = ("lenet5", "alexnet", "resnet18", "resnet9", "fastresnet9", "resnext29_2x32d", "densenet100_bc",
                 "wideresnet16x8", "geresnext29_8x64d", "vgg_a_bn")
FAST = dict(device="cuda", precision="bf16", channels_last=True, cudnn_benchmark=True, epochs=1, batch_size=64,
            eval_batch_size=128, lr=0.01)


def synthetic(n_train: int = 256, n_test: int = 128) -> CIFAR10:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_train + n_test, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (n_train + n_test,), generator=generator)
    return CIFAR10(images[:n_train], labels[:n_train], images[n_train:], labels[n_train:])


def check_finite(result) -> None:
    last = result.history[-1]
    if result.diverged or not all(math.isfinite(last[k]) for k in ("train_loss", "test_loss", "test_acc")):
        raise RuntimeError(f"non-finite result: {last}")


def eager_families(data: CIFAR10) -> None:
    """bf16 autocast, channels_last, fused SGD, cuDNN autotuning: one model of every family."""
    for model in FAMILY_MODELS:
        check_finite(fit(TrainConfig(model=model, **FAST), data, progress=False))


def ghost_bn_ema_tta(data: CIFAR10) -> None:
    """Ghost BN under bf16 autocast at the bag-of-tricks batch (512 = 16 ghost batches), EMA every 5 steps, TTA."""
    config = TrainConfig(model="fastresnet9", **{**FAST, "batch_size": 512, "epochs": 2}, ema_decay=0.99**5,
                         ema_every=5, tta_flip=True, label_smoothing=0.2, model_options={"logit_scale": 0.125})
    check_finite(fit(config, synthetic(2048, 256), progress=False))


def resume_with_cuda_rng(data: CIFAR10) -> None:
    """A checkpoint written on CUDA (model, optimizer, EMA, CUDA RNG state) resumes and finishes the run."""
    config = TrainConfig(model="resnet9", **{**FAST, "epochs": 2}, ema_decay=0.9)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "checkpoint.pt"

        def stop_after_first(row):
            if row["epoch"] == 1:
                raise KeyboardInterrupt

        try:
            fit(config, data, checkpoint_path=checkpoint, progress=False, on_epoch=stop_after_first)
        except KeyboardInterrupt:
            pass
        resumed = fit(config, data, checkpoint_path=checkpoint, progress=False)
        if resumed.resumed_from_epoch != 1 or len(resumed.history) != 2:
            raise RuntimeError(f"resumed from epoch {resumed.resumed_from_epoch} with {len(resumed.history)} rows")
        check_finite(resumed)


def compiled(data: CIFAR10) -> None:
    """torch.compile (default mode) of FastResNet9's full training batches."""
    config = TrainConfig(model="fastresnet9", **FAST, compile=True, tta_flip=True)
    check_finite(fit(config, data, progress=False, warmup_steps=3))


def cuda_graphs(data: CIFAR10) -> None:
    """compile_mode="reduce-overhead": each full training batch replayed as a CUDA graph."""
    config = TrainConfig(model="lenet5", **FAST, compile=True, compile_mode="reduce-overhead")
    check_finite(fit(config, data, progress=False, warmup_steps=3))


CHECKS = (eager_families, ghost_bn_ema_tta, resume_with_cuda_rng, compiled, cuda_graphs)


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_selftest: skipped, CUDA is not available here (tests/ run the branches a CPU can)")
        return 0
    print(f"gpu_selftest: {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    data = synthetic()
    broken = []
    for check in CHECKS:
        started = time.perf_counter()
        try:
            check(data)
            print(f"  ok      {check.__name__} ({time.perf_counter() - started:.1f} s)", flush=True)
        except Exception as error:  # noqa: BLE001 - report every broken branch, not just the first
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            broken.append(f"{check.__name__}: {type(error).__name__}: {first_line}")
            print(f"  FAILED  {check.__name__} ({time.perf_counter() - started:.1f} s): {broken[-1]}", flush=True)
    if broken:
        print(f"gpu_selftest: {len(broken)} fast-path branch(es) broken on CUDA; first: {broken[0]}")
        return 1
    print("gpu_selftest: every fast-path branch ran on CUDA")
    return 0


if __name__ == "__main__":
    sys.exit(main())
