"""Figures for the report's experiments. Nothing here sets global styles: wrap calls in
``seaborn.axes_style(...)`` / ``matplotlib.rc_context(...)`` to style them."""

from .bands import band_figure, plot_band, plot_bands

__all__ = ["band_figure", "plot_band", "plot_bands"]
