"""Named training recipes: ``TrainConfig`` presets built from the report's settings (:mod:`cifarnb.settings`).

    >>> from cifarnb.study import recipes
    >>> recipes.get("report", model="resnet9")    # the report's settings for one model
    >>> recipes.get("fast")                       # FastResNet9 to 94% in seconds on one GPU
    >>> recipes.get("fast", epochs=12, seed=3)    # any TrainConfig field can be overridden

``report``         the report's settings, as its code trains each model: Table 6 for the zoo (main.py, BN as
                   nn.DataParallel on 4 GPUs runs it), lr 0.01 for ResNet9 (1.4.1), and FastResNet9 as
                   main_fastresnet9.py builds and trains it (``settings.FASTRESNET9_TRAINING``).
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

import functools
from typing import Any, Callable

# Torch-free at import (torch and the models load when a recipe is built): the command line's `train --help` lists
# the recipes and their summaries without importing torch.
from .settings import (DATA_PARALLEL_GPUS, FASTRESNET9_MODEL, FASTRESNET9_TRAINING, LABEL_SMOOTHING,
                       REPORT_BATCH_SIZE, REPORT_EPOCHS, RESNET9_LR, RESNET9_MODEL, ZOO_MODEL_OPTIONS, ZOO_SETTINGS)
from ..train import TrainConfig

RESNET9_FAMILY = ("resnet9", "fastresnet9")  # report 1.4.1: ResNet9 (and FastResNet9, built on it) start at 0.01


def report(model: str = "resnet18", **overrides: Any) -> TrainConfig:
    """The report's settings for any model of the zoo, 200 epochs, as the report's code trains it.

    Table 6 (main.py: SGD, momentum 0.9, lr 0.1, weight decay 5e-4, ReduceLROnPlateau(factor 0.5, patience 5,
    cooldown 5, min_lr 1e-6) on the test loss, batch 128, cross-entropy, BatchNorm as nn.DataParallel on 4 GPUs
    runs it); each model as the code builds it (``settings.ZOO_MODEL_OPTIONS``: WideResNets with dropout 0.5 and
    the raw block input into the projection shortcut, the code's He-normal init for DenseNet100-BC and
    GeResNeXt29); ResNet9 at lr 0.01 (1.4.1); FastResNet9 as main_fastresnet9.py builds
    and trains it (:data:`cifarnb.study.settings.FASTRESNET9_TRAINING`).
    """
    name = model.lower()
    if name == "fastresnet9":
        return _configured(dict(FASTRESNET9_TRAINING, model=name, epochs=REPORT_EPOCHS,
                                model_options=dict(FASTRESNET9_MODEL)), overrides)
    return plain(name, **overrides)


def plain(model: str = "resnet18", **overrides: Any) -> TrainConfig:
    """Table 6's plain recipe (main.py) for any model, 200 epochs (see :func:`report`).

    ResNet9 and FastResNet9 start at lr 0.01 (report 1.4.1) and are the report's code's models; FastResNet9 also
    gets the two of its four tricks that live in training rather than in the model (1.4.2): label smoothing and
    flip TTA. Pool-before-BN and ghost BN are the ``fastresnet9`` model itself. A model with plain BatchNorm
    layers normalises as main.py's nn.DataParallel on 4 GPUs does (``bn_shards``); ghost BN keeps its ghosts.
    """
    name = model.lower()
    settings: dict[str, Any] = dict(model=name, epochs=REPORT_EPOCHS, batch_size=REPORT_BATCH_SIZE, **ZOO_SETTINGS)
    options: dict[str, Any] = {}
    if name == "resnet9":
        settings["lr"] = RESNET9_LR
        options.update(RESNET9_MODEL)
    if name == "fastresnet9":
        settings.update(lr=RESNET9_LR, label_smoothing=LABEL_SMOOTHING, tta_flip=True)
        options.update(FASTRESNET9_MODEL)
    options.update(ZOO_MODEL_OPTIONS.get(name, {}))
    if options:
        settings["model_options"] = options
    if has_plain_batchnorm(name, options):
        settings["bn_shards"] = DATA_PARALLEL_GPUS
    return _configured(settings, overrides)


@functools.cache
def _plain_batchnorm(name: str, options: tuple) -> bool:
    import torch

    from .. import models

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        network = models.build(name, **dict(options))
    return any(type(module) in (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d) for module in network.modules())


def has_plain_batchnorm(model: str, options: dict | None = None) -> bool:
    """Whether ``model`` (with ``options``) has BatchNorm layers that nn.DataParallel would split (ghost BN
    layers keep their own ghost batches)."""
    return _plain_batchnorm(model.lower(), tuple(sorted((options or {}).items())))


def fast(model: str = "fastresnet9", compile: bool | None = None, **overrides: Any) -> TrainConfig:
    """FastResNet9 to 94% test accuracy in seconds on one GPU: the report's FastResNet9 (``report("fastresnet9")``
    for 10 epochs, the bag-of-tricks training) with every execution speed step on.

    ``compile`` None means "on where CUDA is available" (compilation pays for itself only on a GPU); like every
    execution field it is left out of the run's key. ``model=`` runs another model of the zoo the same way (its
    :func:`report` settings for 10 epochs).
    """
    speed = {**_fast_execution(compile),
             "eval_batch_size": 2000}  # evaluation in batches of 2,000: fewer launches
    return report(model, **{"epochs": FASTRESNET9_TRAINING["epochs"], **speed, **overrides})


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
                epochs=min(FASTRESNET9_TRAINING["epochs"], profile.resnet9_epochs),
                batch_size=profile.batch(FASTRESNET9_TRAINING["batch_size"]), device=profile.device,
                data_root=profile.data_root)


RECIPES: dict[str, Callable[..., TrainConfig]] = {
    "report": report,
    "plain": plain,
    "fast": fast,
    "fast_resnet18": fast_resnet18,
}


# What each recipe trains, in a line (the command line's `train --help` shows them).
SUMMARIES: dict[str, str] = {
    "report": "each model as the report's code builds and trains it, 200 epochs, the same run (the same key) as the "
              "sweep's: Table 6 for the zoo (lr 0.1, plateau on the test loss, BN as DataParallel on 4 GPUs, the "
              "code's WideResNet dropout and shortcut, He-normal DenseNet100-BC and GeResNeXt29), ResNet9 at lr "
              "0.01 without a head bias, FastResNet9 as main_fastresnet9.py",
    "plain": "Table 6's plain recipe for any model, 200 epochs (the zoo as 'report'; ResNet9 and FastResNet9 at lr "
             "0.01, FastResNet9's model with label smoothing and flip TTA)",
    "fast": "'report' for 10 epochs with every execution speed step on (FastResNet9 by default: the report's "
            "FastResNet9 at 10 epochs, the same key)",
    "fast_resnet18": "'report' ResNet18 (the same key) with every execution speed step on",
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
    import torch

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
