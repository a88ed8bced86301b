"""Feature maps of a model's first two convolution stages for one image (report 1.5, Figs 20-26)."""

from __future__ import annotations

import numpy as np
import torch

from .data import MEAN, STD
from .models import feature_layers


def normalise(image: torch.Tensor) -> torch.Tensor:
    """uint8 3 x H x W -> the normalised 1 x 3 x H x W float batch the models were trained on."""
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return ((image.float() / 255 - mean) / std).unsqueeze(0)


@torch.no_grad()
def feature_maps(model: torch.nn.Module, image: torch.Tensor) -> dict[str, np.ndarray]:
    """{"conv1": C x H x W, "conv2": ...}: the outputs of :func:`cifarnb.models.feature_layers` in eval mode."""
    captured: dict[str, torch.Tensor] = {}
    layers = feature_layers(model)
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: captured.__setitem__(name, out))
             for name, module in layers.items()]
    try:
        model.eval()
        device = next(model.parameters()).device
        model(normalise(image).to(device))
    finally:
        for hook in hooks:
            hook.remove()
    return {name: captured[name][0].float().cpu().numpy() for name in layers}
