"""Each zoo model and ResNet9, as the study trains them, against the report's code (`Project 2/code/CIFAR-10/models/`),
beyond the parameter count: the layers outside the blocks (stem and head) and inside one block in the order the
forward pass calls them (kernel, stride, groups and bias of each conv), what the block's shortcut takes as its
input, and the standard deviation of one conv's initial weights against the formula of the initialisation the
code uses. Every expected sequence below is written from the code's file named beside it (docs/assumptions.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
import torch
from torch import Tensor, nn

from cifarnb import models
from cifarnb.study import recipes

# The initial weights' standard deviation as a function of the conv's fan-in, for the inits the code uses.
INIT_STD = {
    # PyTorch's default, kept by every file but densenetbc.py and genet.py: kaiming_uniform_(a=sqrt(5)), i.e.
    # uniform on +-1/sqrt(fan_in).
    "default": lambda fan_in: 1 / math.sqrt(3 * fan_in),
    # densenetbc.py and genet.py: nn.init.kaiming_normal_(m.weight.data) on every Conv2d (fan_in, gain sqrt(2)).
    "kaiming_normal": lambda fan_in: math.sqrt(2 / fan_in),
}


@dataclass(frozen=True)
class Audit:
    model: str
    code_file: str
    stages: tuple[str, ...]  # module prefixes of the blocks; everything else is stem and head
    outside: list[str]  # stem and head, in call order
    blocks: dict[str, list[str]]  # one block (or transition) by module prefix -> its residual branch in call order
    # How the shortcut meets the block: ("projection", block, projection) - the projection's input is the block's
    # input; ("identity", block, last) - the block's output is its input plus `last`'s output; ("concat", block) -
    # the block's output begins with its input (DenseNet's cat([x, new]); the code's cat([new, x]) is the same
    # network with the next layers' channels permuted, see models/densenet.py); None - no shortcut.
    shortcut: tuple[str, ...] | None
    shortcut_layers: list[str] = field(default_factory=list)  # the projection's layers
    init: tuple[str, str] = ("", "default")  # (a conv's name, the code's init)


BASIC = ["conv3x3/2", "bn", "relu", "conv3x3", "bn", "relu"]
PROJECTION = ["conv1x1/2", "bn"]
RESNET_OUTSIDE = ["conv3x3", "bn", "relu", "avgpool(global)", "linear+bias"]  # resnet.py: 3x3 stem, avg_pool2d(4)


def _resnext(model: str, cardinality: int, width: int) -> Audit:
    # resnext.py ResNeXt_3: a 1x1 stem conv (64), stages of 3 blocks, grouped width doubling per stage (the widths
    # are pinned by the parameter count's test); avg_pool2d(8)
    return Audit(model, "resnext.py", ("layer1", "layer2", "layer3"),
                 ["conv1x1", "bn", "relu", "avgpool(global)", "linear+bias"],
                 {"layer2.0": ["conv1x1", "bn", "relu", f"conv3x3/2 g{cardinality}", "bn", "relu", "conv1x1", "bn",
                               "relu"]},
                 ("projection", "layer2.0", "layer2.0.shortcut"), PROJECTION, ("layer2.0.conv2", "default"))


def _wideresnet(model: str) -> Audit:
    # wideresnet.py WideBasic: BN-ReLU-conv(bias)-BN-ReLU-Dropout()-conv(bias); shortcut conv1x1(bias) on the raw x
    return Audit(model, "wideresnet.py", ("layer1", "layer2", "layer3"),
                 ["conv3x3+bias", "bn", "relu", "avgpool(global)", "linear+bias"],
                 {"layer2.0": ["bn", "relu", "conv3x3/2+bias", "bn", "relu", "dropout0.5", "conv3x3+bias"]},
                 ("projection", "layer2.0", "layer2.0.projection"), ["conv1x1/2+bias"], ("layer2.0.conv2", "default"))


DENSE_LAYER = ["bn", "relu", "conv1x1", "bn", "relu", "conv3x3"]
TRANSITION = ["bn", "relu", "conv1x1", "avgpool2"]
AUDITS = [
    Audit("lenet5", "lenet.py", (),
          ["conv5x5+bias", "relu", "maxpool2", "conv5x5+bias", "relu", "maxpool2",
           "linear+bias", "relu", "linear+bias", "relu", "linear+bias"], {}, None, init=("features.conv2", "default")),
    Audit("alexnet", "alexnet.py", (),
          ["conv11x11/4+bias", "relu", "maxpool2", "conv5x5+bias", "relu", "maxpool2", "conv3x3+bias", "relu",
           "conv3x3+bias", "relu", "conv3x3+bias", "relu", "maxpool2", "linear+bias"], {}, None,
          init=("features.conv4", "default")),
    Audit("resnet18", "resnet.py", ("layer1", "layer2", "layer3", "layer4"), RESNET_OUTSIDE, {"layer2.0": BASIC},
          ("projection", "layer2.0", "layer2.0.shortcut"), PROJECTION, ("layer2.0.conv2", "default")),
    Audit("resnet34", "resnet.py", ("layer1", "layer2", "layer3", "layer4"), RESNET_OUTSIDE, {"layer2.0": BASIC},
          ("projection", "layer2.0", "layer2.0.shortcut"), PROJECTION, ("layer2.0.conv2", "default")),
    Audit("resnet50", "resnet.py", ("layer1", "layer2", "layer3", "layer4"), RESNET_OUTSIDE,
          {"layer2.0": ["conv1x1", "bn", "relu", "conv3x3/2", "bn", "relu", "conv1x1", "bn", "relu"]},
          ("projection", "layer2.0", "layer2.0.shortcut"), PROJECTION, ("layer2.0.conv2", "default")),
    _resnext("resnext29_2x32d", 2, 32),
    _resnext("resnext29_2x64d", 2, 64),
    _resnext("resnext29_32x4d", 32, 4),
    # densenetbc.py: 3x3 stem (2k), three blocks of 16 dense layers, two transitions, BN-ReLU-avg_pool2d(8)-fc.
    Audit("densenet100_bc", "densenetbc.py", ("features",), ["conv3x3", "bn", "relu", "avgpool(global)", "linear+bias"],
          {"features.0.0": DENSE_LAYER, "features.1": TRANSITION}, ("concat", "features.0.0"),
          init=("features.0.0.conv2", "kaiming_normal")),
    # densenet.py: the same layers, four blocks and three transitions, avg_pool2d(4); PyTorch's default init.
    Audit("densenet121", "densenet.py", ("features",), ["conv3x3", "bn", "relu", "avgpool(global)", "linear+bias"],
          {"features.0.0": DENSE_LAYER, "features.1": TRANSITION}, ("concat", "features.0.0"),
          init=("features.0.0.conv2", "default")),
    _wideresnet("wideresnet16x8"),
    _wideresnet("wideresnet28x10"),
    # genet.py: 3x3 stem, ResNeXt bottlenecks whose branch is gated (depthwise conv over the whole map + BN, 1x1
    # MLP with ReLU, sigmoid) before the addition; the shortcut (conv1x1 + BN) on the raw x; avg_pool2d(8, 1)-fc.
    Audit("geresnext29_8x64d", "genet.py", ("layer1", "layer2", "layer3"),
          ["conv3x3", "bn", "relu", "avgpool(global)", "linear+bias"],
          {"layer2.0": ["conv1x1", "bn", "relu", "conv3x3/2 g8", "bn", "relu", "conv1x1", "bn",
                        "conv16x16 g512", "bn", "conv1x1", "relu", "conv1x1", "relu"]},
          ("projection", "layer2.0", "layer2.0.shortcut"), PROJECTION, ("layer2.0.conv2", "kaiming_normal")),
    # resnet9.py: conv-BN-GELU(-maxpool) blocks without bias, x + conv(conv(x)) with nothing after the sum,
    # MaxPool2d(4) on the 4x4 map, a linear layer without bias.
    Audit("resnet9", "resnet9.py", ("layer1", "layer2", "layer3"),
          ["conv3x3", "bn", "gelu", "maxpool(global)", "linear"],
          {"layer1": ["conv3x3", "bn", "gelu", "maxpool2", "conv3x3", "bn", "gelu", "conv3x3", "bn", "gelu"]},
          ("identity", "layer1.residual", "layer1.residual.conv2"), init=("layer1.residual.conv2.conv", "default")),
]


def describe(module: nn.Module) -> str | None:
    """A layer as the audit names it (None: a wrapper with nothing to check, such as Identity or Flatten)."""
    if isinstance(module, nn.Conv2d):
        (k, _), (stride, _) = module.kernel_size, module.stride
        return (f"conv{k}x{k}" + (f"/{stride}" if stride > 1 else "") + (f" g{module.groups}" if module.groups > 1
                else "") + ("+bias" if module.bias is not None else ""))
    if isinstance(module, nn.Linear):
        return "linear" + ("+bias" if module.bias is not None else "")
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "bn"
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return ("avg" if isinstance(module, nn.AdaptiveAvgPool2d) else "max") + "pool(global)"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return ("max" if isinstance(module, nn.MaxPool2d) else "avg") + f"pool{module.kernel_size}"
    if isinstance(module, nn.Dropout):
        return f"dropout{module.p}"
    if isinstance(module, (nn.Identity, nn.Flatten)):
        return None
    return type(module).__name__.lower()


def _trace(model: nn.Module, images: Tensor) -> tuple[list[tuple[str, str]], dict[str, tuple[Tensor, Tensor]]]:
    """Every leaf layer the forward pass calls, in order, as (name, description), and each module's (input,
    output)."""
    calls: list[tuple[str, str]] = []
    seen: dict[str, tuple[Tensor, Tensor]] = {}
    handles = []
    for name, module in model.named_modules():
        def hook(module, inputs, output, name=name):
            seen[name] = (inputs[0].detach().clone(), output.detach().clone())
            if not list(module.children()) and describe(module) is not None:
                calls.append((name, describe(module)))
        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return calls, seen


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("audit", AUDITS, ids=[audit.model for audit in AUDITS])
def test_model_matches_the_report_code(audit: Audit) -> None:
    torch.manual_seed(0)
    options = recipes.plain(audit.model).model_kwargs()  # the options the study trains the model with
    model = models.build(audit.model, **options).eval()
    calls, seen = _trace(model, torch.randn(2, 3, 32, 32))

    outside = [d for name, d in calls if not any(_within(name, stage) for stage in audit.stages)]
    assert outside == audit.outside, f"{audit.model}: stem and head differ from {audit.code_file}"
    projection = audit.shortcut[2] if audit.shortcut and audit.shortcut[0] == "projection" else None
    for block, expected in audit.blocks.items():
        branch = [d for name, d in calls if _within(name, block) and not (projection and _within(name, projection))]
        assert branch == expected, f"{audit.model}: {block} differs from {audit.code_file}"

    if audit.shortcut is not None:
        kind, block = audit.shortcut[:2]
        block_input, block_output = seen[block]
        if kind == "projection":
            assert [d for name, d in calls if _within(name, projection)] == audit.shortcut_layers
            assert torch.equal(seen[projection][0], block_input), f"{audit.model}: the projection's input is not " \
                                                                  "the block's raw input"
        elif kind == "identity":
            assert torch.equal(block_output, block_input + seen[audit.shortcut[2]][1])
        else:
            assert torch.equal(block_output[:, :block_input.shape[1]], block_input)

    name, init = audit.init
    conv = model.get_submodule(name)
    conv = conv.conv if not isinstance(conv, nn.Conv2d) else conv
    fan_in = conv.weight[0].numel()
    assert conv.weight.std().item() == pytest.approx(INIT_STD[init](fan_in), rel=0.1), \
        f"{audit.model}: {name}'s initial weights are not {init} ({audit.code_file})"
    for module in model.modules():  # both codes start BN at scale 1, shift 0
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)


def test_every_zoo_model_and_resnet9_is_audited() -> None:
    from cifarnb.study import profiles

    assert {audit.model for audit in AUDITS} == set(profiles.get("full").zoo_models) | {"resnet9"}


@pytest.mark.parametrize("model", ["wideresnet16x8", "densenet100_bc", "geresnext29_8x64d"])
def test_the_audit_fails_on_the_first_reading(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The three differences the audit found: built as the first reading built them (the library's defaults, the
    WideResNets' dropout kept), the audit above fails."""
    audit = next(a for a in AUDITS if a.model == model)
    original = recipes.plain
    first_reading = {"dropout": 0.5} if model.startswith("wideresnet") else {}
    monkeypatch.setattr(recipes, "plain", lambda name: original(name, model_options=first_reading))
    with pytest.raises(AssertionError):
        test_model_matches_the_report_code(audit)
