"""How long a sweep's tasks take on a device, before any of them runs: ``cifarnb sweep --estimate DEVICE``, and
the budget check that starts no task that cannot finish in time.

A training run's time is its seconds per epoch (training + evaluation) times :data:`SAFETY`, plus
:data:`SETUP_SECONDS`. The seconds per epoch come from the first of these that knows the run's model, and the
estimate names which:

1. ``probe`` (``--estimate`` only): a probe of the card (``--probe FILE``, or the newest ``probe-<card>-<date>.json``
   in ``--probes DIR``, as the probe benchmark writes it): the sustained training FLOP/s (MFU x the card's peak) of
   the same model, else of its family (:func:`~cifarnb.study.probes.model_family`), in the mode a sweep runs it in
   on that device (its speed steps, and what ``train.execution.decide`` chooses there), alone on the card, at the
   nearest batch size; the run's training and evaluation FLOPs at that rate. It comes first because it times
   today's execution path, alone; the store's GPU timings so far were taken with four runs sharing the card, on
   the eager path;
2. ``store``: the store's measured seconds per epoch of the same model, batch size and data size on that device,
   else the training FLOP/s its family reaches in the store there on all the data;
3. ``guessed``: the run's FLOPs at a deliberately slow rate (:data:`GUESSED_FLOPS`) plus a fixed cost per step.

A running sweep's budget check (:meth:`Estimator.on`) reads no probe: it only decides what not to start near a
deadline, where the store's shared timings and the slow guess err on the long side, as they should.
"""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass, field

from ..device import device_name, resolve_device
from ..results import ResultStore
from ..train import TrainConfig
from ..train.execution import execution_mode, steps_per_epoch, sweep_execution
from . import profiles
from .probes import REFERENCE_CARD, Probe, dense_bf16_peak, model_family
from .profiles import Profile
from .sections import SECTIONS, plan

# For a task never timed on this device: deliberately slow guesses (they only decide what not to start near the
# deadline) of sustained training FLOP/s and of the fixed cost of a step (kernel launches, Python).
GUESSED_FLOPS = {"cuda": 20e12, "cpu": 2e10}
GUESSED_STEP_SECONDS = {"cuda": 0.015, "cpu": 0.005}
SAFETY = 1.25  # measured seconds per epoch vary with what else shares the device
SETUP_SECONDS = 15.0  # data upload, model build, cuDNN autotuning


Timing = tuple[str, str, int, int | None]  # (device, model, batch size, training images): one timing


def timing(config: TrainConfig, device_label: str) -> Timing:
    return device_label, config.model, config.batch_size, config.n_train


@dataclass(frozen=True)
class EpochTimes:
    """The store's measured seconds per epoch (training, its evaluations within and at its end), read once: the
    mean over every epoch of the store's runs with one device, model, batch size and number of training images;
    and the FLOP/s each such timing reaches (its runs' own epoch FLOPs, evaluations and TTA included), which time
    a model of the same family not timed itself (:meth:`family_rate`) and give a card's MFU
    (:meth:`Estimator.store_mfu`).

    Reading the store validates every run's config (building its model), about 25 ms a run on a CPU: done once
    per sweep or estimate, not once per task."""

    means: dict[Timing, float]
    rates: dict[Timing, float] = field(default_factory=dict)

    @classmethod
    def read(cls, store: ResultStore) -> EpochTimes:
        totals: dict[Timing, list[float]] = {}
        configs: dict[Timing, TrainConfig] = {}
        for run in store.runs():
            key = timing(run.config, run.meta.get("device"))
            totals.setdefault(key, []).extend(row_seconds(row) for row in run.history if "seconds" in row)
            configs.setdefault(key, run.config)
        means = {key: sum(rows) / len(rows) for key, rows in totals.items() if rows}
        return cls(means, {key: epoch_flops(configs[key]) / seconds for key, seconds in means.items()})

    def family_rate(self, device_label: str, family: str) -> float | None:
        """The median FLOP/s the family's timings reach on the device on all 50,000 images (a subset's epoch is
        mostly fixed costs); None when none is stored."""
        rates = [rate for (device, model, _, n_train), rate in self.rates.items()
                 if device == device_label and n_train is None and model_family(model) == family]
        return statistics.median(rates) if rates else None

    def per_epoch(self, config: TrainConfig, device_label: str) -> float | None:
        """The store's seconds per epoch of ``config``'s model, batch size and data size, else of its family's
        measured rate on all the data (None when neither is stored)."""
        measured = self.means.get(timing(config, device_label))
        if measured is not None:
            return measured
        rate = self.family_rate(device_label, model_family(config.model))
        return epoch_flops(config) / rate if rate else None


def row_seconds(row: dict) -> float:
    """One history row's seconds: training, the evaluations within the epoch (``eval_every_steps``) and the
    evaluation at its end."""
    within = sum(evaluation.get("seconds", 0.0) for evaluation in row.get("step_evals") or ())
    return row["seconds"] + within + row.get("eval_seconds", 0.0)


class Estimator:
    """Seconds a training run takes on one device (``device_label``: a run's ``meta["device"]``, e.g.
    "NVIDIA H200" or "cpu"): from ``probe`` when it knows the model's family, else from the store's
    :class:`EpochTimes`, else guessed (module docstring); :meth:`refresh` after a run finished there."""

    def __init__(self, store: ResultStore, device_label: str, device_type: str, probe: Probe | None = None,
                 assume_store_mfu: bool = False):
        """``assume_store_mfu`` (``--estimate``): a model nothing measured runs at the median MFU the store's runs
        on this card reach (:meth:`store_mfu`), not at the budget's deliberately slow guess."""
        self.store, self.device_label, self.probe = store, device_label, probe
        self.device_type = device_type if device_type in GUESSED_FLOPS else "cpu"
        self.times = EpochTimes.read(store)
        self.peak = dense_bf16_peak(device_label) if self.device_type == "cuda" else None
        self.assumed_mfu, self.timings = self.store_mfu() if assume_store_mfu and self.peak else (None, 0)
        # A CPU's probe (the CPU speed benchmark): a model it did not time runs at the median training FLOP/s of
        # the paths it chose there (a CPU has no datasheet peak to take an MFU of).
        chosen = [r["achieved_flops"] for r in probe.records if r.get("path") == "chosen"] if probe else []
        self.assumed_rate = statistics.median(chosen) if chosen and self.device_type == "cpu" else None

    def mode_of(self, config: TrainConfig) -> str:
        """How a sweep runs ``config`` on this kind of device: its speed steps, and what
        ``train.execution.decide`` chooses there (on a CPU with native bf16, a long run is compiled)."""
        import torch

        from ..train.execution import decide

        swept = config.replace(**sweep_execution(self.device_type))
        return execution_mode(decide(swept, torch.device(self.device_type)).config)

    def store_mfu(self) -> tuple[float | None, int]:
        """The median MFU (:attr:`EpochTimes.rates` over the card's peak) of the store's timings on this card, and
        over how many (model, batch size, data size) timings."""
        rates = [rate / self.peak for (device, *_), rate in self.times.rates.items() if device == self.device_label]
        return (statistics.median(rates) if rates else None), len(rates)

    @classmethod
    def on(cls, store: ResultStore, device: str) -> Estimator:
        """The estimator for a device as configs name it ("auto", "cpu", "cuda:1", ...)."""
        resolved = resolve_device(device)
        return cls(store, device_name(resolved), resolved.type)

    def refresh(self) -> None:
        self.times = EpochTimes.read(self.store)

    def measured(self, config: TrainConfig) -> bool:
        return self.source(config)[0] != "guessed"

    def source(self, config: TrainConfig) -> tuple[str, dict | None]:
        """Where ``config``'s seconds per epoch come from: "probe" (with the probe's record), "store" or
        "guessed"."""
        if self.probe is not None:
            found = self.probe.rate(config, self.mode_of(config))
            if found is not None:
                return "probe", found[1]
        return ("store" if self.times.per_epoch(config, self.device_label) is not None else "guessed"), None

    def epoch_seconds(self, config: TrainConfig) -> float:
        if self.probe is not None:
            found = self.probe.rate(config, self.mode_of(config))
            if found is not None:
                return epoch_flops(config) / found[0]  # the measured rate includes each step's fixed costs
        per_epoch = self.times.per_epoch(config, self.device_label)
        if per_epoch is not None:
            return per_epoch
        if self.assumed_mfu:
            return epoch_flops(config) / (self.assumed_mfu * self.peak)  # the FLOP bound at the store's MFU
        if self.assumed_rate:
            return epoch_flops(config) / self.assumed_rate  # the CPU probe's median rate
        return guessed_epoch_seconds(config, self.device_type)

    def run_seconds(self, config: TrainConfig) -> float:
        return SETUP_SECONDS + SAFETY * config.epochs * self.epoch_seconds(config)


def epoch_flops(config: TrainConfig) -> float:
    """FLOPs of one epoch of ``config``: training (forward + backward ~ 3 forward passes) and evaluation (1 pass,
    2 with TTA) at the epoch's end and every ``eval_every_steps`` (VGG-A's accuracy runs: about 4 more an epoch,
    a quarter of the epoch's FLOPs); 2 FLOPs per multiply-add."""
    n_test = config.n_test or 10_000
    evaluations = 1 + (steps_per_epoch(config) / config.eval_every_steps if config.eval_every_steps else 0)
    return training_flops(config) + evaluations * 2 * macs_per_image(config) * n_test * (2 if config.tta_flip else 1)


def training_flops(config: TrainConfig) -> float:
    """FLOPs of one epoch's training steps of ``config`` (forward + backward ~ 3 forward passes)."""
    return 2 * macs_per_image(config) * 3 * (config.n_train or 50_000)


def macs_per_image(config: TrainConfig) -> float:
    """Forward multiply-adds of ``config``'s model on one 32x32 image (what the FLOP benchmark counts)."""
    return _macs_per_image(config.model, tuple(sorted(config.model_kwargs().items())))


def guessed_epoch_seconds(config: TrainConfig, device_type: str) -> float:
    """One epoch of ``config`` guessed from its FLOPs at :data:`GUESSED_FLOPS` plus a fixed cost per step."""
    kind = device_type if device_type in GUESSED_FLOPS else "cpu"
    return epoch_flops(config) / GUESSED_FLOPS[kind] + steps_per_epoch(config) * GUESSED_STEP_SECONDS[kind]


@functools.cache
def _macs_per_image(model: str, options: tuple) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..models import build

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        network = build(model, **dict(options)).eval()
        with FlopCounterMode(display=False) as counter:
            network(torch.empty(2, 3, 32, 32))
    return counter.get_total_flops() / 2 / 2  # two images, two FLOPs per multiply-add


@dataclass
class SectionEstimate:
    hours: float
    sources: dict[str, set[str]] = field(default_factory=dict)  # "probe" / "store" / "guessed" -> models
    probe_records: dict[tuple, dict] = field(default_factory=dict)  # the probe's records used, by (model, batch, mode)
    model_hours: dict[str, float] = field(default_factory=dict)  # what each model's runs take
    assumed: str = ""  # how a figure nothing measured is made, in words

    def models(self, source: str) -> list[str]:
        return sorted(self.sources.get(source, ()))


def estimate(sections, profile: Profile, store: ResultStore, device_label: str, seeds=None,
             probe: Probe | None = None, missing_only: bool = False) -> dict[str, SectionEstimate]:
    """Device-hours each section's tasks take at ``profile`` on ``device_label`` (a run's ``meta["device"]``),
    from scratch (:meth:`estimate_seconds` of each task), or with ``missing_only`` those of the tasks ``store``
    lacks (what it takes to fill a section); and where each model's seconds per epoch came from (module
    docstring). A feature-maps task counts the training of the run it draws only when that run is not stored."""
    estimator = Estimator(store, device_label, "cpu" if device_label == "cpu" else "cuda", probe,
                          assume_store_mfu=True)
    if estimator.assumed_mfu:
        assumed = (f"assumed, FLOPs at {100 * estimator.assumed_mfu:.1f}% MFU (the median of the store's "
                   f"{estimator.timings} timings on this card)")
    elif estimator.assumed_rate:
        assumed = (f"assumed, FLOPs at {estimator.assumed_rate / 1e9:.0f} GFLOP/s (the median of the paths "
                   f"{probe.path.name} chose on this CPU)")
    else:
        kind = estimator.device_type
        assumed = (f"assumed, from FLOPs at {GUESSED_FLOPS[kind] / 1e12:g} TFLOP/s and "
                   f"{GUESSED_STEP_SECONDS[kind] * 1000:g} ms a step")
    estimates: dict[str, SectionEstimate] = {}
    for section in sections:
        result = estimates[section] = SectionEstimate(0.0, assumed=assumed)
        for task in plan([section], profile, seeds):
            if missing_only and task.stored(store):
                continue
            hours = task.estimate_seconds(store, estimator) / 3600
            result.hours += hours
            config = task.timing_config()
            result.model_hours[config.model] = result.model_hours.get(config.model, 0.0) + hours
            source, record = estimator.source(config)
            result.sources.setdefault(source, set()).add(config.model)
            if record is not None:
                result.probe_records[record["model"], record["batch_size"], record["mode"]] = record
    return estimates


def estimate_hours(sections, profile: Profile, store: ResultStore, device_label: str, seeds=None,
                   probe: Probe | None = None) -> dict[str, tuple[float, list[str]]]:
    """:func:`estimate` as (hours, the models whose seconds per epoch are guessed from FLOPs) per section."""
    return {section: (result.hours, result.models("guessed"))
            for section, result in estimate(sections, profile, store, device_label, seeds, probe).items()}


def estimate_lines(sections, profile: Profile, store: ResultStore, device_label: str, seeds=None,
                   probe: Probe | None = None) -> list[str]:
    """What ``cifarnb sweep --estimate`` prints: each section's hours and where they come from, the total, and
    the probe's efficiency per family (or that there is none)."""
    estimates = estimate(sections, profile, store, device_label, seeds, probe)
    kind, device_type = ("CPU", "cpu") if device_label == "cpu" else ("GPU", "cuda")
    assumed = next(iter(estimates.values())).assumed if estimates else ""
    wording = {"store": "measured (the store's epochs on this device)", "probe": "measured (the probe's efficiency)",
               "guessed": assumed}
    lines = []
    for section, result in estimates.items():
        sources = "; ".join(f"{wording[source]}: {', '.join(result.models(source))}"
                            for source in ("store", "probe", "guessed") if result.models(source))
        lines.append(f"{section}: {duration(result.hours, kind)} on {device_label}" + (f"; {sources}" if sources
                                                                                        else ""))
    total = sum(result.hours for result in estimates.values())
    lines.append(f"total ({profile.name}): {duration(total, kind)} on {device_label}")
    lines.append(f"every figure includes {SETUP_SECONDS:g} s of set-up a run and x{SAFETY:g} on its epochs "
                 "(assumed margins)")
    if total > 0:
        lines.append("what dominates: " + dominance(estimates, kind))
    if probe is None and device_type == "cpu":
        lines.append("no probe of this CPU: the CPU speed benchmark (cpu_speed.py --out FILE) times its fast path, "
                     "and --estimate cpu --probe FILE reads it")
        return lines
    if probe is None:
        lines.append(f"no probe of {device_label} (the probe benchmark, probe.py, writes one on that card; "
                     f"--probes DIR or --probe FILE reads it): every figure is the store's or assumed")
        return lines
    used = {key: record for result in estimates.values() for key, record in result.probe_records.items()}
    efficiency = "; ".join(f"{record.get('family', '?')}: {record['model']} at batch {record['batch_size']}, "
                           f"{record['mode']}, {_efficiency(record)}" for _, record in sorted(used.items()))
    if device_type == "cpu":
        where = f"measured on {probe.cpu} with {probe.threads} threads" if probe.cpu else "measured on a CPU"
        lines.append(f"efficiency from {probe.path.name} ({where}): {efficiency or 'none used'}")
        return lines
    mode = execution_mode(TrainConfig(**sweep_execution(device_type)))
    lines.append(f"efficiency from {probe.path.name} (a sweep there runs {mode}): {efficiency or 'none used'}")
    return lines


def dominance(estimates: dict[str, SectionEstimate], kind: str) -> str:
    """The largest section's share of the total, and its three largest models'."""
    total = sum(result.hours for result in estimates.values())
    section, result = max(estimates.items(), key=lambda item: item[1].hours)
    models = sorted(result.model_hours.items(), key=lambda item: -item[1])[:3]
    return (f"{section}, {result.hours * 60:,.0f} of {total * 60:,.0f} {kind}-minutes "
            f"({100 * result.hours / total:.0f}%)"
            + (": " + ", ".join(f"{model} {hours * 60:,.0f}" for model, hours in models) if models else ""))


def duration(hours: float, kind: str) -> str:
    """``hours`` of a device kind ("GPU", "CPU") in minutes and hours: "24 GPU-minutes (0.40 GPU-hours)"."""
    return f"{hours * 60:,.0f} {kind}-minutes ({hours:,.2f} {kind}-hours)"


def _efficiency(record: dict) -> str:
    if record.get("mfu") is not None:
        return f"{100 * record['mfu']:.1f}% MFU"
    return f"{record['achieved_flops'] / 1e12:.3g} TFLOP/s"


def profiles_table(store: ResultStore, probe: Probe | None = None) -> str:
    """The README's profile table (Markdown), generated: each profile's description and seeds (written once, in
    ``profiles.py``) and the estimated GPU-hours of all its runs on :data:`REFERENCE_CARD`, from scratch, per
    section and in all: the figures ``cifarnb sweep --profile P --estimate "NVIDIA H200"`` prints. A test fails
    when the README's copy drifts from it (``python -m cifarnb.study.estimate [PROBES_DIR]`` prints it anew, with the
    reference card's newest probe in that folder, if given)."""
    lines = ["| profile | what | seeds | estimated hours of all its runs, from scratch (per section) |",
             "| --- | --- | --- | --- |"]
    for name, profile in profiles.PROFILES.items():
        device = "cpu" if profile.n_train is not None else REFERENCE_CARD  # a data subset is a CPU's work
        estimates = estimate(list(SECTIONS), profile, store, device, probe=probe if device != "cpu" else None)
        total = sum(result.hours for result in estimates.values())
        per_section = ", ".join(f"{section} {result.hours:.1f}" for section, result in estimates.items())
        seeds = ", ".join(map(str, profile.seeds))
        where = "a CPU" if device == "cpu" else f"an {device}"
        lines.append(f"| `{name}` | {profile.description} | {seeds} | {total:.1f} on {where} ({per_section}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(profiles_table(ResultStore(), Probe.newest(REFERENCE_CARD, sys.argv[1]) if sys.argv[1:] else None))
