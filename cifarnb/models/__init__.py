"""Model zoo for 3x32x32 CIFAR-10 images.

    >>> from cifarnb import models
    >>> net = models.build("resnet18", activation="gelu")
    >>> models.count_parameters(net)
    11173962

Names are case-insensitive, so the report's spellings ("ResNet18",
"GeResNeXt29_8x64d", "FastResNet9") work. Each family lives in its own module
and registers its factories with `@register` (the function's name is the model's; the module's name is its
family, `model_family(name)`); importing this package imports them all, and checks them against the torch-free
list `cifarnb.names.MODEL_FAMILIES` that the command line's help reads.

`feature_layers(model)` gives the modules whose forward-hook outputs are the
feature maps of the model's first two convolutions, after BatchNorm and
activation where the architecture has them (report section 1.4.4). Per family:

- lenet5, alexnet, vgg_a, vgg_a_bn: the activations after conv1 and conv2
  (`features.act1`, `features.act2`).
- resnet18/34/50, resnext29_*, geresnext29_8x64d: "conv1" is the stem
  (conv3x3 + BN + act); "conv2" is the activation after the first conv of
  the first block of stage 1 (`layer1[0].act1`).
- resnet9, fastresnet9: "conv1" is the prep block, "conv2" the first conv
  block of layer1 (`layer1.conv`), both conv + BN + act (+ max-pool in
  layer1, 128x16x16). Hooking whole blocks keeps the two models comparable:
  both give the map after activation and pooling, whatever their order.
- densenet100_bc, densenet121, wideresnet16x8, wideresnet28x10: these are
  pre-activation networks, so a conv's output is first activated by the next
  layer. "conv1" is the first BN + act applied to the stem conv's output
  (`...act1` of the first dense layer / residual block) and "conv2" the
  BN + act applied to the output of that layer's first conv (`...act2`).
"""

from __future__ import annotations

from torch import nn

# Importing the family modules runs their @register decorators.
from . import alexnet, densenet, geresnext, lenet, resnet, resnet9, resnext, vgg, wideresnet  # noqa: F401
from ._registry import build, check_complete, list_models, model_family, model_options, register
from .layers import shard_batchnorm

check_complete()  # every model cifarnb.names lists (the command line's help) is registered

__all__ = ["build", "list_models", "model_family", "model_options", "register", "feature_layers",
           "count_parameters", "init_from_data", "shard_batchnorm"]


def feature_layers(model: nn.Module) -> dict[str, nn.Module]:
    """{"conv1": module, "conv2": module}, in forward order; see the module docstring."""
    # Look through wrappers such as DataParallel (.module) and torch.compile (._orig_mod).
    for attribute in ("_orig_mod", "module"):
        inner = getattr(model, attribute, None)
        if isinstance(inner, nn.Module):
            return feature_layers(inner)
    if not hasattr(model, "feature_layers"):
        raise TypeError(f"{type(model).__name__} is not a cifarnb model: it has no feature_layers()")
    return model.feature_layers()


def init_from_data(model: nn.Module, images, mean, std) -> int:
    """Set the layers of ``model`` that are computed from the training data rather than trained (FastResNet9's
    :class:`~cifarnb.models.resnet9.PatchWhitening`), from ``images`` (uint8 N x C x H x W) normalised by
    ``mean``/``std``; before the first step. Returns how many layers it set (0: the model has none)."""
    layers = [module for module in model.modules() if hasattr(module, "init_from_data")]
    for layer in layers:
        layer.init_from_data(images, mean, std)
    return len(layers)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
