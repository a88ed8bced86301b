"""Each notebook ``notebooks/0N_*.ipynb`` holds exactly the cells of its jupytext source ``notebooks/src/0N_*.py``.

Edit the source, then ``jupytext --to ipynb --update -o notebooks/X.ipynb notebooks/src/X.py`` (see the README).
The cell papermill injects for the parameters it was given is an execution output, not part of the source.
"""

from __future__ import annotations

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
import nbformat  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted((NOTEBOOKS / "src").glob("[0-9][0-9]_*.py"))


def cells(notebook) -> list[tuple[str, str, tuple[str, ...]]]:
    """(type, source, tags) of each cell, without papermill's injected-parameters cell."""
    return [(cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", ())))
            for cell in notebook.cells if "injected-parameters" not in cell.metadata.get("tags", ())]


def test_every_notebook_has_a_source():
    notebooks = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert notebooks == [p.stem for p in SOURCES]


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_matches_its_source(source):
    expected = cells(jupytext.read(source))
    actual = cells(nbformat.read(NOTEBOOKS / f"{source.stem}.ipynb", as_version=4))
    assert any(tags == ("parameters",) for _, _, tags in expected), f"{source.name} lacks its parameters cell"
    assert actual == expected, (f"notebooks/{source.stem}.ipynb differs from {source.relative_to(NOTEBOOKS.parent)}; "
                                f"run jupytext --to ipynb --update -o notebooks/{source.stem}.ipynb "
                                f"notebooks/src/{source.name}")
