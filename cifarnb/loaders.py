"""Batches for training and evaluation: the project's on-device loader and the report's reference pipeline.

``tensor`` (default): the whole split lives as one uint8 tensor on the training device; cropping, flipping
and normalising are batched tensor ops there, so the hot path has no per-image Python work and, on a GPU,
no host-to-device copies.

``torchvision``: the report's pipeline (PIL images through ``RandomCrop(32, padding=4)``,
``RandomHorizontalFlip``, ``ToTensor``, ``Normalize`` in a ``DataLoader``), kept as the reference that
benchmarks compare against.

Both shuffle with a generator seeded by ``(seed, epoch)``, so epoch ``k`` sees the same order whether a run
started at epoch 0 or resumed at ``k``.
"""

from __future__ import annotations

from typing import Iterator, Protocol

import torch

from .data import NORMALIZATIONS

LOADERS = ("tensor", "torchvision")
CROP_PADDING = 4


def epoch_generator(seed: int, epoch: int, device: str | torch.device = "cpu") -> torch.Generator:
    # A large odd multiplier keeps (seed, epoch) pairs from colliding for any realistic seed/epoch count.
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch)


class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def batches(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


class _Loader:
    """What both loaders share: batch geometry, (seed, epoch) shuffling, the output dtype and layout."""

    def __init__(self, rows: int, batch_size: int, *, train: bool, device: str | torch.device = "cpu",
                 seed: int = 0, drop_last: bool = False, dtype: torch.dtype = torch.float32,
                 channels_last: bool = False, augment: bool = True, normalization: str = "cifar10"):
        self.rows, self.device = rows, torch.device(device)
        self.batch_size, self.train, self.seed, self.drop_last = batch_size, train, seed, drop_last
        self.dtype, self.channels_last = dtype, channels_last
        self.augment = train and augment  # test batches are never augmented
        self.mean, self.std = NORMALIZATIONS[normalization]

    def __len__(self) -> int:
        return self.rows // self.batch_size if self.drop_last else -(-self.rows // self.batch_size)


class TensorLoader(_Loader):
    """Normalised (and, for training, augmented) batches cut from a device-resident uint8 tensor.

    Options are :class:`_Loader`'s: ``train``, ``device``, ``seed``, ``drop_last``, ``dtype``, ``channels_last``,
    ``augment`` (random crop and flip of training batches) and ``normalization`` (``data.NORMALIZATIONS``).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, **options):
        super().__init__(len(labels), batch_size, **options)
        # One upload for the whole run; zero padding matches torchvision's RandomCrop(padding=4) on raw pixels.
        self.images = images.to(self.device)
        if self.augment:
            self.images = torch.nn.functional.pad(self.images, [CROP_PADDING] * 4)
        self.labels = labels.to(self.device)
        # Per-channel statistics on raw 0-255 pixels, shaped to broadcast over a batch.
        self.mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1) * 255

    def batches(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rows = self.rows
        if self.train:
            generator = epoch_generator(self.seed, epoch, self.device)
            order = torch.randperm(rows, generator=generator, device=self.device)
        else:
            generator, order = None, torch.arange(rows, device=self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images[index]
            if self.augment:
                images = self._random_crop_and_flip(images, generator)
            yield self._normalise(images), self.labels[index]

    def _random_crop_and_flip(self, padded: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        count, size = len(padded), padded.shape[-1] - 2 * CROP_PADDING
        # Step 1, random crop: each image gets its own (dy, dx) offset; one gather cuts all crops at once.
        offsets = torch.randint(0, 2 * CROP_PADDING + 1, (2, count), generator=generator, device=self.device)
        span = torch.arange(size, device=self.device)
        rows = (offsets[0, :, None] + span)[:, None, :, None]  # count x 1 x size x 1
        cols = (offsets[1, :, None] + span)[:, None, None, :]  # count x 1 x 1 x size
        batch_index = torch.arange(count, device=self.device)[:, None, None, None]
        channel_index = torch.arange(padded.shape[1], device=self.device)[None, :, None, None]
        crops = padded[batch_index, channel_index, rows, cols]
        # Step 2, horizontal flip with probability 1/2, chosen per image.
        flip = torch.rand(count, generator=generator, device=self.device) < 0.5
        return torch.where(flip[:, None, None, None], crops.flip(-1), crops)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        images = ((images.float() - self.mean) / self.std).to(self.dtype)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images


class _PILDataset(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images = images.permute(0, 2, 3, 1).numpy()  # HWC for PIL, as torchvision's CIFAR10 stores it
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, row: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[row])), self.labels[row]


class TorchvisionLoader(_Loader):
    """The report's pipeline: per-image PIL transforms in DataLoader workers, copied to the device per batch."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, num_workers: int = 2,
                 **options):
        import torchvision.transforms as T

        super().__init__(len(labels), batch_size, **options)
        steps = [T.RandomCrop(32, padding=CROP_PADDING), T.RandomHorizontalFlip()] if self.augment else []
        transform = T.Compose([*steps, T.ToTensor(), T.Normalize(self.mean, self.std)])
        self.dataset = _PILDataset(images, labels, transform)
        self.num_workers = num_workers

    def batches(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # With workers, each worker's transform RNG is seeded from this generator, so epochs are repeatable;
        # with num_workers=0 the transforms draw from the global torch RNG instead.
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=self.train,
            drop_last=self.drop_last,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=epoch_generator(self.seed, epoch),
        )
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        for images, labels in loader:
            images = images.to(self.device, self.dtype, non_blocking=True, memory_format=memory_format)
            yield images, labels.to(self.device, non_blocking=True)


def make_loader(kind: str, images: torch.Tensor, labels: torch.Tensor, batch_size: int, **options) -> BatchSource:
    """``kind`` is one of :data:`LOADERS`; options are those of :class:`TensorLoader`."""
    if kind == "tensor":
        options.pop("num_workers", None)
        return TensorLoader(images, labels, batch_size, **options)
    if kind == "torchvision":
        return TorchvisionLoader(images, labels, batch_size, **options)
    raise ValueError(f"loader={kind!r} is not one of {', '.join(LOADERS)}")
