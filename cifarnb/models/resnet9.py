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
after the sum. Options (defaults: the first reading, before the report's code
was public; the report's code sets the last three):
    pool_before_bn     conv -> pool -> BN -> act instead of conv -> BN -> act
                       -> pool: BN and act run on a quarter of the pixels.
    ghost_batch_size   None for BatchNorm2d, else GhostBatchNorm2d with that
                       ghost batch size (same parameter and buffer names).
    logit_scale        multiply the logits by a constant (the report's code and
                       Page: 0.125).
    stem               "conv": prep is a learnable 3x3 conv + BN + act;
                       "whitening": the report's FastResNet9 (models/fastresnet9.py):
                       a frozen 3x3 conv of 27 filters that whitens 3x3 patches
                       (:class:`PatchWhitening`, set from the training images
                       before training), then a 1x1 conv 27 -> 64 + BN + act.
    frozen_bn_scale    BN scales stay 1; only BN shifts train (the report's code).
    linear_bias        the last linear layer has a bias (the report's code: no).
Checked layer by layer against the report's code (models/resnet9.py): the same
with linear_bias=False (`settings.RESNET9_MODEL`); its MaxPool2d(4) on the 4x4 map
is the global max-pool here.
fastresnet9 is resnet9 with pool_before_bn=True and ghost_batch_size=32. With
the report's code's options it has 6,570,880 trainable parameters, the report's
6.57 M. The report's other FastResNet9 tricks (label smoothing, flip test-time
augmentation) belong to training and evaluation, not to the model.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from ._registry import register
from .layers import make_activation, make_batchnorm

STEMS = ("conv", "whitening")


class ConvBlock(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        activation: str,
        pool: bool = False,
        pool_before_bn: bool = False,
        ghost_batch_size: int | None = None,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
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


class PatchWhitening(nn.Conv2d):
    """A frozen 3x3 convolution whose 27 filters whiten the 3x3 patches of the training images (the report's
    FastResNet9 code, ``utils.patch_whitening``, after Page and tysam-code).

    :meth:`init_from_data` sets the filters from the first :data:`IMAGES` normalised training images: the
    eigenvectors of the (uncentred) covariance of all their 3x3 patches, largest eigenvalue first, each scaled by
    ``1 / sqrt(eigenvalue + EPSILON)``. Computed on the CPU in float64 from the images alone, so the filters are
    the same on every machine for the same data. Until then they are zero; they are part of the state dict, so a
    trained model loads without the data.
    """

    IMAGES = 10_000  # the report's code: train_data[:10000]
    EPSILON = 1e-2
    CHUNK = 500  # images per covariance chunk: 500 x 900 patches x 27 values in float64 is about 100 MB

    def __init__(self, in_channels: int = 3, kernel_size: int = 3) -> None:
        out_channels = in_channels * kernel_size * kernel_size
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        nn.init.zeros_(self.weight)
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def init_from_data(self, images: Tensor, mean, std) -> None:
        """``images``: the training images as uint8 N x C x H x W; ``mean``/``std``: the per-channel normalisation
        (on [0, 1] pixels) training uses."""
        size = self.kernel_size[0]
        channels = self.in_channels
        scale_mean = torch.tensor(mean, dtype=torch.float64).view(1, channels, 1, 1) * 255
        scale_std = torch.tensor(std, dtype=torch.float64).view(1, channels, 1, 1) * 255
        chosen = images[: self.IMAGES].cpu()
        covariance = torch.zeros(channels * size * size, channels * size * size, dtype=torch.float64)
        count = 0
        for start in range(0, len(chosen), self.CHUNK):
            batch = (chosen[start:start + self.CHUNK].to(torch.float64) - scale_mean) / scale_std
            # Every 3x3 patch (stride 1, no padding) as a row of C*3*3 values, ordered as a conv filter's.
            patches = batch.unfold(2, size, 1).unfold(3, size, 1).permute(0, 2, 3, 1, 4, 5)
            rows = patches.reshape(-1, channels * size * size)
            covariance += rows.T @ rows
            count += len(rows)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance / (count - 1))
        filters = eigenvectors.T.flip(0).reshape(-1, channels, size, size)  # largest eigenvalue first
        filters = filters / torch.sqrt(eigenvalues.flip(0) + self.EPSILON).view(-1, 1, 1, 1)
        self.weight.copy_(filters.to(self.weight.dtype))


class ResNet9(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        activation: str = "gelu",
        pool_before_bn: bool = False,
        ghost_batch_size: int | None = None,
        logit_scale: float = 1.0,
        stem: str = "conv",
        frozen_bn_scale: bool = False,
        linear_bias: bool = True,
    ) -> None:
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"stem={stem!r} is not one of {', '.join(STEMS)}")
        options = dict(
            activation=activation, pool_before_bn=pool_before_bn, ghost_batch_size=ghost_batch_size
        )
        if stem == "conv":
            self.prep = ConvBlock(3, 64, **options)
        else:
            whitening = PatchWhitening(3)
            self.prep = nn.Sequential(OrderedDict(
                whitening=whitening, conv=ConvBlock(whitening.out_channels, 64, kernel_size=1, **options),
            ))
        self.layer1 = nn.Sequential(OrderedDict(
            conv=ConvBlock(64, 128, pool=True, **options), residual=Residual(128, **options),
        ))
        self.layer2 = nn.Sequential(OrderedDict(conv=ConvBlock(128, 256, pool=True, **options)))
        self.layer3 = nn.Sequential(OrderedDict(
            conv=ConvBlock(256, 512, pool=True, **options), residual=Residual(512, **options),
        ))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.linear = nn.Linear(512, num_classes, bias=linear_bias)
        self.logit_scale = logit_scale
        if frozen_bn_scale:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.weight.requires_grad_(False)  # stays at its initial 1

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
    stem: str = "conv",
    frozen_bn_scale: bool = False,
    linear_bias: bool = True,
) -> ResNet9:
    return ResNet9(num_classes, activation, pool_before_bn, ghost_batch_size, logit_scale, stem, frozen_bn_scale,
                   linear_bias)


@register
def fastresnet9(
    num_classes: int = 10,
    *,
    activation: str = "gelu",
    pool_before_bn: bool = True,
    ghost_batch_size: int | None = 32,
    logit_scale: float = 1.0,
    stem: str = "conv",
    frozen_bn_scale: bool = False,
    linear_bias: bool = True,
) -> ResNet9:
    return ResNet9(num_classes, activation, pool_before_bn, ghost_batch_size, logit_scale, stem, frozen_bn_scale,
                   linear_bias)
