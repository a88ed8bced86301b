"""How fast the command line answers: `cifarnb --help`, `cifarnb train --help` and `cifarnb sweep --help` against
a bare `python -c pass`, each the median of several fresh processes. The help imports no torch (tests/test_cli.py
checks that), so it should take well under 0.5 s.

    python benchmarks/cli_speed.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {"python -c pass": [sys.executable, "-c", "pass"]}
for words in ("--help", "train --help", "sweep --help", "merge --help"):
    COMMANDS[f"cifarnb {words}"] = [sys.executable, "-m", "cifarnb.cli", *words.split()]


def seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per command (default: %(default)s)")
    args = parser.parse_args(argv)
    bare = None
    print(f"{'command':<24} {'median s':>9} {'x bare python':>14}")
    for name, command in COMMANDS.items():
        median = seconds(command, args.repeats)
        bare = bare or median
        print(f"{name:<24} {median:>9.3f} {median / bare:>14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
