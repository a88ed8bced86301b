"""Tests for cifarnb.models: sizes, shapes, a training step, ghost BN, registry errors, feature hooks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cifarnb import models
from cifarnb.models.layers import ACTIVATIONS, GhostBatchNorm2d, make_activation

# round(parameters / 1e6, 2) with 10 classes; the report's table, plus VGG-A which it does not list.
EXPECTED_MILLIONS = {
    "lenet5": 0.06,
    "alexnet": 2.47,
    "resnet18": 11.17,
    "resnet34": 21.28,
    "resnet50": 23.52,
    "resnext29_2x32d": 2.30,
    "resnext29_2x64d": 9.13,
    "resnext29_32x4d": 4.77,
    "densenet100_bc": 0.77,
    "densenet121": 6.96,
    "wideresnet16x8": 10.97,
    "wideresnet28x10": 36.49,
    "geresnext29_8x64d": 36.33,
    "resnet9": 6.57,
    "fastresnet9": 6.57,
    "vgg_a": 9.75,
    "vgg_a_bn": 9.76,
}
ALL_MODELS = sorted(EXPECTED_MILLIONS)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_registry_lists_every_model() -> None:
    assert models.list_models() == ALL_MODELS


@pytest.mark.parametrize("name", ALL_MODELS)
def test_parameter_count(name: str) -> None:
    with torch.device("meta"):  # sizes only: skips weight initialisation
        model = models.build(name)
    assert round(models.count_parameters(model) / 1e6, 2) == EXPECTED_MILLIONS[name]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_and_one_sgd_step(name: str) -> None:
    model = models.build(name).train()
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([3, 7])
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    logits = model(images)
    assert logits.shape == (2, 10)
    loss = nn.functional.cross_entropy(logits, labels)
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()

    unchanged = [k for k, p in model.named_parameters() if torch.equal(p, before[k])]
    assert not unchanged, f"parameters not updated: {unchanged}"


@pytest.mark.parametrize("name", ["resnet18", "fastresnet9", "densenet100_bc", "vgg_a_bn"])
def test_eval_mode_is_deterministic(name: str) -> None:
    model = models.build(name, num_classes=5).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        first, second = model(images), model(images)
    assert first.shape == (2, 5)
    assert torch.equal(first, second)


def test_wideresnet_dropout_only_acts_in_training() -> None:
    model = models.build("wideresnet16x8", dropout=0.3)
    assert any(isinstance(m, nn.Dropout) for m in model.modules())
    images = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(images), model(images))


# ---------------------------------------------------------------- ghost batch norm


def _copy_of(batchnorm: nn.BatchNorm2d) -> GhostBatchNorm2d:
    ghost = GhostBatchNorm2d(batchnorm.num_features, ghost_batch_size=32)
    ghost.load_state_dict(batchnorm.state_dict())
    return ghost


def test_ghost_bn_equals_bn_for_one_ghost_batch() -> None:
    plain = nn.BatchNorm2d(4)
    nn.init.uniform_(plain.weight)
    nn.init.uniform_(plain.bias)
    ghost = _copy_of(plain)
    assert list(ghost.state_dict()) == list(plain.state_dict())

    x = torch.randn(32, 4, 5, 5) * 3 + 1
    torch.testing.assert_close(ghost(x), plain(x))
    torch.testing.assert_close(ghost.running_mean, plain.running_mean)
    torch.testing.assert_close(ghost.running_var, plain.running_var)
    assert int(ghost.num_batches_tracked) == int(plain.num_batches_tracked) == 1


def test_ghost_bn_normalises_each_chunk_including_a_short_last_one() -> None:
    ghost = GhostBatchNorm2d(3, ghost_batch_size=32)
    x = torch.randn(40, 3, 4, 4) * 2 + 5  # chunks of 32 and 8
    out = ghost(x)
    assert out.shape == x.shape
    for chunk in (slice(0, 32), slice(32, 40)):
        expected = nn.functional.batch_norm(x[chunk], None, None, training=True, eps=ghost.eps)
        torch.testing.assert_close(out[chunk], expected)
    # Running stats: size-weighted mean of the chunks' statistics, one momentum step.
    mean = (32 * x[:32].mean((0, 2, 3)) + 8 * x[32:].mean((0, 2, 3))) / 40
    var = (32 * x[:32].var((0, 2, 3)) + 8 * x[32:].var((0, 2, 3))) / 40
    torch.testing.assert_close(ghost.running_mean, 0.1 * mean)
    torch.testing.assert_close(ghost.running_var, 0.9 + 0.1 * var)
    out.sum().backward()  # gradients flow through the chunked path


def test_ghost_bn_with_several_full_chunks_normalises_them_separately() -> None:
    ghost = GhostBatchNorm2d(2, ghost_batch_size=32)
    x = torch.cat([torch.randn(32, 2, 3, 3), torch.randn(32, 2, 3, 3) * 4 + 10])
    out = ghost(x)
    for start in (0, 32):
        expected = nn.functional.batch_norm(x[start : start + 32], None, None, training=True, eps=ghost.eps)
        torch.testing.assert_close(out[start : start + 32], expected)


def test_ghost_bn_eval_uses_running_stats() -> None:
    plain = nn.BatchNorm2d(3)
    for _ in range(3):
        plain(torch.randn(64, 3, 4, 4) + 2)
    ghost = _copy_of(plain).eval()
    plain.eval()
    x = torch.randn(40, 3, 4, 4)
    torch.testing.assert_close(ghost(x), plain(x))
    torch.testing.assert_close(ghost(x[:1]), plain(x[:1]))


def test_fastresnet9_has_resnet9_weight_layout() -> None:
    slow, fast = models.build("resnet9"), models.build("fastresnet9")
    assert {k: v.shape for k, v in slow.state_dict().items()} == {
        k: v.shape for k, v in fast.state_dict().items()
    }
    assert any(isinstance(m, GhostBatchNorm2d) for m in fast.modules())
    assert not any(isinstance(m, GhostBatchNorm2d) for m in slow.modules())
    fast.load_state_dict(slow.state_dict())


# ---------------------------------------------------------------- registry


def test_unknown_model_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet19'") as info:
        models.build("resnet19")
    message = str(info.value)
    assert "\n" not in message
    assert all(name in message for name in ALL_MODELS)


def test_unknown_option_names_it_and_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="dropout") as info:
        models.build("resnet18", dropout=0.3)
    assert "activation" in str(info.value)
    with pytest.raises(ValueError, match="ghost_batch_size"):
        models.build("resnet18", ghost_batch_size=32)


def test_names_are_case_insensitive() -> None:
    assert type(models.build("GeResNeXt29_8x64d")) is type(models.build("geresnext29_8x64d"))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_resnet18_builds_with_each_activation(activation: str) -> None:
    model = models.build("resnet18", activation=activation)
    assert isinstance(model.stem[2], type(make_activation(activation)))


def test_unknown_activation_lists_choices() -> None:
    with pytest.raises(ValueError, match="relu, mish, leaky_relu, elu, gelu"):
        models.build("resnet18", activation="swish")


def test_resnet9_options() -> None:
    assert isinstance(models.build("resnet9").prep.act, nn.GELU)
    model = models.build("resnet9", pool_before_bn=True, ghost_batch_size=16, logit_scale=0.125).eval()
    assert model.layer1.conv.pool_before_bn and model.layer1.conv.bn.ghost_batch_size == 16
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        scaled = model(images)
        model.logit_scale = 1.0
        torch.testing.assert_close(scaled, 0.125 * model(images))


# ---------------------------------------------------------------- feature maps


@pytest.mark.parametrize("name", ["resnet18", "resnet9", "fastresnet9"])
def test_feature_layer_hooks_fire_with_feature_maps(name: str) -> None:
    model = models.build(name).eval()
    layers = models.feature_layers(model)
    assert list(layers) == ["conv1", "conv2"]
    captured: dict[str, torch.Size] = {}
    handles = [
        module.register_forward_hook(lambda _m, _i, out, key=key: captured.__setitem__(key, out.shape))
        for key, module in layers.items()
    ]
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    for handle in handles:
        handle.remove()
    assert list(captured) == ["conv1", "conv2"]
    assert all(len(shape) == 4 and shape[0] == 2 for shape in captured.values())


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_names_two_feature_layers(name: str) -> None:
    with torch.device("meta"):
        model = models.build(name)
    layers = models.feature_layers(model)
    assert list(layers) == ["conv1", "conv2"]
    assert all(isinstance(m, nn.Module) for m in layers.values())


def test_vgg_template_initialisation_is_xavier_normal():
    """init="xavier_normal" (the course template's): weight std sqrt(2 / (fan_in + fan_out)), zero biases."""
    import math

    import torch
    from torch import nn

    from cifarnb.models import build

    torch.manual_seed(0)
    model = build("vgg_a_bn", init="xavier_normal")
    conv = model.features.conv3  # 128 -> 256, 3x3
    expected = math.sqrt(2 / (128 * 9 + 256 * 9))
    assert conv.weight.std().item() == pytest.approx(expected, rel=0.02) and not conv.bias.any()
    assert all(not m.bias.any() for m in model.modules() if isinstance(m, nn.Linear))
    with pytest.raises(ValueError, match="init='he' is not one of default, xavier_normal"):
        build("vgg_a", init="he")
