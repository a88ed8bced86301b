"""What every report notebook does first: check its parameters, say what it runs on, and set up the store.

    session = notebook.setup("02_model_zoo", globals())

``setup`` reads the notebook's parameters (the ``parameters`` cell, and what papermill injected after it) from
the namespace it is given. Bad parameters fail here, in the first cell, with a one-line message, before
anything trains: an unknown value, and a parameter papermill injected that the notebook does not declare (a
misspelling papermill itself only warns about, after which the notebook would run with its defaults).
"""

from __future__ import annotations

import ast
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

from .. import models
from ..device import device_name, resolve_device, software_versions
from ..results import ResultStore, Run
from ..train import TrainConfig
from . import profiles
from .profiles import Profile
from .reading import stored_grid
from .sections import by_notebook
from .tasks import RunTask

# Every notebook's parameters; a section adds its own (``PARAMETERS`` of its module).
COMMON_PARAMETERS = ("profile", "seeds", "data_root", "results_dir", "figures_dir", "device", "train_missing")
DEPRECATED_PARAMETERS = {"data_dir": "data_root"}  # earlier name -> name now
# Notebook parameter -> the profile setting it overrides ("epochs": the section's EPOCHS_FIELD; "models":
# zoo_models, checked against the registry).
OVERRIDES = {
    "n_train": "n_train",
    "n_test": "n_test",
    "learning_rates": "landscape_learning_rates",
    "gap": "landscape_gap",
}
DEFAULTS = {"profile": "smoke", "results_dir": "../results", "figures_dir": "../figures", "device": "auto",
            "backend": "local", "gpus_per_run": 0.0, "train_missing": True}
BACKENDS = ("local", "ray")  # where a notebook's missing runs train (see Session.run_grid)
PAPERMILL_HEADER = "# Parameters"  # the first line of the cell papermill injects after the parameters cell


class NotebookParameterError(ValueError):
    """A papermill parameter is invalid; raised before any work starts."""


@dataclass
class Session:
    name: str
    section: ModuleType  # the notebook's section module (cifarnb.study.sections)
    profile: Profile  # with the execution settings (device, data folder) every config built from it gets
    seeds: tuple[int, ...]
    store: ResultStore
    figures: Path
    backend: str = "local"  # "local": runs train in this kernel; "ray": on a Ray cluster, then load from the store
    ray_address: str | None = None  # None: a local Ray instance
    gpus_per_run: float = 0.0  # Ray: GPUs reserved per run (fractional packs several runs on one GPU)
    train_missing: bool = True  # False: show what the store holds; a run it lacks is "not run", none trains

    def run_grid(self, configs: dict[str, TrainConfig], log=print) -> dict[str, list[Run]]:
        """Every config over the session's seeds through its store (finished runs load, interrupted ones
        resume), one line per run.

        With the Ray backend the runs the store lacks first train on the cluster, one Ray task each, claimed
        through the store's lock like any sweep; here they then load from the store (a failed run trains here).
        With ``train_missing`` False nothing trains: each label gets the runs the store holds (maybe none).
        """
        if not self.train_missing:
            found = stored_grid(self.store, configs, self.seeds)
            for label, runs in found.items():
                log(f"{label}: {len(runs)} of {len(self.seeds)} seed(s) stored"
                    + ("" if len(runs) == len(self.seeds) else " (train_missing=False: the others are not run)"))
            return found
        if self.backend == "ray":
            from .cluster import dispatch_runs

            dispatch_runs(configs, self.seeds, self.store, self.ray_address, self.gpus_per_run)
        results: dict[str, list[Run]] = {label: [] for label in configs}
        total = len(configs) * len(self.seeds)
        for number, (label, seed) in enumerate(((label, seed) for label in configs for seed in self.seeds), 1):
            task = RunTask(self.section.NAME, label, configs[label].replace(seed=seed))
            log(f"[{number}/{total}] {label} (seed {seed}): {task.compute(self.store)}")
            results[label].append(self.store.load(task.config))
        return results

    def coverage(self) -> None:
        """Show how much of the section is real at this profile and seeds, and the command and estimated GPU-hours
        that fill the rest (:func:`cifarnb.study.coverage.coverage`): each notebook's first statement."""
        from .coverage import coverage

        show_markdown(str(coverage(self.section, self.profile, self.store, self.seeds)))

    def save(self, figure, name: str) -> None:
        """Save ``figure`` under ``figures/<notebook>/`` as PNG and SVG, and show it once, as the cell's image
        output (the figure is closed, so Jupyter's inline backend does not show it a second time)."""
        import matplotlib.pyplot as plt

        from ..plots.style import save

        paths = save(figure, self.figures, name)
        plt.close(figure)
        show_inline([p for p in paths if p.suffix == ".png"][0], name)

    def figure(self, name: str, data, draw: Callable) -> None:
        """Figure ``name`` drawn by ``draw(stored)`` from what ``data`` holds (label -> runs, or nested dicts of
        them, keeping only the labels with runs; or a table), saved and shown once (:meth:`save`). When nothing
        is stored: one line saying so instead, and an earlier copy of the figure removed, so figures/ holds only
        what the store shows."""
        stored = stored_part(data)
        if stored is None:
            from ..plots.style import FIGURE_FORMATS

            for extension in FIGURE_FORMATS:
                (self.figures / f"{name}.{extension}").unlink(missing_ok=True)
            show_markdown(f"*{name}: not run.* The store holds none of its results at profile "
                          f"`{self.profile.name}` (see *What is real here*).")
            return
        self.save(draw(stored), name)


def stored_part(data):
    """What a figure can draw from ``data``: a dict keeps its entries that hold something (recursively), a table
    is kept unless empty; None when nothing is left."""
    if isinstance(data, dict):
        kept = {key: part for key, value in data.items() if (part := stored_part(value)) is not None}
        return kept or None
    if data is None or len(data) == 0:
        return None
    return data


def show_markdown(text: str) -> None:
    """Display ``text`` as Markdown when running in IPython; print it elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
        return
    display(Markdown(text))


# The key, in an image output's metadata, naming the saved figure it shows (tests match outputs to files by it).
FIGURE_MARKER = "cifarnb_figure"


def show_inline(png: Path, name: str) -> None:
    """Display the saved PNG as an image output when running in IPython (figures use the Agg backend, so
    matplotlib never shows them itself); outside IPython this does nothing."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    if get_ipython() is None:
        return
    display(Image(data=_inline_png(png)), metadata={FIGURE_MARKER: name})


# The inline copy is at most this wide, in a 256-colour palette: the full-resolution PNG stays in figures/, and
# the committed notebooks stay small (notebook 04's seven feature-map figures took 2.8 MB at full resolution).
INLINE_WIDTH = 1000


def _inline_png(png: Path) -> bytes:
    import io

    from PIL import Image as Picture

    picture = Picture.open(png).convert("RGB")
    if picture.width > INLINE_WIDTH:
        picture = picture.resize((INLINE_WIDTH, round(picture.height * INLINE_WIDTH / picture.width)),
                                 Picture.LANCZOS)
    buffer = io.BytesIO()
    picture.quantize(256).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


# The repository's notebooks/ folder, when the package runs from a checkout (an editable install or a clone).
_NOTEBOOKS_FOLDER = Path(__file__).resolve().parents[2] / "notebooks"


def _beside_notebooks(path: str | os.PathLike) -> Path:
    """A relative path resolved against the repository's notebooks/ folder, wherever the caller runs from.

    The notebooks' defaults ("../results", "../figures") are written relative to notebooks/; papermill or
    Jupyter started from the repository root must still write into the repository's results/ and figures/,
    not into the caller's parent folder. Absolute paths, and installs without a checkout, are left as given.
    """
    path = Path(path).expanduser()
    if path.is_absolute() or not _NOTEBOOKS_FOLDER.is_dir():
        return path
    return (_NOTEBOOKS_FOLDER / path).resolve()


def injected_parameters(namespace: dict) -> list[str]:
    """The names papermill injected into this kernel: the assignments of the latest executed cell that starts
    with papermill's ``# Parameters`` header (IPython keeps executed cells in ``In``); none outside papermill."""
    for source in reversed(namespace.get("In") or []):
        if isinstance(source, str) and source.lstrip().startswith(PAPERMILL_HEADER):
            return [target.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Name)]
    return []


def read_parameters(name: str, namespace: dict, log=print) -> dict:
    """The notebook ``name``'s parameters from ``namespace`` (its globals): every declared one (a missing one
    at its default), an earlier name mapped to its name now with a one-line note; a parameter papermill injected
    that the notebook does not declare is a :class:`NotebookParameterError` naming the valid ones."""
    declared = (*COMMON_PARAMETERS, *by_notebook(name).PARAMETERS)
    values = {parameter: namespace.get(parameter, DEFAULTS.get(parameter)) for parameter in declared}
    for injected in injected_parameters(namespace):
        if injected in DEPRECATED_PARAMETERS:
            now = DEPRECATED_PARAMETERS[injected]
            log(f"note: the notebook parameter {injected!r} is now called {now!r}; using it as {now}")
            values[now] = namespace[injected]
        elif injected not in declared:
            raise NotebookParameterError(f"unknown notebook parameter {injected!r} for {name}; valid: "
                                         f"{', '.join(declared)}")
    return values


def setup(name: str, namespace: dict) -> Session:
    """Validate the notebook's parameters (:func:`read_parameters`), print its header line, and return its
    :class:`Session`; the profile carries the device and data folder onto every config the notebook builds."""
    section = by_notebook(name)
    parameters = read_parameters(name, namespace)
    try:
        chosen = profiles.get(parameters["profile"])
    except ValueError as error:
        raise NotebookParameterError(str(error)) from None
    changes = _profile_changes(section, parameters)
    seeds = parameters["seeds"]
    if seeds is not None and not isinstance(seeds, (list, tuple)):
        raise NotebookParameterError(f"seeds={seeds!r} must be a list such as [0, 1, 2] "
                                     "(with papermill: -y 'seeds: [0, 1, 2]')")
    seeds = tuple(chosen.seeds if seeds is None else seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise NotebookParameterError(f"seeds={list(seeds)!r} must be a non-empty list of non-negative integers")
    device = parameters["device"]
    if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise NotebookParameterError(f"device={device!r} is not one of auto, cpu, cuda, cuda:N")
    backend, gpus_per_run = parameters.get("backend", "local"), parameters.get("gpus_per_run", 0.0)
    if backend not in BACKENDS:
        raise NotebookParameterError(f"backend={backend!r} is not one of {', '.join(BACKENDS)}")
    if isinstance(gpus_per_run, bool) or not isinstance(gpus_per_run, (int, float)) or gpus_per_run < 0:
        raise NotebookParameterError(f"gpus_per_run={gpus_per_run!r} must be a number >= 0 (e.g. 0.25: four runs "
                                     "per GPU)")
    if backend == "ray":
        from .cluster import MissingExtra, check_installed

        try:
            check_installed()
        except MissingExtra as error:
            raise NotebookParameterError(f"backend='ray': {error}") from None
    resolved = resolve_device(device)
    # The one place a notebook sets its execution settings: every config built from the profile gets them.
    chosen = chosen.with_overrides(**changes, device=device, data_root=parameters["data_root"])
    results_dir = parameters["results_dir"]
    if not isinstance(parameters["train_missing"], bool):
        raise NotebookParameterError(f"train_missing={parameters['train_missing']!r} must be True or False")
    session = Session(name=name, section=section, profile=chosen, seeds=seeds,
                      store=ResultStore(_beside_notebooks(results_dir) if results_dir else None),
                      figures=_beside_notebooks(parameters["figures_dir"]) / name, backend=backend,
                      ray_address=parameters.get("ray_address"), gpus_per_run=float(gpus_per_run),
                      train_missing=parameters["train_missing"])
    from ..plots.style import use_style

    use_style()
    import pandas as pd

    pd.set_option("display.max_colwidth", None)  # verdicts and comparability reasons are read in full, not cut at 50
    versions = ", ".join(f"{k} {v}" for k, v in software_versions().items())
    print(f"{name}: results shown at profile '{chosen.name}' ({chosen.description}); seeds {list(seeds)}; device {resolved}"
          f"{' (' + device_name(resolved) + ')' if resolved.type == 'cuda' else ''}"
          f"{'; missing runs train on Ray (' + (session.ray_address or 'a local instance') + ')' if backend == 'ray' else ''}"
          f"; {versions}; "
          f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    return session


def _profile_changes(section: ModuleType, parameters: dict) -> dict:
    """The profile settings the notebook's parameters override (None: the profile's own), each checked."""
    changes = {}
    epochs = parameters.get("epochs")
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise NotebookParameterError(f"epochs={epochs!r} must be a positive integer (or None for the profile's)")
        changes[section.EPOCHS_FIELD] = epochs
    chosen_models = parameters.get("models")
    if chosen_models is not None:
        unknown = [m for m in chosen_models if m.lower() not in models.list_models()]
        if unknown:
            raise NotebookParameterError(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(models.list_models())}")
        changes["zoo_models"] = tuple(m.lower() for m in chosen_models)
    for key, field in OVERRIDES.items():
        value = parameters.get(key)
        if value is None:  # None means "the profile's value"
            continue
        if key == "learning_rates" and not (isinstance(value, (list, tuple)) and value and all(
                isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0 for lr in value)):
            raise NotebookParameterError(f"learning_rates={value!r} must be a non-empty list of positive numbers "
                                         "(with papermill: -y 'learning_rates: [0.05, 0.1]')")
        if key in ("n_train", "n_test", "gap") and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise NotebookParameterError(f"{key}={value!r} must be a positive integer (or None for the profile's)")
        changes[field] = tuple(value) if isinstance(value, list) else value
    return changes
