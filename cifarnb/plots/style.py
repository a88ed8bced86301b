"""One look for every figure, and one place that decides where figures are written."""

from __future__ import annotations

from pathlib import Path

import matplotlib

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
