"""Execute every report notebook with papermill at profile="smoke" into a temporary store (as CI does).

The five run in order against one results store, as ``cifarnb report`` runs them, so the feature-map notebook
reuses the models trained by the ones before it. Their total time is printed (the budget is 15 minutes on a
2-core CPU).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

papermill = pytest.importorskip("papermill")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, cifar_root):
    root = tmp_path_factory.mktemp("smoke")
    yield {"results": root / "results", "figures": root / "figures", "out": root / "out", "data": cifar_root}
    shutil.rmtree(root, ignore_errors=True)  # the smoke store holds every run's weights: gigabytes, not kept
    if TIMINGS:
        print(f"\nsmoke notebooks: {', '.join(f'{k} {v:.0f} s' for k, v in TIMINGS.items())}; "
              f"total {sum(TIMINGS.values()):.0f} s")


def execute(name: str, workspace, **parameters):
    workspace["out"].mkdir(exist_ok=True)
    return papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"), str(workspace["out"] / f"{name}.ipynb"), cwd=str(NOTEBOOKS),
        parameters={"profile": "smoke", "results_dir": str(workspace["results"]),
                    "figures_dir": str(workspace["figures"]), "data_root": str(workspace["data"]), "device": "cpu",
                    **parameters},
        progress_bar=False, kernel_name="python3",
    )


def test_all_five_notebooks_exist():
    assert [name[:2] for name in NAMES] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_at_smoke_and_writes_figures_and_results(name, workspace):
    started = time.perf_counter()
    executed = execute(name, workspace)
    TIMINGS[name] = time.perf_counter() - started
    figures = list((workspace["figures"] / name).glob("*.png"))
    assert figures, f"{name} saved no PNG figure"
    assert all(f.with_suffix(".svg").exists() for f in figures)
    stored = list(workspace["results"].rglob("*.json")) + list(workspace["results"].rglob("*.npz"))
    assert stored, f"{name} stored no results"
    for path in workspace["results"].rglob("run.json"):
        assert json.loads(path.read_text())["history"]
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    first_output = next(o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                        if o.get("output_type") == "stream")
    assert "profile 'smoke'" in first_output["text"] and "device cpu" in first_output["text"]


@pytest.mark.parametrize("parameters, message", [
    ({"profile": "huge"}, "profile='huge' is not one of smoke, quick, full"),
    ({"seeds": [-1]}, "seeds=[-1] must be a non-empty list"),
])
def test_bad_parameter_fails_in_the_set_up_cell(parameters, message, workspace):
    with pytest.raises(papermill.PapermillExecutionError, match=re.escape(message)):
        execute(NAMES[0], workspace, **parameters)
    executed = papermill.iorw.load_notebook_node(str(workspace["out"] / f"{NAMES[0]}.ipynb"))
    failed = next(c for c in executed.cells if c.cell_type == "code" and any(
        o.get("output_type") == "error" for o in c.get("outputs", [])))
    assert "notebook.setup(" in failed.source  # it stopped in the set-up cell, before anything trained


def test_negative_epochs_and_unknown_model_fail_before_training(workspace):
    with pytest.raises(papermill.PapermillExecutionError, match="epochs=-3 must be a positive integer"):
        execute(NAMES[1], workspace, epochs=-3)
    with pytest.raises(papermill.PapermillExecutionError, match="unknown model.*resnet1000"):
        execute(NAMES[1], workspace, models=["resnet1000"])
