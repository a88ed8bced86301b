"""One GPU slot, call by call: the procedure `benchmarks/README.md` states (generated from here; a test keeps the
README's copy the same) and `bash benchmarks/gpu_report.sh rehearse` runs on the CPU.

    python benchmarks/slot_plan.py            # the README's procedure, as Markdown

Each step is done here or is a device call (the run tool's `command`, `carry` and `timeout_s`), with the minute of
the slot's device time it should end by. The machine stays warm only about 30 s between calls, so what is done
here between two calls is short and ready before the call returns. Only the standard library.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

SLOT_SECONDS = 15 * 60  # one slot's device time, start-up included
START_UP_SECONDS = 120  # a fresh machine's start, which the first call pays
PROBE_BUDGET_S = 420  # the self-test when due (~2 min) and the probe (~4 min)
DATA_PARTS = 3  # what stage_parts.py cuts the staged data into beside the tree and the wheels today
WHEELS = ".device-wheels"  # pydantic for the device's Python (benchmarks/device_packages.sh), in every call
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


def slot_plan(parts: int = DATA_PARTS) -> list[Step]:
    probe_ends = (START_UP_SECONDS + PROBE_BUDGET_S + 30) / 60
    steps = [
        Step("here", "Before the slot, in the background (about 4 minutes): pack the data; first, in seconds, the "
                     "device's missing wheels (once per checkout: `echo .stage/ >> .git/info/exclude`).",
             command="bash benchmarks/device_packages.sh && (../shared/tools/stage-cifar10 pack ../shared/cifar10 "
                     ".stage && cp ../shared/tools/stage-cifar10 .stage/) &"),
        Step("call 1", "The self-test when due, then the probe (no data needed: it runs while the data is packed).",
             command=f"COMMIT=<COMMIT> OUT=$OUT BUDGET_S={PROBE_BUDGET_S} bash benchmarks/gpu_report.sh probe",
             carry=(WHEELS,), timeout_s=str(PROBE_BUDGET_S + 30), ends_by_minute=round(probe_ends, 1)),
        Step("here", "At once: keep what came back in .slot/call-1/; the probe and a self-test pass become files of "
                     "the checkout (so the next calls carry them: the sweep takes its workers and MPS from the "
                     "probe and skips the self-test); re-cut the data to fit beside the tree and the wheels.",
             command="mkdir -p .slot/call-1 && cp <files_at>/* .slot/call-1/ && cp .slot/call-1/probe.json "
                     "benchmarks/probe-<card>-<date>.json && (cp .slot/call-1/selftest-passed.json benchmarks/ || "
                     "true) && python benchmarks/stage_parts.py .stage"),
    ]
    minute = probe_ends
    for number in range(1, parts):
        minute += 0.5
        carry = (WHEELS, part(number), *((STAGE_TOOL,) if number == 1 else ()))
        steps.append(Step(f"call {number + 1}", f"Data part {number} of {parts}, nothing else to wait for.",
                          command="ls -l .stage", carry=carry, timeout_s="60", ends_by_minute=round(minute, 1)))
    steps += [
        Step(f"call {parts + 1}", f"The last data part, then the sweep of every section in fill order until "
                                  "the budget, the results archive rewritten after every finished run.",
             command="COMMIT=<COMMIT> OUT=$OUT BUDGET_S=<T - 20> bash benchmarks/gpu_report.sh",
             carry=(WHEELS, part(parts), *((STAGE_TOOL,) if parts == 1 else ())), timeout_s="<T>",
             ends_by_minute=SLOT_SECONDS / 60 - 1),
        Step("here", "`give_back` at once; keep what came back; merge the runs into the store; the slot's ledger "
                     "(the data calls' wall seconds; the lease's held seconds beyond all calls' wall seconds, "
                     "the machine's start included, as idle) and its line for RESULTS.md.",
             command=f"mkdir -p .slot/call-{parts + 1} && cp <files_at>/* .slot/call-{parts + 1}/ && cifarnb merge "
                     f".slot/call-{parts + 1}/results.tar.gz && python benchmarks/ledger.py --slot "
                     f".slot/call-1/ledger.json .slot/call-{parts + 1}/ledger.json --data-call-seconds <sum of the "
                     "data calls' wall_s> --idle-seconds <held_s - every call's wall_s>"),
        Step("here", "Commit the probe JSON and the self-test stamp; record the probe and the slot's ledger line in "
                     "RESULTS.md (targets met or not, by how much); re-execute the notebooks whose sections are "
                     "complete at `-p profile quick` (with `-y 'seeds: [0]'` while only the first seed is stored); "
                     "commit."),
    ]
    return steps


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
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(int(sys.argv[1]) if len(sys.argv) > 1 else DATA_PARTS))
