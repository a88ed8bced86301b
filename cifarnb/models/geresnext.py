"""GE-ResNeXt-29 8x64d: ResNeXt-29 with Gather-Excite gates (Hu et al. 2018,
"Gather-Excite: exploiting feature context in convolutional neural networks").

The trunk is the ResNeXt paper's CIFAR ResNeXt-29 8x64d (block outputs 256,
512, 1024; grouped widths 512, 1024, 2048; 34.43 M parameters), as in
BIGBALLON/CIFAR-ZOO, whose `ge_resnext29_8x64d` the report trained. Every
block's residual branch is gated before the addition by GE-theta-plus with
global extent: the gather is a depthwise conv whose kernel covers the whole
map (32, 16 or 8 pixels) + BN, the excite is an SE-style 1x1-conv MLP with
reduction 16, and a sigmoid of the result rescales each channel. This variant
adds 1.90 M parameters, 36.33 M in total, which is the report's figure;
the same gather without the MLP (GE-theta, 35.81 M) and the parameter-free
GE-theta-minus (34.43 M) are not.

Checked against the report's code (models/genet.py, `GeResNeXt29_8x64d`): the same
stem (3x3 conv 64 + BN + ReLU), blocks, gate (depthwise conv over the whole map +
BN, 1x1 conv MLP with reduction 16 and ReLU, sigmoid; its "interpolate" back to the
1x1 size it already has is the broadcast here) and head. genet.py re-initialises
every convolution He-normal: `init="kaiming_normal"` (`settings.ZOO_MODEL_OPTIONS`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._registry import register
from .layers import make_activation
from .resnext import ResNeXt


class GatherExcite(nn.Module):
    """GE-theta-plus with global extent: x * sigmoid(mlp(bn(depthwise_conv(x))))."""

    def __init__(
        self, channels: int, spatial_size: int, reduction: int = 16, activation: str = "relu"
    ) -> None:
        super().__init__()
        self.gather = nn.Sequential(
            nn.Conv2d(channels, channels, spatial_size, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.excite = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1, bias=False),
            make_activation(activation),
            nn.Conv2d(channels // reduction, channels, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        # With global extent the gathered context is 1x1, so the paper's
        # nearest-neighbour "interpolate back" step is just broadcasting.
        return x * torch.sigmoid(self.excite(self.gather(x)))


@register
def geresnext29_8x64d(num_classes: int = 10, *, activation: str = "relu", ge_reduction: int = 16,
                      init: str = "default") -> ResNeXt:
    def make_gate(channels: int, spatial_size: int) -> nn.Module:
        return GatherExcite(channels, spatial_size, ge_reduction, activation)

    return ResNeXt(8, (512, 1024, 2048), (256, 512, 1024), num_classes, activation, make_gate=make_gate, init=init)
