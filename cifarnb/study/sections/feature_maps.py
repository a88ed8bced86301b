"""Notebook 04, report section 1.5 (Figs 20-26): the feature maps of the first two layers of FastResNet9, ResNet9
and ResNet18 for one test image, and numbers behind the report's "less interpretable, more compact" reading."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...train import TrainConfig
from ..profiles import Profile
from ..reading import COMPARABLE_HEADING, NOT_RUN
from ..settings import REPORT_EPOCHS
from ..tasks import FeatureMapsTask
from .fastresnet9 import resnet9_configs

NAME = "feature_maps"
NOTEBOOK = "04_feature_maps"
TITLE = "Feature maps of the first two layers of FastResNet9, ResNet9 and ResNet18 (report 1.5, Figs 20-26)"
ALIASES = ("features",)
EPOCHS_FIELD = None  # draws the runs of notebooks 02 and 03 at their epochs
PARAMETERS = ("n_train", "n_test")

IMAGE_ROW = 0  # row 0 of the official test set, the report's cat (Fig 20)
LAYERS = ("conv1", "conv2")
# The report's figure number of each (model, layer) panel.
FIGURE_NUMBERS = {("FastResNet9", "conv1"): 21, ("FastResNet9", "conv2"): 22, ("ResNet9", "conv1"): 23,
                  ("ResNet9", "conv2"): 24, ("ResNet18", "conv1"): 25, ("ResNet18", "conv2"): 26}


def feature_map_configs(profile: Profile, seed: int) -> dict[str, TrainConfig]:
    """Report 1.5: the models whose first layers are drawn, the three runs of Tables 8-9 (one seed). The report's
    ResNet18 there is the zoo's (Table 8 repeats Table 7's 95.29%); Tables 8-9 train it as long as the ResNet9s,
    which is the zoo's run wherever the profile trains both for the same epochs (``smoke``, ``full``) and at
    ``quick`` keeps the three models' training equally long (10 epochs, where the zoo's is 25)."""
    nine = resnet9_configs(profile)
    return {label: nine[label].replace(seed=seed) for label in ("FastResNet9", "ResNet9", "ResNet18")}


def tasks(profile: Profile, seed: int, first_seed: bool = True) -> list[FeatureMapsTask]:
    """The maps of the three models of the first seed (the report draws one model of each); none for later seeds."""
    if not first_seed:
        return []
    return [FeatureMapsTask(NAME, f"{label} feature maps", config, IMAGE_ROW)
            for label, config in feature_map_configs(profile, seed).items()]


# The numbers behind the report's "less interpretable, more compact" reading.

DEAD_RANGE = 1e-3  # a channel whose map varies less than this over the image is dead (e.g. all zero after ReLU)
NEAR_COPY_CORRELATION = 0.9  # |r| above which one channel's map is a near-copy of another's


@dataclass(frozen=True)
class FeatureMapStatistics:
    """What one layer's C x H x W activation on one image shows: dead channels, how much is active, and how
    redundant the live channels are (correlations between their maps)."""

    channels: int
    height: int
    width: int
    dead_fraction: float  # channels constant over the image (max - min < DEAD_RANGE)
    mean_activation: float
    active_fraction: float  # values above zero
    mean_abs_correlation: float  # mean |Pearson r| over pairs of live channels (NaN under 2 live channels)
    near_copy_fraction: float  # live channels with |r| > NEAR_COPY_CORRELATION to another (NaN under 2)

    HEADINGS = ("channels", "map size (px)", "dead channels (%)", "mean activation", "active pixels (%)",
                "mean |r| between channels", "channels with a near-copy (%)")

    def row(self) -> dict[str, object]:
        """The statistics as a table row, headed (:attr:`HEADINGS`) and rounded as notebook 04 shows them."""
        return dict(zip(self.HEADINGS, (
            self.channels, f"{self.height}x{self.width}", f"{100 * self.dead_fraction:.1f}",
            f"{self.mean_activation:.3f}", f"{100 * self.active_fraction:.1f}", f"{self.mean_abs_correlation:.3f}",
            f"{100 * self.near_copy_fraction:.1f}")))


def feature_map_statistics(activation: np.ndarray) -> FeatureMapStatistics:
    """:class:`FeatureMapStatistics` of one C x H x W activation."""
    if activation.ndim != 3:
        raise ValueError(f"activation has shape {activation.shape}; expected channels x height x width")
    flat = activation.reshape(len(activation), -1).astype(np.float64)
    dead = np.ptp(flat, axis=1) < DEAD_RANGE
    live = flat[~dead]
    if len(live) > 1:
        correlation = np.abs(np.corrcoef(live))
        np.fill_diagonal(correlation, np.nan)
        mean_r = float(np.nanmean(correlation))
        near_copy = float(np.mean(np.nanmax(correlation, axis=1) > NEAR_COPY_CORRELATION))
    else:
        mean_r = near_copy = math.nan
    return FeatureMapStatistics(channels=len(activation), height=activation.shape[1], width=activation.shape[2],
                                dead_fraction=float(dead.mean()), mean_activation=float(flat.mean()),
                                active_fraction=float((flat > 0).mean()), mean_abs_correlation=mean_r,
                                near_copy_fraction=near_copy)


NOT_RUN_ROW = dict.fromkeys(FeatureMapStatistics.HEADINGS, NOT_RUN)  # a model whose maps are not stored


def feature_map_table(maps: dict[str, dict[str, np.ndarray] | None], layers: tuple[str, ...],
                      configs: dict[str, TrainConfig] | None = None) -> pd.DataFrame:
    """One row of :class:`FeatureMapStatistics` per model (``maps``' keys) and layer of ``layers`` ("not run"
    throughout for a model whose maps are None); with the models' ``configs``, whether each model compares with
    the report's (:func:`comparability_of`)."""
    return pd.DataFrame([{"model": label, "layer": layer,
                          **(NOT_RUN_ROW if maps[label] is None else feature_map_statistics(maps[label][layer]).row()),
                          **({COMPARABLE_HEADING: comparability_of(configs[label]) if maps[label] is not None
                              else NOT_RUN} if configs else {})}
                         for label in maps for layer in layers]).set_index(["model", "layer"])


def comparability_of(config: TrainConfig) -> str:
    """Whether a model drawn here compares with the report's (trained on all the data for its 200 epochs):
    "yes", or "no: " and why."""
    reasons = [f"trained on {config.n_train} of 50,000 images"] if config.n_train else []
    if config.epochs < REPORT_EPOCHS:
        reasons.append(f"{config.epochs} of the report's {REPORT_EPOCHS} epochs")
    return "no: " + "; ".join(reasons) if reasons else "yes"
