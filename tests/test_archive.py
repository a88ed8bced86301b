"""Packing new results into a .tar.gz and merging it back: exact round trips, nothing unsafe gets in."""

from __future__ import annotations

import argparse
import fcntl
import io
import json
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from cifarnb import archive
from cifarnb.archive import cut_runs_travel, merge, new_files, pack
from cifarnb.atomic import atomic_write
from cifarnb.cli import main
from cifarnb.interrupt import TrainingInterrupted
from cifarnb.results import (CHECKPOINT_FILE, RUN_FILE, WEIGHTS_FILE, ResultStore, Run, atomic_write_json,
                             content_key)
from cifarnb.train import TrainConfig, fit

CONFIG = TrainConfig(model="lenet5", epochs=1, device="cpu", n_train=32, n_test=32)
HISTORY = [{"epoch": 1, "train_loss": 2.3, "train_acc": 11.0, "lr": 0.01, "seconds": 0.5, "test_loss": 2.2,
            "test_acc": 12.5}]
TABLE_CONFIG = {"models": ["vgg_a"], "lr": 0.15000000000000002}


def run_bytes(config: TrainConfig = CONFIG, status: str = "finished", history: list = HISTORY) -> bytes:
    return json.dumps(Run(config, history, status, meta={"device": "cpu"}).to_json(), indent=1).encode()


def torch_bytes(content) -> bytes:
    out = io.BytesIO()
    torch.save(content, out)
    return out.getvalue()


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
    "corrupt checkpoint": (entry(f"lenet5-{CONFIG.key()}/{CHECKPOINT_FILE}", b"half a checkpoint"),
                           "bad checkpoint file: not a loadable torch checkpoint"),
    "pickled checkpoint": (entry(f"lenet5-{CONFIG.key()}/{CHECKPOINT_FILE}",
                                 torch_bytes({"epoch": 1, "model": {}, "code": argparse.Namespace()})),
                           "not a loadable torch checkpoint (UnpicklingError)"),  # weights_only: no objects
    "checkpoint of nothing": (entry(f"lenet5-{CONFIG.key()}/{CHECKPOINT_FILE}", torch_bytes({"epoch": 0, "model": {}})),
                              "its epoch is 0"),
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


# A run cut by the slot's end: its checkpoint travels when it fits, and the merge lets the next sweep resume it.

CUT = TrainConfig(model="lenet5", epochs=2, batch_size=16, lr=0.05, device="cpu", n_train=32, n_test=32)


def without_timings(history):
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in history]


def cut_run(root: Path, config: TrainConfig, data) -> Path:
    """``config`` trained into the store at ``root`` and stopped after epoch 1, as a slot's end stops it (the
    store's folder then holds the checkpoint and no run.json); the checkpoint's path."""
    checkpoint = root / f"{config.model}-{config.key()}" / CHECKPOINT_FILE

    def stop(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, data, checkpoint_path=checkpoint, progress=False, on_epoch=stop)
    assert checkpoint.is_file() and not (checkpoint.parent / RUN_FILE).exists()
    return checkpoint


@pytest.fixture
def cut_store(store, tiny) -> tuple[Path, Path, Path]:
    """The store with two cut runs, LeNet5's checkpoint much smaller than AlexNet's: (store, small, big)."""
    small, big = cut_run(store, CUT, tiny), cut_run(store, CUT.replace(model="alexnet"), tiny)
    assert small.stat().st_size * 2 < big.stat().st_size
    return store, small, big


def test_a_stopped_sweeps_pack_takes_the_checkpoints_that_fit_and_names_those_left_out(cut_store, tmp_path,
                                                                                         monkeypatch):
    store, small, big = cut_store
    plain = tmp_path / "plain.tar.gz"
    assert pack(store, None, plain) == 3  # a plain pack never takes a checkpoint
    limit = small.stat().st_size + 2**16  # room for the small checkpoint and the results, not 16 MiB of files
    monkeypatch.setattr(archive, "CHECKPOINT_TRAVELS_MAX_BYTES", limit)
    lines = []
    assert pack(store, None, tmp_path / "cut.tar.gz", include_checkpoints=True, log=lines.append) == 4
    with tarfile.open(tmp_path / "cut.tar.gz") as tar:
        names = tar.getnames()
        assert tar.extractfile(small.relative_to(store).as_posix()).read() == small.read_bytes()
    assert names == sorted(names) and small.relative_to(store).as_posix() in names
    # Neither the big checkpoint nor the stale one beside the fixture's finished run travels.
    assert sum(Path(name).name == CHECKPOINT_FILE for name in names) == 1
    kept, left_out = sorted(lines, key=lambda line: line.startswith(big.parent.name))
    assert kept.startswith(f"{small.parent.name}: checkpoint of ") and "(epoch 1 done) in the archive" in kept
    sizes = [archive._size(size) for size in (big.stat().st_size, limit)]  # "45.2 MiB" (tested below)
    assert left_out == (f"{big.parent.name}: checkpoint of {sizes[0]} left out of the archive (over {sizes[1]}); "
                        "the run restarts from epoch 1 on the next sweep")


def test_checkpoints_that_fit_alone_but_not_together_leave_the_archive_within_the_limit(cut_store, tiny, tmp_path,
                                                                                       monkeypatch):
    store, small, _ = cut_store
    other = cut_run(store, CUT.replace(seed=1), tiny)  # as large as ``small``: one of the two fits beside the results
    monkeypatch.setattr(archive, "CHECKPOINT_TRAVELS_MAX_BYTES", max(small.stat().st_size, other.stat().st_size)
                        + 2**16)
    lines = []
    pack(store, None, tmp_path / "cut.tar.gz", include_checkpoints=True, log=lines.append)
    assert (tmp_path / "cut.tar.gz").stat().st_size <= archive.CHECKPOINT_TRAVELS_MAX_BYTES
    with tarfile.open(tmp_path / "cut.tar.gz") as tar:
        assert sum(Path(name).name == CHECKPOINT_FILE for name in tar.getnames()) == 1
    assert sum("(with it the archive would pass " in line for line in lines) == 1


def test_the_limit_is_16_mib_and_said_so():
    assert archive.CHECKPOINT_TRAVELS_MAX_BYTES == 16 * 2**20
    assert archive._size(archive.CHECKPOINT_TRAVELS_MAX_BYTES) == "16 MiB"
    assert archive._size(int(45.2 * 2**20)) == "45.2 MiB"


def test_a_merged_checkpoint_resumes_on_the_next_run(cut_store, tiny, tmp_path, capsys):
    store, small, _ = cut_store
    pack(store, None, tmp_path / "cut.tar.gz", include_checkpoints=True, log=lambda line: None)
    target = tmp_path / "target"
    assert main(["merge", str(tmp_path / "cut.tar.gz"), "--results", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("; 1 checkpoint to resume")
    placed = target / small.relative_to(store)
    assert placed.read_bytes() == small.read_bytes() and not list(target.rglob("*.partial"))
    resumed = ResultStore(target).run(CUT, data=tiny, progress=False)
    assert resumed.meta["resumed_from_epoch"] == 1 and resumed.finished and not placed.exists()
    alone = ResultStore(tmp_path / "alone").run(CUT, data=tiny, progress=False)
    assert without_timings(resumed.history) == without_timings(alone.history)
    # Merged again, the checkpoint is no news beside the finished run: refused, and the run stays as it is.
    with pytest.raises(ValueError, match="finished"):
        merge(tmp_path / "cut.tar.gz", target)


def test_a_checkpoint_beside_a_finished_run_is_refused_in_one_line(tmp_path):
    checkpoint = f"lenet5-{CONFIG.key()}/{CHECKPOINT_FILE}"
    path = tarball(tmp_path / "cut.tar.gz", entry(checkpoint, torch_bytes({"epoch": 1, "model": {}})))
    target = tmp_path / "target"
    finished = write_run(target, CONFIG)
    before = snapshot(target)
    with pytest.raises(ValueError) as error:
        merge(path, target)
    message = str(error.value)
    assert "\n" not in message and repr(checkpoint) in message and str(path) in message
    assert "the store holds this run finished" in message and "never goes beside a finished run" in message
    assert snapshot(target) == before and finished.exists()
    # Nor may the archive itself bring the finished run beside it.
    both = tarball(tmp_path / "both.tar.gz", entry(GOOD_RUN, run_bytes()),
                   entry(checkpoint, torch_bytes({"epoch": 1, "model": {}})))
    with pytest.raises(ValueError, match="the archive holds this run finished"):
        merge(both, tmp_path / "fresh")
    assert result_files(tmp_path / "fresh") == set()


def test_a_stop_inside_the_block_rewrites_the_archive_with_the_cut_runs_then_goes_on(cut_store, tmp_path):
    store, small, big = cut_store
    lines = []
    with pytest.raises(KeyboardInterrupt):
        with cut_runs_travel(store, None, tmp_path / "cut.tar.gz", log=lines.append):
            raise TrainingInterrupted(small.parent.name, 2, 1)
    with tarfile.open(tmp_path / "cut.tar.gz") as tar:
        names = set(tar.getnames())
    assert small.relative_to(store).as_posix() in names and big.relative_to(store).as_posix() not in names
    assert big.stat().st_size > 16 * 2**20 and "(over 16 MiB)" in lines[1] and len(lines) == 2  # AlexNet's: ~20 MB
    with cut_runs_travel(store, None, tmp_path / "quiet.tar.gz", log=lines.append):
        pass  # no stop: no pack
    with pytest.raises(KeyboardInterrupt), cut_runs_travel(store, None, None, log=lines.append):
        raise KeyboardInterrupt  # no archive asked for: nothing written
    assert not (tmp_path / "quiet.tar.gz").exists() and len(lines) == 2


def test_a_stopped_sweep_command_leaves_the_cut_runs_checkpoint_in_its_archive(cut_store, tmp_path, capsys,
                                                                              monkeypatch):
    store, small, _ = cut_store

    def stopped(args):
        raise TrainingInterrupted(small.parent.name, 2, 1, signal_number=15)

    monkeypatch.setattr("cifarnb.cli._run_sweep", stopped)
    baseline = tmp_path / "baseline"
    shutil.copytree(store, baseline)
    shutil.rmtree(baseline / small.parent.name)  # the baseline lacks the cut runs, as the committed store does
    status = main(["sweep", "--results", str(store), "--archive", str(tmp_path / "slot.tar.gz"),
                   "--baseline", str(baseline)])
    captured = capsys.readouterr()
    assert status == 143 and captured.err.strip() == (f"interrupted in epoch 2 of {small.parent.name}; the same "
                                                      "command resumes from epoch 1")
    assert f"{small.parent.name}: checkpoint of " in captured.out
    with tarfile.open(tmp_path / "slot.tar.gz") as tar:
        assert small.relative_to(store).as_posix() in tar.getnames()
