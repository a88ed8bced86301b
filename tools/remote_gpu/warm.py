"""Compile ahead: the graphs of the first section's runs whose fast path is compiled, into the compile cache.

    TORCHINDUCTOR_CACHE_DIR=.compile-cache python tools/remote_gpu/warm.py --first-section fastresnet9 --workers 4

A slot's second call runs this (``gpu_report.sh warm``) while the last data part is still to come: it picks each
run's fast path as the sweep will (``cifarnb.study.fast_paths``, from the card's committed probe and self-test),
and compiles (and records CUDA graphs for) every distinct model, batch size and option set chosen compiled, on
synthetic images, a few steps each. Inductor keeps the compiled kernels in ``TORCHINDUCTOR_CACHE_DIR`` (an ignored
folder of the checkout, which a warm machine keeps between calls), so the sweep's workers find them there instead
of compiling from nothing. Prints the seconds of each graph; what the budget leaves is said. Nothing to compile
(every model eager) is said in one line: the call goes on to its next work.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from cifarnb.data import random_cifar10  # noqa: E402
from cifarnb.device import device_name, resolve_device  # noqa: E402
from cifarnb.study import profiles  # noqa: E402
from cifarnb.study.fast_paths import FastPaths, apply  # noqa: E402
from cifarnb.study.sections import SECTIONS, plan  # noqa: E402
from cifarnb.train import TrainConfig  # noqa: E402
from cifarnb.train.timing import TrainingSteps  # noqa: E402

PROBES = Path(__file__).resolve().parents[2] / "benchmarks"  # the committed probes and self-test of each card
WARMUP_STEPS = 3  # CUDA graphs record on a shape's second call; a third replays it


def graphs(first_section: str, profile_name: str, device: str, workers: int, log=print) -> list[TrainConfig]:
    """The distinct compiled configs (model, batch size, options, mode) the sweep's first section trains."""
    profile = profiles.get(profile_name, device=device)
    fast = FastPaths.read(device_name(resolve_device(device)), PROBES)
    tasks = apply(plan([first_section], profile, seeds=profile.seeds[:1]), fast, workers, lambda task: False, log)
    distinct: dict[str, TrainConfig] = {}
    for task in tasks:
        config = getattr(task, "config", None)
        if isinstance(config, TrainConfig) and config.compile:
            key = json.dumps([config.model, config.batch_size, config.model_options, config.compile_mode,
                              config.precision], sort_keys=True, default=str)
            distinct.setdefault(key, config)
    return list(distinct.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first-section", default=next(iter(SECTIONS)), choices=list(SECTIONS))
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=1, help="the sweep's processes (each compiles its graphs)")
    parser.add_argument("--budget-s", type=float, default=None, help="start no graph past this many seconds")
    args = parser.parse_args(argv)
    started = time.monotonic()
    chosen = graphs(args.first_section, args.profile, args.device, args.workers)
    if not chosen:
        print(f"warm: nothing to compile: every run of {args.first_section} runs eagerly here")
        return 0
    for number, config in enumerate(chosen, 1):
        if args.budget_s is not None and time.monotonic() - started > args.budget_s:
            print(f"warm: the budget left {len(chosen) - number + 1} graph(s) to the sweep's workers")
            break
        began = time.monotonic()
        steps = TrainingSteps(config, random_cifar10(WARMUP_STEPS * config.batch_size, 1))
        steps.run(WARMUP_STEPS)
        print(f"warm: {config.model} at batch {config.batch_size} ({config.compile_mode}"
              f"{', ' + json.dumps(config.model_options) if config.model_options else ''}): "
              f"{time.monotonic() - began:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
