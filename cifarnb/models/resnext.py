"""ResNeXt-29 (Xie et al. 2017, "Aggregated residual transformations for deep neural networks").

CIFAR layout of the paper's section 5.3: a 3x3 conv stem with 64 channels,
then three stages of three bottleneck blocks on 32, 16 and 8 pixel maps
(29 = 3 stages x 3 blocks x 3 layers + stem + classifier), global average
pooling and a linear layer. Each block is 1x1 conv -> grouped 3x3 conv
(`cardinality` groups) -> 1x1 conv, with a BN after every conv.

The report's resnext29_{2x32d, 2x64d, 32x4d} follow kuangliu/pytorch-cifar:
the grouped width is cardinality x bottleneck width x 2**stage and a block
outputs twice that, and the stem conv is 1x1 (kuangliu's quirk, kept because
the report's 4.77 M for 32x4d needs it: a 3x3 stem gives 4.78 M). Checked layer
by layer against the report's code (models/resnext.py, `ResNeXt_3`): the same,
1x1 stem included.
`ResNeXt` also takes a `make_gate` factory so that geresnext.py can put a
Gather-Excite gate on the residual branch, and an `init` (`layers.INITS`): the
report's resnext.py keeps PyTorch's default, its genet.py re-initialises every
conv He-normal.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from ._registry import register
from .layers import conv1x1, conv3x3, initialise, make_activation

# (channels, spatial size) -> module applied to the residual branch before the addition.
GateFactory = Callable[[int, int], nn.Module]


class ResNeXtBlock(nn.Module):
    def __init__(
        self,
        in_channels: int,
        group_width: int,
        out_channels: int,
        cardinality: int,
        stride: int,
        activation: str,
        gate: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv1x1(in_channels, group_width), nn.BatchNorm2d(group_width)
        self.act1 = make_activation(activation)
        self.conv2 = conv3x3(group_width, group_width, stride, groups=cardinality)
        self.bn2, self.act2 = nn.BatchNorm2d(group_width), make_activation(activation)
        self.conv3, self.bn3 = conv1x1(group_width, out_channels), nn.BatchNorm2d(out_channels)
        self.gate = gate if gate is not None else nn.Identity()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            projection = conv1x1(in_channels, out_channels, stride)
            self.shortcut = nn.Sequential(projection, nn.BatchNorm2d(out_channels))
        self.act3 = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.gate(self.bn3(self.conv3(out)))
        return self.act3(out + self.shortcut(x))


class ResNeXt(nn.Module):
    def __init__(
        self,
        cardinality: int,
        group_widths: tuple[int, int, int],
        out_widths: tuple[int, int, int],
        num_classes: int = 10,
        activation: str = "relu",
        blocks_per_stage: int = 3,
        stem_kernel_size: int = 3,
        make_gate: GateFactory | None = None,
        init: str = "default",
    ) -> None:
        super().__init__()
        stem_conv = nn.Conv2d(3, 64, stem_kernel_size, padding=stem_kernel_size // 2, bias=False)
        self.stem = nn.Sequential(stem_conv, nn.BatchNorm2d(64), make_activation(activation))
        in_channels, stages = 64, []
        for group_width, out_channels, stride, size in zip(group_widths, out_widths, (1, 2, 2), (32, 16, 8)):
            stage = []
            for index in range(blocks_per_stage):
                gate = make_gate(out_channels, size) if make_gate is not None else None
                stage.append(ResNeXtBlock(
                    in_channels, group_width, out_channels, cardinality,
                    stride if index == 0 else 1, activation, gate,
                ))
                in_channels = out_channels
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_channels, num_classes)
        initialise(self, init)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.linear(self.pool(x).flatten(1))

    def feature_layers(self) -> dict[str, nn.Module]:
        return {"conv1": self.stem, "conv2": self.layer1[0].act1}


def kuangliu_resnext29(cardinality: int, bottleneck_width: int, num_classes: int, activation: str) -> ResNeXt:
    group_widths = tuple(cardinality * bottleneck_width * 2**stage for stage in range(3))
    out_widths = tuple(2 * width for width in group_widths)
    return ResNeXt(cardinality, group_widths, out_widths, num_classes, activation, stem_kernel_size=1)


@register
def resnext29_2x32d(num_classes: int = 10, *, activation: str = "relu") -> ResNeXt:
    return kuangliu_resnext29(2, 32, num_classes, activation)


@register
def resnext29_2x64d(num_classes: int = 10, *, activation: str = "relu") -> ResNeXt:
    return kuangliu_resnext29(2, 64, num_classes, activation)


@register
def resnext29_32x4d(num_classes: int = 10, *, activation: str = "relu") -> ResNeXt:
    return kuangliu_resnext29(32, 4, num_classes, activation)
