"""Timing a training configuration: steady-state throughput, and training time to a target accuracy.

The benchmarks use both. :class:`TrainingSteps` is :func:`cifarnb.train.engine.fit`'s own set-up and epoch loop
on a continuing stream of full batches, run untimed or timed (with CUDA events on a GPU); :func:`measure_throughput`
times one configuration with it.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Iterator

import torch

from ..data import CIFAR10
from .config import TrainConfig
from ..device import device_name, resolve_device, synchronized_clock
from .engine import checked_execution, data_for, prepare, train_one_epoch
from .execution import Evidence, uses_cuda_graphs
from .speed_steps import BatchStream


class TrainingSteps:
    """``config``'s training steps exactly as :func:`fit` runs them: :func:`prepare` (loader, augmentation,
    autocast, compile, optimizer, EMA) once, then :func:`train_one_epoch` over full batches drawn from one
    continuing stream of epochs, so a DataLoader's start-up and compilation happen in the first steps.

    :meth:`run` takes untimed steps (warm-up) and returns their synchronised wall seconds; :meth:`time` takes
    timed ones, measured with CUDA events on a GPU; :meth:`take` only queues them (for profilers).
    ``fixed_batch`` feeds the first batch over and over: no loader cost at all, the bound a loader can approach.
    ``parts`` is what :func:`prepare` built.
    """

    def __init__(self, config: TrainConfig, data: CIFAR10 | None = None, fixed_batch: bool = False,
                 evidence: Evidence | None = None):
        config.validate()
        self.device = resolve_device(config.device)
        self.data = data_for(config, data)
        self.execution = checked_execution(config, self.data, self.device, evidence)
        self.config = config = self.execution.config  # as it runs: precision, layout and compile decided
        self.parts = prepare(config, self.data, self.device, self.execution)
        batches = _full_batches(self.parts.train_loader, config.batch_size)
        self.batches = itertools.repeat(next(batches)) if fixed_batch else batches
        self._options = dict(optimizer=self.parts.optimizer, schedule=None, loss_fn=self.parts.loss_fn,
                             scaler=self.parts.scaler, half=self.parts.half, ema=self.parts.ema, bar=None,
                             cuda_graphs=uses_cuda_graphs(config))

    def take(self, steps: int) -> None:
        """``steps`` training steps, queued (on a GPU they may still be running when this returns)."""
        if steps:
            train_one_epoch(self.parts.step_model, BatchStream(self.batches, steps), 0, **self._options)

    def run(self, steps: int) -> float:
        started = time.perf_counter()
        self.take(steps)
        return synchronized_clock(self.device) - started

    def time(self, steps: int) -> tuple[float, str]:
        """Seconds ``steps`` training steps take, and the timer that measured them."""
        if self.device.type != "cuda":
            _, _, seconds = train_one_epoch(self.parts.step_model, BatchStream(self.batches, steps), 0,
                                            **self._options)
            return seconds, "perf_counter"
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        train_one_epoch(self.parts.step_model, BatchStream(self.batches, steps), 0, **self._options)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000, "cuda_events"


def measure_throughput(
    config: TrainConfig, data: CIFAR10 | None = None, *, steps: int = 20, warmup_steps: int = 5,
    fixed_batch: bool = False,
) -> dict:
    """Training images per second of ``config``'s execution path, in steady state.

    Same setup and epoch loop as :func:`fit` (loader, augmentation, autocast, compile, optimizer, EMA), run on
    ``warmup_steps`` untimed and then ``steps`` timed full batches drawn from one continuing stream of batches,
    so a DataLoader's worker start-up and compilation fall into the warm-up. On CUDA the timed span is measured
    with CUDA events. ``fixed_batch`` feeds the first batch over and over instead: no loader cost at all, the
    bound a loader can approach. The model is left trained on those steps; nothing is evaluated.
    """
    runner = TrainingSteps(config, data, fixed_batch)
    warmup_seconds = runner.run(warmup_steps)
    seconds, timer = runner.time(steps)
    images = steps * config.batch_size
    return {
        "images": images,
        "seconds": seconds,
        "images_per_second": images / seconds,
        "seconds_per_epoch": len(runner.data.y_train) / (images / seconds),
        "steps": steps,
        "warmup_steps": warmup_steps,
        "warmup_seconds": warmup_seconds,
        "batch_size": config.batch_size,
        "n_train": len(runner.data.y_train),
        "timer": timer,
        "device": device_name(runner.device),
    }


def _full_batches(loader, batch_size: int) -> Iterator:
    """Full batches from epoch 0, 1, 2, ... of ``loader`` (a smaller last batch would be a new shape)."""
    for epoch in itertools.count():
        for images, labels in loader.batches(epoch):
            if len(labels) == batch_size:
                yield images, labels


def time_to_accuracy(history: list[dict], target: float, column: str = "test_acc") -> float | None:
    """Training seconds (the rows' ``seconds``, evaluation excluded) until ``column`` first reaches ``target``.

    None when no epoch reaches it.
    """
    elapsed = 0.0
    for row in history:
        elapsed += row["seconds"]
        value = row.get(column)
        if value is not None and math.isfinite(value) and value >= target:
            return elapsed
    return None
