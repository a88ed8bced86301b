"""Building blocks shared by the model families.

`make_activation` gives every family the same `activation=` option (the report's
section 1.1.3 compares ReLU, Mish, LeakyReLU, ELU and GELU on ResNet18).
`GhostBatchNorm2d` is the ghost batch normalisation of Hoffer et al. 2017
("Train longer, generalize better"), used by FastResNet9 (report section 1.4.2).
`shard_batchnorm` makes a model's BatchNorm normalise as `nn.DataParallel` on
several GPUs does (each GPU's piece of the batch alone), as the report's main.py
trained the ablations and the zoo. Both normalise groups of a batch with
`batch_norm_in_groups`. `initialise` gives the families the initialisations the
report's code uses beside PyTorch's default (`INITS`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import names

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "mish": nn.Mish,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}
ACTIVATIONS: tuple[str, ...] = names.ACTIVATIONS  # the same names, torch-free (tests/test_cli.py)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module; `name` is case-insensitive ("LeakyReLU" works too).

    Each call returns a new instance so that every position in a network has
    its own module, which is what lets forward hooks target one position.
    """
    key = name.lower()
    if key == "leakyrelu":
        key = "leaky_relu"
    if key not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choices: {', '.join(ACTIVATIONS)}")
    return _ACTIVATIONS[key]()


def batch_norm_in_groups(x: Tensor, group_size: int, weight: Tensor | None, bias: Tensor | None,
                         eps: float) -> tuple[Tensor, Tensor, Tensor, list[int]]:
    """Normalise consecutive groups of ``group_size`` samples of ``x`` (N x C x ...) each by its own statistics
    (the last group may be smaller). Returns the output, each group's per-channel mean and unbiased variance
    (groups x C, for running statistics) and each group's size.

    Speed: the equal groups are one (G, N/G, C, ...) view of the batch and one ``var_mean`` pass, so a
    channels_last input stays channels_last (no transpose to stack groups into channels and back, which
    doubled FastResNet9's epoch) and torch.compile fuses the rest into the neighbouring kernels.
    """
    n, channels = x.shape[0], x.shape[1]
    full = n // group_size * group_size
    pieces = [(x[:full], full // group_size)] if full else []
    if full < n:
        pieces.append((x[full:], 1))
    shape = (1, 1, channels) + (1,) * (x.dim() - 2)  # broadcast over groups, samples and pixels
    outputs, means, variances, sizes = [], [], [], []
    for piece, groups in pieces:
        grouped = piece.view(groups, piece.shape[0] // groups, *piece.shape[1:])
        reduce = (1, *range(3, grouped.dim()))  # every axis but the group and the channel
        var, mean = torch.var_mean(grouped, dim=reduce, keepdim=True, correction=0)
        out = (grouped - mean) * torch.rsqrt(var + eps)
        if weight is not None:
            out = out * weight.view(shape) + bias.view(shape)
        outputs.append(out.view(piece.shape))
        count = grouped[0].numel() // channels  # values per channel in one group
        means.append(mean.detach().view(groups, channels))
        variances.append(var.detach().view(groups, channels) * (count / max(count - 1, 1)))
        sizes += [piece.shape[0] // groups] * groups
    out = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
    return out, torch.cat(means), torch.cat(variances), sizes


@torch.no_grad()
def _update_running_stats(bn: nn.modules.batchnorm._BatchNorm, mean: Tensor, var: Tensor) -> None:
    """What BatchNorm does to its running statistics with one batch's mean and unbiased variance (the same
    momentum convention, momentum=None included: a cumulative average)."""
    bn.num_batches_tracked.add_(1)
    factor = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
    bn.running_mean.mul_(1 - factor).add_(mean.to(bn.running_mean.dtype), alpha=factor)
    bn.running_var.mul_(1 - factor).add_(var.to(bn.running_var.dtype), alpha=factor)


class GhostBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that, in training, normalises each ghost batch on its own.

    The batch is cut into consecutive chunks of `ghost_batch_size` samples (the
    last one may be smaller) and each chunk is normalised with its own mean and
    variance. The running statistics are updated once per call, with the
    size-weighted average of the chunks' means and unbiased variances, so that
    a batch of exactly one ghost batch gives the same output and running stats
    as nn.BatchNorm2d (and the same as keeping statistics per chunk and averaging
    them, as the report's code does: the update is linear). Eval mode is plain
    BatchNorm2d with the running stats. Being a subclass, its parameters and
    buffers have BatchNorm2d's names, so state dicts move freely between the two.
    """

    def __init__(self, num_features: int, ghost_batch_size: int = 32, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        if ghost_batch_size < 2:
            raise ValueError(f"ghost_batch_size must be at least 2, got {ghost_batch_size}")
        self.ghost_batch_size = ghost_batch_size

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ghost_batch_size={self.ghost_batch_size}"

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or x.shape[0] <= self.ghost_batch_size:
            return super().forward(x)
        self._check_input_dim(x)
        out, means, variances, sizes = batch_norm_in_groups(x, self.ghost_batch_size, self.weight, self.bias,
                                                            self.eps)
        if self.track_running_stats:
            # Size-weighted mean over chunks; the weights stay Python scalars (a weight tensor built on the GPU
            # would cost a blocking host-to-device copy in every BN layer at every step). Only the last differs.
            total = sum(sizes)
            mean, var = ((stat[:-1].sum(0) * (sizes[0] / total) + stat[-1] * (sizes[-1] / total))
                         for stat in (means, variances))
            _update_running_stats(self, mean, var)
        return out


class _DataParallelShards:
    """BatchNorm as ``nn.DataParallel`` runs it on ``shards`` GPUs (report 1.1-1.3: the report's main.py wraps
    every model in DataParallel on four GPUs).

    DataParallel scatters a batch as ``torch.chunk`` does (pieces of ceil(N / shards) samples: 32 of a batch of
    128, 20 of the last 80 images of an epoch) and each replica normalises its own piece. It keeps the buffers of
    the replica on its first device, so the running statistics are the first piece's. Eval mode is plain BN.
    """

    shards: int

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.shards == 1:
            return super().forward(x)
        self._check_input_dim(x)
        piece = -(-x.shape[0] // self.shards)  # ceil, as torch.chunk cuts
        out, means, variances, _ = batch_norm_in_groups(x, piece, self.weight, self.bias, self.eps)
        if self.track_running_stats:
            _update_running_stats(self, means[0], variances[0])
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, shards={self.shards}"


class ShardedBatchNorm2d(_DataParallelShards, nn.BatchNorm2d):
    pass


class ShardedBatchNorm1d(_DataParallelShards, nn.BatchNorm1d):
    pass


def shard_batchnorm(model: nn.Module, shards: int) -> int:
    """Make every plain BatchNorm1d/2d of ``model`` normalise as ``nn.DataParallel`` on ``shards`` GPUs would
    (:class:`_DataParallelShards`), in place, keeping parameters, buffers and their names. Ghost BN layers keep
    their own ghost batches. Returns how many layers changed (0: the model has no BatchNorm)."""
    changed = 0
    for module in model.modules():
        if type(module) in (nn.BatchNorm2d, nn.BatchNorm1d):
            module.__class__ = ShardedBatchNorm2d if isinstance(module, nn.BatchNorm2d) else ShardedBatchNorm1d
            module.shards = shards
            changed += 1
    return changed


# How a model's weights start. "default": PyTorch's per-layer default (conv and linear weights uniform with std
# 1 / sqrt(3 fan_in)). "xavier_normal": the course VGG_BatchNorm template's utils/nn.py (conv and linear weights
# Xavier-normal, biases zero). "kaiming_normal": the report's densenetbc.py and genet.py (every conv weight
# He-normal, std sqrt(2 / fan_in), as nn.init.kaiming_normal_'s defaults give; linear layers keep the default).
# BatchNorm starts at scale 1 and shift 0 under all three, as both codes set it.
INITS = ("default", "xavier_normal", "kaiming_normal")


@torch.no_grad()
def initialise(model: nn.Module, init: str) -> None:
    """Re-initialise ``model``'s weights in place as ``init`` (one of :data:`INITS`) says."""
    if init not in INITS:
        raise ValueError(f"init={init!r} is not one of {', '.join(INITS)}")
    for module in model.modules():
        if init == "xavier_normal" and isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif init == "kaiming_normal" and isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)  # fan_in, gain sqrt(2): std sqrt(2 / fan_in)
        # BatchNorm layers start at scale 1, shift 0 already.


def make_batchnorm(num_features: int, ghost_batch_size: int | None = None) -> nn.BatchNorm2d:
    """BatchNorm2d, or GhostBatchNorm2d when a ghost batch size is given."""
    if ghost_batch_size is None:
        return nn.BatchNorm2d(num_features)
    return GhostBatchNorm2d(num_features, ghost_batch_size)


def conv3x3(
    in_channels: int, out_channels: int, stride: int = 1, groups: int = 1, bias: bool = False
) -> nn.Conv2d:
    """3x3 convolution with 'same' padding; bias off by default because a BatchNorm follows."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=bias)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias)
