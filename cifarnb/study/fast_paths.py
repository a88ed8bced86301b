"""What a sweep knows about a card's fast paths, and how each of its runs executes on it: the precision the study
asks for (the report's code's, :func:`report_precision`), the evidence handed to ``train.execution.decide``
(:func:`evidence_for`), and each model's compiled mode on a GPU (``cifarnb sweep --fast-paths auto``): eager,
compiled, or compiled with CUDA graphs.

Two files of the card decide, both written on the device (``FastPaths.read``: the folder is an argument):

* its probe (``probe-<card>-<date>.json``, section ``modes``: each of the first section's models timed eager and in
  each compiled mode on the same batches, ms per step and the seconds compiling cost; section ``precision``: the
  report's precision against bf16). A mode is taken only where it pays over the runs it serves: the seconds it
  saves over their steps exceed what its compiles cost (each worker process compiles a graph once per model, batch
  size and option set it trains: at most one per run). The compile seconds are the probe's cold ones, so the rule
  errs towards eager.
* its self-test (``selftest.json``): each fast path checked against eager on the same batches. A compiled mode is
  taken only for a model whose check of it agreed with eager on this card; one that failed, or that the
  self-test's budget left unchecked, keeps the model eager, said in one line; a failed precision check is evidence
  that ``decide`` reads (no bf16 where the report's precision differs); a failed workers check makes the sweep one
  process (:func:`cifarnb.study.sweep.sweep`).

All of these are execution fields (``TrainConfig.EXECUTION_FIELDS``): no run's key changes, a run made compiled is
the same experiment as one made eagerly.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..train import TrainConfig
from ..train.execution import Evidence, training_steps
from .probes import Probe, newest_probe_path
from .settings import FASTRESNET9_PRECISION, MAIN_PY_PRECISION, PRECISION_MAX_COST

# The fast paths of a training step, as the probe and the self-test name them, and the config fields of each.
MODES = {"eager": {"compile": False}, "compiled": {"compile": True, "compile_mode": "default"},
         "compiled+cuda_graphs": {"compile": True, "compile_mode": "reduce-overhead"}}
COMPILED_MODES = ("compiled", "compiled+cuda_graphs")
# The fast paths a failed check rules out: CUDA graphs are replayed compiled graphs.
RULED_OUT = {"compiled": ("compiled", "compiled+cuda_graphs"), "compiled+cuda_graphs": ("compiled+cuda_graphs",)}
SELFTEST_FILE = "selftest.json"


def report_precision(config: TrainConfig) -> str:
    """The precision the report's code trained ``config``'s kind of run in: its FastResNet9 code (the one whose
    optimiser carries the rate in the velocity, ``sgd_velocity``) in fp16; main.py and the VGG scripts in fp32 with
    TF32 convolutions. On a GPU, "auto" keeps it unless the probe shows it costing more than
    ``settings.PRECISION_MAX_COST`` times bf16."""
    return FASTRESNET9_PRECISION if config.optimizer == "sgd_velocity" else MAIN_PY_PRECISION


def evidence_for(config: TrainConfig, fast: FastPaths | None = None) -> Evidence:
    """The evidence ``train.execution.decide`` gets for one of the study's runs: the report's precision as the
    reference, and, from ``fast`` (a card's probe and self-test; None: none), what the report's precision costs
    against bf16 for the model and whether bf16 failed its check."""
    reference = report_precision(config)
    cost = failed = None
    if fast is not None:
        cost = fast.probe.precision_cost(config.model, reference) if fast.probe is not None else None
        broken = fast.broken.get("precision", {})
        failed = broken.get(config.model, broken.get("*"))
    return Evidence(reference_precision=reference, precision_cost=cost, max_precision_cost=PRECISION_MAX_COST,
                    bf16_failed=failed)


@dataclass(frozen=True)
class Choice:
    """The fast path of one model at one batch size, and why (one line)."""

    model: str
    batch_size: int
    mode: str
    why: str


@dataclass
class FastPaths:
    """What decides the fast paths on one card: the probe's ``modes`` records and the self-test's failed checks
    (fast path -> the models it failed on, "*" for all -> the check's error line)."""

    card: str
    records: list[dict] = field(default_factory=list)
    broken: dict[str, dict[str, str]] = field(default_factory=dict)
    checked: set[tuple[str, str]] | None = None  # (fast path, model) that agreed with eager; None: not self-tested
    sources: list[str] = field(default_factory=list)  # the files read, for the log
    probe: Probe | None = None  # the whole probe: its precision records give evidence_for its costs

    @classmethod
    def read(cls, card: str, folder: str | Path) -> FastPaths:
        """The newest probe of ``card`` and its self-test record in ``folder`` (``cifarnb sweep --probes DIR``);
        without either, nothing is compiled (for want of timings, or of a check)."""
        probe = newest_probe_path(card, folder)
        fast = cls(card)
        if probe is not None:
            content = json.loads(probe.read_text())
            fast.probe = Probe.read(probe)
            fast.records = [r for r in content.get("records", []) if r.get("section") == "modes"
                            and r.get("ms_per_step") and r.get("fast_path") in MODES]
            fast.sources.append(probe.name)
        selftest = Path(folder) / SELFTEST_FILE
        if selftest.exists():
            stamp = json.loads(selftest.read_text())
            if stamp.get("device") == card:
                fast.broken = broken_fast_paths(stamp)
                fast.checked = {(c["fast_path"], c["model"]) for c in stamp.get("checks", []) if c.get("ok") is True}
                fast.sources.append(SELFTEST_FILE)
        return fast

    def choose(self, config: TrainConfig, steps: int, compiles: int) -> Choice:
        """The fast path of ``config``'s model at its batch size, serving ``steps`` training steps over runs that
        make ``compiles`` compiles in all."""
        model, batch = config.model, config.batch_size
        # The same model at the same batch size: a step's time, and what compiling saves, depend on both.
        timed = {r["fast_path"]: r for r in self.records if r["model"] == model and r["batch_size"] == batch}
        if self.checked is None:
            return Choice(model, batch, "eager", "no self-test of this card to vouch for a compiled mode")
        ruled_out = {}
        for path, failed in self.broken.items():
            why = failed.get(model, failed.get("*"))
            for mode in RULED_OUT.get(path, ()) if why else ():
                ruled_out.setdefault(mode, f"the self-test's {path} check failed on this card: {why}")
        for mode in COMPILED_MODES:  # a fast path is taken only where the self-test saw it agree with eager
            if (mode, model) not in self.checked:
                ruled_out.setdefault(mode, f"the self-test did not check {mode} for it on this card")
        if len(ruled_out) == len(COMPILED_MODES):  # nothing compiled may run: the first reason is the model's
            return Choice(model, batch, "eager", ruled_out.get("compiled", next(iter(ruled_out.values()))))
        if "eager" not in timed or len(timed) == 1:
            return Choice(model, batch, "eager", "the probe did not time its compiled modes on this card at this "
                                                 "batch size")
        eager_ms = timed["eager"]["ms_per_step"]
        gains = {}
        for mode, record in timed.items():
            if mode != "eager" and mode not in ruled_out:
                saved = (eager_ms - record["ms_per_step"]) / 1000 * steps
                cost = record.get("compile_seconds", 0.0) * compiles
                gains[mode] = (saved - cost, saved, cost)
        if ruled_out and not gains:
            return Choice(model, batch, "eager", next(iter(ruled_out.values())))
        best = max(gains, key=lambda mode: gains[mode][0])
        net, saved, cost = gains[best]
        if saved <= 0:
            return Choice(model, batch, "eager", f"{best} is no faster: {timed[best]['ms_per_step']:.1f} ms a "
                                                 f"step against eager's {eager_ms:.1f}")
        tally = (f"{_seconds(saved)} s over {steps:,} steps for {compiles} compile{'s' * (compiles != 1)} of "
                 f"{_seconds(cost)} s in all")
        if net <= 0:
            return Choice(model, batch, "eager", f"compiling costs more than it saves: {best} would save {tally}")
        note = f"; {'; '.join(sorted(set(ruled_out.values())))}" if ruled_out else ""
        return Choice(model, batch, best, f"saves {tally}{note}")


def broken_fast_paths(stamp: dict) -> dict[str, dict[str, str]]:
    """The self-test record's failed checks against eager: fast path -> {model or "*": the check's name and error}."""
    broken: dict[str, dict[str, str]] = defaultdict(dict)
    for check in stamp.get("checks", []):
        if check.get("ok") is False and check.get("fast_path"):
            broken[check["fast_path"]][check.get("model", "*")] = f"{check['name']}: {check.get('error', 'failed')}"
    return dict(broken)


def _seconds(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}"


def choose(tasks: list, fast: FastPaths, workers: int, is_stored: Callable[[object], bool]) -> dict[tuple, Choice]:
    """The fast path of every (model, batch size) the unstored training tasks of ``tasks`` run."""
    groups: dict[tuple, list[TrainConfig]] = defaultdict(list)
    for task in tasks:
        config = getattr(task, "config", None)
        if isinstance(config, TrainConfig) and not is_stored(task):
            groups[(config.model, config.batch_size)].append(config)
    choices = {}
    for (model, batch), configs in groups.items():
        by_options: dict[str, int] = defaultdict(int)
        for config in configs:
            by_options[json.dumps(config.model_options, sort_keys=True)] += 1
        compiles = sum(min(workers, runs) for runs in by_options.values())
        steps = sum(training_steps(config) for config in configs)
        choices[(model, batch)] = fast.choose(configs[0], steps, compiles)
    return choices


def apply(tasks: list, fast: FastPaths, workers: int, is_stored: Callable[[object], bool],
          log: Callable[[str], None] = print) -> list:
    """``tasks`` with each training run's fast path set (:func:`choose`), one line per model and batch size, and
    the card's evidence attached (:func:`evidence_for`: a precision the self-test found broken is not used). Tasks
    without a training config are kept."""
    choices = choose(tasks, fast, workers, is_stored)
    log(f"fast paths ({fast.card}; from {', '.join(fast.sources) or 'no probe or self-test of this card'}):")
    for choice in choices.values():
        log(f"  {choice.model} at batch {choice.batch_size}: {choice.mode} ({choice.why})")
    changed = []
    for task in tasks:
        config = getattr(task, "config", None)
        choice = choices.get((config.model, config.batch_size)) if isinstance(config, TrainConfig) else None
        if choice is None:
            changed.append(task)
            continue
        config = config.replace(**MODES[choice.mode])
        changed.append(dataclasses.replace(task, config=config, evidence=evidence_for(config, fast)))
    for model, why in sorted(fast.broken.get("precision", {}).items()):
        log(f"  {'every model' if model == '*' else model}: no bf16 where the report's precision differs ({why})")
    return changed
