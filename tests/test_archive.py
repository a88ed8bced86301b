"""Packing new results into a .tar.gz and merging it back: exact round trips, nothing unsafe gets in."""

from __future__ import annotations

import fcntl
import io
import json
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from cifarnb import archive
from cifarnb.archive import merge, new_files, pack
from cifarnb.atomic import atomic_write
from cifarnb.results import CHECKPOINT_FILE, RUN_FILE, WEIGHTS_FILE, Run, content_key, atomic_write_json
from cifarnb.train import TrainConfig

CONFIG = TrainConfig(model="lenet5", epochs=1, device="cpu", n_train=32, n_test=32)
HISTORY = [{"epoch": 1, "train_loss": 2.3, "train_acc": 11.0, "lr": 0.01, "seconds": 0.5, "test_loss": 2.2,
            "test_acc": 12.5}]
TABLE_CONFIG = {"models": ["vgg_a"], "lr": 0.15000000000000002}


def run_bytes(config: TrainConfig = CONFIG, status: str = "finished", history: list = HISTORY) -> bytes:
    return json.dumps(Run(config, history, status, meta={"device": "cpu"}).to_json(), indent=1).encode()


def npz_bytes(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()


def write_run(root: Path, config: TrainConfig) -> Path:
    path = root / f"{config.model}-{config.key()}" / RUN_FILE
    atomic_write_json(path, Run(config, HISTORY, "finished", meta={"device": "cpu"}).to_json())
    return path


@pytest.fixture
def store(tmp_path) -> Path:
    """One run (plus weights, checkpoint, partial write), one table and one array file, and unrelated files."""
    root = tmp_path / "store"
    folder = write_run(root, CONFIG).parent
    for junk in (WEIGHTS_FILE, CHECKPOINT_FILE, "run.json123.partial"):
        (folder / junk).write_bytes(b"not a result")
    atomic_write_json(root / "tables" / f"demo-{content_key(TABLE_CONFIG)}.json",
                      {"name": "demo", "config": TABLE_CONFIG, "meta": {}, "rows": [{"eta": 0.1, "loss": 1.0}]})
    maps = npz_bytes(conv1=np.ones((2, 3), np.float16))
    atomic_write(root / "arrays" / f"maps-{content_key({'row': 1})}.npz", lambda out: out.write(maps))
    (root / "notes.txt").write_text("not a result")
    for claim in (f"lenet5-{CONFIG.key()}.claim", f"tables/demo-{content_key(TABLE_CONFIG)}.json.claim"):
        (root / claim).write_text("")  # results.claim's lock files: never archived
    return root


def result_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != archive.LOCK_FILE}


def test_round_trip_into_an_empty_store_is_byte_identical(store, tmp_path):
    target = tmp_path / "out" / "new.tar.gz"
    assert pack(store, None, target) == 3
    with tarfile.open(target) as tar:
        names = tar.getnames()
    assert names == sorted(names) and len(names) == 3
    assert not any(Path(n).name in (WEIGHTS_FILE, CHECKPOINT_FILE) or n.endswith(".partial") for n in names)
    report = merge(target, tmp_path / "fresh")
    assert sorted(p.as_posix() for p in report.added) == names and not report.conflicts and not report.unchanged
    assert result_files(tmp_path / "fresh") == set(names)
    for name in names:
        assert (tmp_path / "fresh" / name).read_bytes() == (store / name).read_bytes()


def test_only_files_missing_or_changed_in_the_baseline_are_packed(store, tmp_path):
    baseline = tmp_path / "baseline"
    shutil.copytree(store, baseline)
    assert new_files(store, baseline) == []
    added = write_run(store, CONFIG.replace(seed=1)).relative_to(store)
    table = next((store / "tables").iterdir()).relative_to(store)
    (baseline / table).write_text("{}")  # same path, other bytes: the store's version is new
    assert new_files(store, baseline) == sorted([added, table])
    assert pack(store, baseline, tmp_path / "a.tar.gz") == 2
    assert len(new_files(store, None)) == 4


def test_merging_twice_reports_unchanged_and_writes_nothing(store, tmp_path):
    pack(store, None, tmp_path / "a.tar.gz")
    merge(tmp_path / "a.tar.gz", tmp_path / "fresh")
    before = {p: p.stat().st_ino for p in (tmp_path / "fresh").rglob("*") if p.is_file()}
    report = merge(tmp_path / "a.tar.gz", tmp_path / "fresh")
    assert report.added == [] and report.conflicts == [] and len(report.unchanged) == 3
    assert {p: p.stat().st_ino for p in (tmp_path / "fresh").rglob("*") if p.is_file()} == before


def test_conflicting_archive_writes_nothing_and_lists_the_conflict(store, tmp_path):
    pack(store, None, tmp_path / "a.tar.gz")
    other = tmp_path / "other"
    table = next((store / "tables").iterdir()).relative_to(store)
    (other / table).parent.mkdir(parents=True)
    (other / table).write_text("{}")
    report = merge(tmp_path / "a.tar.gz", other)
    assert report.conflicts == [table] and report.added == []
    assert result_files(other) == {table.as_posix()} and (other / table).read_text() == "{}"


def entry(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data)
    return info, data


def tarball(path: Path, *entries) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


GOOD_RUN = f"lenet5-{CONFIG.key()}/{RUN_FILE}"
BAD_ARCHIVES = {  # case: (member, what the error must say)
    "parent": (entry("../evil", run_bytes()), "'..'"),
    "nested parent": (entry(f"tables/../../lenet5-{CONFIG.key()}/{RUN_FILE}", run_bytes()), "'..'"),
    "absolute": (entry(f"/tmp/lenet5-{CONFIG.key()}/{RUN_FILE}", run_bytes()), "absolute"),
    "symlink": (entry(GOOD_RUN, kind=tarfile.SYMTYPE, link="/etc/passwd"), "not a regular file"),
    "hardlink": (entry(f"arrays/maps-{'0' * 16}.npz", kind=tarfile.LNKTYPE, link=GOOD_RUN), "not a regular file"),
    "wrong key": (entry(f"lenet5-{'0' * 16}/{RUN_FILE}", run_bytes()), "not its folder"),
    "wrong model": (entry(f"alexnet-{CONFIG.key()}/{RUN_FILE}", run_bytes()), "not its folder"),
    "running": (entry(GOOD_RUN, run_bytes(status="running")), "'running'"),
    "not json": (entry(GOOD_RUN, b"{"), "bad run file"),
    "empty history": (entry(GOOD_RUN, run_bytes(history=[])), "a finished run's history must not be empty"),
    "string accuracy": (entry(GOOD_RUN, run_bytes(history=[{**HISTORY[0], "test_acc": "12.5"}])),
                        "has history[0].test_acc = '12.5': Input should be a valid number"),
    "missing field": (entry(GOOD_RUN, run_bytes(history=[{k: v for k, v in HISTORY[0].items() if k != "lr"}])),
                      "lacks history[0].lr"),
    "unknown kind": (entry("notes.txt", b"hello"), "not a result file"),
    "weights": (entry(f"lenet5-{CONFIG.key()}/{WEIGHTS_FILE}", b"weights"), "not a result file"),
    "table key": (entry(f"tables/demo-{'0' * 16}.json",
                        json.dumps({"name": "demo", "config": TABLE_CONFIG, "rows": []}).encode()), "bad table file"),
    "corrupt npz": (entry(f"arrays/maps-{'0' * 16}.npz", b"PK not really a zip"), "bad arrays file"),
    "pickled npz": (entry(f"arrays/maps-{'0' * 16}.npz", npz_bytes(a=np.array([{"x": 1}], dtype=object))),
                    "allow_pickle"),
    "too big": (entry(GOOD_RUN, b" " * (archive.MAX_MEMBER_BYTES + 1)), "limit"),
}


@pytest.mark.parametrize("case", BAD_ARCHIVES)
def test_bad_member_is_refused_in_one_line_naming_it_and_nothing_is_written(case, tmp_path):
    (info, data), reason = BAD_ARCHIVES[case]
    # The bad member comes after a valid one: validation must finish before the first write.
    good_table = json.dumps({"name": "demo", "config": TABLE_CONFIG, "rows": []}).encode()
    path = tarball(tmp_path / "bad.tar.gz", entry("tables", kind=tarfile.DIRTYPE),
                   entry(f"tables/demo-{content_key(TABLE_CONFIG)}.json", good_table), (info, data))
    with pytest.raises(ValueError) as error:
        merge(path, tmp_path / "store")
    message = str(error.value)
    assert "\n" not in message and repr(info.name) in message and str(path) in message and reason in message
    assert not (tmp_path / "store").exists()


def test_duplicate_member_is_refused(tmp_path):
    path = tarball(tmp_path / "dup.tar.gz", entry(GOOD_RUN, run_bytes()), entry(GOOD_RUN, run_bytes()))
    with pytest.raises(ValueError, match="appears twice"):
        merge(path, tmp_path / "store")


@pytest.mark.parametrize("content", [b"hello, not a tarball", b"", b"\x1f\x8b\x08\x00garbage"])
def test_not_a_tarball_is_refused_in_one_line(content, tmp_path):
    path = tmp_path / "results.tar.gz"
    path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        merge(path, tmp_path / "store")
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_merge_never_writes_through_a_symlink_in_the_store(store, tmp_path):
    pack(store, None, tmp_path / "a.tar.gz")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "tables").symlink_to(elsewhere)
    with pytest.raises(ValueError, match="symlink"):
        merge(tmp_path / "a.tar.gz", tmp_path / "target")
    assert list(elsewhere.iterdir()) == [] and result_files(tmp_path / "target") == set()


def test_merge_refuses_a_file_where_a_folder_belongs_before_writing(store, tmp_path):
    pack(store, None, tmp_path / "a.tar.gz")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "tables").write_text("a file, not a folder")
    with pytest.raises(ValueError, match="not a folder"):
        merge(tmp_path / "a.tar.gz", tmp_path / "target")
    assert result_files(tmp_path / "target") == {"tables"}


def test_pack_replaces_the_archive_atomically(store, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "results.tar.gz"
    target.write_bytes(b"old archive")
    assert pack(store, None, target) == 3
    assert tarfile.open(target).getnames() and sorted(p.name for p in out.iterdir()) == ["results.tar.gz"]

    good = target.read_bytes()

    def crash(out_file, members):
        out_file.write(b"half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(archive, "_write_tar", crash)
    with pytest.raises(KeyboardInterrupt):
        pack(store, None, target)
    assert target.read_bytes() == good and sorted(p.name for p in out.iterdir()) == ["results.tar.gz"]


def test_pack_is_deterministic_and_safe_from_several_threads(store, tmp_path):
    target = tmp_path / "out" / "results.tar.gz"
    pack(store, None, target)
    expected = target.read_bytes()
    errors = []
    threads = [threading.Thread(target=lambda: _pack_or_record(store, target, errors)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and target.read_bytes() == expected
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.tar.gz"]


def test_pack_waits_for_the_store_lock(store, tmp_path):
    target = tmp_path / "out" / "results.tar.gz"
    with open(store / archive.LOCK_FILE, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process packing or merging this store
        worker = threading.Thread(target=pack, args=(store, None, target))
        worker.start()
        worker.join(timeout=0.5)
        assert worker.is_alive() and not target.exists()
    worker.join(timeout=30)
    assert not worker.is_alive() and target.exists()


def _pack_or_record(store: Path, target: Path, errors: list) -> None:
    try:
        pack(store, None, target)
    except Exception as error:  # noqa: BLE001 - reported by the test
        errors.append(error)


def test_pack_refuses_an_invalid_store_file(store, tmp_path):
    (store / f"lenet5-{CONFIG.key()}" / RUN_FILE).write_bytes(run_bytes(status="running"))
    with pytest.raises(ValueError, match="running"):
        pack(store, None, tmp_path / "a.tar.gz")
    assert not (tmp_path / "a.tar.gz").exists()


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``root``, but the store's lock file."""
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None
            for p in root.rglob("*") if p.name != archive.LOCK_FILE}


@pytest.mark.parametrize("step", ["_stage", "_place"])
def test_a_merge_whose_writes_fail_midway_leaves_the_store_as_it_was(step, store, tmp_path, monkeypatch):
    pack(store, None, tmp_path / "a.tar.gz")  # three members: a run, a table, an array file
    target = tmp_path / "target"
    write_run(target, CONFIG.replace(seed=5))
    before = snapshot(target)
    real, calls = getattr(archive, step), []

    def second_fails(*args):
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args)

    monkeypatch.setattr(archive, step, second_fails)
    with pytest.raises(OSError, match="No space left on device"):
        merge(tmp_path / "a.tar.gz", target)
    assert len(calls) == 2 and snapshot(target) == before  # no file, no partial, no folder added
    monkeypatch.setattr(archive, step, real)
    assert len(merge(tmp_path / "a.tar.gz", target).added) == 3  # and the same merge then goes through
