"""Where a device call's seconds went: the ledger `tools/remote_gpu/gpu_report.sh` writes to `$OUT/ledger.json`
at the end of every call, and the slot's sum of them (`--slot`).

    python tools/remote_gpu/ledger.py --marks M --store S --since T [--sweep L] --out $OUT/ledger.json   # one call
    python tools/remote_gpu/ledger.py --slot ledger-1.json ledger-2.json ... [--idle-seconds I]          # a whole slot

A call's phases, in wall seconds that add up to the call's wall time:

* the script's own steps, from the marks it wrote at each step's start (``unpack``, ``self-test``, ``probe``,
  ``store copy``, ``speed figures``, ``sweep``); ``start-up`` is what came before the first step (printing the
  card, torch's import), ``ledger`` this script's own seconds until it writes the ledger;
* within the sweep, from the runs it trained (their run.json, written after ``--since``): ``training steps`` and
  ``evaluation`` (the epochs' own ``seconds`` and ``eval_seconds``), ``set-up`` (data upload, model build),
  ``compile/warm-up``, ``checkpoint``, ``other in runs``; ``packing`` (rewriting the results archive, from the
  sweep's ledger file: :class:`SweepTimer`); ``sweep overhead`` (planning, reading the data, claims, waiting).
  With several workers the runs overlap, so their phases are scaled to the wall time the runs shared
  (``concurrency`` says by how much);
* ``idle``: what is left of the call's wall time.

``compile_seconds_by_model``: each model's compiled runs' seconds compiling (their warm-up), summed.
Training FLOPs are the trained epochs' (``cifarnb.study.estimate.training_flops``: forward + backward = 3 forward
passes, as benchmarks/flops.py counts them); MFU is over the card's dense bf16 peak (none on a CPU), over the
training seconds and over the whole call (or slot).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

RUN_PHASES = ("training steps", "evaluation", "set-up", "compile/warm-up", "checkpoint", "other in runs")


class SweepTimer:
    """Where a sweep's seconds went beyond its runs' own (``sweep_call.py --ledger FILE``; ``--sweep FILE`` here):
    its wall seconds, and those spent in ``on_finished`` (rewriting the results archive). Handed to
    ``cifarnb.study.sweep.sweep`` as its ``on_finished``; with several workers each appends its own timings to
    ``FILE.parts`` (a small O_APPEND write is atomic), which :meth:`close` sums into ``FILE``."""

    def __init__(self, path, on_finished=None):
        self.path, self.on_finished, self.started = Path(path), on_finished, time.time()
        self.parts = self.path.with_name(self.path.name + ".parts")
        self.parts.unlink(missing_ok=True)

    def __call__(self) -> None:
        started = time.perf_counter()
        if self.on_finished is not None:
            self.on_finished()
        with open(self.parts, "a") as log:
            log.write(f"{time.perf_counter() - started:.6f}\n")

    def close(self, report) -> None:
        """``report``: the sweep's ``SweepReport``."""
        packs = [float(line) for line in self.parts.read_text().split()] if self.parts.exists() else []
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps({"wall_seconds": round(time.time() - self.started, 3),
                                       "packing_seconds": round(sum(packs), 3), "packs": len(packs),
                                       "computed": len(report.computed), "left": len(report.left)}))
        partial.replace(self.path)
        self.parts.unlink(missing_ok=True)


def read_marks(path: Path) -> list[tuple[str, float]]:
    """(step, start time) in order; the last mark is ``end``."""
    marks = []
    for line in path.read_text().splitlines():
        name, _, stamp = line.rpartition(" ")
        marks.append((name, float(stamp)))
    return marks


def trained_runs(store: Path, since: float) -> list[dict]:
    """The runs the call trained: run.json files written after ``since`` whose run is dated after it too (a store
    seeded with copies of older runs has fresh files of old runs)."""
    import datetime as dt

    runs = []
    for path in sorted(store.glob("*/run.json")):
        if path.stat().st_mtime < since:
            continue
        run = json.loads(path.read_text())
        date = run.get("meta", {}).get("date")
        if date and dt.datetime.fromisoformat(date).timestamp() >= since - 1:  # dated to the second
            runs.append(run)
    return runs


def run_phases(run: dict) -> tuple[dict[str, float], float]:
    """One run's seconds in this call by phase, and the training FLOPs of the epochs it trained here."""
    from cifarnb.study.estimate import training_flops
    from cifarnb.train import TrainConfig

    meta = run.get("meta", {})
    phases = meta.get("phases", {})
    resumed = meta.get("resumed_from_epoch", 0)
    epochs = [row for row in run["history"] if row["epoch"] > resumed]
    seconds = {"training steps": sum(row.get("seconds", 0.0) for row in epochs),
               "evaluation": sum(row.get("eval_seconds", 0.0) for row in epochs),
               "set-up": phases.get("setup_seconds", 0.0), "compile/warm-up": phases.get("warmup_seconds", 0.0),
               "checkpoint": phases.get("checkpoint_seconds", 0.0)}
    fit_seconds = phases.get("fit_seconds", meta.get("wall_seconds", 0.0))
    seconds["other in runs"] = max(0.0, fit_seconds - sum(seconds.values()))
    config = TrainConfig.from_dict(run["config"])
    return seconds, len(epochs) * training_flops(config)


def compile_seconds_by_model(runs: list[dict]) -> dict[str, float]:
    """The seconds each model's compiled runs spent compiling (and recording CUDA graphs) before their first step,
    summed over its runs: what ``cifarnb.study.fast_paths`` weighs against the seconds compiling saves."""
    seconds: dict[str, float] = {}
    for run in runs:
        if run["config"].get("compile"):
            model = run["config"]["model"]
            seconds[model] = round(seconds.get(model, 0.0) + run.get("meta", {}).get("phases", {}).get(
                "warmup_seconds", 0.0), 3)
    return seconds


def call_ledger(marks: list[tuple[str, float]], runs: list[dict], sweep: dict | None, card: str,
                peak: float | None, clock=None) -> dict:
    """``clock``: read once the runs are counted (their FLOPs need torch), just before the ledger is written; the
    time since the ``end`` mark is then the ledger's own phase."""
    counted = [run_phases(run) for run in runs]
    start, end = marks[0][1], marks[-1][1]
    steps = [(name, stamp) for name, stamp in marks[1:-1]]
    now = clock() if clock is not None else None
    if now is not None and now > end:
        steps.append(("ledger", end))
        end = now
    phases: dict[str, float] = {"start-up": (steps[0][1] if steps else end) - start}
    for (name, stamp), (_, following) in zip(steps, [*steps[1:], ("end", end)]):
        phases[name] = phases.get(name, 0.0) + following - stamp
    flops, concurrency = 0.0, 1.0
    if "sweep" in phases:
        sweep_wall = phases.pop("sweep")
        packing = min(sweep_wall, (sweep or {}).get("packing_seconds", 0.0))
        in_runs = {name: 0.0 for name in RUN_PHASES}
        for seconds, run_flops in counted:
            flops += run_flops
            for name, value in seconds.items():
                in_runs[name] += value
        total = sum(in_runs.values())
        room = sweep_wall - packing
        concurrency = max(1.0, total / room) if room > 0 else 1.0
        for name, value in in_runs.items():
            phases[name] = value / concurrency
        phases["packing"] = packing
        phases["sweep overhead"] = max(0.0, room - total / concurrency)
    wall = end - start
    phases["idle"] = max(0.0, wall - sum(phases.values()))
    training = phases.get("training steps", 0.0)
    return {"card": card, "wall_seconds": round(wall, 3), "started": start, "ended": end,
            "phases": {name: round(value, 3) for name, value in phases.items()},
            "runs": len(runs), "concurrency": round(concurrency, 2), "training_flops": flops,
            "compile_seconds_by_model": compile_seconds_by_model(runs),
            "peak_flops": peak, **_mfu(flops, training, wall, peak)}


def _mfu(flops: float, training: float, wall: float, peak: float | None) -> dict:
    if not peak:
        return {"mfu_training": None, "mfu_wall": None}
    return {"mfu_training": round(flops / (training * peak), 4) if training else None,
            "mfu_wall": round(flops / (wall * peak), 4) if wall else None}


def slot_ledger(calls: list[dict], idle_between: float = 0.0) -> dict:
    """The calls' ledgers summed (every call of the slot runs gpu_report.sh, which writes one), with the device
    time spent between calls (the machine held, waiting) as idle."""
    phases: dict[str, float] = {}
    for call in calls:
        for name, value in call["phases"].items():
            phases[name] = phases.get(name, 0.0) + value
    phases["idle"] = phases.get("idle", 0.0) + idle_between
    wall = sum(call["wall_seconds"] for call in calls) + idle_between
    flops = sum(call["training_flops"] for call in calls)
    compiles: dict[str, float] = {}
    for call in calls:
        for model, seconds in call.get("compile_seconds_by_model", {}).items():
            compiles[model] = round(compiles.get(model, 0.0) + seconds, 3)
    peak = next((call["peak_flops"] for call in calls if call.get("peak_flops")), None)
    training = phases.get("training steps", 0.0)
    return {"card": calls[0]["card"] if calls else "?", "calls": len(calls), "wall_seconds": round(wall, 3),
            "phases": {name: round(value, 3) for name, value in phases.items()}, "training_flops": flops,
            "compile_seconds_by_model": compiles, "peak_flops": peak,
            "training_share": round(training / wall, 4) if wall else 0.0, **_mfu(flops, training, wall, peak)}


def summary(ledger: dict) -> str:
    """One line: the slot's (or call's) training share of device time and its MFU, for RESULTS.md."""
    training = ledger["phases"].get("training steps", 0.0)
    share = training / ledger["wall_seconds"] if ledger["wall_seconds"] else 0.0
    unknown = ledger.get("mfu_training") is None and not ledger.get("peak_flops")
    mfu = ("MFU n/a (no peak known for this device)" if unknown
           else f"MFU {100 * (ledger['mfu_training'] or 0):.1f}% over training, {100 * (ledger['mfu_wall'] or 0):.1f}% "
                "over the device time")
    top = sorted(ledger["phases"].items(), key=lambda item: -item[1])[:4]
    return (f"{ledger['card']}: {ledger['wall_seconds']:.0f} s of device time, training steps {training:.0f} s "
            f"({100 * share:.0f}%), {ledger['training_flops'] / 1e12:.2f} TFLOP trained, {mfu}; most: "
            + ", ".join(f"{name} {value:.0f} s" for name, value in top))


def table(ledger: dict) -> str:
    wall = ledger["wall_seconds"] or 1.0
    lines = [f"{'phase':<18} {'seconds':>9} {'share':>7}"]
    lines += [f"{name:<18} {value:>9.1f} {100 * value / wall:>6.1f}%" for name, value in ledger["phases"].items()]
    lines.append(f"{'all':<18} {sum(ledger['phases'].values()):>9.1f} of {ledger['wall_seconds']:.1f} s wall")
    return "\n".join(lines)


def _card(name: str | None) -> tuple[str, float | None]:
    """The card (as gpu_report.sh's nvidia-smi names it, else torch's) and its dense bf16 peak; "cpu" and None."""
    if name is None:
        import torch

        name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name, None
    from cifarnb.study.probes import dense_bf16_peak

    return name, dense_bf16_peak(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--marks", type=Path, help="the step marks gpu_report.sh wrote (one call)")
    parser.add_argument("--store", type=Path, help="the store the call trained into")
    parser.add_argument("--since", type=float, default=0.0, help="the call's start (seconds since the epoch)")
    parser.add_argument("--sweep", type=Path, help="the sweep's ledger file (sweep_call.py --ledger), if it ran")
    parser.add_argument("--out", type=Path, help="where to write the call's ledger.json")
    parser.add_argument("--card", default=None, help="the device's name (\"cpu\" for none; default: torch's)")
    parser.add_argument("--slot", type=Path, nargs="+", help="sum these calls' ledgers instead")
    parser.add_argument("--idle-seconds", type=float, default=0.0, help="with --slot: device time between calls")
    args = parser.parse_args(argv)
    if args.slot:
        ledger = slot_ledger([json.loads(path.read_text()) for path in args.slot], args.idle_seconds)
    else:
        if args.marks is None or args.out is None:
            parser.error("one call's ledger needs --marks and --out (or give --slot)")
        card, peak = _card(args.card)
        sweep = json.loads(args.sweep.read_text()) if args.sweep and args.sweep.exists() else None
        runs = trained_runs(args.store, args.since) if args.store and args.store.is_dir() else []
        ledger = call_ledger(read_marks(args.marks), runs, sweep, card, peak, clock=time.time)
        args.out.write_text(json.dumps(ledger, indent=1))
    print(table(ledger))
    print("ledger: " + summary(ledger))
    return 0


if __name__ == "__main__":
    sys.exit(main())
