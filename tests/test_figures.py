"""Figures stay as committed: the same figure rendered in two fresh processes gives the same bytes, and a figure
drawn again from the same data is not rewritten (its data digest matches), so re-rendering the committed figures
(``cifarnb report``, the nbval run) leaves ``git status`` clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

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


# The notebooks' own figures, drawn by the section functions the notebooks call, from committed runs.
REAL = """
import sys

import matplotlib

matplotlib.use("Agg")

from cifarnb.plots import curves
from cifarnb.plots.style import save, use_style
from cifarnb.results import ResultStore
from cifarnb.study import profiles, reading
from cifarnb.study.sections import batchnorm, fastresnet9, model_zoo

use_style()
store, quick = ResultStore(sys.argv[2]), profiles.get("quick")
zoo = reading.stored_grid(store, {model: model_zoo.zoo_config(quick, model) for model in sys.argv[3:]}, (0, 1))
save(model_zoo.accuracy_per_epoch(zoo, "Model zoo, accuracy per epoch"), sys.argv[1], "accuracy_per_epoch")
vgg = reading.stored_grid(store, batchnorm.earlier_vgg_configs(quick), (0,))
save(curves.learning_curves(vgg, title="Fig 28, earlier reading"), sys.argv[1], "fig28_earlier_default_init")
ladders = {recipe: reading.stored_grid(store, fastresnet9.earlier_trick_ladder(quick, recipe), (0,))
           for recipe in ("report", "plain")}
ladders = {recipe: {label: runs for label, runs in ladder.items() if runs} for recipe, ladder in ladders.items()}
save(fastresnet9.ladder_figure(ladders, fastresnet9.EARLIER_RECIPE_NAMES, "earlier ladder"), sys.argv[1],
     "earlier_trick_ladder")
"""


def render_real(folder: Path, *models: str) -> dict[str, bytes]:
    environment = {key: value for key, value in os.environ.items() if key != "SOURCE_DATE_EPOCH"}
    subprocess.run([sys.executable, "-c", REAL, str(folder), str(ROOT / "results"), *models], check=True,
                   env=environment)
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_the_notebooks_figures_redrawn_in_a_fresh_process_leave_the_files_as_they_were(tmp_path):
    """What `cifarnb report` and nbval do to the committed figures: draw them again in a fresh process. A figure
    that shows the same data keeps its bytes (its data digest matches); one whose data changed is rewritten."""
    folder = tmp_path / "figures"
    first = render_real(folder, "lenet5", "alexnet")
    assert len(first) == 6 and all(first.values())
    second = render_real(folder, "lenet5", "alexnet")
    for name in first:
        assert first[name] == second[name], f"{name} was rewritten although its data did not change"
    changed = render_real(folder, "lenet5")  # one model fewer: the zoo figure shows other data
    assert changed["accuracy_per_epoch.png"] != first["accuracy_per_epoch.png"]
    assert changed["fig28_earlier_default_init.png"] == first["fig28_earlier_default_init.png"]
