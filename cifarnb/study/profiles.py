"""Run profiles: how much of the report a notebook reruns. Same code for all three, different sizes.

* ``smoke``: a 2-core CPU in minutes. Real CIFAR-10 images, but tiny class-balanced subsets, two or three
  epochs and the cheapest models, so the numbers only show that every path works, not what it achieves.
* ``quick``: one GPU, well under an hour per notebook. Full data; the report's epoch counts where the report
  reads a number after few epochs (25 for the ablations and the zoo's first column, 10 for FastResNet9, 20
  for VGG-A), so those columns compare directly; the 200-epoch columns stay for ``full``.
* ``full``: exactly the report's settings (200-epoch zoo and ResNet9 runs).

A profile also carries the execution settings (device, data folder, memory layout) that every config built
from it gets: ``profiles.get("quick", device="cuda", data_root="/data")``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..train import TrainConfig
from ..train.execution import sweep_execution
from .settings import (ABLATION_EPOCHS, EARLY_RESNET9_EPOCHS, EARLY_ZOO_EPOCHS, LANDSCAPE_GAP,
                       LANDSCAPE_LEARNING_RATES, REPORT_BATCH_SIZE, REPORT_EPOCHS, VGG_EPOCHS)

ZOO_MODELS = (
    "lenet5", "alexnet", "resnet18", "resnet34", "resnet50", "resnext29_2x32d", "resnext29_2x64d",
    "resnext29_32x4d", "densenet100_bc", "densenet121", "wideresnet16x8", "wideresnet28x10", "geresnext29_8x64d",
)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    n_train: int | None  # training subset size (None: all 50,000)
    n_test: int | None  # test subset size (None: all 10,000)
    seeds: tuple[int, ...]
    batch_size: int  # the report's 128, except in smoke where a tiny subset needs smaller batches to take steps
    ablation_epochs: int  # report 1.1: 25
    zoo_epochs: int  # report 1.3: 200 (Table 7 also reads epoch 25)
    zoo_models: tuple[str, ...]
    resnet9_epochs: int  # report 1.4: 200 (Tables 8-9 also read epoch 10)
    vgg_epochs: int  # report 2.1 and 2.2: 20
    landscape_learning_rates: tuple[float, ...]
    landscape_gap: int  # report 2.2: sample every 30 steps
    landscape_n_train: int | None
    probe_every: int  # paper's method: probe the landscape every this many steps
    # Execution only (out of every run's key): set once, by the command line or the notebook's set-up, and
    # carried onto every config a section builds from the profile.
    channels_last: bool = False  # faster convolutions on tensor-core GPUs
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    data_root: str | None = None  # the folder holding cifar-10-batches-py/ (None: $CIFARNB_DATA, then ./data)

    def sizes(self, epochs: int) -> dict:
        """The fields every config built from this profile gets: ``epochs``, its batch size and data subset, and
        its execution settings (device, data folder, memory layout, and the device's speed steps:
        ``execution.sweep_execution``)."""
        return dict(epochs=epochs, batch_size=self.batch_size, n_train=self.n_train, n_test=self.n_test,
                    channels_last=self.channels_last, device=self.device, data_root=self.data_root,
                    **sweep_execution(self.device))

    def batch(self, report_batch: int) -> int:
        """A recipe's batch size at this profile: the report's on all the data; on a subset (``smoke``) at most the
        profile's own, so that a few dozen images still make several steps an epoch."""
        return report_batch if self.n_train is None else min(report_batch, self.batch_size)

    def config(self, epochs: int, **settings) -> TrainConfig:
        """A config of ``settings`` with this profile's :meth:`sizes` (``settings`` win)."""
        return TrainConfig(**{**self.sizes(epochs), **settings})

    def with_overrides(self, **changes) -> "Profile":
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown profile setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return dataclasses.replace(self, **changes)


SMOKE = Profile(
    name="smoke",
    description="a CPU: real-image subsets (32 train / 50 test), 2-3 epochs, the cheapest zoo models; shows "
                "every path works and measures nothing (what the tests execute)",
    n_train=32,
    n_test=50,
    seeds=(0,),
    batch_size=16,
    ablation_epochs=2,
    zoo_epochs=3,
    zoo_models=("lenet5", "alexnet", "resnet18"),
    resnet9_epochs=3,
    vgg_epochs=2,
    landscape_learning_rates=LANDSCAPE_LEARNING_RATES[::2],  # the lowest, middle and highest of the report's
    landscape_gap=2,
    landscape_n_train=256,
    probe_every=8,
)
FULL = Profile(
    name="full",
    description="one GPU: the report's settings exactly (25-epoch ablations, 200-epoch zoo and ResNet9, 20-epoch "
                "VGG-A)",
    n_train=None,
    n_test=None,
    seeds=(0, 1, 2),
    batch_size=REPORT_BATCH_SIZE,
    ablation_epochs=ABLATION_EPOCHS,
    zoo_epochs=REPORT_EPOCHS,
    zoo_models=ZOO_MODELS,
    resnet9_epochs=REPORT_EPOCHS,
    vgg_epochs=VGG_EPOCHS,
    landscape_learning_rates=LANDSCAPE_LEARNING_RATES,
    landscape_gap=LANDSCAPE_GAP,
    landscape_n_train=None,
    probe_every=LANDSCAPE_GAP,
    channels_last=True,
)
# quick is full with the long runs cut to the epoch at which the report also reads a number, and two seeds
# (the ablations alone are 21 configs x 25 ResNet18 epochs per seed).
QUICK = FULL.with_overrides(
    name="quick",
    description="one GPU: all data, the report's short-run epochs (25 for the ablations and the zoo's first column, "
                "10 for ResNet9/FastResNet9, 20 for VGG-A)",
    seeds=(0, 1),
    zoo_epochs=EARLY_ZOO_EPOCHS,
    resnet9_epochs=EARLY_RESNET9_EPOCHS,
)
PROFILES = {profile.name: profile for profile in (SMOKE, QUICK, FULL)}


def get(name: str, **overrides) -> Profile:
    """The named profile, with any per-notebook overrides applied (``None`` overrides are ignored)."""
    if name not in PROFILES:
        raise ValueError(f"profile={name!r} is not one of {', '.join(PROFILES)}")
    return PROFILES[name].with_overrides(**{k: v for k, v in overrides.items() if v is not None})
