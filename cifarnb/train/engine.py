"""fit(config): the training loop shared by every profile, from a CPU smoke run to the GPU fast path.

Each step that exists only for speed is named where it happens:
  * data resident on the device, augmented there (``cifarnb.loaders.TensorLoader``);
  * the execution :func:`cifarnb.train.execution.decide` chooses: autocast to bf16/fp16 (on CUDA; bf16 on a CPU
    that has it natively), channels_last memory format, optional ``torch.compile`` (one graph, for the full
    training batches: ``speed_steps.CompiledFullBatches``; ``compile_mode="reduce-overhead"`` adds CUDA graphs);
  * fused optimizer kernels on CUDA (``optim.build_optimizer``);
  * no host synchronisation inside an epoch: losses and accuracies accumulate on the device and are read once
    per epoch (which is also where divergence is detected);
  * ``cudnn_benchmark``: cuDNN times its convolution algorithms once per shape and keeps the fastest;
  * ``fit(..., warmup_steps=n)``: compilation, autotuning and CUDA-graph recording happen in untimed steps that
    are then undone, so each epoch's ``seconds`` is training alone (``info["warmup_seconds"]`` has the rest).

The multi-line speed tricks live in :mod:`cifarnb.train.speed_steps`; :mod:`cifarnb.train.timing` times this loop.

Resuming: after every epoch a checkpoint (model, optimizer, schedule, EMA, scaler, RNG states, history) is
written atomically (with ``checkpoint_every_s``, only once that many seconds have passed since the last one:
``speed_steps.CheckpointCadence``). ``fit(..., checkpoint_path=p)`` continues from it, and because the loader's
shuffling and augmentation depend only on ``(seed, epoch)``, a resumed run follows the same trajectory as an
uninterrupted one (the epochs after the last checkpoint are repeated).
"""

from __future__ import annotations

import copy
import itertools
import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import torch
from torch import nn

from .. import models
from ..data import CIFAR10, NORMALIZATIONS, load_cifar10
from ..device import device_name, resolve_device, synchronized_clock, use_tf32_convolutions
from ..loaders import make_loader
from . import checkpoint
from .config import TrainConfig
from .execution import Evidence, Execution, autocast, checked_execution, decide, uses_cuda_graphs
from .optim import Schedule, build_loss, build_optimizer
from .speed_steps import BatchStream, CheckpointCadence, CompiledFullBatches, make_ema

EXACT_TEST_ROWS = 1000  # rows 0-999 of the shared test set are exact; the rest are JPEG approximations


@dataclass
class FitResult:
    model: nn.Module
    history: list[dict]
    diverged_epoch: int | None = None
    device: str = "cpu"
    wall_seconds: float = 0.0
    resumed_from_epoch: int = 0
    info: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.diverged_epoch is not None


def fit(
    config: TrainConfig,
    data: CIFAR10 | None = None,
    *,
    checkpoint_path: str | os.PathLike | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict], None] | None = None,
    warmup_steps: int = 0,
    evidence: Evidence | None = None,
) -> FitResult:
    """Train ``config.model`` and return it with one history row per epoch.

    A loss that turns NaN/inf stops the run; the result then has ``diverged_epoch`` set instead of raising.

    ``warmup_steps`` > 0 first runs that many training steps (plus one of the epoch's last, smaller batch and
    one evaluation batch), then restores model, optimizer, scaler and RNG states: the run is unchanged, but
    ``torch.compile``, cuDNN autotuning and CUDA-graph recording (3+ steps) are done before the first timed
    epoch; a run that :func:`~cifarnb.train.execution.decide` compiles warms up at least 3 steps.
    ``evidence``: what is known about this device's fast paths (:class:`~cifarnb.train.execution.Evidence`).
    ``info`` gets ``setup_seconds`` (data upload, model build), ``warmup_seconds`` and the execution decided
    (``precision``, ``execution``, ``execution_why``).
    """
    config.validate()
    setup_started = time.perf_counter()
    device = resolve_device(config.device)
    data = data_for(config, data)
    execution = checked_execution(config, data, device, evidence)
    config = execution.config
    if config.compile:
        warmup_steps = max(warmup_steps, 3)
    parts = prepare(config, data, device, execution)
    model, step_model, optimizer, schedule = parts.model, parts.step_model, parts.optimizer, parts.schedule
    train_loader, test_loader, loss_fn, ema = parts.train_loader, parts.test_loader, parts.loss_fn, parts.ema
    scaler, half = parts.scaler, parts.half
    exact_rows = EXACT_TEST_ROWS if config.n_test is None and len(data.y_test) == 10_000 else 0
    if config.plateau_metric == "test_loss_exact1000" and config.scheduler == "plateau" and not exact_rows:
        raise ValueError("plateau_metric='test_loss_exact1000' needs the whole test set (n_test unset and 10,000 test "
                         f"images; this run has {len(data.y_test)}): use plateau_metric='test_loss'")

    history: list[dict] = []
    start_epoch, wall_before = 0, 0.0
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    state = checkpoint.load(checkpoint_path, device, parts) if checkpoint_path is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        scaler.load_state_dict(state["scaler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["rng_cpu"].cpu())  # map_location moved it to the device
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"].cpu())
        history, start_epoch, wall_before = state["history"], state["epoch"], state["wall_seconds"]
    info = {"setup_seconds": synchronized_clock(device) - setup_started, "precision": execution.precision,
            "execution": execution.record(), "execution_why": execution.why, "checkpoint_seconds": 0.0}
    if warmup_steps > 0 and start_epoch < config.epochs:
        info["warmup_seconds"] = _warm_up(parts, warmup_steps)

    with _progress(config, start_epoch, len(train_loader), progress) as bar:  # closed (erased) however it ends
        cadence = CheckpointCadence(config.checkpoint_every_s)
        started = time.perf_counter()
        diverged_epoch = None
        for epoch in range(start_epoch, config.epochs):
            lr_at_start = optimizer.param_groups[0]["lr"]
            step_evals: list[dict] = []
            train_loss, train_acc, seconds = train_one_epoch(
                step_model, train_loader, epoch, optimizer, schedule, loss_fn, scaler, half, ema, bar,
                cuda_graphs=uses_cuda_graphs(config),
                after_step=_step_evaluation(parts, step_evals, exact_rows) if config.eval_every_steps else None,
            )
            row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc, "lr": lr_at_start,
                   "seconds": seconds}
            if config.eval_every_steps:
                row["step_evals"] = step_evals
            if not (math.isfinite(train_loss)):
                diverged_epoch = epoch + 1
                history.append({**row, "test_loss": math.nan, "test_acc": math.nan})
                break
            eval_model = parts.eval_model
            eval_started = time.perf_counter()
            test_loss, correct, exact_loss = evaluate(eval_model, test_loader, loss_fn, half, tta_flip=config.tta_flip,
                                                      exact_rows=exact_rows)
            row.update(test_loss=test_loss, test_acc=100.0 * correct.float().mean().item())
            if exact_rows:
                row["test_acc_exact1000"] = 100.0 * correct[:exact_rows].float().mean().item()
                row["test_loss_exact1000"] = exact_loss
            row["eval_seconds"] = time.perf_counter() - eval_started
            history.append(row)
            if not math.isfinite(test_loss):  # weights that overflow can leave the epoch's mean training loss finite
                diverged_epoch = epoch + 1
                break
            schedule.after_epoch(row)
            if bar is not None:
                bar.set_postfix(epoch=epoch + 1, loss=f"{train_loss:.3f}", test_acc=f"{row['test_acc']:.2f}")
            if checkpoint_path is not None and cadence.due():
                wall = wall_before + time.perf_counter() - started
                info["checkpoint_seconds"] += checkpoint.save(checkpoint_path, model, optimizer, schedule, scaler,
                                                               ema, history, epoch + 1, wall, device)
                cadence.written()
            if on_epoch is not None:
                on_epoch(row)
    final_model = ema.module if ema is not None else model
    return FitResult(
        model=final_model,
        history=history,
        diverged_epoch=diverged_epoch,
        device=device_name(device),
        wall_seconds=wall_before + time.perf_counter() - started,
        resumed_from_epoch=start_epoch,
        info=info,
    )


def data_for(config: TrainConfig, data: CIFAR10 | None) -> CIFAR10:
    if data is None:
        return load_cifar10(config.data_root, n_train=config.n_train, n_test=config.n_test, seed=config.subset_seed)
    return data.subset(config.n_train, config.n_test, seed=config.subset_seed)


@dataclass
class Parts:
    """Everything one run trains with, built the same way for fit() and measure_throughput()."""

    config: TrainConfig
    device: torch.device
    model: nn.Module
    step_model: nn.Module  # ``model``, or ``CompiledFullBatches`` around it
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    loss_fn: nn.Module
    ema: nn.Module | None
    scaler: torch.amp.GradScaler
    half: torch.dtype | None
    train_loader: object
    test_loader: object
    n_train: int

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.step_model


def prepare(config: TrainConfig, data: CIFAR10, device: torch.device, execution: Execution | None = None) -> Parts:
    """Everything ``config`` trains with on ``device``, as ``execution`` (default: :func:`decide` with no evidence)
    runs it: ``config`` is taken as that decision's."""
    execution = execution or decide(config, device)
    config = execution.config
    # Speed step, cuDNN autotuning: each new input shape times the convolution algorithms once.
    if config.cudnn_benchmark and device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    use_tf32_convolutions(execution.precision != "fp32")  # CUDA only; follows the decided precision
    torch.manual_seed(config.seed)  # model initialisation depends on the seed alone
    model = models.build(config.model, **config.model_kwargs())
    # Layers set from the training images rather than trained (FastResNet9's patch whitening), on the CPU.
    models.init_from_data(model, data.x_train, *NORMALIZATIONS[config.normalization])
    if config.bn_shards:
        models.shard_batchnorm(model, config.bn_shards)  # as nn.DataParallel on bn_shards GPUs normalises
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(config, model, device)
    half = execution.autocast
    loader_options = dict(device=device, seed=config.seed, channels_last=config.channels_last,
                          normalization=config.normalization)
    train_loader = make_loader(
        config.loader, data.x_train, data.y_train, config.batch_size, train=True, augment=config.augment,
        augmentation=config.augmentation, drop_last=config.drop_last, num_workers=config.num_workers,
        **loader_options,
    )
    if len(train_loader) == 0:
        raise ValueError(f"batch_size={config.batch_size} with drop_last leaves no full batch of the "
                         f"{len(data.y_train)} training images; use a smaller batch_size or more images (n_train)")
    test_loader = make_loader(
        config.loader, data.x_test, data.y_test, config.eval_batch_size, train=False,
        num_workers=config.num_workers, **loader_options,
    )
    return Parts(
        config=config,
        device=device,
        model=model,
        step_model=CompiledFullBatches(model, config) if config.compile else model,
        optimizer=optimizer,
        schedule=Schedule(config, optimizer, len(train_loader)),
        loss_fn=build_loss(config),
        ema=make_ema(model, config.ema_decay, config.ema_every),
        # fp16 needs loss scaling to keep small gradients representable; bf16 has fp32's range and does not.
        scaler=torch.amp.GradScaler("cuda", enabled=half == torch.float16),
        half=half,
        train_loader=train_loader,
        test_loader=test_loader,
        n_train=len(data.y_train),
    )


def _warm_up(parts: Parts, steps: int) -> float:
    """Run ``steps`` training steps and one evaluation batch, then put every state back; returns the seconds."""
    started = time.perf_counter()
    saved = {
        "model": copy.deepcopy(parts.model.state_dict()),
        "optimizer": copy.deepcopy(parts.optimizer.state_dict()),
        "scaler": parts.scaler.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state(parts.device) if parts.device.type == "cuda" else None,
    }
    batches = list(itertools.islice(parts.train_loader.batches(0), steps))
    # The epoch's last batch is smaller when the batch size does not divide the data: warm up its shape too
    # (cuDNN autotuning). CUDA graphs record on a shape's second call, so warm-ups of 3+ steps cover them.
    rest = parts.n_train % parts.config.batch_size
    if rest and batches:
        batches.append((batches[0][0][:rest], batches[0][1][:rest]))
    train_one_epoch(parts.step_model, BatchStream(iter(batches), len(batches)), 0, parts.optimizer, None,
                     parts.loss_fn, parts.scaler, parts.half, None, None, cuda_graphs=uses_cuda_graphs(parts.config))
    test_batch = next(iter(parts.test_loader.batches(0)))
    evaluate(parts.eval_model, BatchStream(iter([test_batch]), 1), parts.loss_fn, parts.half,
             tta_flip=parts.config.tta_flip)
    parts.model.load_state_dict(saved["model"])
    parts.optimizer.load_state_dict(saved["optimizer"])
    parts.scaler.load_state_dict(saved["scaler"])
    torch.set_rng_state(saved["rng_cpu"])
    if saved["rng_cuda"] is not None:
        torch.cuda.set_rng_state(saved["rng_cuda"], parts.device)
    return synchronized_clock(parts.device) - started


def train_one_epoch(model, loader, epoch, optimizer, schedule, loss_fn, scaler, half, ema, bar, cuda_graphs=False,
                    after_step=None):
    """One epoch of training steps; the mean loss, the accuracy on the (augmented) batches and the seconds spent
    training. ``after_step(step)`` runs after each step (1-based, counted across epochs) and returns the seconds
    it took, which are not counted as training (evaluations every N steps)."""
    model.train()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    started, aside = time.perf_counter(), 0.0
    first_step = epoch * len(loader)  # steps are counted across epochs, so EMA updates resume in phase
    for step, (images, labels) in enumerate(loader.batches(epoch), start=first_step):
        if cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()  # a new step: the previous step's graph outputs are done
        with autocast(device, half):
            logits = model(images)
            loss = loss_fn(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if schedule is not None:
            schedule.after_batch()
        if ema is not None and step % ema.every == 0:
            ema.update_parameters(model)
        # Accumulate on the device; reading these values here would stall the GPU every step.
        loss_sum += loss.detach() * len(labels)
        correct += (logits.argmax(dim=1) == labels).sum()
        seen += len(labels)
        if bar is not None:
            bar.update(1)
        if after_step is not None:
            aside += after_step(step + 1)
            model.train()
    mean_loss = (loss_sum / seen).item()  # the one synchronisation of the epoch
    seconds = time.perf_counter() - started - aside
    return mean_loss, 100.0 * correct.item() / seen, seconds


def _step_evaluation(parts: Parts, evaluations: list[dict], exact_rows: int):
    """``after_step`` for ``eval_every_steps``: every that many steps, the test accuracy (and loss) of the model
    evaluated as at an epoch's end, appended to ``evaluations`` as {"step", "test_loss", "test_acc"[, exact],
    "seconds"} (VGG_acc.py evaluates every 100 steps and reports the best). Returns the seconds it took."""
    every = parts.config.eval_every_steps

    def after_step(step: int) -> float:
        if step % every:
            return 0.0
        started = time.perf_counter()
        loss, correct, _ = evaluate(parts.eval_model, parts.test_loader, parts.loss_fn, parts.half,
                                    tta_flip=parts.config.tta_flip)
        evaluation = {"step": step, "test_loss": loss, "test_acc": 100.0 * correct.float().mean().item()}
        if exact_rows:
            evaluation["test_acc_exact1000"] = 100.0 * correct[:exact_rows].float().mean().item()
        evaluation["seconds"] = time.perf_counter() - started  # kept out of the epoch's training seconds
        evaluations.append(evaluation)
        return evaluation["seconds"]

    return after_step


class Evaluation(NamedTuple):
    loss: float  # the mean loss over the loader's images
    correct: torch.Tensor  # per image, on the CPU
    exact_loss: float | None  # the mean loss over its first ``exact_rows`` images (None: not asked for)


@torch.no_grad()
def evaluate(model: nn.Module, loader, loss_fn, half: torch.dtype | None = None, tta_flip: bool = False,
             exact_rows: int = 0) -> Evaluation:
    """Mean loss and a per-image correctness vector (on the CPU) over ``loader``'s batches (in order), and with
    ``exact_rows`` the mean loss of the first that many images (the shared copy's exact test rows).

    With ``tta_flip`` the logits of each image and of its mirror image are averaged (report 1.4.2).
    """
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    exact_sum = torch.zeros((), device=device)
    correct, seen = [], 0
    for images, labels in loader.batches(0):
        with autocast(device, half):
            logits = model(images)
            if tta_flip:
                logits = (logits + model(images.flip(-1))) / 2
        loss_sum += loss_fn(logits, labels) * len(labels)
        inside = min(len(labels), max(0, exact_rows - seen))  # this batch's images among the first exact_rows
        if inside:
            exact_sum += loss_fn(logits[:inside], labels[:inside]) * inside
        correct.append(logits.argmax(dim=1) == labels)
        seen += len(labels)
    exact_loss = (exact_sum / min(exact_rows, seen)).item() if exact_rows and seen else None
    return Evaluation((loss_sum / seen).item(), torch.cat(correct).cpu(), exact_loss)


def _progress(config: TrainConfig, start_epoch: int, steps_per_epoch: int, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    from tqdm import tqdm

    total = config.epochs * steps_per_epoch
    return tqdm(total=total, initial=start_epoch * steps_per_epoch, desc=f"{config.model}", unit="batch",
                leave=False, mininterval=1.0)
