"""Building blocks shared by the model families.

`make_activation` gives every family the same `activation=` option (the report's
section 1.1.3 compares ReLU, Mish, LeakyReLU, ELU and GELU on ResNet18).
`GhostBatchNorm2d` is the ghost batch normalisation of Hoffer et al. 2017
("Train longer, generalize better"), used by FastResNet9 (report section 1.4.2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "mish": nn.Mish,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}
ACTIVATIONS: tuple[str, ...] = tuple(_ACTIVATIONS)


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


class GhostBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that, in training, normalises each ghost batch on its own.

    The batch is cut into consecutive chunks of `ghost_batch_size` samples (the
    last one may be smaller) and each chunk is normalised with its own mean and
    variance. The running statistics are updated once per call, with the
    size-weighted average of the chunks' means and unbiased variances, so that
    a batch of exactly one ghost batch gives the same output and running stats
    as nn.BatchNorm2d. Eval mode is plain BatchNorm2d with the running stats.
    Being a subclass, its parameters and buffers have BatchNorm2d's names, so
    state dicts move freely between the two.
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
        size = self.ghost_batch_size
        n_full = x.shape[0] // size * size
        outputs, means, variances, counts = [], [], [], []
        for chunk, ghosts in ((x[:n_full], n_full // size), (x[n_full:], 1)):
            if chunk.shape[0] == 0:
                continue
            out, mean, var = self._normalise(chunk, ghosts)
            outputs.append(out)
            means.append(mean)
            variances.append(var)
            counts.extend([chunk.shape[0] // ghosts] * ghosts)
        if self.track_running_stats:
            self._update_running_stats(torch.cat(means), torch.cat(variances), counts)
        return torch.cat(outputs) if len(outputs) > 1 else outputs[0]

    def _normalise(self, x: Tensor, ghosts: int) -> tuple[Tensor, Tensor, Tensor]:
        """Normalise `ghosts` equal consecutive chunks of x with one fused call.

        Moving the chunk index into the channel axis turns ghost batch norm into
        ordinary batch norm over ghosts * C channels. Returns the output and each
        chunk's per-channel mean and unbiased variance, shaped (ghosts, C).
        """
        n, c, h, w = x.shape
        per_ghost = n // ghosts
        stacked = x.reshape(ghosts, per_ghost, c, h, w).transpose(0, 1)
        stacked = stacked.reshape(per_ghost, ghosts * c, h, w)
        weight = self.weight.repeat(ghosts) if self.weight is not None else None
        bias = self.bias.repeat(ghosts) if self.bias is not None else None
        out = F.batch_norm(stacked, None, None, weight, bias, True, 0.0, self.eps)
        out = out.reshape(per_ghost, ghosts, c, h, w).transpose(0, 1).reshape(n, c, h, w)
        with torch.no_grad():
            flat = x.detach().reshape(ghosts, per_ghost, c, h * w).transpose(1, 2)
            var, mean = torch.var_mean(flat.reshape(ghosts, c, -1), dim=2, correction=1)
        return out, mean, var

    @torch.no_grad()
    def _update_running_stats(self, means: Tensor, variances: Tensor, counts: list[int]) -> None:
        # Chunk weights stay Python scalars: a weight tensor built on the GPU would cost a blocking
        # host-to-device copy in every BN layer at every step. Only the last chunk can differ in size.
        total = sum(counts)
        self.num_batches_tracked.add_(1)
        # Same momentum convention as BatchNorm2d, including momentum=None (cumulative average).
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        for running, batch in ((self.running_mean, means), (self.running_var, variances)):
            weighted = batch[:-1].sum(0) * (counts[0] / total) + batch[-1] * (counts[-1] / total)
            running.mul_(1 - factor).add_(weighted.to(running.dtype), alpha=factor)


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
