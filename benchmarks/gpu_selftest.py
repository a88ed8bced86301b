"""Self-test of the fast paths on this card, on synthetic images, in about two minutes.

    python benchmarks/gpu_selftest.py                      # exit 0: nothing without a fallback is broken
    python benchmarks/gpu_selftest.py --unless-recorded benchmarks/selftest.json --record $OUT/selftest.json \
        --commit abc1234 --first-section fastresnet9       # only when the fast path changed since its record
    python benchmarks/gpu_selftest.py --cpu --break compiled   # here, on the CPU: one check made to fail (rehearsal)

Two kinds of check, each run even after one fails, so one call shows all that is broken:

* **Without a fallback** (CUDA only): bf16 autocast, channels_last, fused SGD and cuDNN autotuning on one model of
  every family; ghost BN, EMA and flip TTA; a checkpoint/resume round trip with the CUDA RNG state. The sweep has no
  other way round these: one failing stops the session (exit 1).
* **Against eager, with a fallback**: for the first section's models in the sweep's order, while ``--budget-s``
  lasts, ``torch.compile`` and CUDA graphs (``compile_mode="reduce-overhead"``) train the same steps from the same
  weights on the same batches as eager, and their losses must agree within :data:`TOLERANCE`; bf16 autocast
  against the report's precision; two worker processes side by side against one alone. One failing is recorded,
  and ``cifarnb.study.fast_paths`` keeps that model eager (or the report's precision, or the sweep in one process),
  said in one line of the sweep's log. A model the budget left unchecked is not compiled either.

``--record FILE`` writes every check's outcome with the fast path's fingerprint (a hash of every file the checks run
through, :data:`FAST_PATH`), the commit, card, torch version and date, after each check (a cut call keeps what it
checked). Committed as ``benchmarks/selftest.json``, it is what the sweep's fast paths read, and it lets
``--unless-recorded`` skip the checks until one of those files, the card or torch changes. ``--break CHECK`` makes
that check's fast side train at 1,000 times the rate, so its comparison fails as a real fault would: the rehearsal's way
to show the fallback taken. Without CUDA (and without ``--cpu``) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cifarnb.atomic import atomic_write  # noqa: E402
from cifarnb.data import CIFAR10, random_cifar10  # noqa: E402
from cifarnb.study import profiles  # noqa: E402
from cifarnb.study.fast_paths import MODES  # noqa: E402
from cifarnb.study.fast_paths import report_precision  # noqa: E402
from cifarnb.study.sections import SECTIONS, plan  # noqa: E402
from cifarnb.study.tasks import RunTask  # noqa: E402
from cifarnb.train import TrainConfig, fit  # noqa: E402

# The smallest model of each family (geresnext29_8x64d is its family's only one).
FAMILY_MODELS = ("lenet5", "alexnet", "resnet18", "resnet9", "fastresnet9", "resnext29_2x32d", "densenet100_bc",
                 "wideresnet16x8", "geresnext29_8x64d", "vgg_a_bn")
FAST = dict(device="cuda", precision="bf16", channels_last=True, cudnn_benchmark=True, epochs=1, batch_size=64,
            eval_batch_size=128, lr=0.01)
# Losses of a fast path against eager's, same weights, batches and steps: at most this far apart, relatively. A
# compiled graph reorders float sums (1e-3 apart after a few steps); bf16 rounds each product to 8 bits.
TOLERANCE = {"compiled": 0.02, "compiled+cuda_graphs": 0.02, "precision": 0.05, "workers": 0.02}
COMPARED_STEPS = 4
FALLBACKS = {"workers": "one process", "precision": "the report's precision"}  # else: that model eager
BROKEN_RATE = 1000.0  # --break: the fast side's learning rate, times the config's (diverges, or far off)


def check_finite(result) -> None:
    last = result.history[-1]
    if result.diverged or not all(math.isfinite(last[k]) for k in ("train_loss", "test_loss", "test_acc")):
        raise RuntimeError(f"non-finite result: train loss {last['train_loss']:.3g}, test loss "
                           f"{last['test_loss']:.3g}, test accuracy {last['test_acc']:.3g}")


# --- without a fallback (CUDA only) -------------------------------------------------------------------------

def eager_families(data: CIFAR10) -> None:
    """bf16 autocast, channels_last, fused SGD, cuDNN autotuning: one model of every family."""
    for model in FAMILY_MODELS:
        check_finite(fit(TrainConfig(model=model, **FAST), data, progress=False))


def ghost_bn_ema_tta(data: CIFAR10) -> None:
    """Ghost BN under bf16 autocast at the bag-of-tricks batch (512 = 16 ghost batches), EMA every 5 steps, TTA."""
    config = TrainConfig(model="fastresnet9", **{**FAST, "batch_size": 512, "epochs": 2}, ema_decay=0.99**5,
                         ema_every=5, tta_flip=True, label_smoothing=0.2, model_options={"logit_scale": 0.125})
    check_finite(fit(config, random_cifar10(2048, 256), progress=False))


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


WITHOUT_FALLBACK = (eager_families, ghost_bn_ema_tta, resume_with_cuda_rng)


# --- against eager, with a fallback -------------------------------------------------------------------------

def losses(config: TrainConfig) -> tuple[float, float]:
    """Train loss over :data:`COMPARED_STEPS` steps and test loss after them, from the config's seed: the same
    weights and batches whatever the execution fields (compiled runs compile in untimed steps that are undone)."""
    data = random_cifar10(COMPARED_STEPS * config.batch_size, 128)
    result = fit(config, data, progress=False, warmup_steps=3 if config.compile else 0)
    check_finite(result)
    return result.history[-1]["train_loss"], result.history[-1]["test_loss"]


def compare(name: str, eager: tuple[float, float], fast: tuple[float, float], tolerance: float) -> None:
    worst = max(abs(f - e) / max(abs(e), 1e-8) for e, f in zip(eager, fast))
    if worst > tolerance:
        apart = f"{worst:.1%}" if worst < 10 else f"a factor of {worst + 1:.2g}"
        raise RuntimeError(f"losses differ from eager's by {apart} (train {fast[0]:.4f} against {eager[0]:.4f}, "
                           f"test {fast[1]:.4f} against {eager[1]:.4f}; at most {tolerance:.0%})")


def _in_worker(config: dict) -> tuple[float, float]:
    return losses(TrainConfig.from_dict(config))


def workers_side_by_side(config: TrainConfig, eager: tuple[float, float]) -> None:
    """Two spawned processes train the same steps at once, as a sweep's workers share the device."""
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        for fast in pool.map(_in_worker, [config.to_dict()] * 2):
            compare("workers", eager, fast, TOLERANCE["workers"])


class SelfTest:
    """The checks' outcomes so far, written to ``record`` after each (when given)."""

    def __init__(self, record: Path | None, stamp: dict, broken_on_purpose: set[str]):
        self.record, self.stamp, self.broken_on_purpose = record, stamp, broken_on_purpose
        self.checks: list[dict] = []

    def run(self, name: str, fast_path: str | None, model: str, check) -> bool:
        started = time.perf_counter()
        outcome = {"name": name, "fast_path": fast_path, "model": model}
        try:
            check()
            outcome["ok"] = True
            print(f"  ok      {name} ({time.perf_counter() - started:.1f} s)", flush=True)
        except Exception as error:  # noqa: BLE001 - report every broken branch, not just the first
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            outcome.update(ok=False, error=f"{type(error).__name__}: {first_line}")
            fallback = f" (the sweep's fallback: {FALLBACKS.get(fast_path, 'eager')})" if fast_path else ""
            print(f"  FAILED  {name} ({time.perf_counter() - started:.1f} s): {outcome['error']}{fallback}", flush=True)
        outcome["seconds"] = round(time.perf_counter() - started, 1)
        self.checks.append(outcome)
        self.write()
        return outcome["ok"]

    def skip(self, name: str, fast_path: str, model: str, why: str) -> None:
        self.checks.append({"name": name, "fast_path": fast_path, "model": model, "ok": None, "skipped": why})
        print(f"  skipped {name}: {why}", flush=True)
        self.write()

    def write(self) -> None:
        if self.record is not None:
            content = json.dumps({**self.stamp, "checks": self.checks}, indent=1).encode() + b"\n"
            atomic_write(self.record, lambda file: file.write(content))


def first_section_configs(section: str, device: str, cpu: bool) -> list[TrainConfig]:
    """The first section's distinct models (model and batch size once, in the sweep's order), at a self-test's
    size: the sweep's own configs (its precision and options), one epoch; on a CPU, LeNet5 alone at the CPU probe's
    batch of 2 (so the probe's compile of the same graph, after it, finds it in the compile cache)."""
    if cpu:
        return [TrainConfig(model="lenet5", batch_size=2, epochs=1, device="cpu", lr=0.01)]
    profile = profiles.get("quick", device=device)
    distinct: dict[tuple, TrainConfig] = {}
    for task in plan([section], profile, seeds=[0]):
        if isinstance(task, RunTask):
            distinct.setdefault((task.config.model, task.config.batch_size), task.config.replace(
                epochs=1, n_train=None, n_test=None, compile=False, checkpoint_every_s=None))
    return list(distinct.values())


def against_eager(test: SelfTest, configs: list[TrainConfig], deadline: float, cpu: bool) -> None:
    """Each fast path against eager, model by model while the budget lasts; workers and precision on the first."""
    for number, config in enumerate(configs):
        def broken(name: str, fast: TrainConfig) -> TrainConfig:
            return fast.replace(lr=fast.lr * BROKEN_RATE) if name in test.broken_on_purpose else fast

        checks = [("compiled", "compiled", MODES["compiled"]),
                  ("cuda_graphs", "compiled+cuda_graphs", MODES["compiled+cuda_graphs"])]
        eager = {}
        for name, fast_path, fields in checks:
            if time.monotonic() > deadline:
                test.skip(name, fast_path, config.model, "over the self-test's budget: runs eagerly")
                continue
            if fast_path == "compiled+cuda_graphs" and cpu:
                test.skip(name, fast_path, config.model, "CUDA graphs: needs CUDA")
                continue
            if not eager:
                eager["losses"] = losses(config)

            def check(name=name, fields=fields):
                compare(name, eager["losses"], losses(broken(name, config.replace(**fields))), TOLERANCE[fast_path])

            test.run(f"{name} {config.model}@{config.batch_size}", fast_path, config.model, check)
        if number == 0 and eager:
            if cpu:
                test.skip("precision", "precision", "*", "bf16 autocast: needs CUDA")
            else:
                def precision_check(config=config):
                    reference = config.replace(precision=report_precision(config))
                    eager_losses = eager["losses"] if reference == config else losses(reference)  # the sweep's own
                    compare("precision", eager_losses, losses(broken("precision", config.replace(precision="bf16"))),
                            TOLERANCE["precision"])

                test.run("precision", "precision", "*", precision_check)
            test.run("workers", "workers", "*", lambda: workers_side_by_side(
                broken("workers", config), eager["losses"]))


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


def recorded_before(stamp: Path, device: str, root: Path = ROOT) -> str | None:
    """Why the checks need not run again (``stamp`` records them for these very files on this card and torch), or
    None."""
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if (recorded.get("fingerprint"), recorded.get("device"), recorded.get("torch")) != (fingerprint(root), device,
                                                                                       torch.__version__):
        return None
    failed = [check["name"] for check in recorded.get("checks", []) if check.get("ok") is False]
    return (f"gpu_selftest: not needed, the fast path is unchanged since its checks at commit "
            f"{recorded.get('commit')} ({recorded['device']}, torch {recorded['torch']}, {recorded.get('date')})"
            + (f"; failed then, so the sweep keeps them off: {', '.join(failed)}" if failed else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The fast paths on this card, each against eager.")
    parser.add_argument("--unless-recorded", type=Path, default=None, metavar="STAMP",
                        help="skip the checks when STAMP records them for the same fast path, card and torch")
    parser.add_argument("--record", type=Path, default=None, metavar="FILE", help="write the outcomes here")
    parser.add_argument("--commit", default="unknown", help="the commit the record names (the checkout's HEAD)")
    parser.add_argument("--first-section", default=next(iter(SECTIONS)), choices=list(SECTIONS),
                        help="the section whose models are checked against eager (default: %(default)s)")
    parser.add_argument("--budget-s", type=float, default=120.0, help="start no check against eager past this "
                        "many seconds; the models left run eagerly (default: %(default)s)")
    parser.add_argument("--cpu", action="store_true", help="the checks a CPU can run (LeNet5 compiled, two workers)")
    parser.add_argument("--break", dest="broken", nargs="+", default=[], metavar="CHECK",
                        choices=["compiled", "cuda_graphs", "precision", "workers"],
                        help="make these checks fail (their fast side at 1,000x the rate): rehearse the fallbacks")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available() and not args.cpu:
        print("gpu_selftest: skipped, CUDA is not available here (tests/ run the branches a CPU can)")
        return 0
    started = time.monotonic()
    device = torch.cuda.get_device_name() if not args.cpu else "cpu"
    reason = recorded_before(args.unless_recorded, device) if args.unless_recorded else None
    if reason:
        print(reason)
        return 0
    print(f"gpu_selftest: {device}, torch {torch.__version__}", flush=True)
    stamp = {"fingerprint": fingerprint(), "commit": args.commit, "device": device, "torch": torch.__version__,
             "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"), "files": list(FAST_PATH)}
    test = SelfTest(args.record, stamp, set(args.broken))
    fatal = []
    if not args.cpu:
        data = random_cifar10(256, 128)
        for check in WITHOUT_FALLBACK:
            if not test.run(check.__name__, None, "*", lambda check=check: check(data)):
                fatal.append(check.__name__)
    configs = first_section_configs(args.first_section, "cpu" if args.cpu else "cuda", args.cpu)
    against_eager(test, configs, started + args.budget_s, args.cpu)
    failed = [check["name"] for check in test.checks if check.get("ok") is False]
    if fatal:
        print(f"gpu_selftest: {len(fatal)} branch(es) without a fallback broken on this device; first: {fatal[0]}")
        return 1
    print("gpu_selftest: " + (f"{len(failed)} fast path(s) failed against eager and stay off in the sweep: "
                              f"{', '.join(failed)}" if failed else "every fast path checked agrees with eager")
          + (f"; recorded in {args.record} (commit it as benchmarks/selftest.json)" if args.record else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
