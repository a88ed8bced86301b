"""The results store: every finished run on disk, keyed by its config, so nothing is trained twice.

Layout, one folder per run::

    <root>/<model>-<key>/run.json        config, status, history, metadata (small; committed to git)
    <root>/<model>-<key>/checkpoint.pt   last finished epoch while the run is in progress (git-ignored)
    <root>/<model>-<key>/weights.pt      final weights, for figures that need the trained model (git-ignored)

``run.json`` is written atomically (temporary file, then rename), so a crash never leaves half a result; a run
folder without ``run.json`` is an interrupted run and resumes from its checkpoint.

Tables computed by other experiments (the BatchNorm landscapes) are cached the same way under
``<root>/tables/<name>-<key>.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from .atomic import atomic_write
from .data import CIFAR10, is_official, resolve_root
from .device import hardware, software_versions
from .interrupt import TrainingInterrupted, pending, signal_of
from .models import count_parameters
from .run_schema import check_run_file
from .train import TrainConfig, fit
from .train.execution import Evidence

RUN_FILE = "run.json"
CHECKPOINT_FILE = "checkpoint.pt"
WEIGHTS_FILE = "weights.pt"
CLAIM_SUFFIX = ".claim"  # lock files: who is computing a result right now (never committed or archived)
DEFAULT_ROOT = "results"
RESULTS_ENV_VAR = "CIFARNB_RESULTS"


def atomic_write_json(path: Path, content: Any) -> None:
    text = json.dumps(content, indent=1, allow_nan=True)  # serialise first: a failure leaves the old file alone
    atomic_write(path, lambda out: out.write(text.encode()))


def _save_weights(model: torch.nn.Module, path: Path) -> None:
    atomic_write(path, lambda out: torch.save(model.state_dict(), out))



@dataclass
class Run:
    """One stored run: its config, per-epoch history and how it was made."""

    config: TrainConfig
    history: list[dict]
    status: str  # "finished" or "diverged"
    meta: dict = field(default_factory=dict)
    diverged_epoch: int | None = None
    path: Path | None = None
    trained_here: bool = False  # made by this call (not stored, and not read back from the store)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.history)

    def at_epoch(self, epoch: int, column: str = "test_acc") -> float:
        """``column`` after ``epoch`` epochs (1-based); NaN if the run stopped before."""
        rows = [r for r in self.history if r["epoch"] == epoch]
        return float(rows[0][column]) if rows and column in rows[0] else math.nan

    def final(self, column: str = "test_acc") -> float:
        return float(self.history[-1].get(column, math.nan)) if self.history else math.nan

    def first_epoch_reaching(self, accuracy: float, column: str = "test_acc") -> int | None:
        return next((r["epoch"] for r in self.history if r.get(column, -1) >= accuracy), None)

    @property
    def origin(self) -> str:
        """How this call got the run: "loaded" from the store, "resumed from epoch k" or "trained" from epoch 0."""
        if not self.trained_here:
            return "loaded"
        resumed = self.meta.get("resumed_from_epoch", 0)
        return f"resumed from epoch {resumed}" if resumed else "trained"

    @property
    def has_weights(self) -> bool:
        """Whether this machine kept the trained weights (they are not committed with the history)."""
        return self.path is not None and (self.path / WEIGHTS_FILE).exists()

    def load_model(self) -> torch.nn.Module | None:
        """The trained model if its weights were kept on this machine, else None."""
        from . import models

        weights = self.path / WEIGHTS_FILE if self.path else None
        if weights is None or not weights.exists():
            return None
        model = models.build(self.config.model, **self.config.model_kwargs())
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        return model.eval()

    def to_json(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "status": self.status,
            "diverged_epoch": self.diverged_epoch,
            "history": self.history,
            "meta": self.meta,
        }


def run_from_json(text: str | bytes, folder: str, path: Path | None = None) -> Run:
    """The run a ``run.json``'s text holds, checked as the file of a store folder named ``folder`` (``<model>-<key>``).

    Raises ValueError, in words that follow the file's name ("lacks history", "has history[3].test_acc = '95': ..."),
    unless the text follows the declared schema (:class:`cifarnb.run_schema.RunFile`), its config is valid
    (:meth:`TrainConfig.validate`) and hashes to ``folder``. The store's :meth:`ResultStore.load` and the archive's
    merge refuse the same files, so a run that merge would refuse is never loaded as good either.
    """
    content = check_run_file(text)
    try:
        config = TrainConfig.from_dict(content["config"])
    except Exception as error:  # TypeError, ValueError, model-building errors: all mean a config we cannot run
        raise ValueError(f"has an invalid config ({type(error).__name__}: {' '.join(str(error).split())})") from None
    if f"{config.model}-{config.key()}" != folder:
        raise ValueError(f"holds the config {config.model}-{config.key()}, not its folder {folder}")
    return Run(config=config, history=content["history"], status=content["status"], meta=content.get("meta") or {},
               diverged_epoch=content.get("diverged_epoch"), path=path)


def read_run(path: Path) -> Run:
    """The run stored in ``path`` (a ``<model>-<key>/run.json``); ValueError naming the file and the field if it is
    not a valid run file of that folder (see :func:`run_from_json`)."""
    try:
        return run_from_json(path.read_bytes(), path.parent.name, path.parent)
    except ValueError as error:
        raise ValueError(f"{path} {error}; delete that folder to rerun the experiment") from None


@contextlib.contextmanager
def claim(path: Path, wait: bool = True, note: Callable[[str], None] | None = None) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if needed) while the block runs; yields whether it was taken.

    Several processes filling one store (``cifarnb sweep --workers N``, two notebooks) each claim a result before
    computing it, so none is computed twice. ``wait=False`` yields False at once when another process holds it.
    The lock is the operating system's (``flock``): a process that dies releases it, so no claim goes stale.

    The holder writes who it is into the file (:func:`claim_owner`), so a process that has to wait says, through
    ``note`` (default: standard error), which result it waits for and which process holds it, instead of
    hanging silently. The holder removes the file when the block ends (finished, failed or interrupted), while it
    still holds the lock; a process that was waiting on the removed file finds it gone and claims afresh.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    held, noted = False, False
    while True:
        # O_NOFOLLOW: a planted symlink must not make us create or lock a file elsewhere.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        if fcntl is None:  # no flock (Windows): one process per store
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                os.close(fd)
                yield False
                return
            if not noted:
                result = path.with_name(path.name.removesuffix(CLAIM_SUFFIX))
                (note or _to_stderr)(f"waiting for {result}: {claim_owner(path)} is computing it")
                noted = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        if _same_file(fd, path):
            break
        os.close(fd)  # we locked a claim file its holder has since removed: claim the path again
    try:
        held = True
        owner = f"process {os.getpid()} on {socket.gethostname()} (since {_now()})"
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner.encode(), 0)
        yield True
    finally:
        if held:
            path.unlink(missing_ok=True)  # still ours: the lock is held until the close below
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the one at ``path`` (not removed and replaced since it was opened)."""
    try:
        return os.fstat(fd).st_ino == os.lstat(path).st_ino
    except FileNotFoundError:
        return False


def claim_owner(path: Path) -> str:
    """Who holds (or last held) the claim ``path``: "process 1234 on host (since ...)", as its holder wrote it."""
    try:
        owner = path.read_text(errors="replace").strip()
    except OSError:
        owner = ""
    return owner or "another process"


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _claim_file(result: Path) -> Path:
    """The lock file beside a result (a run folder, a table, an array file) while it is being computed."""
    return result.with_name(result.name + CLAIM_SUFFIX)


def _checkpointed_epoch(path: Path) -> int:
    """The epochs a run's checkpoint holds (0 without one), read without loading its tensors."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"])
    except Exception:  # noqa: BLE001 - none, or unreadable: fit starts that run from epoch 0 either way
        return 0


class ResultStore:
    """Runs keyed by :meth:`TrainConfig.key`; :meth:`run` loads a finished run or trains (resuming) one."""

    def __init__(self, root: str | os.PathLike | None = None, keep_weights: bool = True,
                 note: Callable[[str], None] | None = None):
        """``note``: where a call that must wait for another process's claim says so (default: standard error)."""
        self.root = Path(root or os.environ.get(RESULTS_ENV_VAR) or DEFAULT_ROOT)
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"results store {self.root} is a file, not a folder; give a folder (a missing one is "
                             "created)")
        self.keep_weights = keep_weights
        self.note = note
        # The results this object computed and wrote (not those it loaded, which another process may have made
        # while this one waited): how a sweep counts its own work on a store others fill too.
        self.written: list[Path] = []

    def folder(self, config: TrainConfig) -> Path:
        return self.root / f"{config.model}-{config.key()}"

    def load(self, config: TrainConfig) -> Run | None:
        """The stored run of ``config``, or None; ValueError naming the file if its run.json is not a valid run of
        this folder (:func:`read_run`)."""
        path = self.folder(config) / RUN_FILE
        if not path.exists():
            return None
        return read_run(path)

    def claim_path(self, config: TrainConfig) -> Path:
        return _claim_file(self.folder(config))

    def run(self, config: TrainConfig, data: CIFAR10 | None = None, progress: bool = True,
            wait: bool = True, evidence: Evidence | None = None) -> Run | None:
        """The stored run for ``config``, training it first if needed (resuming an interrupted one), executed as
        ``train.execution.decide`` chooses from ``evidence``.

        While another process trains the same config, waits for it and returns its run; with ``wait=False``
        returns None instead.
        """
        stored = self.load(config)
        if stored is not None:
            return stored
        with claim(self.claim_path(config), wait=wait, note=self.note) as claimed:
            if not claimed:
                return None
            return self.load(config) or self._train(config, data, progress, evidence)

    def _train(self, config: TrainConfig, data: CIFAR10 | None, progress: bool,
               evidence: Evidence | None = None) -> Run:
        folder = self.folder(config)
        checkpoint = folder / CHECKPOINT_FILE
        # A process killed while writing a checkpoint (or weights, or run.json) leaves its temporary file behind.
        # This process holds the run's claim, so no other process is writing here: what is left is garbage.
        for leftover in folder.glob("*.partial"):
            leftover.unlink(missing_ok=True)
        finished = [0]  # the last epoch this call finished, for the line an interruption prints
        fit_started = time.perf_counter()
        try:
            # A compiled run compiles in untimed warm-up steps first (fit), so its epochs' seconds are training alone.
            result = fit(config, data, checkpoint_path=checkpoint, progress=progress,
                         on_epoch=lambda row: finished.append(row["epoch"]), evidence=evidence)
        except BaseException as stop:
            # Ctrl-C, SIGTERM under interrupt.terminate_raises, or an error torch.save (say) made of either.
            signal_number = signal_of(stop) if isinstance(stop, KeyboardInterrupt) else pending()
            if signal_number is None:
                raise
            resumes_from = _checkpointed_epoch(checkpoint)
            in_progress = min(max(finished[-1], resumes_from) + 1, config.epochs)
            raise TrainingInterrupted(folder.name, in_progress, resumes_from, signal_number) from None
        meta = {
            **software_versions(),
            "device": result.device,
            "wall_seconds": round(result.wall_seconds, 3),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "resumed_from_epoch": result.resumed_from_epoch,
            # Whether the test set is the official one: then its 10,000-image accuracy is the one to compare.
            "data_official": is_official(resolve_root(config.data_root)),
            "execution": result.info["execution"],  # as it ran (train.execution.decide)
            "precision": result.info.get("precision"),  # what "auto" became on this device
            # Where this call's seconds went beyond the epochs' own: set-up, warm-up, checkpoints.
            "phases": {"fit_seconds": round(time.perf_counter() - fit_started, 3),
                       **{name: round(result.info.get(name, 0.0), 3)
                          for name in ("setup_seconds", "warmup_seconds", "checkpoint_seconds")}},
            **hardware(),
            "trainable_parameters": count_parameters(result.model, trainable_only=True),
        }
        run = Run(
            config=config,
            history=result.history,
            status="diverged" if result.diverged else "finished",
            meta=meta,
            diverged_epoch=result.diverged_epoch,
            path=folder,
            trained_here=True,
        )
        if self.keep_weights and not result.diverged:
            _save_weights(result.model, folder / WEIGHTS_FILE)
        atomic_write_json(folder / RUN_FILE, run.to_json())
        self.written.append(folder)
        checkpoint.unlink(missing_ok=True)
        return run

    def trained_model(self, config: TrainConfig, data: CIFAR10 | None = None, progress: bool = True,
                      evidence: Evidence | None = None):
        """The trained model of ``config``; retrains it if only the (committed) history is on this machine."""
        run = self.run(config, data=data, progress=progress, evidence=evidence)
        model = run.load_model()
        if model is None:
            _save_weights(fit(config, data, progress=progress, evidence=evidence).model,
                          self.folder(config) / WEIGHTS_FILE)
            model = run.load_model()
        return model

    def runs(self) -> Iterator[Run]:
        """Every stored run (each checked as :meth:`load` checks it)."""
        for path in sorted(self.root.glob(f"*/{RUN_FILE}")):
            yield read_run(path)

    # Tables from experiments that are not a single TrainConfig run (e.g. landscape measurements).
    def table_path(self, name: str, config: Any) -> Path:
        return self.root / "tables" / f"{name}-{content_key(config)}.json"

    def cached_table(self, name: str, config: Any, compute: Callable[[], "Any"], wait: bool = True):
        """A pandas DataFrame computed once per (name, dataclass or dict config) and then read back from disk.

        A freshly computed table is returned as read back from its JSON file too, so the first execution shows
        exactly the numbers every later one will. While another process computes it, waits (or, with
        ``wait=False``, returns None).
        """
        import pandas as pd

        path = self.table_path(name, config)
        if not path.exists():
            with claim(_claim_file(path), wait=wait, note=self.note) as claimed:
                if not claimed:
                    return None
                if not path.exists():  # another process may have made it while this one waited
                    content = {"name": name, "config": _values(config), "meta": {**software_versions(), "date": _now()},
                               "rows": json.loads(compute().to_json(orient="records"))}
                    atomic_write_json(path, content)
                    self.written.append(path)
        return pd.DataFrame(json.loads(path.read_text())["rows"])

    def cached_arrays(self, name: str, config: Any, compute: Callable[[], dict], wait: bool = True) -> dict | None:
        """Named numpy arrays computed once per (name, config), stored as float16 ``.npz`` (small enough to commit).

        For results that are neither histories nor tables, e.g. the feature maps of one image. Claimed like
        :meth:`cached_table`.
        """
        import numpy as np

        path = self.array_path(name, config)
        if not path.exists():
            with claim(_claim_file(path), wait=wait, note=self.note) as claimed:
                if not claimed:
                    return None
                if not path.exists():
                    arrays = {k: np.asarray(v, dtype=np.float16) for k, v in compute().items()}
                    atomic_write(path, lambda out: np.savez_compressed(out, **arrays))
                    self.written.append(path)
        with np.load(path, allow_pickle=False) as stored:
            return {k: stored[k].astype(np.float32) for k in stored.files}

    def array_path(self, name: str, config: Any) -> Path:
        return self.root / "arrays" / f"{name}-{content_key(config)}.npz"


def _values(config: Any) -> dict:
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def content_key(config: Any) -> str:
    return hashlib.sha256(json.dumps(_values(config), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class SeedSummary:
    """Mean ± sample standard deviation of one number over seeds."""

    mean: float
    std: float
    count: int

    def __str__(self) -> str:
        if self.count == 0 or math.isnan(self.mean):
            return "n/a"
        return f"{self.mean:.2f} ± {self.std:.2f}" if self.count > 1 else f"{self.mean:.2f}"


def summarize(values: Iterable[float]) -> SeedSummary:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return SeedSummary(math.nan, math.nan, 0)
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return SeedSummary(statistics.fmean(finite), std, len(finite))
