"""Figures stay as committed: the same figure rendered in two fresh processes gives the same bytes, and a figure
drawn again from the same data is not rewritten (its data digest matches), so re-rendering the committed figures
(``cifarnb report``, the nbval run) leaves ``git status`` clean, on any machine: under any hash seed, with an
empty matplotlib config and cache folder, and when the plotted values come out with other last bits (issue 44:
a log axis's limits from numpy's AVX-512 maths differed by an ulp from the AVX2 machine that drew the figures)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# One learning-curve figure as the notebooks draw it: seed bands (clip paths), a log axis, a legend, the style.
# argv: folder, then "ulp" (every plotted value one ulp up), "changed" (the losses 1% lower) or "same", then
# "styled" or "plain" (saved without use_style(): save itself fixes the SVG ids).
DRAW = """
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from cifarnb.plots.curves import plot_curve
from cifarnb.plots.style import save, use_style
from cifarnb.results import Run
from cifarnb.train import TrainConfig

folder, change, style = sys.argv[1:4]
if style == "styled":
    use_style()


def value(x):
    return float(np.nextafter(x, np.inf)) if change == "ulp" else x


runs = {label: [Run(TrainConfig(model="lenet5", seed=seed), [
            {"epoch": e, "test_loss": value(2.3 / (e + seed + shift) * (0.99 if change == "changed" else 1.0)),
             "test_acc": value(10.0 * e + seed + shift + 0.1)}
            for e in range(1, 6)], "finished") for seed in (0, 1, 2)]
        for label, shift in (("plain", 0.0), ("with decay", 0.5))}
figure, axes = plt.subplots(1, 2, figsize=(8, 3))
plot_curve(runs, "test_loss", ax=axes[0], log_y=True)
plot_curve(runs, "test_acc", ax=axes[1])
axes[1].legend()
axes[1].annotate("best", (5, value(53.6)), textcoords="offset points", xytext=(4, 4))
figure.suptitle("determinism check")
save(figure, folder, "curves")
"""


def fresh_environment(tmp: Path, hash_seed: str, **extra: str) -> dict[str, str]:
    """This process's environment with the given hash seed and an empty matplotlib config and cache folder."""
    environment = {key: value for key, value in os.environ.items() if key != "SOURCE_DATE_EPOCH"}
    config = tmp / f"mplconfig-{len(list(tmp.glob('mplconfig-*')))}"
    config.mkdir()
    return {**environment, "PYTHONHASHSEED": hash_seed, "MPLCONFIGDIR": str(config), **extra}


def render(folder: Path, change: str = "same", style: str = "styled", hash_seed: str = "0") -> dict[str, bytes]:
    subprocess.run([sys.executable, "-c", DRAW, str(folder), change, style], check=True,
                   env=fresh_environment(folder.parent, hash_seed))
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_figure_rendered_twice_in_fresh_processes_is_byte_identical(tmp_path):
    """Two fresh processes with other hash seeds and empty matplotlib caches write the same bytes, with the
    project's style or without it (save fixes the SVG ids and the metadata itself); no date is written."""
    for style in ("styled", "plain"):
        first = render(tmp_path / f"first-{style}", style=style, hash_seed="1")
        second = render(tmp_path / f"second-{style}", style=style, hash_seed="2")
        assert sorted(first) == ["curves.png", "curves.svg"]
        assert b"<clipPath id=" in first["curves.svg"]  # the ids that used to change on every render
        assert b"<dc:date>" not in first["curves.svg"]
        for name in first:
            assert first[name] == second[name], f"{name} ({style}) differs between two renders"


def test_a_figure_drawn_again_with_other_last_bits_is_left_alone_and_one_that_changed_is_rewritten(tmp_path):
    """The same figure redrawn under another hash seed, an empty matplotlib cache and every plotted value one ulp
    off leaves the saved files as they were (not even touched); losses 1% lower rewrite both files."""
    folder = tmp_path / "figures"
    first = render(folder, hash_seed="11")
    stamps = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    redrawn = render(folder, change="ulp", hash_seed="12")
    assert redrawn == first
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == stamps, "a file was rewritten"
    changed = render(folder, change="changed", hash_seed="13")
    for name in first:
        assert changed[name] != first[name], f"{name} was not rewritten although its data changed"


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


def render_real(folder: Path, *models: str, **environment: str) -> dict[str, bytes]:
    subprocess.run([sys.executable, "-c", REAL, str(folder), str(ROOT / "results"), *models], check=True,
                   env=fresh_environment(folder.parent, "0", **environment))
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


def test_the_notebooks_figures_drawn_with_numpys_other_simd_maths_leave_the_files_as_they_were(tmp_path):
    """Issue 44's case: the log-axis limits of the Fig 28 and zoo curves come from numpy's log10/power, whose
    AVX-512 build differs in the last bit from its AVX2 one (the machine that committed the figures). Drawn with
    the SIMD targets above the baseline that this CPU offers switched off, the figures are not rewritten."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    above_baseline = " ".join(feature for feature in __cpu_dispatch__ if __cpu_features__.get(feature))
    folder = tmp_path / "figures"
    first = render_real(folder, "lenet5", "alexnet")
    stamps = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    again = render_real(folder, "lenet5", "alexnet", NPY_DISABLE_CPU_FEATURES=above_baseline)
    assert again == first
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == stamps, "a file was rewritten"
