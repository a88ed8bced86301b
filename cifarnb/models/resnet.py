"""ResNet-18/34/50 (He et al. 2016, "Deep residual learning for image recognition").

CIFAR adaptation as in kuangliu/pytorch-cifar and the report's section 1.3:
the ImageNet stem (7x7/2 conv + 3x3/2 max-pool) becomes a 3x3 stride-1 conv,
so the four stages (64, 128, 256, 512 channels x expansion) work on 32, 16, 8
and 4 pixel maps; global average pooling and one linear layer follow.
Projection shortcuts (1x1 conv + BN, on the block's input) are used wherever the
shape changes. Checked layer by layer against the report's code (models/resnet.py):
the same, its activation option included (every activation of the basic block and
the stem; global average pooling is its avg_pool2d(4) on the 4x4 map).
"""

from __future__ import annotations

from torch import Tensor, nn

from ._registry import register
from .layers import conv1x1, conv3x3, make_activation


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int, activation: str) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv3x3(in_channels, planes, stride), nn.BatchNorm2d(planes)
        self.act1 = make_activation(activation)
        self.conv2, self.bn2 = conv3x3(planes, planes), nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_channels, planes, stride)
        self.act2 = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int, activation: str) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1, self.bn1 = conv1x1(in_channels, planes), nn.BatchNorm2d(planes)
        self.act1 = make_activation(activation)
        self.conv2, self.bn2 = conv3x3(planes, planes, stride), nn.BatchNorm2d(planes)
        self.act2 = make_activation(activation)
        self.conv3, self.bn3 = conv1x1(planes, out_channels), nn.BatchNorm2d(out_channels)
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.act3 = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act3(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        blocks_per_stage: tuple[int, int, int, int],
        num_classes: int = 10,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv3x3(3, 64), nn.BatchNorm2d(64), make_activation(activation))
        in_channels = 64
        stages = []
        for planes, blocks, stride in zip((64, 128, 256, 512), blocks_per_stage, (1, 2, 2, 2)):
            stage = []
            for index in range(blocks):
                stage.append(block(in_channels, planes, stride if index == 0 else 1, activation))
                in_channels = planes * block.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.linear(self.pool(x).flatten(1))

    def feature_layers(self) -> dict[str, nn.Module]:
        return {"conv1": self.stem, "conv2": self.layer1[0].act1}


@register
def resnet18(num_classes: int = 10, *, activation: str = "relu") -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, activation)


@register
def resnet34(num_classes: int = 10, *, activation: str = "relu") -> ResNet:
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes, activation)


@register
def resnet50(num_classes: int = 10, *, activation: str = "relu") -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, activation)
