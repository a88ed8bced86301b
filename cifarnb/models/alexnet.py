"""AlexNet (Krizhevsky et al. 2012, "ImageNet classification with deep convolutional neural networks").

CIFAR adaptation as in BIGBALLON/CIFAR-ZOO and bearpaw/pytorch-classification,
whose 2.47 M parameters the report lists: the five convolutions keep
AlexNet's kernel sizes and widths (11x11/4 -> 64, 5x5 -> 192, 3x3 -> 384,
256, 256) with 2x2 max-pools, so a 32x32 image shrinks to 256x1x1 and a single
linear layer classifies it. The three 4096-wide dropout layers and the
local response normalisation of the original are therefore absent.
Checked layer by layer against the report's code (models/alexnet.py): the same.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

from torch import Tensor, nn

from ._registry import register
from .layers import make_activation


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 10, activation: str = "relu") -> None:
        super().__init__()
        act = partial(make_activation, activation)
        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(3, 64, 11, stride=4, padding=5), act1=act(), pool1=nn.MaxPool2d(2),  # 64x4x4
            conv2=nn.Conv2d(64, 192, 5, padding=2), act2=act(), pool2=nn.MaxPool2d(2),  # 192x2x2
            conv3=nn.Conv2d(192, 384, 3, padding=1), act3=act(),
            conv4=nn.Conv2d(384, 256, 3, padding=1), act4=act(),
            conv5=nn.Conv2d(256, 256, 3, padding=1), act5=act(), pool5=nn.MaxPool2d(2),  # 256x1x1
        ))
        self.classifier = nn.Linear(256, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))

    def feature_layers(self) -> dict[str, nn.Module]:
        return {"conv1": self.features.act1, "conv2": self.features.act2}


@register
def alexnet(num_classes: int = 10, *, activation: str = "relu") -> AlexNet:
    return AlexNet(num_classes, activation)
