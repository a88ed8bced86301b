"""The CPU fast path against fp32 eager, for the report's models as ``recipes.report`` builds them.

    python benchmarks/cpu_speed.py                      # FastResNet9 (the report's code, batch 512), ResNet18 (128)
    python benchmarks/cpu_speed.py --models resnet18 --steps 5 --threads 2 --out cpu-speed.json

For each model: training steps on all 50,000 training images as ``fit`` runs them
(``cifarnb.train.timing.measure_throughput``), first in fp32 eager (``precision="fp32"``), then as
``train.execution.decide`` chooses for ``precision="auto"`` on this CPU (on one with native bf16: bf16 autocast,
channels_last, compiled). Warm-up steps (the compile among them) are untimed and printed apart. Prints seconds a
step, minutes an epoch and the ratio. ``--out`` writes the records in a probe's format (each path's training FLOP/s),
which ``cifarnb sweep --estimate cpu --probe FILE`` reads to say how long a section takes on this CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cifarnb.data import load_cifar10  # noqa: E402
from cifarnb.device import describe  # noqa: E402
from cifarnb.study import recipes  # noqa: E402
from cifarnb.study.estimate import macs_per_image  # noqa: E402
from cifarnb.study.probes import model_family  # noqa: E402
from cifarnb.train.execution import decide, execution_mode  # noqa: E402
from cifarnb.train.timing import measure_throughput  # noqa: E402

# The target for the chosen path over fp32 eager on a CPU with native bf16.
TARGET_RATIO = 2.8


def measure(config, data, steps: int, warmup: int, path: str) -> dict:
    """One probe record: ``config``'s training steps as ``decide`` runs them on this CPU."""
    chosen = decide(config, torch.device("cpu"))
    result = measure_throughput(config, data, steps=steps, warmup_steps=warmup)
    flops_per_image = 6 * macs_per_image(config)  # forward + backward ~ 3 forward passes, 2 FLOPs a multiply-add
    return {"section": "cpu_speed", "label": f"{config.model} {path}", "path": path, "model": config.model,
            "family": model_family(config.model), "batch_size": config.batch_size,
            "mode": execution_mode(chosen.config), "precision": chosen.precision,
            "channels_last": chosen.config.channels_last, "workers": 1, "threads": torch.get_num_threads(),
            "why": chosen.why, "ms_per_step": 1000 * result["seconds"] / steps,
            "images_per_second": result["images_per_second"], "seconds_per_epoch": result["seconds_per_epoch"],
            "achieved_flops": flops_per_image * result["images_per_second"],
            "warmup_seconds": result["warmup_seconds"], "steps": steps, "warmup_steps": warmup}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["fastresnet9", "resnet18"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per path (default 3)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first, the compile among them")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the records as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_cifar10(args.data_root)
    records = []
    machine = describe(torch.device("cpu"))
    print(f"{machine['device']}, {args.threads} threads, torch {torch.__version__}, {machine['date']}")
    for model in args.models:
        config = recipes.report(model, device="cpu", data_root=args.data_root)
        eager = measure(config.replace(precision="fp32"), data, args.steps, args.warmup, "fp32_eager")
        fast = measure(config, data, args.steps, args.warmup, "chosen")
        ratio = eager["ms_per_step"] / fast["ms_per_step"]
        records += [eager, {**fast, "ratio_to_fp32_eager": ratio}]
        print(f"{model}, batch {config.batch_size}: fp32 eager {eager['ms_per_step'] / 1000:.2f} s/step "
              f"({eager['seconds_per_epoch'] / 60:.1f} min/epoch); chosen {fast['precision']} {fast['mode']}"
              f"{' channels_last' if fast['channels_last'] else ''} {fast['ms_per_step'] / 1000:.2f} s/step "
              f"({fast['seconds_per_epoch'] / 60:.1f} min/epoch, warm-up {fast['warmup_seconds']:.0f} s); "
              f"ratio {ratio:.2f}x (target {TARGET_RATIO}x)", flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps({**machine, "device": "cpu", "cpu": machine["device"], "threads": args.threads,
                                        "records": records}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
