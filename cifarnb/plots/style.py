"""One look for every figure, and one place that decides where figures are written.

A figure is rewritten only when what it shows changed (:func:`data_digest`, kept in the PNG's metadata and the
SVG's description): rendering is not byte-for-byte repeatable (SVG clip-path ids, antialiased pixels), so a rerun
that draws the same data leaves the committed files, and a clean checkout stays clean.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import matplotlib
import matplotlib.ticker as mticker
import numpy as np

FIGURE_FORMATS = ("png", "svg")


def use_style() -> None:
    """The project's seaborn theme; notebooks call this once in their set-up cell."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=0.95)
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight",
                                "legend.fontsize": "small", "legend.framealpha": 0.8,
                                "svg.hashsalt": "cifarnb"})  # stable SVG ids, so reruns diff cleanly


DIGEST_KEY = "cifarnb-data"  # the PNG text chunk holding the digest of what the figure shows


def data_digest(figure) -> str:
    """A digest of what ``figure`` shows: every line's points, collection's paths and offsets, image's values,
    text, colour and style, each axis's limits and scale, the figure's size and matplotlib's version. Equal
    digests draw the same picture."""
    from matplotlib.collections import Collection
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Text

    digest = hashlib.sha256(f"{matplotlib.__version__} {tuple(figure.get_size_inches())}".encode())

    def add(*parts) -> None:
        for part in parts:
            array = np.asarray(part)
            digest.update(array.tobytes() if array.dtype != object else repr(part).encode())

    for artist in figure.findobj():
        digest.update(type(artist).__name__.encode())
        if isinstance(artist, Line2D):
            add(artist.get_xydata(), str(artist.get_color()), artist.get_linestyle(), artist.get_marker())
        elif isinstance(artist, Collection):
            add(*[path.vertices for path in artist.get_paths()], artist.get_offsets(), artist.get_facecolors(),
                artist.get_edgecolors())
        elif isinstance(artist, AxesImage):
            add(artist.get_array(), str(artist.get_cmap().name), artist.get_clim())
        elif isinstance(artist, Text):
            add(artist.get_text(), artist.get_position(), artist.get_fontsize())
        elif isinstance(artist, Patch):
            add(artist.get_facecolor(), artist.get_edgecolor())
    for ax in figure.axes:
        add(ax.get_xlim(), ax.get_ylim(), ax.get_xscale(), ax.get_yscale(), ax.get_position().bounds)
    return digest.hexdigest()[:20]


def stored_digest(png: Path) -> str | None:
    """The digest a saved PNG was written with (None: none, or no readable file)."""
    try:
        from PIL import Image

        with Image.open(png) as picture:
            return picture.text.get(DIGEST_KEY)
    except (OSError, ValueError):
        return None


def save(figure, folder: str | Path, name: str) -> list[Path]:
    """Write ``figure`` as ``folder/name.png`` and ``.svg`` unless both are there and show the same (their
    :func:`data_digest` matches); returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{extension}" for extension in FIGURE_FORMATS]
    digest = data_digest(figure)
    png = next(path for path in paths if path.suffix == ".png")
    if all(path.exists() for path in paths) and stored_digest(png) == digest:
        return paths  # the same picture: leave the files (and git) alone
    for path in paths:
        metadata = ({"Date": None, "Description": f"{DIGEST_KEY} {digest}"} if path.suffix == ".svg"
                    else {DIGEST_KEY: digest})
        figure.savefig(path, metadata=metadata)
    return paths


class _PlainLogFormatter(mticker.LogFormatter):
    """Log-axis tick labels as plain numbers (2.3, 0.5) instead of 2.3x10^0, on the ticks matplotlib labels."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def plain_log_ticks(axis) -> None:
    """Readable labels on a log-scaled axis whose range spans less than a decade (a loss from 2.3 to 1.9)."""
    axis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
