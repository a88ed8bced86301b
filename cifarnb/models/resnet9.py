"""ResNet9 and FastResNet9 (report section 1.4), after David Page's DAWNBench
ResNet9 (myrtle.ai, "How to train your ResNet", 2018).

Layout, for 32x32 inputs (6.57 M parameters):
    prep    conv 64                                   64x32x32
    layer1  conv 128 + pool, residual(conv 128, conv 128)   128x16x16
    layer2  conv 256 + pool                           256x8x8
    layer3  conv 512 + pool, residual(conv 512, conv 512)   512x4x4
    global max-pool, linear 512 -> classes
Every conv is 3x3 without bias, followed by BN and the activation (GELU by
default, the report's choice); a residual is x + conv(conv(x)) with nothing
after the sum. Options:
    pool_before_bn     conv -> pool -> BN -> act instead of conv -> BN -> act
                       -> pool: BN and act run on a quarter of the pixels.
    ghost_batch_size   None for BatchNorm2d, else GhostBatchNorm2d with that
                       ghost batch size (same parameter and buffer names).
    logit_scale        multiply the logits by a constant; Page uses 0.125,
                       default 1.0 (off) because the report does not mention it.
fastresnet9 is resnet9 with pool_before_bn=True and ghost_batch_size=32; its
state dict has exactly resnet9's keys and shapes. The report's other
FastResNet9 tricks (label smoothing, flip test-time augmentation) belong to
training and evaluation, not to the model.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from ._registry import register
from .layers import conv3x3, make_activation, make_batchnorm


class ConvBlock(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        activation: str,
        pool: bool = False,
        pool_before_bn: bool = False,
        ghost_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.conv = conv3x3(in_channels, out_channels)
        self.bn = make_batchnorm(out_channels, ghost_batch_size)
        self.act = make_activation(activation)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.pool_before_bn = pool_before_bn

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.pool_before_bn:
            return self.act(self.bn(self.pool(x)))
        return self.pool(self.act(self.bn(x)))


class Residual(nn.Module):
    def __init__(self, channels: int, **block_options) -> None:
        super().__init__()
        self.conv1 = ConvBlock(channels, channels, **block_options)
        self.conv2 = ConvBlock(channels, channels, **block_options)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x))


class ResNet9(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        activation: str = "gelu",
        pool_before_bn: bool = False,
        ghost_batch_size: int | None = None,
        logit_scale: float = 1.0,
    ) -> None:
        super().__init__()
        options = dict(
            activation=activation, pool_before_bn=pool_before_bn, ghost_batch_size=ghost_batch_size
        )
        self.prep = ConvBlock(3, 64, **options)
        self.layer1 = nn.Sequential(OrderedDict(
            conv=ConvBlock(64, 128, pool=True, **options), residual=Residual(128, **options),
        ))
        self.layer2 = nn.Sequential(OrderedDict(conv=ConvBlock(128, 256, pool=True, **options)))
        self.layer3 = nn.Sequential(OrderedDict(
            conv=ConvBlock(256, 512, pool=True, **options), residual=Residual(512, **options),
        ))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.linear = nn.Linear(512, num_classes)
        self.logit_scale = logit_scale

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        logits = self.linear(self.pool(x).flatten(1))
        return logits * self.logit_scale if self.logit_scale != 1.0 else logits

    def feature_layers(self) -> dict[str, nn.Module]:
        return {"conv1": self.prep, "conv2": self.layer1.conv}


@register
def resnet9(
    num_classes: int = 10,
    *,
    activation: str = "gelu",
    pool_before_bn: bool = False,
    ghost_batch_size: int | None = None,
    logit_scale: float = 1.0,
) -> ResNet9:
    return ResNet9(num_classes, activation, pool_before_bn, ghost_batch_size, logit_scale)


@register
def fastresnet9(
    num_classes: int = 10,
    *,
    activation: str = "gelu",
    pool_before_bn: bool = True,
    ghost_batch_size: int | None = 32,
    logit_scale: float = 1.0,
) -> ResNet9:
    return ResNet9(num_classes, activation, pool_before_bn, ghost_batch_size, logit_scale)
