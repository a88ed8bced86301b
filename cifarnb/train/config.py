"""TrainConfig: every knob the report turns, typed and validated before any work starts."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

# The names, not their modules: the config (and the command line's help) must not need torch to be read.
from ..names import ACTIVATIONS, LOADERS
from ..names import AUGMENTATIONS as LOADER_AUGMENTATIONS

# "sgd_velocity": SGD whose velocity carries the learning rate, as the report's FastResNet9 code updates
# (utils.update_nesterov; optim.SGDVelocity); torch's SGD ("sgd") scales the update by the current rate instead.
OPTIMIZERS = ("sgd", "adam", "adadelta", "adagrad", "adamax", "sgd_velocity")
SCHEDULERS = ("none", "plateau", "step", "linear", "exponential", "cosine", "onecycle", "piecewise")
LOSSES = ("cross_entropy", "bce_with_logits", "mse", "huber", "multilabel_soft_margin")
# How a run's arithmetic runs on CUDA (on a CPU every choice is fp32). "auto": bf16 autocast, the fast path's;
# "fp32": fp32 throughout, TF32 off; "tf32": fp32 tensors with cuDNN convolutions on TF32 (PyTorch's default, as the
# report's main.py and VGG scripts ran); "bf16"/"fp16": autocast in that type over fp32 weights (fp16 with loss
# scaling; the report's FastResNet9 code keeps even its weights and velocity in fp16, BN in fp32).
PRECISIONS = ("auto", "fp32", "tf32", "bf16", "fp16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
# What ReduceLROnPlateau is stepped with. Always mode='min', as the report's code builds it; "test_acc" is the
# reading in which the report passed its test accuracy to that min-mode scheduler (so the rate halves whenever
# accuracy has not fallen for `patience` epochs: about every patience + cooldown + 1 epochs while it improves).
# "test_loss_exact1000": the test loss on the exact rows 0-999 of the shared copy alone (its other 9,000 images are
# JPEG approximations; needs the whole test set).
PLATEAU_METRICS = ("test_loss", "train_loss", "test_acc", "test_loss_exact1000")
NORMALIZATIONS = ("cifar10", "half")  # the data set's mean/std; 0.5/0.5 (the VGG_BatchNorm course template's)
AUGMENTATIONS = LOADER_AUGMENTATIONS  # per_image (random crop + flip per image) | per_batch (the report's FastResNet9)

# Fields that change how fast a run goes but not what it measures. They are recorded with each run but left
# out of its key, so a run made on a GPU is found again from a CPU-only machine (and vice versa).
EXECUTION_FIELDS = ("device", "loader", "num_workers", "precision", "channels_last", "compile", "eval_batch_size",
                    "compile_mode", "cudnn_benchmark", "data_root", "checkpoint_every_s")
# Fields added after runs were stored, with the behaviour every earlier run had. The key leaves a field out while
# it holds that value, so a stored run keeps its key and the same experiment never gets two (the key also drops
# every field that is None, i.e. unset).
KEY_NEUTRAL_DEFAULTS = {"augment": True, "normalization": "cifar10", "ema_every": 1, "augmentation": "per_image",
                        "drop_last": False}


def _option(default: Any, help: str) -> Any:
    """A field with its help text beside it, read by the command line (``cifarnb train --help``: ``field_help``)."""
    return field(default=default, metadata={"help": help})


def field_help(name: str) -> str:
    """What the field ``name`` does and which values it takes, in the command line's words (its default is added
    after it)."""
    return TRAIN_CONFIG_FIELDS[name].metadata["help"]


# (model, options) pairs that built once in this process: validating them again cannot fail.
_BUILT_ONCE: set[tuple[str, str]] = set()

@dataclass
class TrainConfig:
    # Each field's help (metadata "help", read by field_help and `cifarnb train --help`) says what it does and which
    # values it takes; the comments say where a setting comes from.
    # What is trained.
    model: str = _option("resnet18", "a model of the zoo (cifarnb.models.list_models()), any letter case")
    model_options: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "model keyword options as key=value (repeatable), e.g. --model-options dropout=0.3"})
    activation: str | None = _option(None, "override the model's activation: " + " | ".join(ACTIVATIONS)
                                     + "; None: the model's own")
    # The report's optimisation settings (1.1 baseline).
    epochs: int = _option(25, "training epochs, a whole number >= 1")
    batch_size: int = _option(128, "training images per step, a whole number >= 1")
    lr: float = _option(0.01, "learning rate (the peak, for schedules that warm up), a number > 0")
    momentum: float = _option(0.9, "momentum (SGD), a number >= 0")
    nesterov: bool = _option(False, "Nesterov momentum (SGD)")
    weight_decay: float = _option(5e-4, "L2 weight decay, a number >= 0")
    optimizer: str = _option("sgd", " | ".join(OPTIMIZERS))
    loss: str = _option("cross_entropy", " | ".join(LOSSES))
    label_smoothing: float = _option(0.0, "label smoothing in [0, 1] (cross_entropy only)")
    # Learning-rate schedule; the report's ReduceLROnPlateau(mode='min', factor=0.5, patience=5, cooldown=5,
    # min_lr=1e-6) is the default.
    scheduler: str = _option("plateau", " | ".join(SCHEDULERS) + " (piecewise needs --lr-knots)")
    plateau_metric: str = _option("test_loss", "what the plateau scheduler watches, in min mode: "
                                  + " | ".join(PLATEAU_METRICS))
    plateau_factor: float = _option(0.5, "plateau: the rate's factor at each drop, in [0, 1]")
    plateau_patience: int = _option(5, "plateau: epochs without improvement before a drop, a whole number >= 0")
    plateau_cooldown: int = _option(5, "plateau: epochs after a drop before watching again, a whole number >= 0")
    min_lr: float = _option(1e-6, "plateau and cosine: the lowest rate, a number >= 0")
    step_size: int | None = _option(None, "step: epochs between drops, a whole number >= 1; None: a third of the run")
    step_gamma: float = _option(0.1, "step: the rate's factor at each drop, in [0, 1]")
    exponential_gamma: float = _option(0.9, "exponential: the rate's factor per epoch, in [0, 1]")
    linear_end_factor: float = _option(0.01, "linear: the final rate as a fraction of --lr, in [0, 1]")
    linear_epochs: int | None = _option(None, "linear: epochs to reach the end factor, a whole number >= 1; None: the "
                                              "whole run")
    onecycle_pct_start: float = _option(0.25, "onecycle: the fraction of the run spent warming up, in (0, 1)")
    # "piecewise": the lr factor at fractional epoch e, linear between (epoch, factor) knots and flat after the
    # last, stepped every batch; e.g. ((0, 0), (2, 1), (8, 0.1)) rises to lr over 2 epochs, falls to lr/10 by 8.
    lr_knots: tuple[tuple[float, float], ...] | None = _option(None, "piecewise schedule as JSON [[epoch, factor], "
                                                                     "...], e.g. [[0,0],[2,1],[8,0.1]]")
    # Evaluation.
    tta_flip: bool = _option(False, "evaluate each test image with its mirror image (averaged logits)")
    ema_decay: float | None = _option(None, "evaluate an exponential moving average of the weights with this factor "
                                            "per update, in (0, 1); None: no average")
    ema_every: int = _option(1, "training steps between updates of the average, a whole number >= 1")
    # Data.
    augment: bool = _option(True, "random crop (padding 4) and horizontal flip of the training images")
    augmentation: str = _option("per_image", "how crop and flip are drawn: per_image | per_batch (one draw per batch)")
    # the report's FastResNet9 code drops the last partial batch
    drop_last: bool = _option(False, "skip each epoch's last, partial training batch")
    normalization: str = _option("cifar10", "cifar10 (the data set's mean and std) | half (0.5 and 0.5: pixels to "
                                            "[-1, 1])")
    n_train: int | None = _option(None, "train on a class-balanced subset of this many images, 1..50000; None: all")
    n_test: int | None = _option(None, "evaluate on a class-balanced subset of this many images, 1..10000; None: all")
    # subsets stay fixed across training seeds so seeds only vary the run itself
    subset_seed: int = _option(0, "seed choosing --n-train/--n-test subsets, a whole number >= 0")
    seed: int = _option(0, "training seed, a whole number >= 0")
    # Execution (not part of the run's key, see EXECUTION_FIELDS).
    device: str = _option("auto", "auto | cpu | cuda | cuda:N")
    loader: str = _option("tensor", "tensor (on-device) | torchvision (the report's pipeline)")
    num_workers: int = _option(2, "torchvision loader: worker processes, a whole number >= 0")
    precision: str = _option("auto", " | ".join(PRECISIONS) + " (autocast on CUDA only)")  # see PRECISIONS
    channels_last: bool = _option(False, "channels-last memory format (faster convolutions on recent GPUs)")
    compile: bool = _option(False, "torch.compile the training step")
    eval_batch_size: int = _option(1000, "test images per evaluation batch, a whole number >= 1")
    # torch.compile's mode; "reduce-overhead" adds CUDA graphs (compile=True only)
    compile_mode: str = _option("default", " | ".join(COMPILE_MODES))
    # cuDNN's choice is process-wide
    cudnn_benchmark: bool = _option(False, "let cuDNN time its convolution algorithms per input shape (CUDA)")
    data_root: str | None = _option(None, "folder holding cifar-10-batches-py/; None: $CIFARNB_DATA, else ./data")
    # fit(checkpoint_path=...) writes a checkpoint after an epoch once this many seconds have passed since the last
    # one (None: after every epoch). A resumed run repeats the epochs since, and follows the same trajectory.
    checkpoint_every_s: float | None = _option(None, "write a checkpoint once this many seconds have passed since the "
                                                     "last, a number > 0; None: after every epoch")

    # Settings of the report's code that the first readings lacked (None: off).
    # bn_shards: the report's main.py runs nn.DataParallel on 4 GPUs; running statistics from the first piece.
    bn_shards: int | None = _option(None, "BatchNorm normalises each of this many pieces of a batch alone (as "
                                          "nn.DataParallel on that many GPUs), a whole number >= 1; None: the whole "
                                          "batch")
    # The report's FastResNet9: 64x, 0.004/512.
    bias_lr_factor: float | None = _option(None, "1-D parameters (BN shifts, biases) train at --lr times this, a "
                                                 "number >= 0; None: at --lr")
    bias_weight_decay: float | None = _option(None, "weight decay of the 1-D parameters, a number >= 0; None: "
                                                    "--weight-decay")
    # VGG_acc.py: 100; kept in the epoch's history row as "step_evals".
    eval_every_steps: int | None = _option(None, "also evaluate every this many training steps (kept in the epoch's "
                                                 "history row), a whole number >= 1; None: once per epoch")
    # main.py sets epoch e + 1's cosine or exponential rate from e, so its epoch k runs at torch's rate of epoch
    # k - 1 (and its first two epochs at lr).
    schedule_lag_epochs: int | None = _option(None, "per-epoch schedules: epochs run at --lr before the schedule "
                                                    "starts, a whole number >= 1 (main.py's cosine and exponential: "
                                                    "1); None: none")

    def __post_init__(self) -> None:
        # The registry is case-insensitive; one spelling in the key makes "LeNet5" and "lenet5" one run
        # (every committed key was made with the lowercase name, so none changes).
        if isinstance(self.model, str):
            self.model = self.model.lower()
        if self.lr_knots is not None:  # JSON gives lists; one canonical, hashable form
            try:
                self.lr_knots = tuple((float(epoch), float(factor)) for epoch, factor in self.lr_knots)
            except (TypeError, ValueError):
                raise ValueError(f"lr_knots={self.lr_knots!r} must be (epoch, factor) pairs, e.g. "
                                 "((0, 0), (2, 1), (8, 0.1))") from None
        self.validate()

    def validate(self) -> None:
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("scheduler", self.scheduler, SCHEDULERS)
        _choice("loss", self.loss, LOSSES)
        _choice("precision", self.precision, PRECISIONS)
        _choice("loader", self.loader, LOADERS)
        _choice("plateau_metric", self.plateau_metric, PLATEAU_METRICS)
        _choice("compile_mode", self.compile_mode, COMPILE_MODES)
        _choice("normalization", self.normalization, NORMALIZATIONS)
        _choice("augmentation", self.augmentation, AUGMENTATIONS)
        if self.activation is not None:
            _choice("activation", self.activation, ACTIVATIONS)
        for name in ("epochs", "batch_size", "eval_batch_size", "ema_every"):
            _positive_int(name, getattr(self, name))
        for name in ("n_train", "n_test", "step_size", "linear_epochs", "bn_shards", "eval_every_steps",
                     "schedule_lag_epochs"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        for name in ("seed", "subset_seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}={value!r} must be a whole number >= 0")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be > 0")
        if self.checkpoint_every_s is not None and not self.checkpoint_every_s > 0:
            raise ValueError(f"checkpoint_every_s={self.checkpoint_every_s!r} must be > 0, or None for every epoch")
        for name in ("momentum", "weight_decay", "min_lr", "num_workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0")
        for name in ("bias_lr_factor", "bias_weight_decay"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0, or None for the weights' setting")
        for name in ("label_smoothing", "plateau_factor", "step_gamma", "exponential_gamma", "linear_end_factor"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name}={value!r} must lie in [0, 1]")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay={self.ema_decay!r} must lie in (0, 1), or be None for no EMA")
        if (self.scheduler == "piecewise") != (self.lr_knots is not None):
            raise ValueError("scheduler='piecewise' and lr_knots go together: give both, e.g. scheduler='piecewise', "
                             f"lr_knots=((0, 0), (2, 1), (8, 0.1)); got scheduler={self.scheduler!r}, "
                             f"lr_knots={self.lr_knots!r}")
        if self.lr_knots is not None:
            epochs = [epoch for epoch, _ in self.lr_knots]
            if epochs[0] != 0 or epochs != sorted(set(epochs)) or min(f for _, f in self.lr_knots) < 0:
                raise ValueError(f"lr_knots={self.lr_knots!r} must start at epoch 0, with increasing epochs and "
                                 "factors >= 0")
        if self.schedule_lag_epochs is not None and self.scheduler in ("none", "onecycle", "piecewise"):
            raise ValueError(f"schedule_lag_epochs needs a per-epoch scheduler (plateau, step, linear, exponential, "
                             f"cosine), got scheduler={self.scheduler!r}")
        if self.plateau_metric == "test_loss_exact1000" and self.n_test is not None:
            raise ValueError("plateau_metric='test_loss_exact1000' needs the whole test set: leave n_test unset, or "
                             "use plateau_metric='test_loss'")
        if self.label_smoothing and self.loss != "cross_entropy":
            raise ValueError(f"label_smoothing needs loss='cross_entropy', got loss={self.loss!r}")
        if not isinstance(self.model_options, dict):
            raise ValueError(f"model_options must be a dict of keyword arguments, got {self.model_options!r}")
        if not self.device == "auto" and not self.device.split(":")[0] in ("cpu", "cuda", "mps"):
            raise ValueError(f"device={self.device!r} is not one of auto, cpu, cuda, cuda:N, mps")
        # Fail on an unknown model or option now rather than after data loading. Built on the meta device:
        # shapes only, no memory and no initialisation; still ~25 ms a build on a CPU, and a sweep's plan or a
        # read of the store makes hundreds of configs of a few models, so each model and options builds once.
        checked = (self.model, repr(sorted(self.model_kwargs().items())))
        if checked in _BUILT_ONCE:
            return
        import torch

        from ..models import build

        with torch.device("meta"):
            build(self.model, **self.model_kwargs())
        _BUILT_ONCE.add(checked)

    def model_kwargs(self) -> dict[str, Any]:
        options = dict(self.model_options)
        if self.activation is not None:
            options["activation"] = self.activation
        return options

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**values)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def key(self) -> str:
        """A short hash of the fields that define what the run measures (not how fast it runs)."""
        # Unset optional features (None) are dropped, so adding a new optional field keeps old keys valid.
        experiment = {
            k: v for k, v in self.to_dict().items()
            if k not in EXECUTION_FIELDS and v is not None and not (k in KEY_NEUTRAL_DEFAULTS and v == KEY_NEUTRAL_DEFAULTS[k])
        }
        text = json.dumps(experiment, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


TRAIN_CONFIG_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {', '.join(choices)}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
