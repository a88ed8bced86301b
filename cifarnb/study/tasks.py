"""The kinds of work a report section needs, one class each: a training run, a landscape table, one trained
model's feature maps.

Each task makes one result in the results store and answers the same questions, so the sweep, the Ray backend
and the notebooks treat them alike:

* ``identity``: the result it makes (two tasks with one identity are one task);
* ``stored(store)``: whether the store holds it;
* ``compute(store, wait)``: make it (or load it), claimed through the store's lock; a few words on how, or None
  while another process holds the claim and ``wait`` is False;
* ``estimate_seconds(store, estimator)``: how long ``compute`` takes on the estimator's device;
* ``device``: where it computes (the config's execution field, set once from the profile).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from .. import landscape
from ..feature_maps import feature_maps_path, stored_feature_maps, stored_test_image
from ..landscape import LandscapeConfig
from ..results import ResultStore, Run
from ..train import TrainConfig
from ..train.execution import Evidence
from .fast_paths import evidence_for


class Estimator(Protocol):
    """Seconds a training run takes on one device (``cifarnb.study.estimate.Estimator``)."""

    def run_seconds(self, config: TrainConfig) -> float: ...


def run_line(run: Run, seconds: float | None = None) -> str:
    """How a run was obtained and where it ended, in one line: "trained in 12.3 s, final test acc 91.20%"."""
    how = f"trained in {seconds:.1f} s" if run.trained_here and seconds is not None else "stored"
    return (f"{how}, final test acc {run.final('test_acc'):.2f}%"
            + (f", DIVERGED at epoch {run.diverged_epoch}" if run.diverged_epoch else ""))


@dataclass(frozen=True, eq=False)
class _OneRun:
    """What a task made from one training run's config shares: its identity, device and timing are the run's, and
    it executes as ``train.execution.decide`` chooses from its ``evidence`` (default: the study's,
    :func:`~cifarnb.study.fast_paths.evidence_for`, with the report's precision as the reference)."""

    section: str
    label: str
    config: TrainConfig
    evidence: Evidence | None = field(default=None, kw_only=True)  # a card's probe and self-test, where known
    KIND = ""  # the kind of result, in the identity

    @property
    def run_evidence(self) -> Evidence:
        return self.evidence if self.evidence is not None else evidence_for(self.config)

    @property
    def identity(self) -> tuple[str, str]:
        return self.KIND, f"{self.config.model}-{self.config.key()}"

    @property
    def device(self) -> str:
        return self.config.device

    def timing_config(self) -> TrainConfig:
        """The training run whose measured seconds per epoch time this task."""
        return self.config


@dataclass(frozen=True, eq=False)
class RunTask(_OneRun):
    """One training run through the store (finished runs load, interrupted ones resume from their checkpoint)."""

    KIND = "run"

    def stored(self, store: ResultStore) -> bool:
        return store.load(self.config) is not None

    def compute(self, store: ResultStore, wait: bool = True) -> str | None:
        started = time.perf_counter()
        run = store.run(self.config, progress=False, wait=wait, evidence=self.run_evidence)
        return None if run is None else run_line(run, time.perf_counter() - started)

    def estimate_seconds(self, store: ResultStore, estimator: Estimator) -> float:
        return estimator.run_seconds(self.config)


@dataclass(frozen=True, eq=False)
class FeatureMapsTask(_OneRun):
    """The feature maps of one trained model (``config``: the run whose model is drawn) for one test image,
    training the model first if the store lacks it."""

    image_row: int = 0
    KIND = "feature_maps"

    def stored(self, store: ResultStore) -> bool:
        return feature_maps_path(store, self.config, self.image_row).exists()

    def compute(self, store: ResultStore, wait: bool = True) -> str | None:
        image, _ = stored_test_image(store, self.image_row, self.config.data_root)
        maps, how = stored_feature_maps(store, self.config, image, self.image_row, wait=wait,
                                        evidence=self.run_evidence)
        return None if maps is None else f"feature maps {how}"

    def estimate_seconds(self, store: ResultStore, estimator: Estimator) -> float:
        # A few seconds to draw; training the model first only when its run is not stored.
        return 10.0 + (0.0 if store.load(self.config) is not None else estimator.run_seconds(self.config))


METHODS = ("report", "one_step", "paper")  # cifarnb.landscape's three measurements
METHOD_LABELS = {"report": "report's method (its code)", "one_step": "one-step differences (earlier reading)",
                 "paper": "paper's method"}


@dataclass(frozen=True, eq=False)
class LandscapeTask:
    """One table of the landscape experiments, cached in the store: the report's method for one model over all
    its learning rates (they train in sequence from one seed), or the one-step differences or the paper's method
    for one model at one learning rate.

    Its key is the landscape config's (``LandscapeConfig.key``: execution fields left out), narrowed to that
    model (and lr), so tables made on a GPU are found again on a CPU machine and, for the one-run-per-table
    methods, changing the list of learning rates keeps the tables already made.
    """

    section: str
    method: str  # one of METHODS
    config: LandscapeConfig  # narrowed: one model (and, but for the report's method, one lr)
    probe_every: int  # paper's method only

    @property
    def model(self) -> str:
        return self.config.models[0]

    @property
    def name(self) -> str:
        if self.method == "report":
            return f"landscape_report_{self.model}"
        return f"landscape_{self.method}_{self.model}_lr{self.config.learning_rates[0]:g}"

    @property
    def label(self) -> str:
        return (f"{METHOD_LABELS[self.method]}, {self.model} lr "
                + ", ".join(f"{lr:g}" for lr in self.config.learning_rates))

    @property
    def identity(self) -> tuple[str, str]:
        return "landscape", f"{self.name}-{json.dumps(self.key(), sort_keys=True, default=str)}"

    @property
    def device(self) -> str:
        return self.config.device

    def key(self) -> dict:
        key = {**self.config.key(), "method": self.method}
        if self.method == "report":
            key["quantities"] = list(landscape.REPORT_QUANTITIES)
        elif self.method == "one_step":
            key["quantities"] = list(landscape.ONE_STEP_QUANTITIES)
        else:
            key.update(probe_every=self.probe_every, etas=list(landscape.paper_etas(landscape.PAPER_LEARNING_RATE)))
        return key

    def stored(self, store: ResultStore) -> bool:
        return store.table_path(self.name, self.key()).exists()

    def table(self, store: ResultStore, wait: bool = True) -> pd.DataFrame | None:
        """The task's table, computed only if the store lacks it. While another process computes it: waits, or
        returns None if not ``wait``. The images are read only to compute (``load_cifar10`` keeps the data set
        in memory, so a sweep of tables reads it once)."""

        def compute():
            if self.method == "report":
                return landscape.run_report_method(self.config, self.model)
            lr = self.config.learning_rates[0]
            if self.method == "one_step":
                return landscape.run_one_step_method(self.config, self.model, lr)
            etas = landscape.paper_etas(landscape.PAPER_LEARNING_RATE)
            return landscape.run_paper_method(self.config, self.model, lr, self.probe_every, etas)

        return store.cached_table(self.name, self.key(), compute, wait=wait)

    def compute(self, store: ResultStore, wait: bool = True) -> str | None:
        started = time.perf_counter()
        return None if self.table(store, wait) is None else f"computed in {time.perf_counter() - started:.1f} s"

    def timing_config(self) -> TrainConfig:
        """A training run of the same model, batch size and data (the VGG runs it is timed on)."""
        return TrainConfig(model=self.model, epochs=self.config.epochs, batch_size=self.config.batch_size,
                           n_train=self.config.n_train, n_test=1, device="cpu")

    def estimate_seconds(self, store: ResultStore, estimator: Estimator) -> float:
        # Timed like its training runs, without evaluation: the report's methods keep gradients every gap steps;
        # the paper's makes 2 passes per eta per probe.
        extra = 0.3 + (2 * landscape.PAPER_ETA_COUNT / self.probe_every if self.method == "paper" else 0.0)
        return estimator.run_seconds(self.timing_config()) * (1 + extra) * len(self.config.learning_rates)


def landscape_tasks(section: str, config: LandscapeConfig, method: str,
                    probe_every: int | None = None) -> list[LandscapeTask]:
    """The tables of one method under ``config``: ``"report"``: one per model, over all its learning rates;
    ``"one_step"``: one per (model, lr); ``"paper"``: one per model at the paper's lr 0.1, probed every
    ``probe_every`` steps (default ``config.gap``)."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}")
    rates = {"report": (config.learning_rates,), "one_step": tuple((lr,) for lr in config.learning_rates),
             "paper": ((landscape.PAPER_LEARNING_RATE,),)}[method]
    probe_every = config.gap if probe_every is None else probe_every
    return [LandscapeTask(section, method, dataclasses.replace(config, models=(model,), learning_rates=lrs),
                          probe_every)
            for model in config.models for lrs in rates]


def run_tasks(section: str, configs: dict[str, TrainConfig], seed: int, prefix: str = "") -> list[RunTask]:
    """One training task per config, at ``seed``, labelled "<prefix><label> (seed <seed>)"."""
    return [RunTask(section, f"{prefix}{label} (seed {seed})", config.replace(seed=seed))
            for label, config in configs.items()]


Task = RunTask | FeatureMapsTask | LandscapeTask
