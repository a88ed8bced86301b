"""Sweep wall time of one smoke section by each backend, in one run: sequential, ``--workers 2``, Ray on 2 CPUs.

    python benchmarks/sweep_backends.py --data-root ../shared/cifar10 [--section fastresnet9] [--seed 0]

Each backend fills a fresh, empty results store with the section's runs (the same configs and keys); the wall
time counts everything a user waits for: planning, process or Ray start-up, training, writing the store. Ray
runs as a local instance with 2 CPUs, one CPU (and one intra-op thread) per run. At the end the three stores
must hold the same runs (the same keys). Their numbers differ in the last digits, since a run's intra-op thread
count changes the order of its sums (2 threads sequentially and in each --workers process, 1 under Ray);
tests/test_cluster.py and tests/test_sweep.py check equal histories at equal thread counts.
Needs the cluster extra (``pip install -e ".[cluster]"``). Record what it prints in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from cifarnb.results import ResultStore  # noqa: E402
from cifarnb.study import profiles  # noqa: E402
from cifarnb.study.cluster import sweep_on_ray  # noqa: E402
from cifarnb.study.sections import plan  # noqa: E402
from cifarnb.study.sweep import sweep  # noqa: E402


def quiet(_line: str) -> None:
    """A picklable log that drops the per-run lines (the --workers processes are spawned)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="data folder (else $CIFARNB_DATA, ./data)")
    parser.add_argument("--section", default="fastresnet9", help="one smoke section (default: %(default)s, 11 runs)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    smoke, seeds = profiles.get("smoke", device="cpu", data_root=args.data_root), (args.seed,)
    runs = len(plan([args.section], smoke, seeds))
    print(f"{args.section} at smoke, seed {args.seed}: {runs} runs; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}, torch threads {torch.get_num_threads()}, "
          f"load average before {os.getloadavg()[0]:.1f}")
    backends = {
        "sequential": lambda store: sweep([args.section], smoke, store, seeds, log=quiet),
        "--workers 2": lambda store: sweep([args.section], smoke, store, seeds, workers=2, log=quiet),
        "ray, 2 CPUs": lambda store: sweep_on_ray([args.section], smoke, store, seeds, num_cpus=2, progress=False,
                                                  log=quiet),
    }
    seconds, keys = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, run_backend in backends.items():
            store = ResultStore(Path(scratch) / name.replace(" ", "_").replace(",", ""))
            started = time.perf_counter()
            report = run_backend(store)
            seconds[name] = time.perf_counter() - started
            if not report.ok or report.left:
                raise SystemExit(f"{name}: the sweep did not finish: {report.summary()}")
            keys[name] = sorted(run.path.parent.name for run in store.runs())
            print(f"{name:>12}: {seconds[name]:7.1f} s  ({seconds['sequential'] / seconds[name]:.2f}x sequential)",
                  flush=True)
    same = all(keys[name] == keys["sequential"] and len(keys[name]) == runs for name in keys)
    print(f"the same {runs} runs in every store: {same}; load average after {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
