"""Optimizers, learning-rate schedules and losses named in a TrainConfig."""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainConfig


def parameter_groups(config: TrainConfig, model: nn.Module) -> list[dict]:
    """The trainable parameters as optimizer groups: one, or with ``bias_lr_factor``/``bias_weight_decay`` two,
    the weights (2-D and up) and the 1-D parameters (biases, BN shifts) with their own rate and decay, as the
    report's FastResNet9 code splits them (frozen parameters, such as its whitening stem, in neither). BN scales
    that train are 1-D too, so they take the 1-D rate (the code freezes its scales; what that does to a model that
    trains them: ``study.sections.fastresnet9.trick_ladder``)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if config.bias_lr_factor is None and config.bias_weight_decay is None:
        return [{"params": trainable}]
    factor = 1.0 if config.bias_lr_factor is None else config.bias_lr_factor
    decay = config.weight_decay if config.bias_weight_decay is None else config.bias_weight_decay
    return [{"params": [p for p in trainable if p.ndim > 1]},
            {"params": [p for p in trainable if p.ndim <= 1], "lr": config.lr * factor, "weight_decay": decay}]


def build_optimizer(config: TrainConfig, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    # Fused kernels update all parameters in one launch on CUDA; on CPU the default path is used.
    fused = {"fused": True} if device.type == "cuda" else {}
    decay = config.weight_decay
    groups = parameter_groups(config, model)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=decay, **fused
        )
    if config.optimizer == "sgd_velocity":
        return SGDVelocity(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                           weight_decay=decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=decay, **fused)
    if config.optimizer == "adadelta":
        return torch.optim.Adadelta(groups, lr=config.lr, weight_decay=decay)
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(groups, lr=config.lr, weight_decay=decay)
    if config.optimizer == "adamax":
        return torch.optim.Adamax(groups, lr=config.lr, weight_decay=decay)
    raise AssertionError(config.optimizer)  # TrainConfig.validate rejects anything else


class SGDVelocity(torch.optim.Optimizer):
    """SGD with momentum whose velocity carries the learning rate, as the report's FastResNet9 code updates
    (``utils.update_nesterov``, after Page's trainer)::

        step = -lr * (grad + weight_decay * w)
        v    = momentum * v + step
        w   += step + momentum * v      (Nesterov; plain momentum: w += v)

    torch's SGD keeps the rate out of the velocity (``w -= lr * (g + momentum * buf)``); the two agree while the
    rate is constant and differ while a schedule moves it (the velocity here remembers earlier rates). Each group
    updates with a few foreach kernels.
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, nesterov: bool = True, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            velocities = [self.state[p].setdefault("velocity", torch.zeros_like(p)) for p in params]
            steps = torch._foreach_add([p.grad for p in params], params, alpha=group["weight_decay"])
            torch._foreach_mul_(steps, -group["lr"])
            torch._foreach_mul_(velocities, group["momentum"])
            torch._foreach_add_(velocities, steps)
            if group["nesterov"]:
                torch._foreach_add_(steps, velocities, alpha=group["momentum"])
                torch._foreach_add_(params, steps)
            else:
                torch._foreach_add_(params, velocities)
        return loss


class Schedule:
    """Wraps a torch scheduler with one rule for when it steps: per batch (onecycle) or per epoch."""

    def __init__(self, config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
        self.config = config
        self.per_batch = config.scheduler in ("onecycle", "piecewise")
        self.scheduler = _build_scheduler(config, optimizer, steps_per_epoch)
        # Epochs still to run at the initial rate before the schedule's first step (config.schedule_lag_epochs).
        self.lag_left = 0 if self.per_batch else (config.schedule_lag_epochs or 0)

    def after_batch(self) -> None:
        if self.per_batch:
            self.scheduler.step()

    def after_epoch(self, epoch_row: dict) -> None:
        """Step after an epoch; ``epoch_row`` is its history row (train_loss, test_loss, test_acc)."""
        if self.scheduler is None or self.per_batch:
            return
        if self.lag_left:
            self.lag_left -= 1
            return
        if self.config.scheduler == "plateau":
            self.scheduler.step(epoch_row[self.config.plateau_metric])
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        state = {} if self.scheduler is None else self.scheduler.state_dict()
        return {**state, "lag_left": self.lag_left} if self.config.schedule_lag_epochs else state

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.lag_left = state.pop("lag_left", self.lag_left)
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)


def _build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    sched = torch.optim.lr_scheduler
    if config.scheduler == "none":
        return None
    if config.scheduler == "plateau":
        return sched.ReduceLROnPlateau(
            optimizer,
            mode="min",
            factor=config.plateau_factor,
            patience=config.plateau_patience,
            cooldown=config.plateau_cooldown,
            min_lr=config.min_lr,
        )
    if config.scheduler == "step":
        return sched.StepLR(optimizer, step_size=config.step_size or max(1, config.epochs // 3), gamma=config.step_gamma)
    if config.scheduler == "linear":
        return sched.LinearLR(optimizer, start_factor=1.0, end_factor=config.linear_end_factor,
                              total_iters=config.linear_epochs or config.epochs)
    if config.scheduler == "exponential":
        return sched.ExponentialLR(optimizer, gamma=config.exponential_gamma)
    if config.scheduler == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=config.min_lr)
    if config.scheduler == "onecycle":
        # Warm up to lr over the first pct_start of training, then anneal linearly: fast-training recipes
        # (Page's ResNet9, airbench) use this triangular shape.
        return sched.OneCycleLR(
            optimizer,
            max_lr=config.lr,
            total_steps=config.epochs * steps_per_epoch,
            pct_start=config.onecycle_pct_start,
            anneal_strategy="linear",
            cycle_momentum=False,
        )
    if config.scheduler == "piecewise":
        knots = config.lr_knots
        # LambdaLR's step count is the batch index; the factor is read at the fractional epoch it falls in.
        return sched.LambdaLR(optimizer, lambda step: piecewise_factor(knots, step / steps_per_epoch))
    raise AssertionError(config.scheduler)


def piecewise_factor(knots: tuple[tuple[float, float], ...], epoch: float) -> float:
    """The lr factor at fractional ``epoch``: linear between (epoch, factor) knots, flat after the last one."""
    for (start, low), (end, high) in zip(knots, knots[1:]):
        if epoch <= end:
            return low + (high - low) * (epoch - start) / (end - start)
    return knots[-1][1]


def build_loss(config: TrainConfig) -> "ClassificationLoss":
    return ClassificationLoss(config.loss, config.label_smoothing)


class ClassificationLoss(nn.Module):
    """The report's five losses on class indices; the non-CE ones compare logits with one-hot targets."""

    def __init__(self, name: str, label_smoothing: float = 0.0):
        super().__init__()
        self.name = name
        self.loss = {
            "cross_entropy": nn.CrossEntropyLoss(label_smoothing=label_smoothing),
            "bce_with_logits": nn.BCEWithLogitsLoss(),
            "mse": nn.MSELoss(),
            "huber": nn.HuberLoss(),
            "multilabel_soft_margin": nn.MultiLabelSoftMarginLoss(),
        }[name]

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.float()  # losses in fp32 even under autocast
        if self.name == "cross_entropy":
            return self.loss(logits, labels)
        return self.loss(logits, nn.functional.one_hot(labels, logits.shape[-1]).float())


def lr_schedule(config: TrainConfig, steps_per_epoch: int = 1) -> list[float]:
    """The learning rate at the start of each epoch that ``config``'s schedule gives, without training.

    ReduceLROnPlateau depends on the losses a run produces, so here it is fed a loss that never improves after
    the first epoch: the fastest decay the schedule allows, an upper bound on how often it can cut the rate.
    """
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=config.lr)
    schedule = Schedule(config, optimizer, steps_per_epoch)
    rates = []
    for _ in range(config.epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        for _ in range(steps_per_epoch):
            optimizer.step()  # keeps torch from warning that the schedule stepped before the optimizer
            schedule.after_batch()
        schedule.after_epoch({"train_loss": 1.0, "test_loss": 1.0, "test_acc": 1.0})
    return rates
