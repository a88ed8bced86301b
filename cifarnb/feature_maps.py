"""Feature maps of a model's first two convolution stages for one image (report 1.5, Figs 20-26)."""

from __future__ import annotations

import numpy as np
import torch

from .data import NORMALIZATIONS, first_test_image
from .models import feature_layers


def normalise(image: torch.Tensor, normalization: str = "cifar10") -> torch.Tensor:
    """uint8 3 x H x W -> the normalised 1 x 3 x H x W float batch the models were trained on."""
    mean, std = (torch.tensor(values).view(3, 1, 1) for values in NORMALIZATIONS[normalization])
    return ((image.float() / 255 - mean) / std).unsqueeze(0)


@torch.no_grad()
def feature_maps(model: torch.nn.Module, image: torch.Tensor, normalization: str = "cifar10") -> dict[str, np.ndarray]:
    """{"conv1": C x H x W, "conv2": ...}: the outputs of :func:`cifarnb.models.feature_layers` in eval mode,
    for ``image`` normalised the way the model was trained (``TrainConfig.normalization``)."""
    captured: dict[str, torch.Tensor] = {}
    layers = feature_layers(model)
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: captured.__setitem__(name, out))
             for name, module in layers.items()]
    try:
        model.eval()
        device = next(model.parameters()).device
        model(normalise(image, normalization).to(device))
    finally:
        for hook in hooks:
            hook.remove()
    return {name: captured[name][0].float().cpu().numpy() for name in layers}


def stored_test_image(store, row: int = 0, data_root=None) -> tuple[torch.Tensor, int]:
    """Test image ``row`` (0: the report's cat) and its label, kept in ``store`` so figures redraw without the
    data set (uint8 values are exact in the store's float16); ``data_root`` is read only the first time."""
    if row != 0:
        raise ValueError(f"row={row}: only test row 0 (the report's image) is stored; use cifarnb.data for others")

    def read():
        image, label = first_test_image(data_root)
        return {"image": image.numpy(), "label": np.array(label)}

    stored = store.cached_arrays("test_image", {"row": row}, read)
    return torch.from_numpy(stored["image"].round().astype(np.uint8)), int(stored["label"])


def _stored_as(config, image_row: int = 0) -> tuple[str, dict]:
    """The store's name and key of a set of feature maps: the model, the trained run and the image."""
    return f"feature_maps_{config.model}", {"run": config.key(), "image_row": image_row}


def feature_maps_path(store, config, image_row: int = 0):
    """Where ``store`` keeps (or will keep) the maps of ``config``'s model for test row ``image_row``."""
    return store.array_path(*_stored_as(config, image_row))


def stored_feature_maps(store, config, image: torch.Tensor, image_row: int = 0, wait: bool = True,
                        compute_missing: bool = True, evidence=None) -> tuple[dict[str, np.ndarray] | None, str]:
    """The maps of ``config``'s trained model for ``image``, computed once and then read from ``store`` (a model
    that must be trained first trains on ``config.device`` from ``config.data_root``).

    Returns the maps and how they were obtained ("read from the store", "computed, model loaded from the
    store" or "computed, model trained now"), since training may be what a first call costs. With ``wait=False``
    and another process computing them: ``(None, "claimed by another process")``; with ``compute_missing=False``
    and no stored maps: ``(None, "not run")``. ``evidence``: how a model trained here executes
    (``train.execution.Evidence``).
    """
    how = "read from the store"
    if not compute_missing and not feature_maps_path(store, config, image_row).exists():
        return None, "not run"

    def compute():
        nonlocal how
        stored = store.load(config)
        how = ("computed, model loaded from the store" if stored is not None and stored.has_weights
               else "computed, model trained now")
        return feature_maps(store.trained_model(config, progress=False, evidence=evidence), image,
                            config.normalization)

    maps = store.cached_arrays(*_stored_as(config, image_row), compute, wait=wait)
    return maps, how if maps is not None else "claimed by another process"
