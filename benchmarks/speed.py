"""Training speed of cifarnb's recipes beside the report's torchvision pipeline, and time to a target accuracy.

    python benchmarks/speed.py                      # CUDA: the full table; CPU: its reduced form (a smoke run)
    python benchmarks/speed.py --entries fastresnet9:fast resnet18:fast_resnet18 --steps 50
    python benchmarks/speed.py --train fastresnet9:fast --seeds 0 1 2 3 4 --target 94 --out out/

An entry is ``MODEL:RECIPE`` with optional TrainConfig overrides, ``MODEL:RECIPE@key=value,key=value``
(values are JSON where they parse, e.g. ``fastresnet9:fast@epochs=12,ema_decay=0.99``). In ``--train``
entries the keys ``seeds`` (a JSON list) and ``target`` replace ``--seeds`` and ``--target`` for that entry.

Throughput (one row per ``--entries`` entry): ``cifarnb.train.timing.measure_throughput``, i.e. fit()'s own
setup and epoch loop, ``--warmup-steps`` untimed steps (compilation, autotuning, DataLoader start-up) then
``--steps`` timed ones; CUDA events on a GPU. s/epoch = training-set size / images per second. The ratio is
against the report's pipeline for the same model measured in the same run: ``recipes.report(model)`` with
``loader="torchvision"`` (PIL transforms in DataLoader workers), fp32, no channels_last, no compile.

Training (``--train``): ``fit`` per seed with ``warmup_steps`` (compilation excluded from ``seconds``, and
reported with the data upload as separate columns). Time to target = summed training ``seconds`` up to the
first epoch whose ``test_acc`` reaches ``--target`` (evaluation excluded). Accuracies: all 10,000 test images
(``test_acc``) and the exact rows 0-999 (``test_acc_exact1000``).

Reduced form (default without CUDA, or ``--reduced``): 2 timed steps after 1 warm-up step, batches of 32,
training runs on 512 / 200 images for 1 epoch; every code path runs, nothing is a real measurement.
``--set key=value`` overrides TrainConfig fields in every entry and baseline (e.g. ``--set batch_size=16``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cifarnb.study import recipes  # noqa: E402
from cifarnb.cli import parse_value  # noqa: E402
from cifarnb.data import load_cifar10  # noqa: E402
from cifarnb.device import describe  # noqa: E402
from cifarnb.results import summarize  # noqa: E402
from cifarnb.train import TrainConfig, fit  # noqa: E402
from cifarnb.train import measure_throughput, time_to_accuracy  # noqa: E402

GPU_ENTRIES = ["fastresnet9:fast", "fastresnet9:report", "resnet9:report", "resnet18:report", "resnet18:fast_resnet18"]
CPU_ENTRIES = ["fastresnet9:fast", "resnet18:fast_resnet18"]
# Its throughput rows time a one-epoch run of 512 images: short enough that train.execution.decide keeps a CPU run
# eager (it compiles runs of 300 steps or more, and a compile would dwarf a smoke run).
REDUCED = dict(steps=2, warmup_steps=1, set={"batch_size": 32, "eval_batch_size": 100, "n_train": 512, "epochs": 1},
               train_set={"n_train": 512, "n_test": 200, "epochs": 1})
# The report's pipeline: its loader, main.py's precision (fp32 tensors, TF32 convolutions: PyTorch's default), none
# of the execution tricks.
REPORT_PIPELINE = dict(loader="torchvision", precision="tf32", channels_last=False, compile=False,
                       cudnn_benchmark=False)



def parse_pairs(pairs: list[str]) -> dict:
    values = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"expected key=value, got {pair!r}")
        key, text = pair.split("=", 1)
        values[key] = parse_value(text)
    return values


def split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets: ``a=1,seeds=[0,1]`` -> ``["a=1", "seeds=[0,1]"]``."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [part for part in (*parts, current) if part]


def parse_entry(entry: str) -> tuple[str, str, dict]:
    """``MODEL:RECIPE@k=v,k=v`` -> (model, recipe, overrides)."""
    head, _, tail = entry.partition("@")
    model, sep, recipe = head.partition(":")
    if not sep:
        raise SystemExit(f"entry {entry!r} must look like MODEL:RECIPE, e.g. fastresnet9:fast")
    return model, recipe, parse_pairs(split_top_level(tail))


def entry_config(entry: str, common: dict) -> tuple[TrainConfig, dict]:
    """The entry's TrainConfig and the non-config keys it carried (``seeds``, ``target``)."""
    model, recipe, overrides = parse_entry(entry)
    extra = {key: overrides.pop(key) for key in ("seeds", "target") if key in overrides}
    return recipes.get(recipe, model=model, **{**common, **overrides}), extra


def baseline_config(model: str, common: dict) -> TrainConfig:
    config = recipes.report(model, **{**common, **REPORT_PIPELINE})
    # torchvision's transforms crop and flip per image; a recipe that augments per batch (the report's FastResNet9
    # code) is compared with the per-image pipeline of the same model.
    return config.replace(augmentation="per_image")



def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """(mean, sample std) over the finite values; std None for one value, both None for none."""
    summary = summarize(values)
    if summary.count == 0:
        return None, None
    return summary.mean, summary.std if summary.count > 1 else None


def fmt(mean: float | None, std: float | None = None, digits: int = 2) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def throughput_rows(entries: list[str], data, common: dict, steps: int, warmup_steps: int, baseline: bool,
                    log) -> list[dict]:
    rows, baselines = [], {}
    for entry in entries:
        config, _ = entry_config(entry, common)
        log(f"throughput: {entry} ({config.loader}, batch {config.batch_size}, compile={config.compile})")
        try:
            measured = measure_throughput(config, data, steps=steps, warmup_steps=warmup_steps)
        except Exception as error:  # one failing row (say an experimental compile mode) must not sink the table
            log(f"throughput: {entry} FAILED: {type(error).__name__}: {error}")
            rows.append({"entry": entry, "loader": config.loader, "error": f"{type(error).__name__}: {error}"})
            continue
        row = {"entry": entry, "loader": config.loader, "precision": config.precision,
               "channels_last": config.channels_last, "compile": config.compile, **measured}
        if baseline:
            if config.model not in baselines:
                reference = baseline_config(config.model, common)
                log(f"throughput: {config.model}:report via the report's pipeline (torchvision, fp32)")
                baselines[config.model] = {
                    "entry": f"{config.model}:report (report pipeline)", "loader": reference.loader,
                    "precision": reference.precision, "channels_last": False, "compile": False,
                    **measure_throughput(reference, data, steps=steps, warmup_steps=warmup_steps),
                }
                baselines[config.model]["vs_report_pipeline"] = 1.0
            base = baselines[config.model]
            row["vs_report_pipeline"] = row["images_per_second"] / base["images_per_second"]
        rows.append(row)
    # Each report-pipeline row right after the first row of its model.
    ordered, shown = [], set()
    for row in rows:
        ordered.append(row)
        model = row["entry"].split(":")[0]
        if model in baselines and model not in shown:
            ordered.append(baselines[model])
            shown.add(model)
    return ordered


def training_runs(entries: list[str], seeds: list[int], data, common: dict, default_target: float,
                  warmup_steps: int, log, save=lambda summaries, runs: None) -> tuple[list[dict], list[dict]]:
    summaries, runs = [], []
    for entry in entries:
        config, extra = entry_config(entry, common)
        target = float(extra.get("target", default_target))
        entry_runs = []
        for seed in extra.get("seeds", seeds):
            seeded = config.replace(seed=seed)
            result = fit(seeded, data, progress=False, warmup_steps=warmup_steps)
            history = result.history
            run = {
                "entry": entry, "seed": seed, "device": result.device, "config": seeded.to_dict(),
                "history": history, "info": result.info, "wall_seconds": result.wall_seconds,
                "diverged_epoch": result.diverged_epoch,
                "train_seconds": sum(row["seconds"] for row in history),
                "time_to_target": time_to_accuracy(history, target),
                "time_to_target_exact1000": time_to_accuracy(history, target, "test_acc_exact1000"),
                "test_acc": history[-1].get("test_acc"),
                "test_acc_exact1000": history[-1].get("test_acc_exact1000"),
            }
            log(f"train: {entry} seed {seed}: {len(history)} epochs, {run['train_seconds']:.2f} s training "
                f"(+{result.info.get('warmup_seconds', 0):.1f} s warm-up), test acc {fmt(run['test_acc'])} % "
                f"(rows 0-999: {fmt(run['test_acc_exact1000'])} %), time to {target:g} %: "
                f"{fmt(run['time_to_target'])} s")
            entry_runs.append(run)
        runs += entry_runs
        reached = [r["time_to_target"] for r in entry_runs if r["time_to_target"] is not None]
        epoch_seconds = [row["seconds"] for r in entry_runs for row in r["history"]]
        summaries.append({
            "entry": entry,
            "seeds": [r["seed"] for r in entry_runs],
            "epochs": config.epochs,
            "target": target,
            "train_seconds": mean_std([r["train_seconds"] for r in entry_runs]),
            "seconds_per_epoch": mean_std(epoch_seconds),
            "time_to_target": mean_std(reached),
            "reached_target": f"{len(reached)}/{len(entry_runs)}",
            "test_acc": mean_std([r["test_acc"] for r in entry_runs]),
            "test_acc_exact1000": mean_std([r["test_acc_exact1000"] for r in entry_runs]),
            "warmup_seconds": mean_std([r["info"].get("warmup_seconds", 0.0) for r in entry_runs]),
            "setup_seconds": mean_std([r["info"].get("setup_seconds", 0.0) for r in entry_runs]),
        })
        save(summaries, runs)
    return summaries, runs


def print_tables(env: dict, throughput: list[dict], summaries: list[dict]) -> None:
    print(f"\nspeed: {env['device']}, torch {env['torch']}, {env['date']}")
    if throughput:
        print(f"{'entry':<38} {'loader':<11} {'batch':>5} {'images/s':>10} {'s/epoch':>8} {'vs report':>9} timer")
        for row in throughput:
            if "error" in row:
                print(f"{row['entry']:<38} {row['loader']:<11} failed: {row['error'][:80]}")
                continue
            ratio = row.get("vs_report_pipeline")
            print(f"{row['entry']:<38} {row['loader']:<11} {row['batch_size']:>5} {row['images_per_second']:>10.0f} "
                  f"{row['seconds_per_epoch']:>8.2f} {'-' if ratio is None else f'{ratio:.2f}x':>9} {row['timer']}")
    if summaries:
        print(f"\n{'training':<30} {'seeds':>5} {'epochs':>6} {'train s':>14} {'s/epoch':>6} "
              f"{'to target s':>14} {'reached':>7} {'test acc 10k':>14} {'rows 0-999':>14} {'warm-up s':>9}")
        for s in summaries:
            target = f"to {s['target']:g}%"
            print(f"{s['entry']:<30} {len(s['seeds']):>5} {s['epochs']:>6} {fmt(*s['train_seconds']):>14} "
                  f"{fmt(s['seconds_per_epoch'][0]):>6} {fmt(*s['time_to_target']):>14} {s['reached_target']:>7} "
                  f"{fmt(*s['test_acc']):>14} {fmt(*s['test_acc_exact1000']):>14} "
                  f"{fmt(s['warmup_seconds'][0], digits=1):>9}  ({target})")


def summary(out: Path) -> None:
    """The short table gpu_check.sh ends with: targets met or not, read from speed.json and loader_speed.json."""
    speed = json.loads((out / "speed.json").read_text()) if (out / "speed.json").exists() else {}
    env = speed.get("environment", {})
    print(f"{env.get('device', '?')} | torch {env.get('torch', '?')} | {env.get('date', '?')}")
    training = speed.get("training", [])
    for s in training:
        print(f"{s['entry']}: {len(s['seeds'])} seed(s), {s['epochs']} epochs | test acc {fmt(*s['test_acc'])} % "
              f"(rows 0-999: {fmt(*s['test_acc_exact1000'])} %) | train {fmt(*s['train_seconds'])} s, "
              f"{fmt(s['seconds_per_epoch'][0], digits=3)} s/epoch | to {s['target']:g} %: "
              f"{fmt(*s['time_to_target'])} s ({s['reached_target']}) | "
              f"warm-up {fmt(s['warmup_seconds'][0], digits=1)} s")
    fast = next((s for s in training if s["entry"].startswith("fastresnet9:fast")), None)
    if fast and fast["test_acc"][0] is not None:
        met = fast["test_acc"][0] >= 94.0 and fast["train_seconds"][0] <= 5.0 and len(fast["seeds"]) >= 5
        print(f"TARGET FastResNet9 mean >= 94.0 % over >= 5 seeds in <= 5 s of training: {'MET' if met else 'NOT MET'}"
              f" ({fmt(*fast['test_acc'])} % in {fmt(*fast['train_seconds'])} s, {len(fast['seeds'])} seeds)")
    r18 = next((s for s in training if s["entry"].startswith("resnet18:")), None)
    if r18 and r18["seconds_per_epoch"][0] is not None:
        met = r18["seconds_per_epoch"][0] <= 1.0
        print(f"TARGET ResNet18 (report settings) <= 1.0 s/epoch: {'MET' if met else 'NOT MET'} "
              f"({r18['seconds_per_epoch'][0]:.3f} s/epoch; report 21.96) | {r18['epochs']}-epoch test acc "
              f"{fmt(*r18['test_acc'])} % (report, 10 epochs: 86.16 %)")
    for row in speed.get("throughput", []):
        if "error" in row:
            print(f"  {row['entry']}: failed ({row['error'][:60]})")
            continue
        ratio = row.get("vs_report_pipeline")
        print(f"  {row['entry']:<52} {row['images_per_second']:>9.0f} img/s {row['seconds_per_epoch']:>7.2f} s/epoch"
              + ("" if ratio is None else f" {ratio:>6.2f}x report pipeline"))
    if (out / "loader_speed.json").exists():
        loaders = json.loads((out / "loader_speed.json").read_text())
        share = loaders.get("tensor_loader_share")
        config = loaders.get("config", {})
        print(f"loaders ({config.get('model')}, batch {config.get('batch_size')}): tensor / torchvision "
              f"{loaders['tensor_over_torchvision']:.2f}x"
              + ("" if share is None else f", tensor loader's share of the step {100 * share:.1f} %"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", nargs="*", default=None, help="throughput rows, MODEL:RECIPE[@k=v,...]")
    parser.add_argument("--train", nargs="*", default=None, help="entries to train over --seeds")
    parser.add_argument("--seeds", nargs="*", type=int, default=None, help="default: 0 1 2 3 4 on CUDA, 0 on CPU")
    parser.add_argument("--target", type=float, default=94.0, help="test accuracy (%%) for time-to-target")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per throughput row")
    parser.add_argument("--warmup-steps", type=int, default=None, help="untimed steps first (compile, autotune)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the report-pipeline rows")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="TrainConfig overrides, all rows")
    parser.add_argument("--train-set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides, training only")
    parser.add_argument("--data-root", default=None, help="folder holding cifar-10-batches-py (default: CIFARNB_DATA)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--reduced", action=argparse.BooleanOptionalAction, default=None,
                        help="smoke form: few steps, small batches and subsets (default: on without CUDA)")
    parser.add_argument("--out", default=None, help="folder for speed.json and histories.json")
    parser.add_argument("--summary", default=None, metavar="DIR",
                        help="only print the short table of DIR/speed.json and DIR/loader_speed.json")
    args = parser.parse_args(argv)
    if args.summary:
        summary(Path(args.summary))
        return 0

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    reduced = device.type != "cuda" if args.reduced is None else args.reduced
    common = {"device": args.device}
    train_common: dict = {}
    if reduced:
        common.update(REDUCED["set"])
        train_common.update(REDUCED["train_set"])
    common.update(parse_pairs(args.set))
    train_common = {**common, **train_common, **parse_pairs(args.train_set)}
    steps = args.steps if args.steps is not None else (REDUCED["steps"] if reduced else 50)
    warmup_steps = args.warmup_steps if args.warmup_steps is not None else (REDUCED["warmup_steps"] if reduced else 10)
    entries = args.entries if args.entries is not None else (CPU_ENTRIES if reduced else GPU_ENTRIES)
    train = args.train if args.train is not None else ([] if reduced else ["fastresnet9:fast"])
    seeds = args.seeds if args.seeds is not None else ([0] if reduced else [0, 1, 2, 3, 4])

    # Several compiled models (one per seed and row) share each forward's compile cache; keep room for them.
    limit = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
    setattr(torch._dynamo.config, limit, max(getattr(torch._dynamo.config, limit), 64))
    env = describe(device)
    log = lambda text: print(text, flush=True)  # noqa: E731
    log(f"speed.py: {env['device']}, torch {env['torch']}, {env['date']}, "
        f"{'reduced form' if reduced else 'full form'}; steps {steps} after {warmup_steps} warm-up")
    data = load_cifar10(args.data_root)

    def save(throughput: list[dict], summaries: list[dict], runs: list[dict]) -> None:
        # Written after every section, so a run cut short by a time limit still leaves what it measured.
        if not args.out:
            return
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report = {"environment": env, "reduced": reduced, "steps": steps, "warmup_steps": warmup_steps,
                  "throughput": throughput, "training": summaries}
        (out / "speed.json").write_text(json.dumps(report, indent=1))
        if runs:
            (out / "histories.json").write_text(json.dumps(runs, indent=1))

    # Training first: it is what a cut-short run should still have, and its compiled graphs serve the table too.
    summaries, runs = training_runs(train, seeds, data, train_common, args.target, warmup_steps, log,
                                    save=lambda summaries, runs: save([], summaries, runs))
    throughput = throughput_rows(entries, data, common, steps, warmup_steps, not args.no_baseline, log)
    save(throughput, summaries, runs)
    if args.out:
        log(f"wrote {Path(args.out) / 'speed.json'}" + (f" and {Path(args.out) / 'histories.json'}" if runs else ""))
    print_tables(env, throughput, summaries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
