"""CIFAR-10 on disk -> uint8 tensors in memory.

Reads the official "python version" layout (``cifar-10-batches-py/``). Copies whose file checksums differ
from the official archive (the shared copy used in CI has no per-image filenames) are accepted as long
as their *structure* is right, so every batch is checked for shape, dtype, label range and count.

Pickle can run arbitrary code, so batches are read with an unpickler that only resolves the handful of
numpy globals an ndarray needs.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
ROWS_PER_BATCH = 10_000
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# The report normalises with these per-channel statistics of the training set (report 1.3).
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
# TrainConfig.normalization -> (mean, std) per channel on [0, 1] pixels. "half" maps pixels to [-1, 1], as the
# VGG_BatchNorm course template's Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) does (report section 2).
NORMALIZATIONS = {"cifar10": (MEAN, STD), "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))}

DATA_ENV_VAR = "CIFARNB_DATA"


# How the messages below say to fetch the data from Python; the command line says it its own way ("--download").
PYTHON_FETCH = "load_cifar10(download=True)"


class DataNotFoundError(FileNotFoundError):
    """The data set is not where we looked and downloading was not allowed."""


class CorruptDataError(ValueError):
    """A batch file exists but is truncated, not a CIFAR pickle, or has the wrong shape or labels."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only the globals that rebuilding a numpy array needs; anything else is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")


def _read_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            content = _NumpyOnlyUnpickler(handle, encoding="bytes").load()
    except FileNotFoundError:
        raise DataNotFoundError(f"{path} is missing; re-download the data set ({PYTHON_FETCH})") from None
    except Exception as error:  # truncated files raise EOFError, garbage raises UnpicklingError, ...
        raise CorruptDataError(
            f"{path} is truncated or not a CIFAR-10 batch ({type(error).__name__}); delete it and re-download"
        ) from None
    if not isinstance(content, dict):
        raise CorruptDataError(f"{path} does not hold a dict as CIFAR-10 batches do; delete it and re-download")
    return content


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    content = _read_pickle(path)
    images, labels = content.get(b"data"), content.get(b"labels")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.shape != (ROWS_PER_BATCH, 3072):
        shape = getattr(images, "shape", None)
        dtype = getattr(images, "dtype", None)
        raise CorruptDataError(
            f"{path}: 'data' must be uint8 of shape ({ROWS_PER_BATCH}, 3072), got {dtype} {shape}; re-download it"
        )
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise CorruptDataError(f"{path}: 'labels' is not a list of integers; re-download it") from None
    if labels.shape != (ROWS_PER_BATCH,):
        raise CorruptDataError(f"{path}: expected {ROWS_PER_BATCH} labels, got shape {labels.shape}; re-download it")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise CorruptDataError(
            f"{path}: labels must lie in 0..{NUM_CLASSES - 1}, found {labels.min()}..{labels.max()}; re-download it"
        )
    return images.reshape(ROWS_PER_BATCH, *IMAGE_SHAPE), labels


@dataclass(frozen=True)
class CIFAR10:
    """The data set as uint8 image tensors (N x 3 x 32 x 32) and int64 labels, on the CPU."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...] = CLASSES

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> "CIFAR10":
        """A class-balanced random subset (same seed, same rows); ``None`` keeps a split whole."""
        return CIFAR10(
            *_balanced(self.x_train, self.y_train, n_train, seed, "n_train"),
            *_balanced(self.x_test, self.y_test, n_test, seed + 1, "n_test"),
            classes=self.classes,
        )


def _balanced(images: torch.Tensor, labels: torch.Tensor, count: int | None, seed: int, field: str):
    if count is None or count == len(labels):
        return images, labels
    if not 0 < count <= len(labels):
        raise ValueError(f"{field}={count} is out of range: use 1..{len(labels)} or None for the whole split")
    generator = torch.Generator().manual_seed(seed)
    per_class = [torch.nonzero(labels == c).flatten() for c in range(NUM_CLASSES)]
    per_class = [rows[torch.randperm(len(rows), generator=generator)] for rows in per_class]
    # Deal the classes round-robin so any count is as balanced as it can be (sizes differ by at most one).
    quota = [count // NUM_CLASSES + (c < count % NUM_CLASSES) for c in range(NUM_CLASSES)]
    chosen = torch.cat([rows[:q] for rows, q in zip(per_class, quota)])
    chosen = chosen[torch.randperm(len(chosen), generator=generator)]
    return images[chosen], labels[chosen]


def random_cifar10(n_train: int, n_test: int, seed: int = 0) -> CIFAR10:
    """Random images and labels in CIFAR-10's shapes and dtypes, for speed measurements and self-tests of the
    training step (a step's speed and its code paths do not depend on the pixels)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n_train + n_test, *IMAGE_SHAPE), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (n_train + n_test,), generator=generator)
    return CIFAR10(images[:n_train], labels[:n_train], images[n_train:], labels[n_train:])


def resolve_root(data_root: str | os.PathLike | None = None) -> Path:
    """The folder holding ``cifar-10-batches-py/``: ``data_root``, else ``$CIFARNB_DATA``, else ``./data``."""
    if data_root is not None:
        return Path(data_root)
    return Path(os.environ.get(DATA_ENV_VAR) or "data")


@functools.lru_cache(maxsize=4)
def is_official(data_root: str | os.PathLike | None = None) -> bool:
    """Whether ``data_root`` holds the official archive's batch files (their published MD5s, as torchvision lists
    them). Copies with other checksums load as well (see the module docstring), but only the official test set
    makes the 10,000-image accuracy comparable with published numbers."""
    from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

    folder = resolve_root(data_root) / BATCH_FOLDER
    for name, published in (*TorchvisionCIFAR10.train_list, *TorchvisionCIFAR10.test_list):
        path = folder / name
        if not path.is_file() or hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest() != published:
            return False
    return True


def _download(root: Path) -> None:
    # torchvision fetches the official archive, verifies its MD5 and shows a progress bar.
    from urllib.error import URLError

    from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

    root.mkdir(parents=True, exist_ok=True)
    try:
        TorchvisionCIFAR10(str(root), train=True, download=True)
    except URLError as error:  # no network, no DNS, a proxy refusing: urllib says which in its reason
        raise DataNotFoundError(
            f"could not download CIFAR-10 from {TorchvisionCIFAR10.url} ({error.reason}): is there a network here? "
            f"Place the data by hand instead: fetch that archive elsewhere and unpack it into {root} "
            f"(it holds {BATCH_FOLDER}/), or set {DATA_ENV_VAR} to a folder that holds {BATCH_FOLDER}/"
        ) from None


def _complete(folder: Path) -> bool:
    """Whether every batch is present and reads as a valid CIFAR-10 batch."""
    try:
        for name in (*TRAIN_FILES, TEST_FILE):
            _read_batch(folder / name)
    except (DataNotFoundError, CorruptDataError):
        return False
    return True


def load_cifar10(
    data_root: str | os.PathLike | None = None,
    download: bool = False,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
) -> CIFAR10:
    """Load CIFAR-10 from ``data_root/cifar-10-batches-py`` (see :func:`resolve_root`).

    ``n_train`` / ``n_test`` pick a class-balanced, seeded subset for small runs.
    """
    root = resolve_root(data_root)
    if download and not _complete(root / BATCH_FOLDER):
        # Missing, partial or damaged: fetch again (torchvision re-extracts over what is there).
        _download(root)
        _load_whole.cache_clear()
    return _load_whole(str(root.resolve())).subset(n_train, n_test, seed)


@functools.lru_cache(maxsize=2)
def _load_whole(root: str) -> CIFAR10:
    # Cached per process: a notebook trains dozens of runs from the same 180 MB of pixels.
    folder = Path(root) / BATCH_FOLDER
    if not folder.is_dir():
        raise DataNotFoundError(
            f"CIFAR-10 not found at {folder}; fetch it with {PYTHON_FETCH}, "
            f"or set {DATA_ENV_VAR} to a folder that contains {BATCH_FOLDER}/"
        )
    train = [_read_batch(folder / name) for name in TRAIN_FILES]
    x_test, y_test = _read_batch(folder / TEST_FILE)
    classes = CLASSES
    if (folder / META_FILE).exists():
        names = _read_pickle(folder / META_FILE).get(b"label_names")
        if not isinstance(names, list) or len(names) != NUM_CLASSES:
            raise CorruptDataError(f"{folder / META_FILE}: expected {NUM_CLASSES} label names; re-download it")
        classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return CIFAR10(
        x_train=torch.from_numpy(np.concatenate([x for x, _ in train])),
        y_train=torch.from_numpy(np.concatenate([y for _, y in train])),
        x_test=torch.from_numpy(x_test),
        y_test=torch.from_numpy(y_test),
        classes=classes,
    )


def first_test_image(data_root: str | os.PathLike | None = None) -> tuple[torch.Tensor, int]:
    """Row 0 of the official test set (a cat, used by the report's feature-map figures), uint8 3x32x32."""
    images, labels = _read_batch(resolve_root(data_root) / BATCH_FOLDER / TEST_FILE)
    return torch.from_numpy(images[0].copy()), int(labels[0])
