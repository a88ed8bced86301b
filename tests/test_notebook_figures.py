"""Every figure a committed notebook saves under ``figures/<notebook>/`` is shown inline in that notebook.

``Session.save`` displays each saved PNG with its name under ``notebook.FIGURE_MARKER`` in the output's metadata;
a figure file with no matching image output means a reader of the notebook (or of the HTML report) misses it.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from cifarnb.study.notebook import FIGURE_MARKER

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def shown_figures(notebook) -> list[str]:
    """The names of the saved figures a notebook shows as image outputs."""
    names = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}) and FIGURE_MARKER in output.get("metadata", {}):
                names.append(output["metadata"][FIGURE_MARKER])
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_saved_figure_is_shown_inline(path):
    saved = sorted(p.stem for p in (ROOT / "figures" / path.stem).glob("*.png"))
    notebook = nbformat.read(path, as_version=4)
    shown = shown_figures(notebook)
    missing = sorted(set(saved) - set(shown))
    assert not missing, f"{path.name} does not show these saved figures inline: {', '.join(missing)}"
    assert sorted(set(shown)) == saved, f"{path.name} shows figures that figures/{path.stem}/ lacks"
    if not saved:  # nothing stored to draw: the notebook says so where each figure would be
        said = [output for cell in notebook.cells for output in cell.get("outputs", [])
                if ": not run." in "".join(output.get("data", {}).get("text/markdown", ""))]
        assert said, f"{path.name} saves no figure and does not say that its figures are not run"


def test_show_inline_marks_the_output_with_the_figure_name(tmp_path):
    """In an IPython shell, show_inline publishes an image/png output whose metadata names the figure."""
    from IPython.core.interactiveshell import InteractiveShell
    import matplotlib.pyplot as plt

    from cifarnb.study.notebook import show_inline
    from cifarnb.plots.style import save

    figure, axis = plt.subplots()
    axis.plot([0, 1], [1, 0])
    png = [p for p in save(figure, tmp_path, "line") if p.suffix == ".png"][0]
    plt.close(figure)
    show_inline(png, "line")  # outside IPython: nothing to display, and no error
    shell = InteractiveShell.instance()
    published = []
    shell.display_pub.publish = lambda data, metadata=None, **kwargs: published.append((data, metadata))
    try:
        show_inline(png, "line")
    finally:
        InteractiveShell.clear_instance()  # later tests run outside IPython again
    assert len(published) == 1
    data, metadata = published[0]
    assert "image/png" in data and metadata[FIGURE_MARKER] == "line"
