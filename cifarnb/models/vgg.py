"""VGG-A (Simonyan & Zisserman 2015, configuration A, 11 weight layers).

CIFAR adaptation as used by Santurkar et al. 2018 ("How does batch
normalization help optimization?") and the report's section 2: the same
conv stack 64-M-128-M-256-256-M-512-512-M-512-512-M leaves 512x1x1 for a 32x32
image, so the classifier is 512-512-10 instead of 4096-4096-1000, without
dropout. `vgg_a_bn` adds BatchNorm after every conv and hidden linear layer,
before the activation, and changes nothing else (biases are kept), so the two
differ only by the BN layers.

`bias`: "all" puts a bias on every conv and linear layer; "template" is the
course template's `vgg.py` (the report's section 2 code, `VGG_BatchNorm/models/vgg.py`):
VGG-A has no conv bias in its stages 3-5, and VGG-A + BN no bias on a layer a
BatchNorm follows (every conv, and the two hidden linear layers).

`init` (`layers.INITS`): "default" keeps PyTorch's initialisation; "xavier_normal"
is the course VGG_BatchNorm template's (the report's section 2 follows it):
Xavier-normal conv and linear weights, zero biases, BN scales 1 and shifts 0. Without BN,
VGG-A at lr 0.1 stays on the ln 10 plateau for most of 20 epochs with the
default, and leaves it within the first epoch with the template's.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from ._registry import register
from .layers import initialise, make_activation

VGG_A_CONFIG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
BIASES = ("all", "template")
TEMPLATE_BIASED_STAGES = 2  # the template's VGG-A: stages 1-2 are single convs with a bias; 3-5 are blocks without


class VGG(nn.Module):
    def __init__(
        self,
        config: tuple[int | str, ...] = VGG_A_CONFIG,
        num_classes: int = 10,
        batch_norm: bool = False,
        activation: str = "relu",
        hidden: int = 512,
        init: str = "default",
        bias: str = "all",
    ) -> None:
        super().__init__()
        if bias not in BIASES:
            raise ValueError(f"bias={bias!r} is not one of {', '.join(BIASES)}")
        template = bias == "template"
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        in_channels, conv_index, pool_index = 3, 0, 0
        for item in config:
            if item == "M":
                pool_index += 1
                layers[f"pool{pool_index}"] = nn.MaxPool2d(2)
                continue
            conv_index += 1
            conv_bias = not template or (not batch_norm and conv_index <= TEMPLATE_BIASED_STAGES)
            layers[f"conv{conv_index}"] = nn.Conv2d(in_channels, int(item), 3, padding=1, bias=conv_bias)
            if batch_norm:
                layers[f"bn{conv_index}"] = nn.BatchNorm2d(int(item))
            layers[f"act{conv_index}"] = make_activation(activation)
            in_channels = int(item)
        self.features = nn.Sequential(layers)

        head: OrderedDict[str, nn.Module] = OrderedDict()
        for index, width in enumerate((in_channels, hidden), start=1):
            head[f"fc{index}"] = nn.Linear(width, hidden, bias=not (template and batch_norm))
            if batch_norm:
                head[f"bn{index}"] = nn.BatchNorm1d(hidden)
            head[f"act{index}"] = make_activation(activation)
        head["fc3"] = nn.Linear(hidden, num_classes)
        self.classifier = nn.Sequential(head)
        initialise(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))

    def feature_layers(self) -> dict[str, nn.Module]:
        return {"conv1": self.features.act1, "conv2": self.features.act2}


@register
def vgg_a(num_classes: int = 10, *, activation: str = "relu", init: str = "default", bias: str = "all") -> VGG:
    return VGG(VGG_A_CONFIG, num_classes, batch_norm=False, activation=activation, init=init, bias=bias)


@register
def vgg_a_bn(num_classes: int = 10, *, activation: str = "relu", init: str = "default", bias: str = "all") -> VGG:
    return VGG(VGG_A_CONFIG, num_classes, batch_norm=True, activation=activation, init=init, bias=bias)
