"""DenseNet-BC (Huang et al. 2017, "Densely connected convolutional networks").

Every dense layer is pre-activation BN-act-1x1 conv (4k channels) - BN-act-3x3
conv (k channels) and concatenates its k new channels to its input; between
dense blocks a BN-act-1x1 conv halves the channels (compression 0.5) and a
2x2 average pool halves the resolution. The stem is a single 3x3 conv with 2k
channels (no 7x7 conv or max-pool, as suits 32x32 images); the head is
BN-act, global average pooling and a linear layer.

- densenet100_bc: the paper's CIFAR DenseNet-BC (L=100, k=12): three blocks of
  16 layers on 32, 16 and 8 pixel maps (BIGBALLON/CIFAR-ZOO's densenet100bc).
- densenet121: ImageNet DenseNet-121 (k=32, blocks 6-12-24-16) with the CIFAR
  stem, as in kuangliu/pytorch-cifar; its blocks see 32, 16, 8 and 4 pixels.

Both match the report's code (models/densenetbc.py, models/densenet.py) layer by
layer but for one arrangement: a dense layer appends its new channels after its
input (`cat([x, new])`) where the code puts them first (`cat([new, x])`). The two
are the same network with the next layers' input channels permuted: every layer
that reads them (BN per channel, convs and the linear layer, whose initial weights
are i.i.d. per input channel) treats the channels alike, so both orders give the
same distribution of initial functions and of training runs; the order is kept.

`init` (`layers.INITS`): the report's densenetbc.py re-initialises every conv
He-normal ("kaiming_normal"; `settings.ZOO_MODEL_OPTIONS` sets it for
densenet100_bc); its densenet.py keeps PyTorch's default ("default").
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._registry import register
from .layers import conv1x1, conv3x3, initialise, make_activation


class DenseLayer(nn.Module):
    def __init__(self, in_channels: int, growth_rate: int, activation: str) -> None:
        super().__init__()
        bottleneck = 4 * growth_rate
        self.bn1, self.act1 = nn.BatchNorm2d(in_channels), make_activation(activation)
        self.conv1 = conv1x1(in_channels, bottleneck)
        self.bn2, self.act2 = nn.BatchNorm2d(bottleneck), make_activation(activation)
        self.conv2 = conv3x3(bottleneck, growth_rate)

    def forward(self, x: Tensor) -> Tensor:
        new = self.conv1(self.act1(self.bn1(x)))
        new = self.conv2(self.act2(self.bn2(new)))
        return torch.cat([x, new], dim=1)


class Transition(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, activation: str) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels),
            make_activation(activation),
            conv1x1(in_channels, out_channels),
            nn.AvgPool2d(2),
        )


class DenseNet(nn.Module):
    def __init__(
        self,
        layers_per_block: tuple[int, ...],
        growth_rate: int,
        num_classes: int = 10,
        activation: str = "relu",
        compression: float = 0.5,
        init: str = "default",
    ) -> None:
        super().__init__()
        channels = 2 * growth_rate
        self.stem = conv3x3(3, channels)
        stages: list[nn.Module] = []
        for index, layers in enumerate(layers_per_block):
            block = []
            for _ in range(layers):
                block.append(DenseLayer(channels, growth_rate, activation))
                channels += growth_rate
            stages.append(nn.Sequential(*block))
            if index < len(layers_per_block) - 1:
                reduced = int(channels * compression)
                stages.append(Transition(channels, reduced, activation))
                channels = reduced
        self.features = nn.Sequential(*stages)
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels), make_activation(activation), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.linear = nn.Linear(channels, num_classes)
        initialise(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.head(self.features(self.stem(x))))

    def feature_layers(self) -> dict[str, nn.Module]:
        first_layer = self.features[0][0]
        return {"conv1": first_layer.act1, "conv2": first_layer.act2}


@register
def densenet100_bc(num_classes: int = 10, *, activation: str = "relu", init: str = "default") -> DenseNet:
    return DenseNet((16, 16, 16), 12, num_classes, activation, init=init)


@register
def densenet121(num_classes: int = 10, *, activation: str = "relu", init: str = "default") -> DenseNet:
    return DenseNet((6, 12, 24, 16), 32, num_classes, activation, init=init)
