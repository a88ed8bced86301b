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
from .names import AUGMENTATIONS, LOADERS  # written once, torch-free (the command line lists them)

CROP_PADDING = 4
# How training batches are augmented (with augment=True):
#   per_image  each image its own random crop (zero padding 4, torchvision's RandomCrop) and a coin-flip mirror;
#   per_batch  the report's FastResNet9 code (utils.random_crop, main_fastresnet9.train): reflect padding 4, one
#              crop offset per batch, drawn from 0-7 as its randint(8) draws it, and the first half of each
#              epoch's shuffled images mirrored.


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
                 channels_last: bool = False, augment: bool = True, normalization: str = "cifar10",
                 augmentation: str = "per_image"):
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation={augmentation!r} is not one of {', '.join(AUGMENTATIONS)}")
        self.rows, self.device = rows, torch.device(device)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.drop_last = train and drop_last  # every test image is evaluated
        self.dtype, self.channels_last = dtype, channels_last
        self.augment = train and augment  # test batches are never augmented
        self.augmentation = augmentation
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
        # One upload for the whole run, padded once: zeros match torchvision's RandomCrop(padding=4) on raw
        # pixels; the report's FastResNet9 code pads by reflection.
        self.images = images.to(self.device)
        if self.augment:
            mode = "reflect" if self.augmentation == "per_batch" else "constant"
            self.images = torch.nn.functional.pad(self.images, [CROP_PADDING] * 4, mode=mode)
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
        if self.augment and self.augmentation == "per_batch":
            # One crop offset per batch, 0-7 (the report's code draws randint(8), never 8): drawn for the whole
            # epoch at once, so reading them costs one host synchronisation an epoch, not one a step.
            offsets = torch.randint(0, 2 * CROP_PADDING, (len(self), 2), generator=generator,
                                    device=self.device).tolist()
        for number, start in enumerate(range(0, len(self) * self.batch_size, self.batch_size)):
            index = order[start : start + self.batch_size]
            images = self.images[index]
            if self.augment and self.augmentation == "per_batch":
                images = self._crop_and_half_flip(images, start, *offsets[number])
            elif self.augment:
                images = self._random_crop_and_flip(images, generator)
            yield self._normalise(images), self.labels[index]

    def _crop_and_half_flip(self, padded: torch.Tensor, start: int, dy: int, dx: int) -> torch.Tensor:
        """The report's FastResNet9 augmentation of the batch at ``start`` of the epoch's order: its one crop,
        and a mirror for the images in the first half of the epoch's shuffled order."""
        size = padded.shape[-1] - 2 * CROP_PADDING
        crops = padded[:, :, dy:dy + size, dx:dx + size]
        flip = (start + torch.arange(len(crops), device=self.device)) < self.rows // 2
        return torch.where(flip[:, None, None, None], crops.flip(-1), crops)

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
        if self.augment and self.augmentation != "per_image":
            raise ValueError(f"loader='torchvision' augments per image; augmentation={self.augmentation!r} needs "
                             "loader='tensor'")
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
