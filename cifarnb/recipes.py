"""Named training recipes: ``TrainConfig`` presets, each choice with its reason.

    >>> from cifarnb import recipes
    >>> recipes.get("report", model="resnet9")    # the report's plain settings for one model
    >>> recipes.get("fast")                       # FastResNet9 to 94% in seconds on one GPU
    >>> recipes.get("fast", epochs=12, seed=3)    # any TrainConfig field can be overridden

``report``         the report's settings, unchanged (Table 6; 1.4.1 for ResNet9; 1.4.2 for FastResNet9).
``fast``           FastResNet9 with the report's four tricks plus the short-schedule, large-batch training of
                   Page's ResNet9, on the fast execution path (bf16, channels_last, compiled, data on the GPU).
``fast_resnet18``  ResNet18 at the report's settings, unchanged, on the fast execution path.

A recipe fixes *what* is trained; execution fields (``device``, ``loader``, ``precision``, ``channels_last``,
``compile``, ...) only change how fast, and are left out of a run's key (``TrainConfig.key``), so a fast
recipe's run and the same run made slowly are the same experiment.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .experiments import LABEL_SMOOTHING, RESNET9_LR, ZOO_SETTINGS
from .train import TrainConfig

# The report's epochs for the model zoo and ResNet9 tables (Table 6).
REPORT_EPOCHS = 200
REPORT_BATCH_SIZE = 128
RESNET9_FAMILY = ("resnet9", "fastresnet9")  # report 1.4.1: ResNet9 (and FastResNet9, built on it) start at 0.01


def report(model: str = "resnet18", **overrides: Any) -> TrainConfig:
    """The report's plain settings (Table 6) for any model of the zoo.

    SGD with momentum 0.9, lr 0.1, weight decay 5e-4, ReduceLROnPlateau(factor 0.5, patience 5, cooldown 5,
    min_lr 1e-6), batch 128, cross-entropy, 200 epochs. ResNet9 starts at lr 0.01 (report 1.4.1), and so does
    FastResNet9, which 1.4.2 builds from it. FastResNet9 also gets the two of its four tricks that live in
    training rather than in the model (1.4.2): label smoothing (0.2, see ``experiments.LABEL_SMOOTHING``) and
    flip test-time augmentation; pool-before-BN and ghost BN are the ``fastresnet9`` model itself.
    """
    name = model.lower()
    settings: dict[str, Any] = dict(
        model=name, epochs=REPORT_EPOCHS, batch_size=REPORT_BATCH_SIZE, **ZOO_SETTINGS,
    )
    if name in RESNET9_FAMILY:
        settings["lr"] = RESNET9_LR
    if name == "fastresnet9":
        settings.update(label_smoothing=LABEL_SMOOTHING, tta_flip=True)
    return _configured(settings, overrides)


def fast(compile: bool | None = None, **overrides: Any) -> TrainConfig:
    """FastResNet9 to 94% test accuracy in seconds on one GPU (target: <= 5 s of training on an H100).

    ``compile`` None means "on where CUDA is available" (compilation pays for itself only on a GPU); it is an
    execution field, so the run's key is the same either way.
    """
    settings: dict[str, Any] = dict(
        # The report's four tricks (1.4.2): pool before BN and ghost BN (batches of 32) are what the fastresnet9
        # model is; label smoothing and flip TTA are set below.
        model="fastresnet9",
        # Page's ResNet9 scales the logits by 1/8: the softmax starts near uniform and the last layer's
        # effective step is smaller, which keeps the high peak learning rate below stable.
        model_options={"logit_scale": 0.125},
        # Short schedule: the report's FastResNet9 reads 94.03% at epoch 10; the warm-up/decay schedule below
        # is what makes stopping there an ending rather than an interruption.
        epochs=10,
        # Batch 512 (Page): four times fewer steps than 128, so four times fewer kernel launches and optimizer
        # updates per epoch, and each convolution gets enough work to fill the GPU. Ghost BN keeps normalising
        # over 32 images, so BatchNorm's regularisation stays what it was at small batches.
        batch_size=512,
        # lr 0.4 for batch 512 with a mean loss (Page's 0.4 with summed loss and lr/512 is the same step).
        # Nesterov momentum 0.9 and weight decay 5e-4 (5e-4 x 512 on a summed loss in Page's code) as there.
        lr=0.4,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        optimizer="sgd",
        # Warm-up then linear decay (onecycle, linear annealing, momentum not cycled): lr rises from lr/25 to
        # 0.4 over the first 20% of steps (Page: 0 -> 0.4 over the first 5 of 24 epochs), then falls linearly to
        # ~0, so the last epochs settle the weights. The report's plateau schedule never lowers lr in 10 epochs.
        scheduler="onecycle",
        onecycle_pct_start=0.2,
        # Label smoothing 0.2 (report trick 2; Page's value).
        loss="cross_entropy",
        label_smoothing=LABEL_SMOOTHING,
        # Flip TTA (report trick 4): average the logits of each test image and its mirror image.
        tta_flip=True,
        # No EMA of the weights: with lr decaying linearly to ~0, the final weights already are the average of
        # the last steps, and an EMA short enough for 10 epochs would add an update per step for little.
        # ``fast(ema_decay=0.99)`` tries it.
        ema_decay=None,
        # Execution, none of it part of the run's key: data resident on the device and augmented there (tensor
        # loader); bf16 autocast on CUDA (precision auto); channels_last (the layout tensor cores want);
        # cuDNN autotuning; torch.compile on CUDA. Evaluation in batches of 2,000 (fewer launches).
        loader="tensor",
        precision="auto",
        channels_last=True,
        cudnn_benchmark=True,
        compile=_compile_default(compile),
        eval_batch_size=2000,
    )
    return _configured(settings, overrides)


def fast_resnet18(compile: bool | None = None, **overrides: Any) -> TrainConfig:
    """ResNet18 at the report's settings (``report("resnet18")``: batch 128, lr 0.1, plateau, 200 epochs), run
    the fast way: data on the device, bf16 autocast, channels_last, cuDNN autotuning, torch.compile on CUDA.

    Nothing that defines the experiment changes (the run's key equals ``report("resnet18")``'s); bf16 changes
    the arithmetic, which is why the GPU check compares its accuracy with the report's. ``model=`` runs another
    zoo model the same way.
    """
    settings = dict(model="resnet18", loader="tensor", precision="auto", channels_last=True, cudnn_benchmark=True,
                    compile=_compile_default(compile))
    settings.update(overrides)
    return report(settings.pop("model"), **settings)


def fast_for_profile(profile) -> TrainConfig:
    """The ``fast`` recipe sized for a run profile (its data subset; at most the recipe's 10 epochs)."""
    return fast(n_train=profile.n_train, n_test=profile.n_test, epochs=min(10, profile.resnet9_epochs))


RECIPES: dict[str, Callable[..., TrainConfig]] = {
    "report": report,
    "fast": fast,
    "fast_resnet18": fast_resnet18,
}


def list_recipes() -> list[str]:
    return sorted(RECIPES)


def get(name: str, **overrides: Any) -> TrainConfig:
    """The recipe ``name`` with ``overrides`` (TrainConfig fields, or the recipe's own arguments) applied."""
    try:
        recipe = RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; valid names: {', '.join(list_recipes())}") from None
    return recipe(**overrides)


def _compile_default(compile: bool | None) -> bool:
    return torch.cuda.is_available() if compile is None else bool(compile)


def _configured(settings: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    return TrainConfig(**{**settings, **overrides})
