"""Forward cost and size of every model in cifarnb.models.

    python benchmarks/flops.py

Prints, per model, the multiply-accumulates (MACs) of one forward pass on one
3x32x32 image, in units of 1e9 ("GFLOPs" in the multiply-add convention of
most CNN papers; torch.utils.flop_counter.FlopCounterMode would report twice
these numbers, since it counts a multiply and an add as two FLOPs), and the
parameter count. Only Conv2d and Linear layers are counted, via forward hooks;
BatchNorm, activations, pooling, additions and concatenations are left out.
Models are built and run on the "meta" device, which propagates shapes without
allocating or computing anything, so the whole table takes seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from cifarnb import models  # noqa: E402


def count_macs(model: nn.Module, image_size: int = 32) -> int:
    """Conv2d + Linear multiply-accumulates of one forward pass on one image."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kernel_h, kernel_w = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kernel_h * kernel_w

    def linear_hook(module: nn.Linear, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    device = next(model.parameters()).device
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, image_size, image_size, device=device))
    for handle in handles:
        handle.remove()
    return total


def training_flops(model: str, **options) -> float:
    """FLOPs of training on one image: forward + backward ~ 3 forward passes, 2 FLOPs per multiply-add (the
    numerator of the probe's MFU; torch.utils.flop_counter counts the same Conv2d and Linear work)."""
    with torch.device("meta"):
        network = models.build(model, **options)
    return 6.0 * count_macs(network)


def main() -> None:
    print(f"{'model':<20} {'GMACs/image':>12} {'params':>12} {'params (M)':>11}")
    for name in models.list_models():
        with torch.device("meta"):
            model = models.build(name)
        macs, params = count_macs(model), models.count_parameters(model)
        print(f"{name:<20} {macs / 1e9:>12.3f} {params:>12,d} {params / 1e6:>11.2f}")


if __name__ == "__main__":
    main()
