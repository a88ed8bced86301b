"""The last call's sweep: `cifarnb sweep` with its options, and where its seconds went beyond its runs' own.

    python tools/remote_gpu/sweep_call.py --ledger FILE --section S ... --archive A --baseline results ...

Every option but ``--ledger`` is `cifarnb sweep`'s (its parser reads them; the local backend only). The sweep runs
through the library (``cifarnb.study.sweep.sweep``) with the archive's rewrite wrapped in a
:class:`ledger.SweepTimer`, which writes the sweep's wall seconds and those spent rewriting the archive to
``FILE``: ``ledger.py --sweep FILE`` puts them in the call's ledger (gpu_report.sh does).
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ledger import SweepTimer  # noqa: E402

PROBES = Path(__file__).resolve().parents[2] / "benchmarks"  # the committed probes and self-test


def main(argv: list[str] | None = None) -> int:
    from cifarnb.archive import pack
    from cifarnb.cli import build_parser
    from cifarnb.results import ResultStore
    from cifarnb.study import profiles
    from cifarnb.study.sections import resolve
    from cifarnb.study.sweep import sweep

    own = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    own.add_argument("--ledger", type=Path, required=True, help="the JSON file of the sweep's own seconds")
    known, rest = own.parse_known_args(argv)
    args = build_parser().parse_args(["sweep", *rest])
    if args.backend != "local" or args.estimate or args.archive is None:
        raise SystemExit("sweep_call: the local backend, an --archive, and no --estimate")
    log = functools.partial(print, flush=True)
    sections = resolve(args.section, note=functools.partial(print, file=sys.stderr))
    profile = profiles.get(args.profile, device=args.device, data_root=getattr(args, "data_root", None))
    store = ResultStore(args.results)
    fast_paths = None
    if args.fast_paths == "auto":
        from cifarnb.device import device_name, resolve_device
        from cifarnb.study.fast_paths import FastPaths

        # The card's probe and self-test are committed beside the benchmarks that write them.
        fast_paths = FastPaths.read(device_name(resolve_device(args.device)), args.probes or PROBES)
    # Rewritten after every finished task, so whatever stops the sweep, the finished results are in it.
    timer = SweepTimer(known.ledger, functools.partial(pack, store.root, args.baseline, args.archive))
    report = sweep(sections, profile, store, seeds=args.seeds, workers=args.workers, budget_seconds=args.budget_s,
                   on_finished=timer, log=log, fast_paths=fast_paths)
    timer()
    timer.close(report)
    print(f"sweep ({profile.name}, {', '.join(sections)}): {report.summary()}")
    print(f"results: {store.root}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
