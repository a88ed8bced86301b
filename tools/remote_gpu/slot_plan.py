"""One GPU slot, call by call: the procedure `tools/remote_gpu/README.md` states (generated from here; a test keeps
the README's copy the same) and `bash tools/remote_gpu/gpu_report.sh rehearse` runs on the CPU.

    python tools/remote_gpu/slot_plan.py            # the README's procedure, as Markdown
    python tools/remote_gpu/slot_plan.py --hours 2  # the slots a sweep of 2 GPU-hours takes (cifarnb sweep --estimate)

Each step is done here or is a device call (the run tool's `command`, `carry` and `timeout_s`), with the minute of
the slot's device time it should end by. The machine stays warm only about 30 s between calls, so what is done
here between two calls is short and ready before the call returns. Only the standard library.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

SLOT_SECONDS = 15 * 60  # one slot's device time, start-up included
START_UP_SECONDS = 120  # a fresh machine's start, which the first call pays
SELFTEST_BUDGET_S = 150  # the fast-path self-test, only when due (gpu_selftest.py --unless-recorded)
DECIDE_BUDGET_S = 90  # probe.py --decide: each first-section model's fast path, workers, MPS
WARM_BUDGET_S = 60  # a middle call's work: warm.py (compile ahead), then the probe's families with what is left
TRANSFER_SECONDS = 30  # a call's data part (up to 64 MiB) there and its files back, about
DATA_PARTS = 3  # what stage_parts.py cuts the staged data into beside the tree and the wheels today
WHEELS = ".device-wheels"  # pydantic for the device's Python (tools/remote_gpu/device_packages.sh), in every call
STAGE_TOOL = ".stage/stage-cifar10"
SLOT_FOLDER = ".slot"  # here: what came back from each call (ignored), e.g. .slot/call-1/ledger.json


@dataclass(frozen=True)
class Step:
    where: str  # "here" or "call N"
    what: str
    command: str = ""  # ready to paste; <COMMIT>: `git rev-parse --short HEAD`, <T>: seconds of device time left - 60
    carry: tuple[str, ...] = ()
    timeout_s: str = ""
    ends_by_minute: float | None = None  # of the slot's device time

    @property
    def is_call(self) -> bool:
        return self.where.startswith("call")


def part(number: int) -> str:
    return f".stage/part-{number}"


def slot_plan(parts: int = DATA_PARTS, first_slot: bool = True) -> list[Step]:
    """The slot's steps when the data is cut into ``parts``: every call carries one part and does work beside it
    (call 1 the self-test when due and the decisions, the middle ones the compile ahead, the last the sweep).
    ``first_slot`` False: the card's self-test record and probe decisions are committed, so call 1 compiles ahead
    instead (gpu_report.sh probe finds them: probe.py --decided); only the minutes differ."""
    probe_s = SELFTEST_BUDGET_S + DECIDE_BUDGET_S if first_slot else WARM_BUDGET_S
    minute = (START_UP_SECONDS + TRANSFER_SECONDS + probe_s) / 60
    steps = [
        Step("here", "Before the slot (about 4 minutes, no device time): the device's missing wheels (once per "
                     "checkout: `echo .stage/ >> .git/info/exclude`), the data packed and cut into parts that each "
                     "fit one call beside the tree and the wheels. Start the slot when this is done.",
             command="bash tools/remote_gpu/device_packages.sh && ../shared/tools/stage-cifar10 pack "
                     "../shared/cifar10 .stage && cp ../shared/tools/stage-cifar10 .stage/ && "
                     "python tools/remote_gpu/stage_parts.py .stage"),
        Step("call 1", f"Data part 1 of {parts}; the self-test when due, then the decisions "
                       f"(probe.py --decide, <= {DECIDE_BUDGET_S} s: each first-section model eager, compiled or "
                       "CUDA-graphed; 1/2/4/8 workers, MPS where it exists). Once the card's probe holds the "
                       "decisions under this torch, the compile ahead instead (as call 2).",
             command="COMMIT=<COMMIT> OUT=$OUT bash tools/remote_gpu/gpu_report.sh probe",
             carry=(WHEELS, part(1), STAGE_TOOL), timeout_s=str(probe_s + 60), ends_by_minute=round(minute, 1)),
        Step("here", "At once: keep what came back in .slot/call-1/; the probe and the self-test's record become "
                     "files of the checkout (so the next calls carry them: the sweep takes its fast paths, workers "
                     "and MPS from them and skips the self-test).",
             command="mkdir -p .slot/call-1 && cp <files_at>/* .slot/call-1/ && cp .slot/call-1/probe.json "
                     "benchmarks/probe-<card>-<date>.json && (cp .slot/call-1/selftest.json benchmarks/ || true)"),
    ]
    for number in range(2, parts):
        minute += (WARM_BUDGET_S + TRANSFER_SECONDS) / 60
        steps += [
            Step(f"call {number}", f"Data part {number} of {parts}; the compile ahead (warm.py: the first section's "
                                   "graphs chosen compiled, into .compile-cache/, which a warm machine keeps), then "
                                   "the probe's families with what is left.",
                 command=f"COMMIT=<COMMIT> OUT=$OUT BUDGET_S={WARM_BUDGET_S} bash tools/remote_gpu/gpu_report.sh warm",
                 carry=(WHEELS, part(number)), timeout_s=str(WARM_BUDGET_S + 30), ends_by_minute=round(minute, 1)),
            Step("here", "At once: keep what came back; the extended probe replaces the checkout's.",
                 command=f"mkdir -p .slot/call-{number} && cp <files_at>/* .slot/call-{number}/ && cp "
                         f".slot/call-{number}/probe.json benchmarks/probe-<card>-<date>.json"),
        ]
    steps += [
        Step(f"call {parts}", f"Data part {parts} of {parts}, then at once the sweep of every section in fill order "
                              "until the budget (fast paths from the probe and self-test), the results archive "
                              "rewritten after every finished run.",
             command="COMMIT=<COMMIT> OUT=$OUT BUDGET_S=<T - 20> bash tools/remote_gpu/gpu_report.sh",
             carry=(WHEELS, part(parts), *((STAGE_TOOL,) if parts == 1 else ())), timeout_s="<T>",
             ends_by_minute=SLOT_SECONDS / 60 - 1),
        Step("here", "`give_back` at once; keep what came back; merge the runs into the store; the slot's ledger "
                     "(the lease's held seconds beyond all calls' wall seconds, the machine's start included, as "
                     "idle) and its line for RESULTS.md.",
             command=f"mkdir -p .slot/call-{parts} && cp <files_at>/* .slot/call-{parts}/ && cifarnb merge "
                     f".slot/call-{parts}/results.tar.gz && python tools/remote_gpu/ledger.py --slot "
                     + " ".join(f".slot/call-{n}/ledger.json" for n in range(1, parts + 1))
                     + " --idle-seconds <held_s - every call's wall_s>"),
        Step("here", "Commit the probe JSON and the self-test record; record the probe and the slot's ledger line "
                     "in RESULTS.md (targets met or not, by how much); re-execute the notebooks whose sections are "
                     "complete at `-p profile quick` (with `-y 'seeds: [0]'` while only the first seed is stored); "
                     "commit."),
    ]
    return steps


def planned_sweep_seconds(parts: int = DATA_PARTS, first_slot: bool = True) -> float:
    """The device seconds the plan leaves the last call's sweep (its start-up and unpacking included)."""
    before = [step for step in slot_plan(parts, first_slot) if step.is_call][-2]
    return SLOT_SECONDS - 60 - before.ends_by_minute * 60 - TRANSFER_SECONDS


def markdown(parts: int = DATA_PARTS) -> str:
    """The procedure as the README states it: one numbered step each, its command ready to paste."""
    lines = []
    for number, step in enumerate(slot_plan(parts), 1):
        head = f"{number}. **{step.where.capitalize()}**"
        if step.is_call:
            head += (f" (`carry: {list(step.carry)}`, `timeout_s` {step.timeout_s}, ends by minute "
                     f"{step.ends_by_minute:g})")
        lines.append(f"{head}: {step.what}")
        if step.command:
            lines.append(f"   `{step.command}`")
    first, later = planned_sweep_seconds(parts), planned_sweep_seconds(parts, first_slot=False)
    lines.append(f"\nPlanned: the sweep has {first / 60:.1f} of the slot's {SLOT_SECONDS // 60} minutes "
                 f"({first / SLOT_SECONDS:.0%}) in a first slot (self-test and decisions), {later / 60:.1f} "
                 f"({later / SLOT_SECONDS:.0%}) once the card's self-test record and probe are committed; three calls "
                 "are the fewest that carry the data (64 MiB each), and the ledger says how much of the sweep trained.")
    return "\n".join(lines)


def slots_for(hours: float, parts: int = DATA_PARTS) -> int:
    """The slots a sweep of ``hours`` (``cifarnb sweep --estimate CARD``'s total) takes: the first slot's sweep
    seconds, then a later slot's each (the card's self-test record and probe committed by then)."""
    seconds, first, later = hours * 3600, planned_sweep_seconds(parts), planned_sweep_seconds(parts, first_slot=False)
    return 1 if seconds <= first else 1 + math.ceil((seconds - first) / later)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", type=int, nargs="?", default=DATA_PARTS, help="data parts (default: %(default)s)")
    parser.add_argument("--hours", type=float, default=None,
                        help="instead: the slots a sweep of this many GPU-hours takes (cifarnb sweep --estimate)")
    args = parser.parse_args(argv)
    if args.hours is None:
        print(markdown(args.parts))
        return 0
    slots = slots_for(args.hours, args.parts)
    print(f"{args.hours:g} GPU-hours: {slots} slot{'s' * (slots != 1)} of {SLOT_SECONDS // 60} minutes (the sweep "
          f"gets {planned_sweep_seconds(args.parts):.0f} s of the first, {planned_sweep_seconds(args.parts, False):.0f}"
          " s of each later one; the rest is start-up, the data's calls, the decisions and the minute left at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
