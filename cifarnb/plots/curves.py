"""Learning curves over seeds: the mean as a line, the spread across seeds as a shaded band."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np
import pandas as pd

from ..results import Run
from .style import plain_log_ticks

PANELS = {
    "train_acc": "train accuracy (%)",
    "test_acc": "test accuracy (%)",
    "test_acc_exact1000": "test accuracy, exact rows 0-999 (%)",
    "train_loss": "train loss",
    "test_loss": "test loss",
    "lr": "learning rate",
}


def seed_frame(results: dict[str, list[Run]]) -> pd.DataFrame:
    """Long table: one row per (label, seed, epoch) with every history column."""
    frames = []
    for label, runs in results.items():
        for run in runs:
            frame = run.frame()
            frame["label"], frame["seed"] = label, run.config.seed
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def plot_curve(results: dict[str, list[Run]], column: str, ax=None, x: str = "epoch", log_y: bool = False):
    """One line per label (mean over seeds) with a band from the seeds' min to max."""
    ax = ax or plt.gca()
    table = seed_frame(results)
    for label in results:
        rows = table[table.label == label].groupby(x)[column]
        mean, low, high = rows.mean(), rows.min(), rows.max()
        (line,) = ax.plot(mean.index, mean.values, label=label, marker="o" if len(mean) < 8 else None, ms=3)
        if table[table.label == label].seed.nunique() > 1:
            ax.fill_between(mean.index, low.values, high.values, color=line.get_color(), alpha=0.2, lw=0)
    if x == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # short runs would otherwise get 0.5-epoch ticks
    ax.set_xlabel(x)
    ax.set_ylabel(PANELS.get(column, column))
    if log_y:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    return ax


def learning_curves(results: dict[str, list[Run]], title: str,
                    columns=("train_acc", "test_acc", "train_loss", "test_loss")):
    """A 2x2 figure (accuracies on top, losses below), shared legend on the right."""
    figure, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for ax, column in zip(axes.flat, columns):
        plot_curve(results, column, ax, log_y=column.endswith("loss"))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), title=None)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def scatter_labelled(table: pd.DataFrame, x: str, y: str, label: str, ax=None, x_label: str | None = None,
                     y_label: str | None = None, log_x: bool = False, yerr: str | None = None,
                     legend_label: str | None = None, **style):
    """A point per row, annotated with its label (e.g. accuracy vs parameters for the model zoo).

    ``legend_label`` names the point set in a legend; ``style`` goes to ``Axes.errorbar`` (marker, colour, ...).
    """
    ax = ax or plt.gca()
    style = {"fmt": "o", "capsize": 3, **style}
    ax.errorbar(table[x], table[y], yerr=table[yerr] if yerr else None, label=legend_label, **style)
    for _, row in table.iterrows():
        ax.annotate(str(row[label]), (row[x], row[y]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel(x_label or x)
    ax.set_ylabel(y_label or y)
    if log_x:
        ax.set_xscale("log")
        plain_log_ticks(ax.xaxis)
    return ax


def feature_map_grid(maps: np.ndarray, title: str, columns: int = 16, limit: int = 64):
    """The first ``limit`` channels of a C x H x W activation, each scaled to its own range."""
    count = min(limit, len(maps))
    rows = int(np.ceil(count / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 0.75, rows * 0.75 + 0.5))
    for index, ax in enumerate(np.atleast_1d(axes).flat):
        ax.set_axis_off()
        if index < count:
            ax.imshow(maps[index], cmap="viridis")
    figure.suptitle(f"{title} ({count} of {len(maps)} channels, {maps.shape[1]}x{maps.shape[2]} px)")
    return figure
