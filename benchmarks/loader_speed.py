"""The report's torchvision pipeline against cifarnb's on-device loader, training ResNet18 at the report's settings.

    python benchmarks/loader_speed.py                      # batch 128, 20 timed steps after 5 (CPU: 4 after 1)
    python benchmarks/loader_speed.py --steps 100 --warmup-steps 20 --out out/

Both loaders train the same model with the same config (``recipes.report("resnet18")``: batch 128, SGD lr 0.1,
...; only ``loader`` differs) for ``--warmup-steps`` untimed and then ``--steps`` timed steps, through
``cifarnb.train.timing.measure_throughput`` (fit()'s own epoch loop; CUDA events on a GPU). A third row feeds
one fixed batch over and over: no loader at all, the bound a loader can reach. Printed: images/s per row, the
ratio tensor / torchvision, and the share of the step the tensor loader costs (1 - tensor / fixed).
``--rounds R`` measures every row R times, in alternating order (A B C, C B A, ...), and reports the median:
on a shared machine, load from other processes then falls on all rows alike.

On a CPU the model dominates (a ResNet18 step at batch 128 takes seconds), so the loaders should tie, the tensor
loader a little ahead because no worker processes compete with the training threads for the cores. On a GPU
the tensor loader should vanish from the profile (tensor close to fixed) while the workers bound torchvision.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import parse_pairs  # noqa: E402

from cifarnb.device import describe  # noqa: E402

from cifarnb.study import recipes  # noqa: E402
from cifarnb.data import load_cifar10  # noqa: E402
from cifarnb.train import measure_throughput  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--recipe", default="report", help="report (the report's execution) or fast_resnet18")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20 on CUDA, 4 on CPU)")
    parser.add_argument("--warmup-steps", type=int, default=None, help="untimed steps first (default 5 / 1)")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers of the torchvision pipeline")
    parser.add_argument("--no-fixed", action="store_true", help="skip the fixed-batch (no loader) row")
    parser.add_argument("--rounds", type=int, default=1, help="measure each row this often, alternating order")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="TrainConfig overrides")
    parser.add_argument("--data-root", default=None, help="folder holding cifar-10-batches-py (default: CIFARNB_DATA)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="folder for loader_speed.json")
    args = parser.parse_args(argv)

    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    steps = args.steps if args.steps is not None else (20 if cuda else 4)
    warmup_steps = args.warmup_steps if args.warmup_steps is not None else (5 if cuda else 1)
    overrides = dict(model=args.model, batch_size=args.batch_size, num_workers=args.num_workers, device=args.device)
    config = recipes.get(args.recipe, **{**overrides, **parse_pairs(args.set)})
    env = describe(torch.device("cuda" if cuda else "cpu"))
    print(f"loader_speed.py: {env['device']}, torch {env['torch']}, {env['date']}: {config.model} ({args.recipe}), "
          f"batch {config.batch_size}, precision {config.precision}, {steps} steps after {warmup_steps}", flush=True)
    data = load_cifar10(args.data_root)

    variants = [("torchvision", "torchvision", False), ("tensor", "tensor", False), ("fixed batch", "tensor", True)]
    variants = [v for v in variants if not (v[2] and args.no_fixed)]
    measured: dict[str, list[dict]] = {name: [] for name, _, _ in variants}
    for round_index in range(args.rounds):
        for name, loader, fixed in variants if round_index % 2 == 0 else variants[::-1]:
            row = measure_throughput(config.replace(loader=loader), data, steps=steps, warmup_steps=warmup_steps,
                                     fixed_batch=fixed)
            measured[name].append(row)
            print(f"  round {round_index + 1}, {name}: {row['images_per_second']:.2f} images/s", flush=True)
    rows = {}
    for name, runs in measured.items():
        median = statistics.median(run["images_per_second"] for run in runs)
        rows[name] = {**runs[0], "images_per_second": median, "seconds_per_epoch": runs[0]["n_train"] / median,
                      "rounds": [run["images_per_second"] for run in runs]}
    ratio = rows["tensor"]["images_per_second"] / rows["torchvision"]["images_per_second"]
    share = None
    if "fixed batch" in rows:
        share = 1 - rows["tensor"]["images_per_second"] / rows["fixed batch"]["images_per_second"]
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "loader_speed.json").write_text(json.dumps(
            {"environment": env, "config": config.to_dict(), "rows": rows, "tensor_over_torchvision": ratio,
             "tensor_loader_share": share}, indent=1))

    print(f"\nloaders: {env['device']}, torch {env['torch']}, {env['date']}, {config.model} batch {config.batch_size}")
    print(f"{'loader':<12} {'images/s':>10} {'s/epoch':>9} {'steps':>6} {'rounds':>6} timer")
    for name, row in rows.items():
        print(f"{name:<12} {row['images_per_second']:>10.2f} {row['seconds_per_epoch']:>9.1f} {row['steps']:>6} "
              f"{len(row['rounds']):>6} {row['timer']}")
    print(f"tensor / torchvision: {ratio:.2f}x" + ("" if share is None else
          f"; tensor loader's share of the step (1 - tensor / fixed batch): {100 * share:.1f}%"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
