"""Ctrl-C and SIGTERM are a normal end: one line per stopped run, exit status 130 or 143, no traceback, no claim
file left, and the same command resumes exactly. Each test signals a real command mid-epoch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cifarnb.results import CLAIM_SUFFIX, ResultStore
from cifarnb.train import TrainConfig

# LeNet5 on 4,000 images at batch 32: about a second an epoch on a CPU, so a signal sent as epoch 1's checkpoint
# appears lands in epoch 2.
TRAIN_ARGS = ["--model", "lenet5", "--epochs", "3", "--n-train", "4000", "--n-test", "500", "--batch-size", "32",
              "--device", "cpu"]
CONFIG = TrainConfig(model="lenet5", epochs=3, n_train=4000, n_test=500, batch_size=32, device="cpu")
LINE = re.compile(r"interrupted in epoch (\d+) of (\S+); the same command resumes from epoch (\d+)")


def start(args: list[str], cifar_root: Path) -> subprocess.Popen:
    # A session of its own: the signal goes to the whole process group, as a terminal's Ctrl-C does.
    return subprocess.Popen([sys.executable, "-m", "cifarnb.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "CIFARNB_DATA": str(cifar_root)})


def signal_mid_epoch(process: subprocess.Popen, store: Path, number: int, limit_s: float = 240) -> tuple[str, str]:
    """Send ``number`` to ``process``'s group once a run's first checkpoint exists; its stdout and stderr."""
    started = time.monotonic()
    while not any(store.glob("*/checkpoint.pt")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() - started < limit_s, "no checkpoint appeared"
        time.sleep(0.02)
    os.killpg(process.pid, number)
    return process.communicate(timeout=120)


def without_timings(history):
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in history]


@pytest.mark.parametrize("number, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_train_stopped_mid_epoch_says_where_in_one_line_and_resumes_exactly(number, status, tmp_path, cifar_root):
    store = tmp_path / "store"
    process = start(["train", *TRAIN_ARGS, "--results", str(store), "--quiet"], cifar_root)
    out, err = signal_mid_epoch(process, store, number)
    assert process.returncode == status, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    epoch, run, resumes = LINE.fullmatch(line).groups()
    assert run == f"lenet5-{CONFIG.key()}" and int(resumes) == int(epoch) - 1 >= 1
    assert not list(store.rglob(f"*{CLAIM_SUFFIX}")) and (store / run / "checkpoint.pt").exists()
    if number == signal.SIGINT:
        return  # both stops leave the same checkpoint through the same code; the resume is checked once, below

    again = subprocess.run([sys.executable, "-m", "cifarnb.cli", "train", *TRAIN_ARGS, "--results", str(store),
                            "--quiet"], capture_output=True, text=True,
                           env={**os.environ, "CIFARNB_DATA": str(cifar_root)})
    assert again.returncode == 0, again.stderr
    assert f"finished (resumed from epoch {resumes}): " in again.stdout
    resumed = ResultStore(store).load(CONFIG)
    alone = ResultStore(tmp_path / "alone").run(CONFIG, progress=False)  # the same run, never stopped
    assert without_timings(resumed.history) == without_timings(alone.history)


def test_a_sweep_stops_every_worker_and_says_which_runs_stopped(tmp_path, cifar_root):
    store = tmp_path / "store"
    process = start(["sweep", "--section", "optimize_resnet18", "--profile", "smoke", "--workers", "2",
                     "--results", str(store)], cifar_root)
    out, err = signal_mid_epoch(process, store, signal.SIGINT)
    assert process.returncode == 130, err
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert lines and all(LINE.fullmatch(line) for line in lines), err  # one line per run a worker was training
    for line in lines:
        epoch, run, resumes = LINE.fullmatch(line).groups()
        assert int(resumes) == int(epoch) - 1 and (store / run / "checkpoint.pt").exists() == (int(resumes) > 0)
    assert not list(store.rglob(f"*{CLAIM_SUFFIX}"))
    deadline = time.monotonic() + 20  # no worker left (the resource tracker follows its parent within moments)
    while subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True).stdout:
        assert time.monotonic() < deadline, "a process of the sweep outlived it"
        time.sleep(0.2)


def test_a_report_relays_the_stop_to_its_kernel(tmp_path, cifar_root):
    """The notebook's kernel runs in a session of its own; the report relays the stop, and the kernel's training
    run says where it stopped."""
    store = tmp_path / "store"
    process = start(["report", "--profile", "smoke", "--only", "optimize_resnet18", "--results", str(store),
                     "--output", str(tmp_path / "output")], cifar_root)
    out, err = signal_mid_epoch(process, store, signal.SIGTERM)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    epoch, run, resumes = LINE.fullmatch(err.strip().splitlines()[-1]).groups()
    assert (store / run / "checkpoint.pt").exists() and int(resumes) == int(epoch) - 1
    assert not list(store.rglob(f"*{CLAIM_SUFFIX}"))
