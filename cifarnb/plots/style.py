"""One look for every figure, and one place that decides where figures are written.

A figure is rewritten only when what it shows changed (:func:`data_digest`, kept in the PNG's metadata and the
SVG's description), so a rerun that draws the same data leaves the committed files, and a clean checkout stays
clean: on another machine the same data comes out with other last bits (numpy's SIMD maths, summation order) and
another matplotlib or FreeType may antialias otherwise, none of which the digest reads. What is written is
repeatable too (:func:`save`: fixed SVG ids, no date, no version).
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
DIGEST_SCHEME = "cifarnb figure digest 2"  # changes when what the digest reads changes (every figure redrawn once)
DIGITS = 6  # significant digits a float keeps in the digest (a pixel of a 2,000-pixel axis is 5e-4 of it)

# What every saved file carries, whatever style the figure was drawn with: SVG ids from a fixed salt (matplotlib
# otherwise salts them with a random uuid), no date, and a creator without a version (an upgrade of matplotlib
# alone is no reason to rewrite a figure, see data_digest).
SAVE_RC = {"svg.hashsalt": "cifarnb"}
CREATOR = "Matplotlib, https://matplotlib.org/ (cifarnb.plots.style.save)"


def _number(value) -> str:
    """A float as :data:`DIGITS` significant digits, by Python's correctly rounded formatting (not numpy's
    SIMD-dispatched maths); -0 reads as 0."""
    return format(float(value) + 0.0, f".{DIGITS}g")


def _canonical(value) -> str:
    """``value`` as text that depends only on what it is: floats rounded (:func:`_number`), strings, numbers,
    None and booleans as written, arrays and sequences element by element, anything else by its type's name
    only (never a repr, which may carry a memory address)."""
    if value is None or isinstance(value, (bool, str, np.bool_)):
        return repr(value if not isinstance(value, np.bool_) else bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _number(value)
    if isinstance(value, np.ma.MaskedArray):
        value = value.astype(float).filled(np.nan) if value.dtype.kind in "biuf" else value.filled()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            flat = value.astype(float).ravel()
            return f"{value.shape}[{','.join(map(_number, flat))}]"
        return f"{value.shape}[{','.join(_canonical(item) for item in value.ravel().tolist())}]"
    if isinstance(value, (list, tuple)):
        return f"({','.join(_canonical(item) for item in value)})"
    return f"<{type(value).__name__}>"


def data_digest(figure) -> str:
    """A digest of what ``figure`` shows: every line's points and style, collection's paths, offsets, values and
    colours, image's values, colour map and limits, patch's colours (and its shape where it sits in data
    coordinates, a bar), text and its style (and its place where the caller chose it: in data, axes or figure
    coordinates), each axis's limits, scale, ticks and place, the figure's size and the resolution it is saved at.
    Equal digests draw the same picture.

    It is a function of the picture alone: every float is rounded to :data:`DIGITS` significant digits by
    correctly rounded formatting, so the last bits of a float (a mean summed in another order; a log-axis limit
    from numpy's AVX-512 instead of its AVX2 ``log10``/``power``, the case of issue 44) do not change it; places
    that the layout derives from font metrics (axis labels, legend entries, titles, tick labels) are left out,
    their text and size are in; nothing depends on the hash seed, the font cache or matplotlib's version."""
    from matplotlib.collections import Collection
    from matplotlib.colors import to_rgba
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Annotation, Text

    figure.draw_without_rendering()  # tick labels, legend and layout as saving draws them
    digest = hashlib.sha256()

    def add(*parts) -> None:
        for part in parts:
            digest.update(_canonical(part).encode())
            digest.update(b";")

    def colour(value):
        return np.asarray(to_rgba(value)) if value is not None and not (isinstance(value, str) and value == "none") \
            else "none"

    user_placed = [figure.transFigure, figure.transSubfigure, *[t for ax in figure.axes
                                                                 for t in (ax.transData, ax.transAxes)]]
    add(DIGEST_SCHEME, np.asarray(figure.get_size_inches()), str(matplotlib.rcParams["savefig.dpi"]),
        str(matplotlib.rcParams["savefig.bbox"]), colour(figure.get_facecolor()))
    for artist in figure.findobj():
        add(type(artist).__name__, artist.get_visible(), artist.get_alpha(), artist.get_zorder())
        if isinstance(artist, Line2D):
            add(np.asarray(artist.get_xydata(), dtype=float), colour(artist.get_color()), artist.get_linestyle(),
                artist.get_linewidth(), artist.get_drawstyle(), str(artist.get_marker()), artist.get_markersize(),
                colour(artist.get_markerfacecolor()), colour(artist.get_markeredgecolor()))
        elif isinstance(artist, Collection):
            add(*[(np.asarray(path.vertices, dtype=float), path.codes) for path in artist.get_paths()],
                np.asarray(artist.get_offsets(), dtype=float), np.asarray(artist.get_facecolors()),
                np.asarray(artist.get_edgecolors()), np.asarray(artist.get_linewidths()),
                np.asarray(artist.get_sizes()) if hasattr(artist, "get_sizes") else None)
            if artist.get_array() is not None:  # colour-mapped: the colours follow the values at draw time
                add(np.ma.asarray(artist.get_array()), artist.get_cmap().name, artist.get_clim())
        elif isinstance(artist, AxesImage):
            add(np.ma.asarray(artist.get_array()), artist.get_cmap().name, artist.get_clim(),
                artist.get_extent(), str(artist.get_interpolation()))
        elif isinstance(artist, Text):
            add(artist.get_text(), artist.get_fontsize(), colour(artist.get_color()), artist.get_rotation(),
                artist.get_horizontalalignment(), artist.get_verticalalignment(), str(artist.get_fontweight()),
                artist.get_fontstyle())
            if isinstance(artist, Annotation):
                add(tuple(map(float, artist.xy)), tuple(map(float, artist.xyann)), str(artist.xycoords),
                    str(artist.anncoords))
            elif any(artist.get_transform() is transform for transform in user_placed):
                add(tuple(map(float, artist.get_position())))
        elif isinstance(artist, Patch):
            add(colour(artist.get_facecolor()), colour(artist.get_edgecolor()), artist.get_linewidth(),
                str(artist.get_hatch()))
            if artist.axes is not None and artist.get_data_transform() is artist.axes.transData:
                add(np.asarray(artist.get_patch_transform().transform(artist.get_path().vertices), dtype=float))
    for ax in figure.axes:
        add(ax.get_xlim(), ax.get_ylim(), ax.get_xscale(), ax.get_yscale(), ax.get_position().bounds,
            ax.axison, np.asarray(ax.get_xticks(), dtype=float), np.asarray(ax.get_yticks(), dtype=float),
            np.asarray(ax.get_xticks(minor=True), dtype=float), np.asarray(ax.get_yticks(minor=True), dtype=float))
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
    :func:`data_digest` matches); returns the paths. What is written is the same bytes for the same figure on
    the same matplotlib: fixed SVG ids (:data:`SAVE_RC`), no date, a creator without a version."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{extension}" for extension in FIGURE_FORMATS]
    digest = data_digest(figure)
    png = next(path for path in paths if path.suffix == ".png")
    if all(path.exists() for path in paths) and stored_digest(png) == digest:
        return paths  # the same picture: leave the files (and git) alone
    with matplotlib.rc_context(SAVE_RC):
        for path in paths:
            metadata = ({"Creator": CREATOR, "Date": None, "Description": f"{DIGEST_KEY} {digest}"}
                        if path.suffix == ".svg" else {"Software": CREATOR, DIGEST_KEY: digest})
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
