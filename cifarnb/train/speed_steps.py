"""The speed tricks of the training loop that are more than one line, each a named step.

Used by :mod:`cifarnb.train.engine` where :func:`cifarnb.train.execution.decide` chose them; every trick here
changes how fast a run goes, never what it computes:

* :class:`CompiledFullBatches`: ``torch.compile`` for the full training batches only (one graph per model, options
  and batch size, reused by every later run of them in the process);
* :class:`CheckpointCadence`: a checkpoint every N seconds instead of after every epoch;
* :class:`NonBlockingEMA`: weight averaging without torch's per-step host-to-device copy of its counter;
* :class:`BatchStream`: a loader-like view of a few batches, for warm-up and throughput measurements.
"""

from __future__ import annotations

import itertools
import time
from typing import Iterator

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .config import TrainConfig

# Graphs dynamo keeps per compiled forward before it falls back to running it eagerly, without a word.
COMPILED_GRAPHS_KEPT = 64


class CompiledFullBatches(nn.Module):
    """Speed step, torch.compile, one graph per run: the model compiled for full training batches.

    Compiling fuses BatchNorm, activation and pooling into few kernels; "reduce-overhead" also replays each step
    as a CUDA graph, removing per-kernel launch cost. The graph is specialised to the training batch shape
    (dynamic=False): every step but one per epoch uses it. The epoch's last, smaller batch and evaluation run the
    same weights eagerly, so a run compiles one graph instead of three (and TTA's two calls in a row never read
    a CUDA graph's output after its next replay has overwritten it). Parameters are the eager model's.

    Reuse across runs: dynamo caches a graph on the model class's ``forward`` and guards on shapes, dtypes and
    modules, not on the instance, so a later run in the same process (a sweep worker's next task) of the same
    model, options and batch size compiles nothing (``tests/test_speed_steps.py`` counts the graphs). Each other
    model or option set of one class is one more graph of the same ``forward``: dynamo keeps 8 and then runs the
    rest eagerly without a word, and ResNet18's ablations alone are 21, so the process keeps
    :data:`COMPILED_GRAPHS_KEPT`.
    """

    def __init__(self, model: nn.Module, config: TrainConfig):
        super().__init__()
        self.model = model
        import torch._dynamo

        dynamo = torch._dynamo.config
        limit = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"  # torch < 2.6
        setattr(dynamo, limit, max(getattr(dynamo, limit), COMPILED_GRAPHS_KEPT))
        mode = None if config.compile_mode == "default" else config.compile_mode
        # Not registered as a submodule: parameters(), buffers() and state_dict() stay exactly the model's.
        object.__setattr__(self, "compiled", torch.compile(model, mode=mode, dynamic=False))
        self.batch_size = config.batch_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.training and images.shape[0] == self.batch_size:
            return self.compiled(images)
        return self.model(images)


class CheckpointCadence:
    """Speed step, checkpoints by time: with ``every_seconds`` set, a checkpoint is due after an epoch only once
    that many seconds have passed since the last one was written (or since training started or resumed); with
    None, after every epoch.

    A checkpoint (model, optimizer, EMA, RNG states, history; 45-146 MB for the zoo's larger models) is written
    with fsync, a cost that grows in share as epochs get fast. A run cut off between checkpoints resumes
    from the last one and repeats the epochs after it; the loader's batches depend on (seed, epoch) alone, so the
    repeated epochs and the whole history equal an uninterrupted run's (``tests/test_speed_steps.py``).
    """

    clock = staticmethod(time.monotonic)

    def __init__(self, every_seconds: float | None):
        self.every_seconds = every_seconds
        self.last = self.clock()

    def due(self) -> bool:
        return self.every_seconds is None or self.clock() - self.last >= self.every_seconds

    def written(self) -> None:
        self.last = self.clock()


class BatchStream:
    """A loader-like view of ``count`` batches taken from an ongoing iterator of batches."""

    def __init__(self, batches: Iterator, count: int):
        self.iterator, self.count = batches, count

    def __len__(self) -> int:
        return self.count

    def batches(self, epoch: int = 0):
        return itertools.islice(self.iterator, self.count)


def make_ema(model: nn.Module, decay: float | None, every: int = 1):
    """The averaged model, updated every ``every`` training steps with factor ``decay``, or None without EMA."""
    if decay is None:
        return None
    # use_buffers=True averages BN running statistics too, so the EMA model needs no BN re-estimation pass.
    ema = NonBlockingEMA(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    ema.every = every
    return ema


class NonBlockingEMA(AveragedModel):
    """AveragedModel whose update never waits for the GPU (same arithmetic, same state dict).

    torch's ``update_parameters`` copies its step counter, a CPU tensor, to the device on every call: a
    blocking host-to-device copy each step. The EMA rule does not read the counter, so it is not copied.
    ``every``: the training loop updates on steps 0, every, 2*every, ... (counted across epochs); updating less
    often costs less (the bag-of-tricks trainer: every 5 steps with decay 0.99**5).
    """

    every: int = 1

    def update_parameters(self, model: nn.Module) -> None:
        averaged = [t.detach() for t in (*self.module.parameters(), *self.module.buffers())]
        current = [t.detach() for t in (*model.parameters(), *model.buffers())]
        if self.n_averaged == 0:  # the counter stays on the CPU, so reading it costs no synchronisation
            for mine, theirs in zip(averaged, current, strict=True):
                mine.copy_(theirs)
        else:
            groups: dict[tuple, tuple[list, list]] = {}
            for mine, theirs in zip(averaged, current, strict=True):
                group = groups.setdefault((mine.device, mine.dtype), ([], []))
                group[0].append(mine)
                group[1].append(theirs)
            for mine, theirs in groups.values():
                self.multi_avg_fn(mine, theirs, self.n_averaged)
        self.n_averaged += 1
