"""Carry new results between machines as one small ``.tar.gz``, and merge it back without trusting it.

A GPU machine packs what it computed beyond a baseline (e.g. the committed ``results/``); the machine with the
repository merges that archive into its store. Only the small, committable result files travel (``run.json``,
cached tables, float16 arrays) — never weights, checkpoints or ``*.partial`` leftovers — and every member is
checked before anything is written, since the archive comes from another machine.

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
from typing import BinaryIO

from .atomic import atomic_write
from .results import RUN_FILE, claim, content_key, run_from_json

LOCK_FILE = ".archive.claim"
MAX_MEMBER_BYTES = 16 * 2**20
MAX_NPZ_BYTES = 64 * 2**20  # uncompressed: a 16 MiB npz must not inflate into gigabytes on load
_NAME = r"[^/\x00-\x1f\x7f]+"  # any file name without control characters (messages stay one line)
_KEY = r"[0-9a-f]{16}"
LAYOUTS = {
    "run": re.compile(rf"({_NAME})-({_KEY})/{re.escape(RUN_FILE)}"),
    "table": re.compile(rf"tables/({_NAME})-({_KEY})\.json"),
    "arrays": re.compile(rf"arrays/({_NAME})-({_KEY})\.npz"),
}


@dataclass
class MergeReport:
    added: list[Path] = field(default_factory=list)  # written into the store (empty when there are conflicts)
    unchanged: list[Path] = field(default_factory=list)  # already in the store with the same bytes
    conflicts: list[Path] = field(default_factory=list)  # already in the store with different bytes


def _layout(rel: str) -> tuple[str, str, str] | None:
    """(kind, name, key) of a store-relative path, or None if it is not a result file."""
    for kind, pattern in LAYOUTS.items():
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
                if entry.is_file(follow_symlinks=False) and _layout(rel):
                    found.append(Path(rel))
    if baseline_root is not None:
        base = Path(baseline_root)
        found = [p for p in found if not (base / p).is_file() or (base / p).read_bytes() != (store / p).read_bytes()]
    return sorted(found)


def pack(store_root: str | os.PathLike, baseline_root: str | os.PathLike | None,
         archive_path: str | os.PathLike) -> int:
    """Write the store's :func:`new_files` to ``archive_path`` (replaced atomically); returns the member count.

    Each file is checked as :func:`merge` would, so a pack never produces an archive its merge refuses.
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
        atomic_write(archive_path, lambda out: _write_tar(out, members))
    return len(members)


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
        for name, data in members:
            target = store / name
            _check_target(store, name, archive_path)
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
    if _layout(member.name) is None:
        return "not a result file (<model>-<key>/run.json, tables/<name>-<key>.json, arrays/<name>-<key>.npz)"
    if member.size > MAX_MEMBER_BYTES:
        return f"{member.size} bytes, over the {MAX_MEMBER_BYTES}-byte limit"
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
        else:
            _check_npz(data)
    except Exception as error:  # KeyError, TypeError, model-building errors...: all mean a malformed file
        kind_of = "" if isinstance(error, ValueError) else f"{type(error).__name__} "
        raise ValueError(f"bad {kind} file: {kind_of}{_one_line(error)}") from None


def _check_npz(data: bytes) -> None:
    import numpy as np

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if sum(info.file_size for info in archive.infolist()) > MAX_NPZ_BYTES:
            raise ValueError(f"npz inflates beyond {MAX_NPZ_BYTES} bytes")
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        for name in arrays.files:
            array = arrays[name]
            if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
                raise ValueError(f"npz entry {name!r} is not a plain numeric array")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
