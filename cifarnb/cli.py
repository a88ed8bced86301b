"""Command line: ``cifarnb train`` (one run through the results store), ``cifarnb sweep`` (one report section's
runs, headless) and ``cifarnb report`` (all notebooks, rendered to HTML)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing
from typing import Any, Callable

# Only torch-free modules here: `cifarnb --help` answers without importing torch (each command imports what it
# needs when it runs; tests/test_cli.py checks, and the command-line speed benchmark times it).
from . import __version__, names
from .interrupt import describe, exit_status, terminate_raises
from .study import recipes  # torch-free at import: torch loads when a recipe is built
from .study.section_index import ALIASES, NUMBERS, SECTION_NAMES, in_notebook_order
from .study.settings import REPORT_SCHEDULES
from .train.config import EXECUTION_FIELDS, TrainConfig, field_help

SCRATCH_RESULTS = "scratch-results"  # where `cifarnb train` stores runs tried from the command line

# `cifarnb sweep` on a CPU at quick or full: above this many hours of work left, it starts only with --yes.
CPU_HOURS_WITHOUT_YES = 3.0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error shows one usage line: `train` has some fifty options, which --help lists."""

    def error(self, message: str):
        self.exit(2, f"usage: {self.prog} [OPTIONS] (see {self.prog} --help)\n{self.prog}: error: {message}\n")


def parse_value(text: str):
    """A command-line value: JSON where it parses (numbers, lists, true/null), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _seed(text: str) -> int:
    """An argparse type for a seed: the same rule as TrainConfig's (a whole number >= 0), as one usage line."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed {text!r} is not a whole number >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed {value} must be a whole number >= 0")
    return value


def _knots(text: str) -> list:
    """An argparse type for ``--lr-knots``: a JSON list of [epoch, factor] pairs of numbers."""
    try:
        knots = json.loads(text)
    except json.JSONDecodeError:
        knots = None
    pairs = isinstance(knots, list) and knots and all(
        isinstance(knot, list) and len(knot) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in knot) for knot in knots)
    if not pairs:
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON list of [epoch, factor] pairs of numbers, e.g. "
                                         "'[[0,0],[2,1],[8,0.1]]'")
    return knots


def _optional(number: type) -> Callable[[str], Any]:
    """An argparse type for an optional number: the number, or None for "none"/"null"."""
    def parse(text: str):
        return None if text.lower() in ("none", "null") else number(text)
    parse.__name__ = number.__name__  # argparse names it in "invalid int value"
    return parse


# The schedules' parameters that the report's code sets (settings.REPORT_SCHEDULES).
_SCHEDULE_FIELDS = sorted({name for parameters in REPORT_SCHEDULES.values() for name in parameters})


def _report_schedule_defaults(name: str) -> str:
    return ", ".join(f"{schedule}: {parameters[name]}" for schedule, parameters in REPORT_SCHEDULES.items()
                     if name in parameters)


def _field_default(field: dataclasses.Field) -> Any:
    """A TrainConfig field's default, read without building a config (which would import torch to check it)."""
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    # A flag not given leaves its field out of the parsed arguments (argparse.SUPPRESS), so that a --recipe's values
    # stand where no flag overrides them; the help says each library default itself.
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default = _field_default(field)
        help_text = field_help(field.name)
        if field.name == "model":  # the zoo's names, torch-free (names.MODEL_FAMILIES, which the registry checks)
            help_text = "one of " + ", ".join(names.MODELS) + " (any letter case)"
        if field.name in _SCHEDULE_FIELDS:
            # The report's code's value for the chosen --scheduler fills it when not given (_config_from).
            help_text = (f"{help_text} (default: the report's code's for the chosen --scheduler "
                         f"({_report_schedule_defaults(field.name)}), else {default})")
        elif field.name == "model_options":
            help_text += f"; with --recipe, added to the recipe's options (default: {default})"
        else:
            help_text = f"{help_text} (default: {default})"
        if field.name in EXECUTION_FIELDS:
            help_text += " [execution only: not part of the run's key]"
        common = dict(default=argparse.SUPPRESS, help=help_text.replace("%", "%%"))
        if field.name == "model_options":
            parser.add_argument(flag, action="append", metavar="KEY=VALUE", **common)
        elif hints[field.name] is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        elif field.name in ("seed", "subset_seed"):
            parser.add_argument(flag, type=_seed, metavar=field.name.upper(), **common)
        elif field.name == "lr_knots":
            parser.add_argument(flag, type=_knots, metavar="KNOTS", **common)
        elif hints[field.name] in (int, float):
            # argparse turns a ValueError here into one usage line ("invalid int value: 'abc'").
            parser.add_argument(flag, type=hints[field.name], metavar=field.name.upper(), **common)
        elif hints[field.name] in (int | None, float | None, typing.Optional[int], typing.Optional[float]):
            number = int if int in typing.get_args(hints[field.name]) else float
            parser.add_argument(flag, type=_optional(number), metavar=field.name.upper(), **common)
        else:
            parser.add_argument(flag, type=parse_value, metavar=field.name.upper(), **common)


def _recipe_help() -> str:
    listed = "; ".join(f"{name}: {recipes.SUMMARIES[name]}" for name in recipes.list_recipes())
    return (f"start from a recipe of cifarnb.study.recipes, whose values the flags given here override (a flag's "
            f"default is then the recipe's): {listed}. `--recipe report --model M` trains M as the report's code "
            "builds and trains it, the run the sweep stores for M (default: none: the library's TrainConfig "
            "defaults each flag shows: ResNet18 for 25 epochs at lr 0.01, report 1.1's baseline but with "
            "whole-batch BatchNorm where main.py's DataParallel splits it, so not the ablation's run)")


def _add_data_root(parser: argparse.ArgumentParser, config_flag: bool = False) -> None:
    """``--data-root`` (unless the config's flags already made it), and ``--data``, its earlier name."""
    if not config_flag:
        parser.add_argument("--data-root", default=None, help=field_help("data_root") + " (default: %(default)s)")
    parser.add_argument("--data", dest="data_root_earlier", default=None, help=argparse.SUPPRESS)


def _data_root(args: argparse.Namespace) -> str | None:
    """The data folder the command was given: ``--data-root``, or ``--data`` with a one-line note."""
    if args.data_root_earlier is not None:
        print("note: --data is now called --data-root", file=sys.stderr)
        if getattr(args, "data_root", None) is None:
            args.data_root = args.data_root_earlier
    return getattr(args, "data_root", None)  # absent: `train` leaves a config flag not given out


def _config_from(args: argparse.Namespace) -> TrainConfig:
    """The config of the flags given (argparse leaves the others out): over the recipe's values with --recipe,
    else over TrainConfig's defaults. A schedule parameter not given takes the report's code's value for the
    --scheduler chosen (main.py's Table 5 rates: `cifarnb train --scheduler step --lr 0.01` halves the rate every 5
    epochs), where --scheduler is given or, without a recipe, is the default."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    given["data_root"] = _data_root(args)
    options = {}
    for pair in given.pop("model_options", []):
        if "=" not in pair:
            raise ValueError(f"--model-options {pair!r} must look like key=value, e.g. dropout=0.3")
        key, text = pair.split("=", 1)
        options[key] = parse_value(text)
    if args.recipe is None:
        values = {f.name: _field_default(f) for f in dataclasses.fields(TrainConfig)}
        given = {**REPORT_SCHEDULES.get(given.get("scheduler", values["scheduler"]), {}), **given}
        return TrainConfig(**{**values, **given, "model_options": options})
    if "scheduler" in given:
        if given["scheduler"] != "piecewise":
            given.setdefault("lr_knots", None)  # the recipe's knots go with its piecewise schedule
        given = {**REPORT_SCHEDULES.get(given["scheduler"], {}), **given}
    config = recipes.get(args.recipe, **given)
    if options:
        config = recipes.get(args.recipe, **given, model_options={**config.model_options, **options})
    return config


def _train(args: argparse.Namespace) -> int:
    from .data import load_cifar10
    from .results import RESULTS_ENV_VAR, ResultStore

    config = _config_from(args)
    # A run tried from the command line stays out of the committed store: --results, else $CIFARNB_RESULTS, else
    # the scratch store (git ignores it). The sweep and the notebooks fill results/.
    store = ResultStore(args.results or os.environ.get(RESULTS_ENV_VAR) or SCRATCH_RESULTS)
    run = store.load(config)  # a stored run is printed without reading the data set
    if run is None:
        from .study.fast_paths import evidence_for

        data = load_cifar10(config.data_root, download=args.download)
        # Executed as the sweep and the notebooks execute the same run (train.execution.decide, the study's evidence).
        run = store.run(config, data=data, progress=not args.quiet, evidence=evidence_for(config))
    print(run.frame().to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"{run.status} ({run.origin}): {run.path}")
    return 0 if run.finished else 3


def _report(args: argparse.Namespace) -> int:
    from .study.render import run_report

    data_root = _data_root(args)
    if args.download:
        from .data import load_cifar10

        load_cifar10(data_root, download=True)  # fetch or repair once, before any notebook needs it
    html = run_report(profile=args.profile, output=args.output, notebooks=args.notebooks, results=args.results,
                      figures=args.figures, data_root=data_root, device=args.device, only=args.only)
    print(f"report: {html}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .archive import cut_runs_travel

    # Stopped (Ctrl-C, SIGTERM): --archive is rewritten once more, with the cut runs' checkpoints that fit.
    with cut_runs_travel(args.results, args.baseline, args.archive):
        return _run_sweep(args)


def _run_sweep(args: argparse.Namespace) -> int:
    import functools

    from .results import ResultStore
    from .study import profiles
    from .study.sections import resolve
    from .study.sweep import sweep

    data_root = _data_root(args)
    sections = resolve(args.section, note=functools.partial(print, file=sys.stderr))
    if args.baseline is not None and args.archive is None:
        raise ValueError("--baseline needs --archive PATH (the archive of results new relative to it)")
    # The one place a sweep sets its execution settings: every config the sections build from the profile gets them.
    profile = profiles.get(args.profile, device=args.device, data_root=data_root)
    store = ResultStore(args.results)
    if (args.estimate is None and args.backend == "local" and profile.name in ("quick", "full")
            and args.budget_s is None and not args.yes):
        from .study.sweep import check_cpu_hours

        check_cpu_hours(sections, profile, store, args.seeds, args.device, CPU_HOURS_WITHOUT_YES,
                        log=functools.partial(print, flush=True))
    if args.estimate:
        from .study.estimate import EpochTimes, Probe, estimate_lines
        from .study.probes import probe_paths, resolve_card

        seen = {device for device, *_ in EpochTimes.read(store).means if device}
        seen |= {Probe.read(path).device for path in probe_paths(args.probes)}
        card = resolve_card(args.estimate, seen)
        probe = Probe.read(args.probe) if args.probe else Probe.newest(card, args.probes) if args.probes else None
        for line in estimate_lines(sections, profile, store, card, seeds=args.seeds, probe=probe):
            print(line)
        return 0
    if args.download:
        from .data import load_cifar10

        load_cifar10(data_root, download=True)  # fetch or repair once, before the workers start
    on_finished = None
    if args.archive:
        from .archive import pack

        # Rewritten after every finished task, so whatever stops the sweep, the finished results are in it.
        on_finished = functools.partial(pack, store.root, args.baseline, args.archive)
    if args.backend == "ray":
        from .study.cluster import MissingExtra, sweep_on_ray

        if args.workers != 1 or args.budget_s is not None or args.fast_paths != "off":
            raise ValueError("--workers, --budget-s and --fast-paths work with --backend local; with --backend ray "
                             "the cluster's CPUs and GPUs (--cpus-per-run, --gpus-per-run) decide how many runs train "
                             "at once")
        try:
            report = sweep_on_ray(sections, profile, store, seeds=args.seeds, address=args.address,
                                  gpus_per_run=args.gpus_per_run, cpus_per_run=args.cpus_per_run,
                                  on_finished=on_finished, log=functools.partial(print, flush=True))
        except MissingExtra as error:
            print(f"cifarnb: error: {error}", file=sys.stderr)
            return 2
    else:
        if args.address is not None:
            raise ValueError("--address needs --backend ray (a Ray cluster's address)")
        fast_paths = None
        if args.fast_paths == "auto":
            from .device import device_name, resolve_device
            from .study.fast_paths import FastPaths

            if not args.probes:
                raise ValueError("--fast-paths auto needs --probes DIR, the folder holding the card's "
                                 "probe-<card>-<date>.json and selftest.json")
            fast_paths = FastPaths.read(device_name(resolve_device(args.device)), args.probes)
        report = sweep(sections, profile, store, seeds=args.seeds, workers=args.workers,
                       budget_seconds=args.budget_s, on_finished=on_finished, log=functools.partial(print, flush=True),
                       fast_paths=fast_paths)
    if on_finished is not None:
        on_finished()
    print(f"sweep ({profile.name}, {', '.join(sections)}): {report.summary()}")
    print(f"results: {store.root}")
    return 0 if report.ok else 1


def _merge(args: argparse.Namespace) -> int:
    from .archive import merge

    report = merge(args.archive, args.results)
    if report.conflicts:
        print(f"cifarnb merge: nothing merged: {len(report.conflicts)} file(s) in {args.archive} differ from the "
              f"store's copy (remove one side to choose):", file=sys.stderr)
        for path in report.conflicts:
            print(f"  {path}", file=sys.stderr)
        return 1
    resume = len(report.checkpoints)  # cut runs' checkpoints: the next sweep resumes them
    print(f"merged {len(report.added)} new file(s) into {args.results} ({len(report.unchanged)} already there)"
          + (f"; {resume} checkpoint{'s' * (resume > 1)} to resume" if resume else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cifarnb", description="Reproduce the CIFAR-10 report: train runs into the results "
                     "store, or execute the report notebooks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    # Usage lines stay short: the options are listed below them, one per paragraph.
    train = commands.add_parser("train", help="train one config (or load it from the results store)",
                                usage="%(prog)s [OPTIONS]")
    train.add_argument("--recipe", default=None, choices=recipes.list_recipes(), metavar="RECIPE",
                       help=_recipe_help())
    _add_data_root(train, config_flag=True)
    train.add_argument("--download", action="store_true", help="fetch CIFAR-10 if it is missing, partial or damaged")
    train.add_argument("--results", default=None, help="results store folder; None: $CIFARNB_RESULTS, else "
                       f"./{SCRATCH_RESULTS} (a scratch store git ignores; the sweep and the notebooks fill "
                       "./results) (default: %(default)s)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_arguments(train)
    train.set_defaults(handler=_train)

    section_names = ", ".join(f"{s.name} ({s.notebook[:2]})" for s in in_notebook_order())
    sweep = commands.add_parser("sweep", help="train report sections' runs into the results store, without Jupyter",
                                usage="%(prog)s [OPTIONS]")
    sweep.add_argument("--section", nargs="+", default=list(SECTION_NAMES), choices=[*SECTION_NAMES, *ALIASES],
                       metavar="SECTION",
                       help=f"{section_names}, or an earlier name ({', '.join(ALIASES)}); filled in the order "
                            "given, the first seed of every run before any second seed (default: all, in the order "
                            "a GPU fills them: %(default)s)")
    sweep.add_argument("--profile", default="quick", help="smoke|quick|full (default: %(default)s)")
    sweep.add_argument("--seeds", type=_seed, nargs="+", default=None, help="whole numbers >= 0 (default: the "
                       "profile's seeds)")
    sweep.add_argument("--download", action="store_true", help="fetch CIFAR-10 if it is missing, partial or damaged")
    sweep.add_argument("--results", default=None, help="results store folder; None: $CIFARNB_RESULTS, else "
                       "./results (default: %(default)s)")
    _add_data_root(sweep)
    sweep.add_argument("--device", default="auto", help="auto|cpu|cuda (default: %(default)s)")
    sweep.add_argument("--workers", type=int, default=1,
                       help="processes sharing the device; each claims its runs through the store (default: %(default)s)")
    sweep.add_argument("--budget-s", type=float, default=None,
                       help="start no run that would not finish within this many seconds (default: no budget)")
    sweep.add_argument("--archive", default=None, help="rewrite this .tar.gz after every finished run with the "
                       "store's result files that are new relative to --baseline (default: no archive)")
    sweep.add_argument("--baseline", default=None, help="the store the archive is relative to (e.g. the "
                       "committed results/); None: every result file goes in (default: %(default)s)")
    sweep.add_argument("--fast-paths", default="off", choices=("off", "auto"),
                       help="auto: compile or CUDA-graph each model where the card's probe in --probes shows it pays "
                       "and its self-test passed; off: the profile's execution settings (default: %(default)s)")
    sweep.add_argument("--probes", default=None, metavar="DIR", help="a folder of probes of cards "
                       "(probe-<card>-<date>.json, as the probe benchmark writes them) and the fast-path self-test's "
                       "selftest.json, read by --fast-paths auto and --estimate (default: none)")
    sweep.add_argument("--estimate", default=None, metavar="DEVICE",
                       help="print each section's hours on DEVICE, and train nothing: a card as runs record it "
                       "('NVIDIA H200', 'cpu') or a short form (H200, H100, A100); an unknown card is refused "
                       "(default: %(default)s)")
    sweep.add_argument("--probe", default=None, metavar="FILE",
                       help="with --estimate: the probe JSON whose efficiency to use (default: the newest of "
                       "DEVICE's card in --probes, if given)")
    sweep.add_argument("--backend", default="local", choices=("local", "ray"),
                       help="local: --workers processes here; ray: one Ray task per run (needs the cluster extra) "
                       "(default: %(default)s)")
    sweep.add_argument("--address", default=None, help="with --backend ray: a running cluster's address "
                       "(host:port from `ray start --head`); None: start a local Ray instance (default: %(default)s)")
    sweep.add_argument("--gpus-per-run", type=float, default=0.0,
                       help="with --backend ray: GPUs each run reserves; fractions pack runs (0.25: four per GPU) "
                       "(default: %(default)s)")
    sweep.add_argument("--cpus-per-run", type=float, default=1.0, help="with --backend ray: CPUs each run reserves "
                       "(default: %(default)s)")
    sweep.add_argument("--yes", action="store_true", help=f"start even when, on a CPU at quick or full, the work "
                       f"left is estimated above {CPU_HOURS_WITHOUT_YES:g} hours (without --yes or --budget-s, the "
                       "sweep prints that estimate first and refuses)")
    sweep.set_defaults(handler=_sweep)

    merge = commands.add_parser("merge", help="validate a results archive and merge it into the store",
                                usage="%(prog)s ARCHIVE [OPTIONS]")
    merge.add_argument("archive", metavar="ARCHIVE", help="a .tar.gz made by `cifarnb sweep --archive`; every "
                       "member is checked first (run.json against the run schema and its folder's key, tables and "
                       "arrays of the store's kinds, no links or paths outside the store), and a file that differs "
                       "from the store's copy stops the merge before any write")
    merge.add_argument("--results", default="results", help="results store folder to merge into (default: "
                       "%(default)s)")
    merge.set_defaults(handler=_merge)

    report = commands.add_parser("report", help="execute the five notebooks with papermill and render one HTML",
                                 usage="%(prog)s [OPTIONS]")
    report.add_argument("--profile", default="committed", help="smoke|quick|full for every notebook, or "
                        "'committed': each at the profile and seeds it was committed with (renders the committed "
                        "results/ without training) (default: %(default)s)")
    report.add_argument("--output", default="output", help="folder for executed notebooks, report.html and the "
                        "log of a notebook that fails (default: %(default)s)")
    report.add_argument("--notebooks", default="notebooks", help="folder holding 01_...ipynb to 05_...ipynb "
                        "(default: %(default)s)")
    report.add_argument("--results", default=None, help="results store folder; None: the notebooks' own, the "
                        "repository's results/ (default: %(default)s)")
    report.add_argument("--figures", default=None, help="folder for the notebooks' figures (default: the "
                        "repository's figures/, or OUTPUT/figures when --results is given, so rendering another "
                        "store never overwrites the committed figures)")
    _add_data_root(report)
    report.add_argument("--download", action="store_true", help="fetch CIFAR-10 if it is missing, partial or damaged")
    report.add_argument("--device", default="auto", help="auto|cpu|cuda (default: %(default)s)")
    report.add_argument("--only", nargs="+", default=None, choices=[*SECTION_NAMES, *ALIASES, *NUMBERS],
                        metavar="SECTION", help=f"run only these sections' notebooks: {section_names}, or an "
                        f"earlier name ({', '.join([*ALIASES, *NUMBERS])}) (default: all five)")
    report.set_defaults(handler=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's own parser, so the usage line names the command
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    from .study.render import NotebookFailed  # after parsing: --help and usage errors need none of the study
    try:
        with terminate_raises():  # SIGTERM unwinds as Ctrl-C does: claim files go, no half-written file stays
            return args.handler(args)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: a normal end, said in one line (one per stopped run)
        print(describe(stop), file=sys.stderr, flush=True)
        return exit_status(stop)
    except (ValueError, OSError, NotebookFailed) as error:  # bad input, missing files, a failed notebook
        print(f"cifarnb: error: {_in_command_line_words(' '.join(str(error).split()))}", file=sys.stderr)
        return 2


def _in_command_line_words(message: str) -> str:
    """The library's advice as this command line gives it: --download, --data-root."""
    from .data import DATA_ENV_VAR, PYTHON_FETCH

    return message.replace(PYTHON_FETCH, "--download").replace(f"set {DATA_ENV_VAR} to",
                                                                f"point --data-root (or {DATA_ENV_VAR}) at")


if __name__ == "__main__":
    sys.exit(main())
