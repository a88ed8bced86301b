"""The precision each of the study's runs trains in on a GPU: the report's code's, unless the card's probe shows
that costing more than ``settings.PRECISION_MAX_COST`` times bf16 autocast.

Precision is an execution field (``TrainConfig.EXECUTION_FIELDS``): it is left out of every run's key, so a run
made in bf16 and one made in TF32 are the same experiment; each run records the precision it ran in
(``meta["precision"]``) and the section tables show it (``reading.precisions``).
"""

from __future__ import annotations

import functools

import torch

from ..train import TrainConfig
from ..train.fastpath import on_cuda
from .probes import Probe
from .settings import FASTRESNET9_PRECISION, MAIN_PY_PRECISION, PRECISION_MAX_COST


def report_precision(config: TrainConfig) -> str:
    """The precision the report's code trained ``config``'s kind of run in: its FastResNet9 code (the one whose
    optimiser carries the rate in the velocity, ``sgd_velocity``) in fp16; main.py and the VGG scripts in fp32 with
    TF32 convolutions."""
    return FASTRESNET9_PRECISION if config.optimizer == "sgd_velocity" else MAIN_PY_PRECISION


@functools.cache
def _this_cards_probe() -> Probe | None:
    """The newest committed probe of this machine's GPU (None without CUDA here: a plan made for another machine)."""
    return Probe.newest(torch.cuda.get_device_name()) if torch.cuda.is_available() else None


def sweep_precision(config: TrainConfig, probe: Probe | None = None) -> str:
    """The precision a sweep runs ``config`` in: one chosen explicitly (anything but "auto") stays; else the
    report's (:func:`report_precision`), or bf16 where ``probe`` (default: the newest committed probe of this
    machine's card) timed the report's at more than ``PRECISION_MAX_COST`` times bf16 for the model's family. On a
    CPU every precision is fp32, so the report's is kept as the config's."""
    if config.precision != "auto":
        return config.precision
    wanted = report_precision(config)
    if not on_cuda(config.device):
        return wanted
    if probe is None:
        probe = _this_cards_probe()
    cost = probe.precision_cost(config.model, wanted) if probe is not None else None
    return "bf16" if cost is not None and cost > PRECISION_MAX_COST else wanted


def with_sweep_precision(config: TrainConfig) -> TrainConfig:
    """``config`` in the precision a sweep runs it in (:func:`sweep_precision`); the same key."""
    return config.replace(precision=sweep_precision(config))
