"""LeNet-5 (LeCun et al. 1998, "Gradient-based learning applied to document recognition").

CIFAR adaptation (as in kuangliu/pytorch-cifar and BIGBALLON/CIFAR-ZOO): 3 input
channels, max-pooling instead of trainable subsampling, a chosen activation
instead of scaled tanh, and a plain linear output layer instead of RBF units.
conv5x5(6) - pool - conv5x5(16) - pool - fc120 - fc84 - fc10: 62,006 parameters.
Checked layer by layer against the report's code (models/lenet.py): the same.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from ._registry import register
from .layers import make_activation


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, activation: str = "relu") -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(3, 6, 5), act1=make_activation(activation), pool1=nn.MaxPool2d(2),  # 6x14x14
            conv2=nn.Conv2d(6, 16, 5), act2=make_activation(activation), pool2=nn.MaxPool2d(2),  # 16x5x5
        ))
        self.classifier = nn.Sequential(OrderedDict(
            fc1=nn.Linear(16 * 5 * 5, 120), act1=make_activation(activation),
            fc2=nn.Linear(120, 84), act2=make_activation(activation),
            fc3=nn.Linear(84, num_classes),
        ))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))

    def feature_layers(self) -> dict[str, nn.Module]:
        return {"conv1": self.features.act1, "conv2": self.features.act2}


@register
def lenet5(num_classes: int = 10, *, activation: str = "relu") -> LeNet5:
    return LeNet5(num_classes, activation)
