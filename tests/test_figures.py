"""Figures are deterministic: the same figure rendered in two fresh processes gives the same bytes, so
re-rendering the committed figures (``cifarnb report``, the nbval run) leaves ``git status`` clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# One learning-curve figure as the notebooks draw it: seed bands (clip paths), a log axis, a legend, the style.
DRAW = """
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from cifarnb.plots.curves import plot_curve
from cifarnb.plots.style import save, use_style
from cifarnb.results import Run
from cifarnb.train import TrainConfig

use_style()
runs = {label: [Run(TrainConfig(model="lenet5", seed=seed), [
            {"epoch": e, "test_loss": 2.3 / (e + seed + shift), "test_acc": 10.0 * e + seed + shift}
            for e in range(1, 6)], "finished") for seed in (0, 1, 2)]
        for label, shift in (("plain", 0.0), ("with decay", 0.5))}
figure, axes = plt.subplots(1, 2, figsize=(8, 3))
plot_curve(runs, "test_loss", ax=axes[0], log_y=True)
plot_curve(runs, "test_acc", ax=axes[1])
axes[1].legend()
figure.suptitle("determinism check")
save(figure, sys.argv[1], "curves")
"""


def render(folder: Path) -> dict[str, bytes]:
    environment = {key: value for key, value in os.environ.items() if key != "SOURCE_DATE_EPOCH"}
    subprocess.run([sys.executable, "-c", DRAW, str(folder)], check=True, env=environment)
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_figure_rendered_twice_in_fresh_processes_is_byte_identical(tmp_path):
    first, second = render(tmp_path / "first"), render(tmp_path / "second")
    assert sorted(first) == ["curves.png", "curves.svg"]
    assert b"<clipPath id=" in first["curves.svg"]  # the ids that used to change on every render
    for name in first:
        assert first[name] == second[name], f"{name} differs between two renders"
