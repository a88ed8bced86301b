"""Carry new results between machines as one small ``.tar.gz``, and merge it back without trusting it.

A GPU machine packs what it computed beyond a baseline (e.g. the committed ``results/``); the machine with the
repository merges that archive into its store. Only the small, committable result files travel (``run.json``,
cached tables, float16 arrays) — never weights or ``*.partial`` leftovers — and every member is checked before
anything is written, since the archive comes from another machine.

Checkpoints travel only from a stopped sweep (:func:`cut_runs_travel`: the last pack, with
``include_checkpoints``): a run cut off by a deadline brings its resumable ``checkpoint.pt`` when it fits
(:data:`CHECKPOINT_TRAVELS_MAX_BYTES`, and the whole archive within it too; one left out is named in the log,
and that run starts again on the next sweep). The merge places one only in a folder without a finished
``run.json``, where the next sweep resumes it; it never goes beside a finished run.

``pack`` and ``merge`` serialise on ``<store_root>/.archive.claim`` (an ``fcntl`` lock), so several processes may
call them at once; the lock lives in the store so the folder receiving the archive holds nothing else.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterator

from .atomic import atomic_write
from .results import CHECKPOINT_FILE, RUN_FILE, ResultStore, claim, content_key, run_from_json

LOCK_FILE = ".archive.claim"
MAX_MEMBER_BYTES = 16 * 2**20
MAX_NPZ_BYTES = 64 * 2**20  # uncompressed: a 16 MiB npz must not inflate into gigabytes on load
# A cut run's checkpoint is model, optimizer and history: LeNet5's or a VGG's fit, ResNet18's (~90 MB) does not,
# and an archive a time-limited GPU session hands back must stay small (16 MiB a file is a common cap).
CHECKPOINT_TRAVELS_MAX_BYTES = 16 * 2**20
TAR_MEMBER_OVERHEAD = 1024  # a tar header and padding, and gzip's few bytes on data that does not compress
_NAME = r"[^/\x00-\x1f\x7f]+"  # any file name without control characters (messages stay one line)
_KEY = r"[0-9a-f]{16}"
LAYOUTS = {
    "run": re.compile(rf"({_NAME})-({_KEY})/{re.escape(RUN_FILE)}"),
    "table": re.compile(rf"tables/({_NAME})-({_KEY})\.json"),
    "arrays": re.compile(rf"arrays/({_NAME})-({_KEY})\.npz"),
}
# Not among LAYOUTS: a checkpoint is no result, so new_files (every plain pack) never sees one.
CHECKPOINT_LAYOUT = re.compile(rf"({_NAME})-({_KEY})/{re.escape(CHECKPOINT_FILE)}")


@dataclass
class MergeReport:
    added: list[Path] = field(default_factory=list)  # written into the store (empty when there are conflicts)
    unchanged: list[Path] = field(default_factory=list)  # already in the store with the same bytes
    conflicts: list[Path] = field(default_factory=list)  # already in the store with different bytes

    @property
    def checkpoints(self) -> list[Path]:
        """The added files that are cut runs' checkpoints: runs the next sweep resumes."""
        return [path for path in self.added if path.name == CHECKPOINT_FILE]


def _layout(rel: str, checkpoints: bool = True) -> tuple[str, str, str] | None:
    """(kind, name, key) of a store-relative path, or None if it is not a result file (nor, with ``checkpoints``,
    a run's checkpoint: kind "checkpoint")."""
    patterns = {**LAYOUTS, "checkpoint": CHECKPOINT_LAYOUT} if checkpoints else LAYOUTS
    for kind, pattern in patterns.items():
        if match := pattern.fullmatch(rel):
            return kind, match[1], match[2]
    return None


def new_files(store_root: str | os.PathLike, baseline_root: str | os.PathLike | None) -> list[Path]:
    """Result files of the store (relative paths, sorted) that the baseline lacks or holds with other bytes."""
    store, found = Path(store_root), []
    # Every layout is exactly <folder>/<file>, so two scandir levels see them all without following links.
    for top in os.scandir(store):
        if top.is_dir(follow_symlinks=False):
            for entry in os.scandir(top.path):
                rel = f"{top.name}/{entry.name}"
                if entry.is_file(follow_symlinks=False) and _layout(rel, checkpoints=False):
                    found.append(Path(rel))
    if baseline_root is not None:
        base = Path(baseline_root)
        found = [p for p in found if not (base / p).is_file() or (base / p).read_bytes() != (store / p).read_bytes()]
    return sorted(found)


def pack(store_root: str | os.PathLike, baseline_root: str | os.PathLike | None,
         archive_path: str | os.PathLike, include_checkpoints: bool = False,
         log: Callable[[str], None] = print) -> int:
    """Write the store's :func:`new_files` to ``archive_path`` (replaced atomically); returns the member count.

    Each file is checked as :func:`merge` would, so a pack never produces an archive its merge refuses.
    ``include_checkpoints`` (a stopped sweep's last pack, :func:`cut_runs_travel`): also the checkpoint of each
    interrupted run (:func:`cut_run_checkpoints`), one line to ``log`` for each, packed or left out.
    """
    store = Path(store_root)
    if not store.is_dir():
        raise FileNotFoundError(f"results store {store} is not a folder")
    with claim(store / LOCK_FILE):
        members = []
        for rel in new_files(store, baseline_root):
            data = (store / rel).read_bytes()  # read once: the archive holds exactly the bytes checked
            try:
                _check(rel.as_posix(), data)
            except ValueError as error:
                raise ValueError(f"{store / rel}: {error}") from None
            members.append((rel.as_posix(), data))
        if include_checkpoints:
            used = sum(len(data) + TAR_MEMBER_OVERHEAD for _, data in members)
            members = sorted(members + _travelling_checkpoints(store, baseline_root, used, log))
        atomic_write(archive_path, lambda out: _write_tar(out, members))
    return len(members)


def cut_run_checkpoints(store_root: str | os.PathLike) -> list[Path]:
    """The checkpoints of the store's interrupted runs (relative paths, sorted): ``<model>-<key>/checkpoint.pt``
    in a folder without ``run.json`` (beside a finished run a checkpoint is a leftover, never resumed)."""
    store, found = Path(store_root), []
    for top in os.scandir(store):
        rel = f"{top.name}/{CHECKPOINT_FILE}"
        if (top.is_dir(follow_symlinks=False) and CHECKPOINT_LAYOUT.fullmatch(rel) and (store / rel).is_file()
                and not (store / rel).is_symlink() and not (store / top.name / RUN_FILE).exists()):
            found.append(Path(rel))
    return sorted(found)


def _travelling_checkpoints(store: Path, baseline_root, used: int,
                            log: Callable[[str], None]) -> list[tuple[str, bytes]]:
    """The :func:`cut_run_checkpoints` that fit :data:`CHECKPOINT_TRAVELS_MAX_BYTES`, pass merge's check and the
    baseline lacks, smallest first while the whole archive (``used`` bytes so far) stays within that size too: a
    session that hands back no file over 16 MiB would lose every result of a larger archive. One line to ``log``
    for each checkpoint, packed or left out."""
    members = []
    limit = _size(CHECKPOINT_TRAVELS_MAX_BYTES)
    for rel in sorted(cut_run_checkpoints(store), key=lambda rel: ((store / rel).stat().st_size, rel)):
        run, size = rel.parent.as_posix(), (store / rel).stat().st_size
        restarts = "the run restarts from epoch 1 on the next sweep"
        if size > CHECKPOINT_TRAVELS_MAX_BYTES:  # said from its size alone: a large file is never read
            log(f"{run}: checkpoint of {_size(size)} left out of the archive (over {limit}); {restarts}")
            continue
        if used + size + TAR_MEMBER_OVERHEAD > CHECKPOINT_TRAVELS_MAX_BYTES:
            log(f"{run}: checkpoint of {_size(size)} left out of the archive (with it the archive would pass "
                f"{limit}); {restarts}")
            continue
        data = (store / rel).read_bytes()
        if baseline_root is not None and (Path(baseline_root) / rel).is_file() \
                and (Path(baseline_root) / rel).read_bytes() == data:
            continue  # the baseline's machine has it already
        try:
            epoch = _check_checkpoint(data)
        except ValueError as error:  # a damaged checkpoint would be refused by the merge: the rest still travels
            log(f"{run}: checkpoint left out of the archive ({error}); {restarts}")
            continue
        members.append((rel.as_posix(), data))
        used += size + TAR_MEMBER_OVERHEAD
        log(f"{run}: checkpoint of {_size(size)} (epoch {epoch} done) in the archive; after the merge the next sweep "
            "resumes it")
    return members


def _flushed(line: str) -> None:
    print(line, flush=True)  # before the stop's own line, which goes to standard error


@contextlib.contextmanager
def cut_runs_travel(store_root: str | os.PathLike | None, baseline_root: str | os.PathLike | None,
                    archive_path: str | os.PathLike | None, log: Callable[[str], None] = _flushed) -> Iterator[None]:
    """Within the block, a stop (Ctrl-C, or SIGTERM under ``interrupt.terminate_raises``: a KeyboardInterrupt)
    first rewrites ``archive_path`` (when given) once more, with the cut runs' checkpoints that fit
    (:func:`pack` with ``include_checkpoints``), then goes on as the stop it is. That last pack failing (a second
    stop, a bad store file) is logged, not raised: the stop's own line and exit status must still come, and the
    archive keeps the previous pack's results. ``store_root`` None: the store ``ResultStore(None)`` opens."""
    try:
        yield
    except KeyboardInterrupt:
        if archive_path is not None:
            try:
                pack(ResultStore(store_root).root, baseline_root, archive_path, include_checkpoints=True, log=log)
            except (KeyboardInterrupt, ValueError, OSError) as error:
                log(f"{archive_path}: not rewritten with the cut runs' checkpoints ({_one_line(error)}); it holds the "
                    "results of the pack before")
        raise


def _write_tar(out: BinaryIO, members: list[tuple[str, bytes]]) -> None:
    # Fixed mtimes, owners and gzip header: the same results always give the same archive bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))


def merge(archive_path: str | os.PathLike, store_root: str | os.PathLike) -> MergeReport:
    """Add an archive's results to the store; refuses (ValueError) any invalid member before writing anything.

    If a member would replace a store file with different bytes, nothing is written and the report lists the
    conflicts, so the caller decides; identical files are reported unchanged.
    """
    members = _read_archive(Path(archive_path))
    store = Path(store_root)
    store.mkdir(parents=True, exist_ok=True)
    report = MergeReport()
    with claim(store / LOCK_FILE):
        new = []
        names = {name for name, _ in members}
        for name, data in members:
            target = store / name
            _check_target(store, name, archive_path)
            if target.name == CHECKPOINT_FILE:
                _check_checkpoint_place(store, name, names, archive_path)
            if not target.exists():
                new.append((name, data))
            elif target.is_file() and target.read_bytes() == data:
                report.unchanged.append(Path(name))
            else:
                report.conflicts.append(Path(name))
        if report.conflicts:
            return report
        _write_all(store, new)
        report.added = [Path(name) for name, _ in new]
    return report


def _write_all(store: Path, files: list[tuple[str, bytes]]) -> None:
    """Write every one of ``files`` (store-relative names, none of them in the store yet) or none of them.

    Each file is staged beside its target (written and flushed to disk), then all are renamed into place. A
    failure while staging removes what was staged; one while renaming also removes the files already renamed
    (they are new: merge never replaces a file) and the folders made for them, so the store is left as it was.
    """
    made_folders: list[Path] = []
    staged: list[tuple[Path, Path]] = []  # (staged file, target)
    placed: list[Path] = []
    try:
        for name, data in files:
            target = store / name
            missing = [folder for folder in reversed(target.parents) if folder.is_relative_to(store)
                       and not folder.exists()]
            for folder in missing:
                folder.mkdir()
                made_folders.append(folder)
            staged.append((_stage(target, data), target))
        for partial, target in staged:
            _place(partial, target)
            placed.append(target)
    except BaseException:
        for partial, target in staged:
            partial.unlink(missing_ok=True)
        for target in placed:
            target.unlink(missing_ok=True)
        for folder in reversed(made_folders):
            with contextlib.suppress(OSError):  # not empty: something else was written there meanwhile
                folder.rmdir()
        raise


def _stage(target: Path, data: bytes) -> Path:
    """``data`` in a new file beside ``target``, flushed to disk and readable by others; returns its path."""
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".partial")
    try:
        os.chmod(partial, 0o644)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return Path(partial)


def _place(partial: Path, target: Path) -> None:
    os.replace(partial, target)


def _check_target(store: Path, name: str, archive: str | os.PathLike) -> None:
    # Writing through a symlinked folder or file would put the result outside the store; a file where a folder
    # belongs would fail half-way through the writes, so both are refused before the first one.
    parts = PurePosixPath(name).parts
    for depth in range(1, len(parts) + 1):
        path = store.joinpath(*parts[:depth])
        if path.is_symlink() or (depth < len(parts) and path.exists() and not path.is_dir()):
            raise ValueError(f"{archive}: member {name!r}: {path} is a symlink or not a folder")


def _check_checkpoint_place(store: Path, name: str, names: set[str], archive: str | os.PathLike) -> None:
    # A checkpoint resumes a run that has not finished; beside a finished run.json it would be a stale leftover
    # (a sweep loads the finished run and never reads it), so the archive that brings one there is refused whole.
    run = PurePosixPath(name).parent / RUN_FILE
    where = "the store" if (store / run).exists() else "the archive" if run.as_posix() in names else None
    if where is not None:
        raise ValueError(f"{archive}: member {name!r}: {where} holds this run finished ({run}), and a checkpoint "
                         "never goes beside a finished run; nothing merged")


def _read_archive(archive: Path) -> list[tuple[str, bytes]]:
    """Every file member of the archive, each validated; ValueError (one line) on the first bad one."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members: dict[str, bytes] = {}
            for member in tar.getmembers():
                problem = _member_problem(member, members)
                if problem is None and member.isfile():
                    data = tar.extractfile(member).read()
                    try:
                        _check(member.name, data)
                        members[member.name] = data
                    except ValueError as error:
                        problem = str(error)
                if problem:
                    raise ValueError(f"{archive}: member {member.name!r}: {problem}")
            return list(members.items())
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{archive}: not a readable .tar.gz ({_one_line(error)})") from None


def _member_problem(member: tarfile.TarInfo, seen: dict[str, bytes]) -> str | None:
    path = PurePosixPath(member.name)
    if path.is_absolute():
        return "absolute path"
    if ".." in path.parts:
        return "path leaves the store ('..')"
    if member.isdir():
        return None  # folders are created as needed; their entries carry nothing
    if not member.isfile():
        return "not a regular file (link, device or fifo)"
    if (layout := _layout(member.name)) is None:
        return ("not a result file (<model>-<key>/run.json or checkpoint.pt, tables/<name>-<key>.json, "
                "arrays/<name>-<key>.npz)")
    limit = CHECKPOINT_TRAVELS_MAX_BYTES if layout[0] == "checkpoint" else MAX_MEMBER_BYTES
    if member.size > limit:
        return f"{member.size} bytes, over the {limit}-byte limit"
    if member.name in seen:
        return "appears twice"
    return None


def _check(rel: str, data: bytes) -> None:
    """Raise ValueError (one line) unless ``data`` is a valid result file for store path ``rel``."""
    if (layout := _layout(rel)) is None:
        raise ValueError("not a result file")
    kind, name, key = layout
    try:
        if kind == "run":
            run_from_json(data, f"{name}-{key}")  # the checks the store's load makes
        elif kind == "table":
            content = json.loads(data)
            if not isinstance(content["config"], dict) or not isinstance(content["rows"], list):
                raise ValueError("config must be an object and rows a list")
            if content["name"] != name or content_key(content["config"]) != key:
                raise ValueError(f"content is {content['name']}-{content_key(content['config'])}, not {name}-{key}")
        elif kind == "checkpoint":
            _check_checkpoint(data)
        else:
            _check_npz(data)
    except Exception as error:  # KeyError, TypeError, model-building errors...: all mean a malformed file
        kind_of = "" if isinstance(error, ValueError) else f"{type(error).__name__} "
        raise ValueError(f"bad {kind} file: {kind_of}{_one_line(error)}") from None


def _check_npz(data: bytes) -> None:
    import numpy as np

    _check_inflation(data, "npz")
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        for name in arrays.files:
            array = arrays[name]
            if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
                raise ValueError(f"npz entry {name!r} is not a plain numeric array")


def _check_inflation(data: bytes, what: str) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if sum(info.file_size for info in archive.infolist()) > MAX_NPZ_BYTES:
            raise ValueError(f"{what} inflates beyond {MAX_NPZ_BYTES} bytes")


def _check_checkpoint(data: bytes) -> int:
    """The epochs a checkpoint holds; ValueError (one line) unless ``data`` is one ``fit`` can resume from.

    Loaded with ``weights_only`` (tensors and plain containers only: an archive from another machine must not
    run code on this one), from torch's zip format, which is checked not to inflate beyond reason first.
    """
    import torch

    try:
        _check_inflation(data, "checkpoint")
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except ValueError:
        raise
    except Exception as error:  # zip, unpickling or torch errors alike; their own texts run to paragraphs
        raise ValueError(f"not a loadable torch checkpoint ({type(error).__name__})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise ValueError("not a training checkpoint (a dict with the model's state)")
    epoch = state.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        raise ValueError(f"its epoch is {epoch!r}, not a finished epoch (an integer from 1)")
    return epoch


def _size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB".replace(".0 MiB", " MiB") if size >= 2**20 / 10 else f"{size:,} bytes"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
