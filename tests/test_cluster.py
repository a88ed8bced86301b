"""The Ray backend on a real cluster: a head and a worker node started here as separate processes on loopback."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install -e ".[cluster]"')

from cifarnb import experiments, profiles  # noqa: E402
from cifarnb.cluster import dispatch, sweep_on_ray  # noqa: E402
from cifarnb.results import CHECKPOINT_FILE, ResultStore  # noqa: E402
from cifarnb.sweep import Task, plan  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def one_thread():
    """Ray runs a 1-CPU task with one intra-op thread; the sequential reference must sum in the same order."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def without_timings(history):
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in history]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, cifar_root):
    """``ray start --head`` and one ``ray start --address`` worker, each --block in its own process group."""
    port, temp = _free_port(), tmp_path_factory.mktemp("ray")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "CIFARNB_DATA": str(cifar_root)}
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats"]
    head = subprocess.Popen([*ray_cli, "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                             "--num-cpus", "1", "--include-dashboard=false", "--temp-dir", str(temp)],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes = [head]
    try:
        time.sleep(8)
        nodes.append(subprocess.Popen([*ray_cli, "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1",
                                       "--num-cpus", "1"], env=env, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = f"127.0.0.1:{port}"
        ray.init(address=address, log_to_driver=False)
        deadline = time.time() + 150  # a loaded 2-core machine starts a raylet slowly
        while ray.cluster_resources().get("CPU", 0) < 2 and time.time() < deadline:
            time.sleep(1)
        assert ray.cluster_resources().get("CPU", 0) == 2, "the worker node did not join"
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for node in reversed(nodes):  # our own process groups only: never `ray stop`, which stops every Ray here
            try:
                os.killpg(node.pid, signal.SIGTERM)
                node.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(node.pid, signal.SIGKILL)


def test_a_section_on_the_cluster_equals_a_sequential_sweep(cluster, tmp_path, cifar_root, one_thread):
    smoke = profiles.get("smoke")
    store = ResultStore(tmp_path / "ray")
    report = sweep_on_ray(["vgg"], smoke, store, seeds=(3,), device="cpu", progress=False, log=lambda line: None)
    assert report.ok and len(report.computed) == 2 and not report.left
    alone = ResultStore(tmp_path / "alone")
    for task in plan(["vgg"], smoke, seeds=(3,)):
        config = task.config.replace(device="cpu")
        assert without_timings(store.load(config).history) == without_timings(alone.run(config, progress=False).history)
    again = sweep_on_ray(["vgg"], smoke, store, seeds=(3,), device="cpu", progress=False, log=lambda line: None)
    assert len(again.already_stored) == 2 and not again.computed


def _lock_holder(path: Path) -> int | None:
    """The process holding a flock on ``path``, from /proc/locks (a flock is the only lock the store takes)."""
    inode = os.stat(path).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "FLOCK" in fields and fields[-3].endswith(f":{inode}"):
            return int(fields[4])
    return None


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="finding the worker's pid needs /proc/locks (Linux)")
def test_a_killed_worker_is_retried_and_resumes_from_its_checkpoint(cluster, tmp_path, cifar_root, one_thread):
    config = experiments.vgg_configs(profiles.get("smoke"))["VGG-A"].replace(epochs=12, n_train=64, device="cpu",
                                                                              seed=5)
    task = Task("vgg", "VGG-A long", "run", config=config)
    store = ResultStore(tmp_path / "ray")
    lines, results = [], []
    driver = threading.Thread(target=lambda: results.append(
        dispatch([task], store, device="cpu", progress=False, log=lines.append)))
    driver.start()
    checkpoint, killed = store.folder(config) / CHECKPOINT_FILE, None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline and driver.is_alive():
        if checkpoint.exists() and store.claim_path(config).exists():
            killed = _lock_holder(store.claim_path(config))
            if killed is not None:
                os.kill(killed, signal.SIGKILL)  # the Ray worker process training the run, mid-run
        time.sleep(0.05)
    driver.join(timeout=180)
    assert killed is not None, "the run finished before it could be killed: give it more epochs"
    assert results == [True], lines
    run = store.load(config)
    assert run.meta["resumed_from_epoch"] >= 1  # the retry went on from the checkpoint, not from scratch
    alone = ResultStore(tmp_path / "alone").run(config, progress=False)
    assert without_timings(run.history) == without_timings(alone.history)  # nothing lost, nothing trained twice
