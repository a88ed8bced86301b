"""Optimisation-landscape measurements for VGG-A with and without BatchNorm (report section 2.2).

Three ways of asking "how smooth is the landscape the optimiser walks on?" live here. All train with plain SGD
(no momentum, weight decay, lr decay or dropout; cross-entropy). Steps are numbered ``t = 0, 1, ...`` across
epochs; ``g(t)`` is the minibatch gradient at ``w(t)`` on minibatch ``B_t`` and ``w(t+1) = w(t) - lr * g(t)``.

**The report's method, as its code measures it** (``VGG_BatchNorm/VGG_Loss_Landscape.py``,
:func:`run_report_method`). One run per learning rate, the rates trained one after another from one seed (each
rate its own initialisation and batch order, drawn in sequence, as the code's loop draws them). Every ``gap``
steps (``s = gap - 1, 2 gap - 1, ...``) the last linear layer's weight ``W`` and its gradient ``G`` (the one the
step at ``s`` used) are sampled after the step, and the row's ``step`` is ``s``:

* ``loss``: the mean training loss over the window's ``gap`` steps ("每 30 个 step 计算其损失的均值");
* ``grad_distance``: ``||G(s) - G(s - gap)||_2``, between consecutive samples (from the second sample on);
* ``beta``: ``||G(s) - G(s - gap)|| / (||W(s) - W(s - gap)|| + 1e-3)``.

The code draws the loss and gradient-distance figures as min/max bands across learning rates and the β figure
as the maximum across them (:func:`min_max_band`).

**One-step differences** (the earlier reading of the report's text, :func:`run_one_step_method`): the same
windows and losses, with ``grad_distance = ||g(s) - g(s-1)||`` over all trainable parameters, ``beta`` that
over the weight change ``lr * ||g(s-1)||`` (report eq. 6), and the same two on the last layer alone
(``grad_distance_last_layer``, ``beta_last_layer``, with ``+ 1e-3``); one run per learning rate from the same
initial weights and batch order, so a band reflects the learning rate alone.

Both compare gradients from *different* minibatches, so ``grad_distance`` and ``beta`` include minibatch noise as
well as curvature; that is the report's definition, not the paper's.

Data and initialisation as the course template has them (``LandscapeConfig.augment=False``,
``normalization="half"``, ``init="xavier_normal"``, ``bias="template"``): no augmentation, pixels mapped to
[-1, 1], Xavier-normal weights, the template's biases.

**The paper's method** (Santurkar et al. 2018, Fig. 4 and Appendix A, :func:`run_paper_method`). One run at
lr 0.1; at a probed step the gradient ``g`` at ``w`` on the step's minibatch is followed to ``w - eta*g`` for
step sizes ``eta`` spanning ``[0.5, 4] x lr`` with the largest capped at 0.4 (:func:`paper_etas`), and on the
*same* minibatch we record the loss there (``loss``, one row per eta; the band over eta is Fig. 4a), the
gradient change ``||grad(w - eta*g) - g||`` (``grad_distance``, one row per eta; Fig. 4b), and the effective
beta-smoothness ``max_eta ||grad(w - eta*g) - g|| / ||eta*g||`` (``beta``, one row; Fig. 4c). The training loss
of every step is kept too (``train_loss``). Because the minibatch is fixed, this isolates the curvature along
the update direction.

Probes run the model in the mode it is in; during training that is train mode, so BatchNorm normalises with
the probe minibatch's own statistics, i.e. the probe sees the very loss landscape that SGD optimises. The
probe evaluates the network through :func:`torch.func.functional_call` on perturbed copies of the parameters
and *cloned* buffers, so it never writes to the model: parameters, ``.grad``, BN running statistics and
``num_batches_tracked`` are untouched, the optimiser is never involved, and the CPU and CUDA RNG states are
restored afterwards. A run with probes therefore follows bit for bit the trajectory of one without.

**Caveat.** VGG-A without BatchNorm sits on a plateau near ``ln 10 = 2.303`` (uniform predictions) for its
first few hundred steps at these learning rates. Every learning rate is stuck on the same plateau, with tiny
gradients, so the across-lr bands of the plain network are *narrow* there: early on they look "smoother"
than the BN network's for the wrong reason (nothing is being learned), and ``beta`` is a ratio of two small,
noisy numbers. Read the early part of the report-method figures with that in mind.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from . import models
from .data import CIFAR10, load_cifar10
from .device import resolve_device, use_tf32_convolutions
from .loaders import TensorLoader

MODELS = ("vgg_a", "vgg_a_bn")
PAPER_LEARNING_RATE = 0.1
PAPER_ETA_RANGE = (0.5, 4.0)  # multiples of the learning rate
PAPER_ETA_CAP = 0.4  # Fig. 4 caps the largest step at 0.4 x the gradient
PAPER_ETA_COUNT = 8
UNIFORM_LOSS = math.log(10)  # cross-entropy of uniform predictions over CIFAR-10's 10 classes: the early plateau

# Quantity names shared by both methods so one plotting function serves both tables.
LOSS = "loss"
GRAD_DISTANCE = "grad_distance"
BETA = "beta"
TRAIN_LOSS = "train_loss"
# One-step differences on the last linear layer's weight alone (beta with +1e-3 in the denominator, as the code).
GRAD_DISTANCE_LAST = "grad_distance_last_layer"
BETA_LAST = "beta_last_layer"
TEMPLATE_BETA_EPSILON = 1e-3
REPORT_QUANTITIES = (LOSS, GRAD_DISTANCE, BETA)  # the report's code's, on the last layer, every gap steps
ONE_STEP_QUANTITIES = (LOSS, GRAD_DISTANCE, BETA, GRAD_DISTANCE_LAST, BETA_LAST)

REPORT_COLUMNS = ("model", "lr", "step", "quantity", "value")
PAPER_COLUMNS = ("model", "lr", "step", "quantity", "eta", "value")

LossFn = Callable[[Tensor, Tensor], Tensor]


KEY_NEUTRAL_DEFAULTS = {"bias": "all"}  # LandscapeConfig fields added after tables were stored


@dataclass(frozen=True)
class LandscapeConfig:
    """Settings of both methods. The training settings have no defaults: a study says which it measures (the
    report's are ``cifarnb.study.settings.LANDSCAPE``); the data pipeline defaults to training's usual one."""

    learning_rates: tuple[float, ...]
    epochs: int
    batch_size: int
    gap: int  # report method: window length; paper method: default probe interval
    models: tuple[str, ...] = MODELS
    seed: int = 0  # model initialisation and batch order; the same for every lr so bands reflect lr alone
    subset_seed: int = 0  # which images a subset holds
    device: str = "auto"  # execution: where it runs, left out of key()
    n_train: int | None = None  # None: all 50,000 training images
    data_root: str | None = None  # execution: the folder holding cifar-10-batches-py/ (None: $CIFARNB_DATA, ./data)
    # The data pipeline and initialisation: augment=True, normalization="cifar10", init="default" trains on
    # crop + flip with CIFAR-10's mean/std from PyTorch's init; the course template's are False, "half",
    # "xavier_normal".
    augment: bool = True
    normalization: str = "cifar10"
    init: str = "default"
    bias: str = "all"  # VGG-A's biases: "all", or "template" (the course template's vgg.py)

    def key(self) -> dict:
        """What the measurements depend on: every field, with the execution fields at their defaults (so a table
        made on a GPU from one data folder is found again on a CPU from another; tables stored before these
        fields were execution-only kept exactly these values), and without a field added later while it holds
        the value every earlier table had (so their keys stay)."""
        values = dataclasses.asdict(dataclasses.replace(self, device="auto", data_root=None))
        return {name: value for name, value in values.items()
                if not (name in KEY_NEUTRAL_DEFAULTS and value == KEY_NEUTRAL_DEFAULTS[name])}

    def __post_init__(self) -> None:
        if self.gap < 1:
            raise ValueError(f"gap={self.gap} must be at least 1")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs={self.epochs} and batch_size={self.batch_size} must be positive")
        if not self.learning_rates or min(self.learning_rates) <= 0:
            raise ValueError(f"learning_rates={self.learning_rates} must be a non-empty tuple of positive numbers")


# ----------------------------------------------------------------------------------------------------------
# Shared pieces


def _trainable(model: nn.Module) -> list[Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def _global_norm(tensors: Sequence[Tensor]) -> Tensor:
    # Per-tensor norms first: one reduction per tensor and no concatenated copy of the whole model.
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(tensors))))


def _gradients(parameters: Sequence[Tensor]) -> list[Tensor]:
    # A parameter the loss does not reach has no .grad; its gradient is zero, not missing.
    return [torch.zeros_like(p) if p.grad is None else p.grad for p in parameters]


def _sgd(parameters: Sequence[Tensor], lr: float, device: torch.device) -> torch.optim.Optimizer:
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.SGD(parameters, lr=lr, momentum=0.0, weight_decay=0.0, **fused)


def _epoch_batches(loader: TensorLoader, epochs: int) -> Iterator[tuple[Tensor, Tensor]]:
    for epoch in range(epochs):
        yield from loader.batches(epoch)


def _data(config: LandscapeConfig, data: CIFAR10 | None) -> CIFAR10:
    if data is None:
        return load_cifar10(config.data_root, n_train=config.n_train, seed=config.subset_seed)
    if config.n_train is not None and len(data.y_train) != config.n_train:
        return data.subset(config.n_train, None, config.subset_seed)
    return data


def _run(config: LandscapeConfig, model_name: str, data: CIFAR10, batch_seed: int):
    """A model built from the RNG as it stands (its initialisation) and its training batches, shuffled by
    ``batch_seed``, for one run."""
    device = resolve_device(config.device)
    use_tf32_convolutions(True)  # fp32 with TF32 convolutions, as VGG_Loss_Landscape.py ran (PyTorch's default)
    model = models.build(model_name, init=config.init, bias=config.bias).to(device).train()
    loader = TensorLoader(data.x_train, data.y_train, config.batch_size, train=True, device=device, seed=batch_seed,
                          augment=config.augment, normalization=config.normalization)
    return model, _epoch_batches(loader, config.epochs)


def _setup(config: LandscapeConfig, model_name: str, data: CIFAR10 | None):
    """The model (seeded by ``config.seed``) and training batches for one run."""
    data = _data(config, data)
    torch.manual_seed(config.seed)  # identical initial weights for every learning rate
    return _run(config, model_name, data, config.seed)


def _tidy(rows: list[tuple], values: list[Tensor], columns: Sequence[str]) -> pd.DataFrame:
    # One host transfer for the whole run instead of one per recorded value.
    numbers = torch.stack(values).double().cpu().tolist() if values else []
    return pd.DataFrame([(*row, v) for row, v in zip(rows, numbers)], columns=list(columns))


def _label(frame: pd.DataFrame, model_name: str, lr: float) -> pd.DataFrame:
    frame.insert(0, "lr", float(lr))
    frame.insert(0, "model", model_name)
    return frame


# ----------------------------------------------------------------------------------------------------------
# The report's method, as its code measures it


def measure_report_quantities(
    model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], lr: float, gap: int
) -> pd.DataFrame:
    """Train ``model`` with plain SGD over ``batches``, sampling the last linear layer every ``gap`` steps as
    VGG_Loss_Landscape.py does; columns ``step, quantity, value`` (see the module docstring)."""
    parameters = _trainable(model)
    weight = last_linear(model).weight  # the template's classifier[-1].weight
    device = parameters[0].device
    optimizer = _sgd(parameters, lr, device)
    rows: list[tuple] = []
    values: list[Tensor] = []
    window_loss = torch.zeros((), device=device)
    previous: tuple[Tensor, Tensor] | None = None  # the last sample's (gradient, weight)
    for step, (inputs, targets) in enumerate(batches):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        window_loss += loss.detach()
        if (step + 1) % gap == 0:
            # After the step, as the code samples: the gradient the step used, the weight it made.
            sample = (weight.grad.detach().clone(), weight.detach().clone())
            rows.append((step, LOSS))
            values.append(window_loss / gap)
            if previous is not None:
                distance = torch.linalg.vector_norm(sample[0] - previous[0])
                moved = torch.linalg.vector_norm(sample[1] - previous[1])
                rows += [(step, GRAD_DISTANCE), (step, BETA)]
                values += [distance, distance / (moved + TEMPLATE_BETA_EPSILON)]
            previous = sample
            window_loss = torch.zeros((), device=device)
    return _tidy(rows, values, ("step", "quantity", "value"))


def last_linear(model: nn.Module) -> nn.Linear:
    """The model's last ``nn.Linear`` (VGG-A's ``classifier.fc3``, the template's ``classifier[-1]``)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer to measure")
    return linears[-1]


def run_report_method(config: LandscapeConfig, model_name: str, data: CIFAR10 | None = None) -> pd.DataFrame:
    """The report's method for one model: every learning rate of ``config``, trained one after another from one
    seed (``config.seed``, set once): each run's initial weights, and the seed of its batch order, are the next
    draws of the RNG, as the code's loop over its rates draws them. Columns :data:`REPORT_COLUMNS`.

    ``data`` saves re-reading CIFAR-10; it is subset to ``config.n_train``.
    """
    data = _data(config, data)
    torch.manual_seed(config.seed)
    frames = []
    for lr in config.learning_rates:
        batch_seed = int(torch.randint(2**31 - 1, ()))
        model, batches = _run(config, model_name, data, batch_seed)
        frames.append(_label(measure_report_quantities(model, batches, lr, config.gap), model_name, lr))
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------------------------------------
# One-step differences (the earlier reading)


def measure_one_step_quantities(
    model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], lr: float, gap: int
) -> pd.DataFrame:
    """Train ``model`` with plain SGD over ``batches``; columns ``step, quantity, value``: every ``gap`` steps the
    window's mean loss and the one-step gradient differences (see the module docstring).

    ``grad_distance`` and ``beta`` are missing for a window whose last step is step 0 (gap 1), which has no
    predecessor.
    """
    parameters = _trainable(model)
    last = _trainable(last_linear(model))[0]  # its weight (the template's classifier[-1].weight)
    last_index = next(i for i, p in enumerate(parameters) if p is last)
    device = parameters[0].device
    optimizer = _sgd(parameters, lr, device)
    rows: list[tuple] = []
    values: list[Tensor] = []
    window_loss = torch.zeros((), device=device)
    previous: list[Tensor] | None = None  # g(s-1), kept only for the step before a sampled one
    for step, (inputs, targets) in enumerate(batches):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        window_loss += loss.detach()
        if (step + 1) % gap == 0:
            current = _gradients(parameters)
            rows.append((step, LOSS))
            values.append(window_loss / gap)
            if previous is not None:
                distance = _global_norm(torch._foreach_sub(current, previous))
                # The last layer alone: ||w(s) - w(s-1)|| = lr * ||g_last(s-1)|| under plain SGD.
                last_distance = torch.linalg.vector_norm(current[last_index] - previous[last_index])
                last_step = lr * torch.linalg.vector_norm(previous[last_index])
                rows += [(step, GRAD_DISTANCE), (step, BETA), (step, GRAD_DISTANCE_LAST), (step, BETA_LAST)]
                values += [distance, distance / (lr * _global_norm(previous)),
                           last_distance, last_distance / (last_step + TEMPLATE_BETA_EPSILON)]
            window_loss = torch.zeros((), device=device)
        # Clone so the saved g(s-1) cannot be changed by a later in-place gradient accumulation.
        previous = [g.clone() for g in _gradients(parameters)] if (step + 2) % gap == 0 else None
        optimizer.step()
    return _tidy(rows, values, ("step", "quantity", "value"))


def run_one_step_method(
    config: LandscapeConfig, model_name: str, lr: float, data: CIFAR10 | None = None
) -> pd.DataFrame:
    """One (model, lr) run of the one-step differences, from ``config.seed`` (the same initial weights and batch
    order for every lr); columns :data:`REPORT_COLUMNS`. ``data`` is subset to ``config.n_train``."""
    model, batches = _setup(config, model_name, data)
    return _label(measure_one_step_quantities(model, batches, lr, config.gap), model_name, lr)


def min_max_band(frame: pd.DataFrame) -> pd.DataFrame:
    """Min and max of ``value`` per (model, step, quantity): across lr for the report's table, across eta
    for the paper's. Columns ``model, step, quantity, min, max``; NaNs (diverged runs) are skipped."""
    grouped = frame.groupby(["model", "step", "quantity"], sort=True)["value"]
    return grouped.agg(["min", "max"]).reset_index()


# ----------------------------------------------------------------------------------------------------------
# The paper's method


def paper_etas(
    lr: float = PAPER_LEARNING_RATE, count: int = PAPER_ETA_COUNT, cap: float = PAPER_ETA_CAP
) -> tuple[float, ...]:
    """``count`` evenly spaced step sizes from ``0.5 * lr`` to ``min(4 * lr, cap)`` (Fig. 4; [0.05, 0.4] at lr 0.1)."""
    low, high = PAPER_ETA_RANGE[0] * lr, min(PAPER_ETA_RANGE[1] * lr, cap)
    if count == 1:
        return (low,)
    return tuple(low + (high - low) * i / (count - 1) for i in range(count))


def _loss_and_gradient(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    names: Sequence[str],
    point: Sequence[Tensor],
    fixed: dict[str, Tensor],
) -> tuple[Tensor, list[Tensor]]:
    """Loss and gradient at parameters ``point``, computed without writing to ``model`` or its buffers."""
    leaves = [t.detach().requires_grad_() for t in point]
    # Cloned buffers absorb the train-mode BN running-statistics update and are thrown away.
    state = {**fixed, **{name: buffer.clone() for name, buffer in model.named_buffers()}}
    state.update(zip(names, leaves))
    loss = loss_fn(functional_call(model, state, (inputs,)), targets)
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return loss.detach(), [torch.zeros_like(l) if g is None else g for l, g in zip(leaves, grads)]


def probe(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    etas: Sequence[float],
    gradient: Sequence[Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Walk from ``w`` to ``w - eta * g`` for each eta, on the fixed batch ``(inputs, targets)``.

    ``g`` is the gradient of ``loss_fn(model(inputs), targets)`` at the current parameters (pass ``gradient``,
    one tensor per trainable parameter in ``model.parameters()`` order, to reuse one already computed).
    Returns device tensors, so a run can defer host syncs: the losses ``loss(w - eta g)`` and gradient
    distances ``||grad(w - eta g) - g||`` per eta, and ``beta = max_eta ||grad(w - eta g) - g|| / ||eta g||``.
    The model is evaluated in its current mode and left exactly as found (parameters, buffers, ``.grad``, RNG).
    """
    if not etas:
        raise ValueError("etas must name at least one step size")
    named = list(model.named_parameters())
    names = [n for n, p in named if p.requires_grad]
    point = [p.detach() for _, p in named if p.requires_grad]
    fixed = {n: p for n, p in named if not p.requires_grad}
    cuda = sorted({p.device.index or 0 for p in point if p.device.type == "cuda"})
    # Dropout-like layers would draw random numbers; the training run must not see them drawn.
    with torch.random.fork_rng(devices=cuda), torch.enable_grad():
        if gradient is None:
            _, gradient = _loss_and_gradient(model, loss_fn, inputs, targets, names, point, fixed)
        gradient = [g.detach() for g in gradient]
        losses, distances = [], []
        for eta in etas:
            moved = torch._foreach_add(point, gradient, alpha=-float(eta))
            loss, moved_gradient = _loss_and_gradient(model, loss_fn, inputs, targets, names, moved, fixed)
            losses.append(loss)
            distances.append(_global_norm(torch._foreach_sub(moved_gradient, gradient)))
    losses, distances = torch.stack(losses), torch.stack(distances)
    steps = torch.tensor([float(e) for e in etas], dtype=distances.dtype, device=distances.device)
    beta = (distances / (steps * _global_norm(gradient))).max()
    return losses, distances, beta


def measure_paper_quantities(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    lr: float,
    etas: Sequence[float],
    probe_every: int,
) -> pd.DataFrame:
    """Train with plain SGD, probing before the update of every ``probe_every``-th step (0, k, 2k, ...).

    Columns ``step, quantity, eta, value``: ``train_loss`` every step; ``loss`` and ``grad_distance`` per eta
    and ``beta`` (eta NaN) at probed steps. ``probe_every=0`` trains without probing (a reference trajectory).
    """
    parameters = _trainable(model)
    optimizer = _sgd(parameters, lr, parameters[0].device)
    rows: list[tuple] = []
    values: list[Tensor] = []
    for step, (inputs, targets) in enumerate(batches):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        rows.append((step, TRAIN_LOSS, math.nan))
        values.append(loss.detach())
        if probe_every and step % probe_every == 0:
            # The training gradient is the probe's g: same weights, same batch, same mode.
            losses, distances, beta = probe(model, F.cross_entropy, inputs, targets, etas, _gradients(parameters))
            rows += [(step, LOSS, float(eta)) for eta in etas]
            rows += [(step, GRAD_DISTANCE, float(eta)) for eta in etas]
            rows.append((step, BETA, math.nan))
            values += [*losses.unbind(), *distances.unbind(), beta]
        optimizer.step()
    return _tidy(rows, values, ("step", "quantity", "eta", "value"))


def run_paper_method(
    config: LandscapeConfig,
    model_name: str,
    lr: float = PAPER_LEARNING_RATE,
    probe_every: int | None = None,
    etas: Sequence[float] | None = None,
    data: CIFAR10 | None = None,
) -> pd.DataFrame:
    """One run of the paper's method; columns :data:`PAPER_COLUMNS`.

    ``probe_every`` defaults to ``config.gap`` (each probe costs ``len(etas)`` extra forward/backward passes)
    and ``etas`` to :func:`paper_etas` of ``lr``.
    """
    etas = paper_etas(lr) if etas is None else tuple(etas)
    probe_every = config.gap if probe_every is None else probe_every
    model, batches = _setup(config, model_name, data)
    return _label(measure_paper_quantities(model, batches, lr, etas, probe_every), model_name, lr)
