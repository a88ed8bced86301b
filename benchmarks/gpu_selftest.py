"""Self-test of the CUDA-only fast-path branches, on synthetic images, in about a minute.

    python benchmarks/gpu_selftest.py             # exit 0: every branch ran; 1: the first line names what broke
    python benchmarks/gpu_selftest.py --unless-passed benchmarks/selftest-passed.json \
        --record $OUT/selftest-passed.json --commit abc1234   # only when the fast path changed since it passed

Before a device session trains for minutes, each branch that CPU tests cannot reach runs here once through
``fit``: bf16 autocast (with ghost BN on FastResNet9), channels_last, fused SGD and cuDNN autotuning on one
model of every family; EMA and flip TTA on the EMA model; a checkpoint/resume round trip (CUDA RNG state saved and
restored); ``torch.compile`` (FastResNet9, full batches); and CUDA graphs (``compile_mode="reduce-overhead"``,
LeNet5, the cheapest to compile). Every check runs even after one fails, so one call shows all that is broken.
Without CUDA it says so and exits 0 (the CPU tests in tests/ cover what a CPU can run).

A pass is worth recording: ``--record FILE`` writes the fast path's fingerprint (a hash of every file the checks
run through, :data:`FAST_PATH`), the commit, card, torch version and date; committed as
``benchmarks/selftest-passed.json``, it lets ``--unless-passed`` skip the minute of checks in later device
sessions until one of those files, the card or torch changes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
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
ROOT = Path(__file__).resolve().parents[1]
# What the checks run through: a change to any of these files can break a CUDA-only branch.
FAST_PATH = ("cifarnb/train", "cifarnb/models", "cifarnb/loaders.py", "cifarnb/data.py", "cifarnb/device.py",
             "cifarnb/atomic.py", "benchmarks/gpu_selftest.py")


def fingerprint(root: Path = ROOT) -> str:
    """A hash of the fast path's files (their paths and contents) under ``root``."""
    digest = hashlib.sha256()
    for entry in FAST_PATH:
        paths = sorted((root / entry).rglob("*.py")) if (root / entry).is_dir() else [root / entry]
        for path in paths:
            if path.exists():
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def passed_before(stamp: Path, device: str, root: Path = ROOT) -> str | None:
    """Why the checks need not run again (``stamp`` records a pass of these very files on this card and torch),
    or None."""
    try:
        passed = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if (passed.get("fingerprint"), passed.get("device"), passed.get("torch")) != (fingerprint(root), device,
                                                                                   torch.__version__):
        return None
    return (f"gpu_selftest: not needed, the fast path is unchanged since it passed at commit {passed.get('commit')} "
            f"({passed['device']}, torch {passed['torch']}, {passed.get('date')})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The CUDA-only fast-path branches, on synthetic images.")
    parser.add_argument("--unless-passed", type=Path, default=None, metavar="STAMP",
                        help="skip the checks when STAMP records a pass of the same fast path on this card and torch")
    parser.add_argument("--record", type=Path, default=None, metavar="FILE", help="after a pass, write its stamp here")
    parser.add_argument("--commit", default="unknown", help="the commit the stamp names (the checkout's HEAD)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_selftest: skipped, CUDA is not available here (tests/ run the branches a CPU can)")
        return 0
    device = torch.cuda.get_device_name()
    reason = passed_before(args.unless_passed, device) if args.unless_passed else None
    if reason:
        print(reason)
        return 0
    print(f"gpu_selftest: {device}, torch {torch.__version__}", flush=True)
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
    if args.record is not None:
        stamp = {"fingerprint": fingerprint(), "commit": args.commit, "device": device, "torch": torch.__version__,
                 "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"), "files": list(FAST_PATH)}
        args.record.write_text(json.dumps(stamp, indent=1) + "\n")
        print(f"gpu_selftest: recorded the pass in {args.record} (commit it as benchmarks/selftest-passed.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
