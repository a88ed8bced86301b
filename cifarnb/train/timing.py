"""Timing a training configuration: steady-state throughput, and training time to a target accuracy.

``benchmarks/`` uses both. :func:`measure_throughput` runs :func:`cifarnb.train.engine.fit`'s own set-up and
epoch loop on a fixed number of batches; on CUDA it times them with CUDA events.
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
from .engine import data_for, prepare, train_one_epoch
from .fastpath import BatchStream, uses_cuda_graphs


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
    config.validate()
    device = resolve_device(config.device)
    data = data_for(config, data)
    parts = prepare(config, data, device)
    batches = _full_batches(parts.train_loader, config.batch_size)
    if fixed_batch:
        batches = itertools.repeat(next(batches))
    cuda_graphs = uses_cuda_graphs(config)
    run = dict(optimizer=parts.optimizer, schedule=None, loss_fn=parts.loss_fn, scaler=parts.scaler,
               half=parts.half, ema=parts.ema, bar=None, cuda_graphs=cuda_graphs)
    warm_started = time.perf_counter()
    if warmup_steps:
        train_one_epoch(parts.step_model, BatchStream(batches, warmup_steps), 0, **run)
    warmup_seconds = synchronized_clock(device) - warm_started
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        train_one_epoch(parts.step_model, BatchStream(batches, steps), 0, **run)
        end.record()
        end.synchronize()
        seconds, timer = start.elapsed_time(end) / 1000, "cuda_events"
    else:
        _, _, seconds = train_one_epoch(parts.step_model, BatchStream(batches, steps), 0, **run)
        timer = "perf_counter"
    images = steps * config.batch_size
    return {
        "images": images,
        "seconds": seconds,
        "images_per_second": images / seconds,
        "seconds_per_epoch": len(data.y_train) / (images / seconds),
        "steps": steps,
        "warmup_steps": warmup_steps,
        "warmup_seconds": warmup_seconds,
        "batch_size": config.batch_size,
        "n_train": len(data.y_train),
        "timer": timer,
        "device": device_name(device),
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
