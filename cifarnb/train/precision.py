"""How a run's arithmetic runs (``TrainConfig.precision``): the autocast type on each device, and the precision a
run records. The process-wide TF32 switch for convolutions is ``cifarnb.device.use_tf32_convolutions``."""

from __future__ import annotations

import contextlib

import torch

from .config import TrainConfig


def autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or config.precision in ("fp32", "tf32"):
        return None
    return torch.float16 if config.precision == "fp16" else torch.bfloat16


def resolved_precision(config: TrainConfig, device: torch.device) -> str:
    """The precision ``config`` runs in on ``device``, as a run records it: "fp32" on a CPU, "bf16" for "auto" on
    CUDA, else the one chosen (see ``config.PRECISIONS``)."""
    if device.type != "cuda":
        return "fp32"
    return "bf16" if config.precision == "auto" else config.precision


def autocast(device: torch.device, half: torch.dtype | None):
    """The context a step's forward pass and loss run in: autocast to ``half``, or nothing (None)."""
    if half is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=half)
