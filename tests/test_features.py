import numpy as np
import pytest
import torch

from cifarnb import models
from cifarnb.feature_maps import feature_maps, normalise
from cifarnb.results import ResultStore


@pytest.mark.parametrize("name, second", [("resnet18", (64, 32, 32)), ("resnet9", (128, 16, 16)),
                                          ("fastresnet9", (128, 16, 16))])
def test_first_two_feature_maps_have_the_documented_shapes(name, second):
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    maps = feature_maps(models.build(name), image)
    assert list(maps) == ["conv1", "conv2"]
    assert maps["conv1"].shape == (64, 32, 32) and maps["conv2"].shape == second


def test_hooks_are_removed_and_output_repeats():
    model = models.build("resnet9")
    image = torch.full((3, 32, 32), 128, dtype=torch.uint8)
    first = feature_maps(model, image)
    assert all(not m._forward_hooks for m in models.feature_layers(model).values())
    np.testing.assert_array_equal(first["conv1"], feature_maps(model, image)["conv1"])


def test_normalise_matches_training_statistics():
    image = torch.zeros((3, 32, 32), dtype=torch.uint8)
    batch = normalise(image)
    assert batch.shape == (1, 3, 32, 32)
    assert batch[0, 0, 0, 0].item() == pytest.approx(-0.4914 / 0.2470, rel=1e-5)


def test_cached_arrays_compute_once_and_round_trip_as_float16(tmp_path):
    store = ResultStore(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"conv1": np.linspace(0, 1, 24).reshape(2, 3, 4)}

    first = store.cached_arrays("maps", {"key": "abc"}, compute)
    second = store.cached_arrays("maps", {"key": "abc"}, compute)
    assert calls == [1]
    np.testing.assert_allclose(first["conv1"], np.linspace(0, 1, 24).reshape(2, 3, 4), atol=1e-3)
    np.testing.assert_array_equal(first["conv1"], second["conv1"])
