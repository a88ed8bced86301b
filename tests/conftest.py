"""Shared fixtures: the real CIFAR-10 copy (skipped with a reason when absent) and small subsets of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "cifar10"


def data_root() -> Path | None:
    for candidate in (os.environ.get("CIFARNB_DATA"), SHARED_DATA):
        if candidate and (Path(candidate) / "cifar-10-batches-py").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def cifar_root() -> Path:
    root = data_root()
    if root is None:
        pytest.skip("CIFAR-10 not found: set CIFARNB_DATA to a folder holding cifar-10-batches-py/")
    return root


@pytest.fixture(scope="session")
def cifar(cifar_root):
    from cifarnb.data import load_cifar10

    return load_cifar10(cifar_root)


@pytest.fixture(scope="session")
def tiny(cifar):
    """64 training and 64 test images, class-balanced: enough for a few real optimisation steps on a CPU."""
    return cifar.subset(64, 64, seed=0)
