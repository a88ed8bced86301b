"""One look for every figure, and one place that decides where figures are written."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker as mticker

FIGURE_FORMATS = ("png", "svg")


def use_style() -> None:
    """The project's seaborn theme; notebooks call this once in their set-up cell."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=0.95)
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight",
                                "legend.fontsize": "small", "legend.framealpha": 0.8,
                                "svg.hashsalt": "cifarnb"})  # stable SVG ids, so reruns diff cleanly


def save(figure, folder: str | Path, name: str) -> list[Path]:
    """Write ``figure`` as ``folder/name.png`` and ``.svg``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{extension}" for extension in FIGURE_FORMATS]
    for path in paths:
        figure.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
    return paths


class _PlainLogFormatter(mticker.LogFormatter):
    """Log-axis tick labels as plain numbers (2.3, 0.5) instead of 2.3x10^0, on the ticks matplotlib labels."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def plain_log_ticks(axis) -> None:
    """Readable labels on a log-scaled axis whose range spans less than a decade (a loss from 2.3 to 1.9)."""
    axis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
