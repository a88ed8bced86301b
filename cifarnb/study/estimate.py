"""How long a sweep's tasks take on a device, before any of them runs: ``cifarnb sweep --estimate DEVICE``, and
the budget check that starts no task that cannot finish in time.

A training run's time is the store's measured seconds per epoch (training + evaluation) of the same model, batch
size and data size on that device, times :data:`SAFETY`, plus :data:`SETUP_SECONDS`; a model never timed there is
guessed from its FLOPs at a deliberately slow rate (:data:`GUESSED_FLOPS`), and named as guessed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from ..device import device_name, resolve_device
from ..results import ResultStore
from ..train import TrainConfig
from .profiles import Profile
from .sections import plan

# For a task never timed on this device: deliberately slow guesses (they only decide what not to start near the
# deadline) of sustained training FLOP/s and of the fixed cost of a step (kernel launches, Python).
GUESSED_FLOPS = {"cuda": 20e12, "cpu": 2e10}
GUESSED_STEP_SECONDS = {"cuda": 0.015, "cpu": 0.005}
SAFETY = 1.25  # measured seconds per epoch vary with what else shares the device
SETUP_SECONDS = 15.0  # data upload, model build, cuDNN autotuning


@dataclass(frozen=True)
class EpochTimes:
    """The store's measured seconds per epoch (training + evaluation), read once: the mean over every epoch of
    the store's runs with one device, model, batch size and number of training images.

    Reading the store validates every run's config (building its model), about 25 ms a run on a CPU: done once
    per sweep or estimate, not once per task."""

    means: dict[tuple[str, str, int, int | None], float]

    @classmethod
    def read(cls, store: ResultStore) -> EpochTimes:
        totals: dict[tuple[str, str, int, int | None], list[float]] = {}
        for run in store.runs():
            key = (run.meta.get("device"), run.config.model, run.config.batch_size, run.config.n_train)
            seconds = [row["seconds"] + row.get("eval_seconds", 0.0) for row in run.history if "seconds" in row]
            totals.setdefault(key, []).extend(seconds)
        return cls({key: sum(rows) / len(rows) for key, rows in totals.items() if rows})

    def per_epoch(self, config: TrainConfig, device_label: str) -> float | None:
        return self.means.get((device_label, config.model, config.batch_size, config.n_train))


class Estimator:
    """Seconds a training run takes on one device (``device_label``: a run's ``meta["device"]``, e.g.
    "NVIDIA H200" or "cpu"), from the store's :class:`EpochTimes`; :meth:`refresh` after a run finished there."""

    def __init__(self, store: ResultStore, device_label: str, device_type: str):
        self.store, self.device_label = store, device_label
        self.device_type = device_type if device_type in GUESSED_FLOPS else "cpu"
        self.times = EpochTimes.read(store)

    @classmethod
    def on(cls, store: ResultStore, device: str) -> Estimator:
        """The estimator for a device as configs name it ("auto", "cpu", "cuda:1", ...)."""
        resolved = resolve_device(device)
        return cls(store, device_name(resolved), resolved.type)

    def refresh(self) -> None:
        self.times = EpochTimes.read(self.store)

    def measured(self, config: TrainConfig) -> bool:
        return self.times.per_epoch(config, self.device_label) is not None

    def run_seconds(self, config: TrainConfig) -> float:
        per_epoch = self.times.per_epoch(config, self.device_label)
        if per_epoch is None:
            per_epoch = guessed_epoch_seconds(config, self.device_type)
        return SETUP_SECONDS + SAFETY * config.epochs * per_epoch


def guessed_epoch_seconds(config: TrainConfig, device_type: str) -> float:
    """One epoch of ``config`` guessed from its FLOPs at :data:`GUESSED_FLOPS` plus a fixed cost per step."""
    n_train, n_test = config.n_train or 50_000, config.n_test or 10_000
    macs = _macs_per_image(config.model, tuple(sorted(config.model_kwargs().items())))
    # Training: forward + backward ~ 3 forward passes; 2 FLOPs per multiply-add. Evaluation: 1 pass (2 with TTA).
    flops = 2 * macs * (3 * n_train + n_test * (2 if config.tta_flip else 1))
    kind = device_type if device_type in GUESSED_FLOPS else "cpu"
    return flops / GUESSED_FLOPS[kind] + math.ceil(n_train / config.batch_size) * GUESSED_STEP_SECONDS[kind]


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


def estimate_hours(sections, profile: Profile, store: ResultStore, device_label: str,
                   seeds=None) -> dict[str, tuple[float, list[str]]]:
    """Device-hours each section's tasks take at ``profile`` on ``device_label`` (a run's ``meta["device"]``),
    from scratch (:meth:`estimate_seconds` of each task); with the models whose seconds per epoch are guessed
    from FLOPs because the store has no run of theirs on that device with that batch size and data size. A
    feature-maps task counts the training of the run it draws only when that run is not stored."""
    estimator = Estimator(store, device_label, "cpu" if device_label == "cpu" else "cuda")
    hours: dict[str, tuple[float, list[str]]] = {}
    for section in sections:
        seconds, guessed = 0.0, set()
        for task in plan([section], profile, seeds):
            seconds += task.estimate_seconds(store, estimator)
            if not estimator.measured(task.timing_config()):
                guessed.add(task.timing_config().model)
        hours[section] = (seconds / 3600, sorted(guessed))
    return hours
