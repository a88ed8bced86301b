"""Named training recipes: ``TrainConfig`` presets built from the report's settings (:mod:`cifarnb.settings`).

    >>> from cifarnb.study import recipes
    >>> recipes.get("report", model="resnet9")    # the report's settings for one model
    >>> recipes.get("fast")                       # FastResNet9 to 94% in seconds on one GPU
    >>> recipes.get("fast", epochs=12, seed=3)    # any TrainConfig field can be overridden

``report``         the report's settings: Table 6 for the zoo, lr 0.01 for ResNet9 (1.4.1), and for FastResNet9 the
                   bag-of-tricks training its 1.4.2 comes from (``settings.BAG_OF_TRICKS``).
``plain``          Table 6's plain recipe for any model, FastResNet9 included (lr 0.01 for the ResNet9 family, label
                   smoothing and flip TTA for FastResNet9): the second, labelled reading of the report's 1.4.
``fast``           the report's FastResNet9 for 10 epochs on the fast execution path (bf16, channels_last,
                   compiled, data on the GPU): the same experiment, so the same key, as ``report("fastresnet9")``
                   at 10 epochs.
``fast_resnet18``  ResNet18 at the report's settings, unchanged, on the fast execution path.

A recipe fixes *what* is trained; execution fields (``device``, ``loader``, ``precision``, ``channels_last``,
``compile``, ...) only change how fast, and are left out of a run's key (``TrainConfig.key``), so a fast
recipe's run and the same run made slowly are the same experiment.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .settings import (BAG_OF_TRICKS, LABEL_SMOOTHING, REPORT_BATCH_SIZE, REPORT_EPOCHS, RESNET9_LR,
                       WIDERESNET_DROPOUT, ZOO_SETTINGS)
from ..train import TrainConfig

RESNET9_FAMILY = ("resnet9", "fastresnet9")  # report 1.4.1: ResNet9 (and FastResNet9, built on it) start at 0.01
WIDERESNETS = ("wideresnet16x8", "wideresnet28x10")


def report(model: str = "resnet18", **overrides: Any) -> TrainConfig:
    """The report's settings for any model of the zoo, 200 epochs.

    Table 6 (SGD, momentum 0.9, lr 0.1, weight decay 5e-4, ReduceLROnPlateau(factor 0.5, patience 5, cooldown 5,
    min_lr 1e-6), batch 128, cross-entropy); WideResNets with dropout 0.3; ResNet9 at lr 0.01 (1.4.1);
    FastResNet9 with the bag-of-tricks training of 1.4.2 (:data:`cifarnb.settings.BAG_OF_TRICKS`).
    """
    name = model.lower()
    if name == "fastresnet9":
        return _configured(dict(BAG_OF_TRICKS, model=name, epochs=REPORT_EPOCHS), overrides)
    return plain(name, **overrides)


def plain(model: str = "resnet18", **overrides: Any) -> TrainConfig:
    """Table 6's plain recipe for any model, 200 epochs (see :func:`report`).

    ResNet9 and FastResNet9 start at lr 0.01 (report 1.4.1); FastResNet9 also gets the two of its four tricks
    that live in training rather than in the model (1.4.2): label smoothing and flip TTA. Pool-before-BN and
    ghost BN are the ``fastresnet9`` model itself.
    """
    name = model.lower()
    settings: dict[str, Any] = dict(model=name, epochs=REPORT_EPOCHS, batch_size=REPORT_BATCH_SIZE, **ZOO_SETTINGS)
    if name in RESNET9_FAMILY:
        settings["lr"] = RESNET9_LR
    if name == "fastresnet9":
        settings.update(label_smoothing=LABEL_SMOOTHING, tta_flip=True)
    if name in WIDERESNETS:
        settings["model_options"] = {"dropout": WIDERESNET_DROPOUT}
    return _configured(settings, overrides)


def fast(model: str = "fastresnet9", compile: bool | None = None, **overrides: Any) -> TrainConfig:
    """FastResNet9 to 94% test accuracy in seconds on one GPU: the report's FastResNet9 (``report("fastresnet9")``
    for 10 epochs, the bag-of-tricks training) with every execution speed step on.

    ``compile`` None means "on where CUDA is available" (compilation pays for itself only on a GPU); like every
    execution field it is left out of the run's key. ``model=`` runs another model of the zoo the same way (its
    :func:`report` settings for 10 epochs).
    """
    speed = {**_fast_execution(compile),
             "eval_batch_size": 2000}  # evaluation in batches of 2,000: fewer launches
    return report(model, **{"epochs": BAG_OF_TRICKS["epochs"], **speed, **overrides})


def fast_resnet18(compile: bool | None = None, **overrides: Any) -> TrainConfig:
    """ResNet18 at the report's settings (``report("resnet18")``: batch 128, lr 0.1, plateau, 200 epochs), run
    the fast way: data on the device, bf16 autocast, channels_last, cuDNN autotuning, torch.compile on CUDA.

    Nothing that defines the experiment changes (the run's key equals ``report("resnet18")``'s); bf16 changes
    the arithmetic, which is why the GPU check compares its accuracy with the report's. ``model=`` runs another
    zoo model the same way.
    """
    settings = {"model": "resnet18", **_fast_execution(compile), **overrides}
    return report(settings.pop("model"), **settings)


def fast_for_profile(profile) -> TrainConfig:
    """The ``fast`` recipe sized for a run profile (its data subset; at most the recipe's 10 epochs), on the
    profile's device and data folder."""
    return fast(n_train=profile.n_train, n_test=profile.n_test,
                epochs=min(BAG_OF_TRICKS["epochs"], profile.resnet9_epochs),
                device=profile.device, data_root=profile.data_root)


RECIPES: dict[str, Callable[..., TrainConfig]] = {
    "report": report,
    "plain": plain,
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


def _fast_execution(compile: bool | None) -> dict[str, Any]:
    """The fast path's execution fields (none of them part of a run's key), each with the speed it buys."""
    return dict(
        # Data resident on the device and augmented there (tensor loader): no per-image Python work, no copies.
        loader="tensor",
        # bf16 autocast on CUDA: tensor-core matmuls/convolutions at twice fp32's throughput or more.
        precision="auto",
        # channels_last: the memory layout cuDNN's tensor-core convolutions use without transposing.
        channels_last=True,
        # cuDNN times its convolution algorithms once per shape and keeps the fastest.
        cudnn_benchmark=True,
        # torch.compile, on where CUDA is (None): BN, activation and pooling fused into few kernels, one graph.
        compile=torch.cuda.is_available() if compile is None else bool(compile),
    )


def _configured(settings: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    return TrainConfig(**{**settings, **overrides})
