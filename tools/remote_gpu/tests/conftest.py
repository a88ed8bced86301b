"""The procedure's tests: the real CIFAR-10 copy (skipped with a reason when absent), as the product's tests find it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

CHECKOUT = Path(__file__).resolve().parents[3]
SHARED_DATA = CHECKOUT.parent / "shared" / "cifar10"


@pytest.fixture(scope="session")
def cifar_root() -> Path:
    for candidate in (os.environ.get("CIFARNB_DATA"), SHARED_DATA):
        if candidate and (Path(candidate) / "cifar-10-batches-py").is_dir():
            return Path(candidate)
    pytest.skip("CIFAR-10 not found: set CIFARNB_DATA to a folder holding cifar-10-batches-py/")
