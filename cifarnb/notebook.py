"""What every report notebook does first: check its parameters, say what it runs on, and set up the store.

    session = notebook.setup("01_optimize_resnet18", profile=profile, seeds=seeds, data_dir=data_dir,
                             results_dir=results_dir, device=device, epochs=epochs)

Bad parameters fail here, in the first cell, with a one-line message, before anything trains.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from . import experiments, models, profiles
from .profiles import Profile
from .device import device_name, resolve_device, software_versions
from .results import ResultStore, Run
from .train import TrainConfig

# Notebook parameter -> the profile setting it overrides.
OVERRIDES = {
    "epochs": None,  # which profile field "epochs" means depends on the notebook; see setup(epochs_field=...)
    "models": "zoo_models",
    "n_train": "n_train",
    "n_test": "n_test",
    "batch_size": "batch_size",
    "learning_rates": "landscape_learning_rates",
    "gap": "landscape_gap",
}


BACKENDS = ("local", "ray")  # where a notebook's missing runs train (see Session.run_grid)


class NotebookParameterError(ValueError):
    """A papermill parameter is invalid; raised before any work starts."""


@dataclass
class Session:
    name: str
    profile: Profile
    seeds: tuple[int, ...]
    device: str
    store: ResultStore
    figures: Path
    data_dir: str | None
    backend: str = "local"  # "local": runs train in this kernel; "ray": on a Ray cluster, then load from the store
    ray_address: str | None = None  # None: a local Ray instance
    gpus_per_run: float = 0.0  # Ray: GPUs reserved per run (fractional packs several runs on one GPU)

    def run_grid(self, configs: dict[str, TrainConfig]) -> dict[str, list[Run]]:
        """Every config over the session's seeds through its store (:func:`experiments.run_grid`).

        With the Ray backend the runs the store lacks first train on the cluster, one Ray task each, claimed
        through the store's lock like any sweep; here they then load from the store (a failed run trains here).
        """
        if self.backend == "ray":
            from .cluster import dispatch_runs

            dispatch_runs(configs, self.seeds, self.store, self.device, self.ray_address, self.gpus_per_run,
                          data_root=self.data_dir)
        return experiments.run_grid(self.store, configs, self.seeds, device=self.device, data_root=self.data_dir)

    def save(self, figure, name: str) -> None:
        """Save ``figure`` under ``figures/<notebook>/`` as PNG and SVG, and show it as the cell's image output."""
        from .plots.style import save

        paths = save(figure, self.figures, name)
        show_inline([p for p in paths if p.suffix == ".png"][0], name)


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
_NOTEBOOKS_FOLDER = Path(__file__).resolve().parent.parent / "notebooks"


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


def setup(name: str, *, profile: str = "smoke", seeds=None, data_dir: str | None = None,
          results_dir: str | None = None, figures_dir: str = "../figures", device: str = "auto",
          epochs: int | None = None, epochs_field: str | None = None, models_list=None, backend: str = "local",
          ray_address: str | None = None, gpus_per_run: float = 0.0, **overrides) -> Session:
    """Validate the notebook's parameters, print its header line, and return its :class:`Session`."""
    try:
        chosen = profiles.get(profile)
    except ValueError as error:
        raise NotebookParameterError(str(error)) from None
    changes = {}
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise NotebookParameterError(f"epochs={epochs!r} must be a positive integer (or None for the profile's)")
        changes[epochs_field] = epochs
    if models_list is not None:
        unknown = [m for m in models_list if m.lower() not in models.list_models()]
        if unknown:
            raise NotebookParameterError(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(models.list_models())}")
        changes["zoo_models"] = tuple(m.lower() for m in models_list)
    for key, value in overrides.items():
        if key not in OVERRIDES or OVERRIDES[key] is None:
            raise NotebookParameterError(f"unknown notebook parameter {key!r}; valid: {', '.join(OVERRIDES)}")
        if value is None:  # None means "the profile's value"
            continue
        if key == "learning_rates" and not (isinstance(value, (list, tuple)) and value and all(
                isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0 for lr in value)):
            raise NotebookParameterError(f"learning_rates={value!r} must be a non-empty list of positive numbers "
                                         "(with papermill: -y 'learning_rates: [0.05, 0.1]')")
        if key in ("n_train", "n_test", "batch_size", "gap") and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise NotebookParameterError(f"{key}={value!r} must be a positive integer (or None for the profile's)")
        changes[OVERRIDES[key]] = tuple(value) if isinstance(value, list) else value
    chosen = chosen.with_overrides(**changes)
    if seeds is not None and not isinstance(seeds, (list, tuple)):
        raise NotebookParameterError(f"seeds={seeds!r} must be a list such as [0, 1, 2] "
                                     "(with papermill: -y 'seeds: [0, 1, 2]')")
    seeds = tuple(chosen.seeds if seeds is None else seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise NotebookParameterError(f"seeds={list(seeds)!r} must be a non-empty list of non-negative integers")
    if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
        raise NotebookParameterError(f"device={device!r} is not one of auto, cpu, cuda, cuda:N")
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
    session = Session(name=name, profile=chosen, seeds=seeds, device=device,
                      store=ResultStore(_beside_notebooks(results_dir) if results_dir else None),
                      figures=_beside_notebooks(figures_dir) / name, data_dir=data_dir, backend=backend,
                      ray_address=ray_address, gpus_per_run=float(gpus_per_run))
    from .plots.style import use_style

    use_style()
    import pandas as pd

    pd.set_option("display.max_colwidth", None)  # verdicts and comparability reasons are read in full, not cut at 50
    versions = ", ".join(f"{k} {v}" for k, v in software_versions().items())
    print(f"{name}: results shown at profile '{chosen.name}' ({chosen.description}); seeds {list(seeds)}; device {resolved}"
          f"{' (' + device_name(resolved) + ')' if resolved.type == 'cuda' else ''}"
          f"{'; missing runs train on Ray (' + (ray_address or 'a local instance') + ')' if backend == 'ray' else ''}"
          f"; {versions}; "
          f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    return session

