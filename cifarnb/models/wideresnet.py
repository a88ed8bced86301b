"""Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016, "Wide residual networks").

The paper's CIFAR network: a 3x3 conv with 16 channels, three stages of
(d - 4) / 6 pre-activation blocks with 16k, 32k and 64k channels on 32, 16 and
8 pixel maps, then BN-act, global average pooling and a linear layer. A block
is BN-act-conv3x3-BN-act-[dropout]-conv3x3 (figure 1d: dropout between the
convolutions, only when `dropout` > 0) and a 1x1 conv shortcut where the shape
changes. Convolutions carry biases, as in the report's code (models/wideresnet.py):
that is what gives the report's 10.97 M / 36.49 M (bias-free convs give 10.96 M / 36.48 M).

`projection_input`: what the 1x1 shortcut convolves. "block_input" is the report's
code (models/wideresnet.py: `self.shortcut(x)`, the raw input of the block);
"activated" is the first BN-act output, as the WRN authors' code
(szagoruyko/wide-residual-networks) feeds it and as our first reading did. Only
the blocks that change the shape differ: the identity shortcut adds the raw input
in both.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._registry import register
from .layers import conv1x1, conv3x3, make_activation

PROJECTION_INPUTS = ("activated", "block_input")


class WideBlock(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, stride: int, dropout: float, activation: str,
        projection_input: str = "activated",
    ) -> None:
        super().__init__()
        if projection_input not in PROJECTION_INPUTS:
            raise ValueError(f"projection_input={projection_input!r} is not one of {', '.join(PROJECTION_INPUTS)}")
        self.projection_input = projection_input
        self.bn1, self.act1 = nn.BatchNorm2d(in_channels), make_activation(activation)
        self.conv1 = conv3x3(in_channels, out_channels, stride, bias=True)
        self.bn2, self.act2 = nn.BatchNorm2d(out_channels), make_activation(activation)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = conv3x3(out_channels, out_channels, bias=True)
        self.projection = None
        if stride != 1 or in_channels != out_channels:
            self.projection = conv1x1(in_channels, out_channels, stride, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        activated = self.act1(self.bn1(x))
        out = self.conv1(activated)
        out = self.conv2(self.dropout(self.act2(self.bn2(out))))
        if self.projection is None:
            return out + x
        return out + self.projection(x if self.projection_input == "block_input" else activated)


class WideResNet(nn.Module):
    def __init__(
        self,
        depth: int,
        widen_factor: int,
        num_classes: int = 10,
        dropout: float = 0.0,
        activation: str = "relu",
        projection_input: str = "activated",
    ) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WRN depth must be 6n + 4, got {depth}")
        blocks = (depth - 4) // 6
        self.stem = conv3x3(3, 16, bias=True)
        in_channels, stages = 16, []
        for width, stride in zip((16 * widen_factor, 32 * widen_factor, 64 * widen_factor), (1, 2, 2)):
            stage = []
            for index in range(blocks):
                stage.append(WideBlock(in_channels, width, stride if index == 0 else 1, dropout, activation,
                                       projection_input))
                in_channels = width
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = stages
        self.head = nn.Sequential(
            nn.BatchNorm2d(in_channels), make_activation(activation), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.linear = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.linear(self.head(x))

    def feature_layers(self) -> dict[str, nn.Module]:
        return {"conv1": self.layer1[0].act1, "conv2": self.layer1[0].act2}


@register
def wideresnet16x8(num_classes: int = 10, *, dropout: float = 0.0, activation: str = "relu",
                   projection_input: str = "activated") -> WideResNet:
    return WideResNet(16, 8, num_classes, dropout, activation, projection_input)


@register
def wideresnet28x10(num_classes: int = 10, *, dropout: float = 0.0, activation: str = "relu",
                    projection_input: str = "activated") -> WideResNet:
    return WideResNet(28, 10, num_classes, dropout, activation, projection_input)
