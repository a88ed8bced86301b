"""Shaded min/max bands per model (VGG-A vs VGG-A + BN), in the style of Santurkar et al. 2018, Fig. 4.

Input is a tidy table from :mod:`cifarnb.landscape` (columns ``model, step, quantity, value`` and either ``lr``
or ``eta``). The band at a step is the min/max of the quantity over whatever else varies: the learning rates
for the report's method, the step sizes along the gradient for the paper's.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from ..landscape import (BETA, BETA_LAST, GRAD_DISTANCE, GRAD_DISTANCE_LAST, LOSS, MODELS, TRAIN_LOSS, UNIFORM_LOSS,
                         min_max_band)

ENVELOPES = ("band", "max")
MODEL_COLOURS = {"vgg_a": "tab:green", "vgg_a_bn": "tab:red"}
MODEL_LABELS = {"vgg_a": "Standard VGG", "vgg_a_bn": "Standard VGG + BatchNorm"}
QUANTITY_LABELS = {
    LOSS: "loss (cross-entropy, nats)",
    TRAIN_LOSS: "training loss (cross-entropy, nats)",
    GRAD_DISTANCE: r"gradient distance $\|\Delta g\|_2$",
    BETA: r"effective $\beta$-smoothness",
    GRAD_DISTANCE_LAST: r"last layer's $\|\Delta g\|_2$",
    BETA_LAST: r"last layer's $\|\Delta g\| / (\|\Delta w\| + 10^{-3})$",
}
QUANTITY_TITLES = {
    LOSS: "Loss landscape",
    TRAIN_LOSS: "Training loss",
    GRAD_DISTANCE: "Gradient predictiveness",
    BETA: r"Effective $\beta$-smoothness",
    GRAD_DISTANCE_LAST: "Gradient predictiveness, last layer",
    BETA_LAST: r"Effective $\beta$-smoothness, last layer",
}


def plot_band(
    frame: pd.DataFrame,
    quantity: str,
    ax: Axes | None = None,
    models: Sequence[str] = MODELS,
    alpha: float = 0.35,
    envelope: str = "band",
) -> Axes:
    """One shaded min/max band per model for ``quantity``; edges are drawn so a one-value band shows as a line.
    ``envelope="max"`` draws the maximum alone, as a line (the report's code draws its β figure so)."""
    if envelope not in ENVELOPES:
        raise ValueError(f"envelope={envelope!r} is not one of {', '.join(ENVELOPES)}")
    if ax is None:
        _, ax = plt.subplots()
    band = min_max_band(frame[frame["quantity"] == quantity])
    for model in models:
        rows = band[band["model"] == model].sort_values("step")
        if rows.empty:
            continue
        colour, label = MODEL_COLOURS.get(model), MODEL_LABELS.get(model, model)
        if envelope == "max":
            ax.plot(rows["step"], rows["max"], color=colour, linewidth=1.0, label=label)
            continue
        ax.fill_between(rows["step"], rows["min"], rows["max"], color=colour, alpha=alpha, linewidth=0, label=label)
        for edge in ("min", "max"):
            ax.plot(rows["step"], rows[edge], color=colour, linewidth=0.8)
    ax.set_xlabel("training step")
    ax.set_ylabel(QUANTITY_LABELS.get(quantity, quantity))
    ax.set_title(QUANTITY_TITLES.get(quantity, quantity))
    ax.legend()
    return ax


def plot_bands(
    frame: pd.DataFrame,
    quantities: Sequence[str] = (LOSS, GRAD_DISTANCE, BETA),
    axes: Sequence[Axes] | None = None,
    models: Sequence[str] = MODELS,
) -> list[Axes]:
    """:func:`plot_band` for each quantity side by side (Fig. 4's three panels by default)."""
    if axes is None:
        _, grid = plt.subplots(1, len(quantities), figsize=(5 * len(quantities), 4), squeeze=False)
        axes = list(grid[0])
    for quantity, ax in zip(quantities, axes):
        plot_band(frame, quantity, ax, models)
    return list(axes)


def band_figure(frame: pd.DataFrame, title: str, panels: Sequence[tuple[str, str | None]],
                plateau: bool = False, log_y: bool = False, envelope: str = "band"):
    """One figure of :func:`plot_band` panels, one per (quantity, panel title) in ``panels``, under ``title``;
    ``plateau`` draws the loss of uniform predictions (ln 10), ``log_y`` puts the values on a log scale,
    ``envelope`` is :func:`plot_band`'s."""
    figure, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), 4.5), squeeze=False)
    for ax, (quantity, panel_title) in zip(axes[0], panels):
        plot_band(frame, quantity, ax, envelope=envelope)
        if plateau:
            ax.axhline(UNIFORM_LOSS, color="grey", linestyle="--", linewidth=1,
                       label=r"$\ln 10$ (uniform prediction)")
            ax.legend()
        if log_y:
            ax.set_yscale("log")
        if panel_title:
            ax.set_title(panel_title)
    if len(panels) > 1:
        figure.suptitle(title)
    else:
        axes[0][0].set_title(title)
    figure.tight_layout()
    return figure
