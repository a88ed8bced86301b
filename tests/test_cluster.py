"""The Ray backend on a real cluster: a head and a worker node started here as separate processes on loopback."""

import builtins
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

from cifarnb.study import profiles  # noqa: E402
from cifarnb.study.cluster import dispatch, sweep_on_ray  # noqa: E402
from cifarnb.study.sections import batchnorm, plan  # noqa: E402
from cifarnb.results import CHECKPOINT_FILE, ResultStore  # noqa: E402
from cifarnb.study.tasks import RunTask  # noqa: E402

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


# Ray gives a node 30 s to start its agents (Python processes importing hundreds of modules); a loaded 2-core
# machine sometimes takes longer, so a node that dies starting is started again, a few times.
START_TRIES, START_SECONDS = 4, 180


def _start_node(arguments: list[str], log: Path, env: dict) -> subprocess.Popen:
    """``ray start --block ARGUMENTS`` in its own process group, once it says it started."""
    for _ in range(START_TRIES):
        with log.open("w") as output:
            node = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--block",
                                     "--disable-usage-stats", "--num-cpus", "1",
                                     "--object-store-memory", str(100 * 2**20), *arguments],
                                    env=env, start_new_session=True, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.time() + START_SECONDS
        while time.time() < deadline and node.poll() is None:
            if "Ray runtime started" in log.read_text():
                return node
            time.sleep(0.5)
        _stop(node)
    raise RuntimeError(f"ray start {' '.join(arguments)} failed {START_TRIES} times; its log: {log}")


def _stop(node: subprocess.Popen) -> None:
    """Stop one node we started: its process group, then any of its processes that left the group (Ray puts
    each worker process in a group of its own). Never `ray stop`, which stops every Ray on the machine."""
    import psutil

    try:
        descendants = psutil.Process(node.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    try:
        os.killpg(node.pid, signal.SIGTERM)
        node.wait(timeout=15)  # (the raylet would drain for up to 30 s; the tests wait for nothing there)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(node.pid, signal.SIGKILL)
        node.wait()
    for process in descendants:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and one worker node, each a ``ray start --block`` process (1 CPU each, dashboard off).

    Started with a loopback address; Ray itself swaps a loopback address for the machine's own IP (nodes and
    driver agree on that one), so the cluster never leaves this machine.
    """
    temp = tmp_path_factory.mktemp("ray")
    # The workers import cifarnb from this checkout. Token authentication off, in the nodes and this driver
    # alike: once any local Ray instance has left a token in ~/.ray, a head started here enables it while a
    # joining worker does not send it, and the worker never joins.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "RAY_AUTH_MODE": "disabled"}
    nodes, patch = [], pytest.MonkeyPatch()
    patch.setenv("RAY_AUTH_MODE", "disabled")
    try:
        port = _free_port()
        nodes.append(_start_node(["--head", "--port", str(port), "--include-dashboard=false",
                                  "--temp-dir", str(temp)], temp / "head.log", env))
        address = f"127.0.0.1:{port}"
        nodes.append(_start_node(["--address", address], temp / "worker.log", env))
        ray.init(address=address, log_to_driver=False)
        deadline = time.time() + START_SECONDS
        while ray.cluster_resources().get("CPU", 0) < 2 and time.time() < deadline:
            time.sleep(1)
        assert ray.cluster_resources().get("CPU", 0) == 2, f"the worker node did not join: {temp / 'worker.log'}"
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for node in reversed(nodes):
            _stop(node)
        patch.undo()


def test_a_section_on_the_cluster_equals_a_sequential_sweep(cluster, tmp_path, cifar_root, one_thread):
    smoke = profiles.get("smoke", device="cpu", data_root=str(cifar_root)).with_overrides(
        zoo_models=("lenet5", "alexnet"))
    store = ResultStore(tmp_path / "ray")
    lines = []
    own_print = builtins.print
    report = sweep_on_ray(["model_zoo"], smoke, store, seeds=(3,), progress=False, log=lines.append)
    assert sum("trained in" in line for line in lines) == 2, lines
    assert report.ok and len(report.computed) == 2 and not report.left
    alone = ResultStore(tmp_path / "alone")
    for task in plan(["model_zoo"], smoke, seeds=(3,)):
        config = task.config
        assert without_timings(store.load(config).history) == without_timings(alone.run(config, progress=False).history)
    again = sweep_on_ray(["model_zoo"], smoke, store, seeds=(3,), progress=False, log=lambda line: None)
    assert len(again.already_stored) == 2 and not again.computed
    # Ray may patch print in the driver; a later --workers sweep pickles print for its spawned workers.
    assert builtins.print is own_print


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
    config = batchnorm.vgg_configs(profiles.get("smoke"))["VGG-A"].replace(epochs=12, n_train=64, device="cpu",
                                                                              seed=5, data_root=str(cifar_root))
    task = RunTask("batchnorm", "VGG-A long", config)
    store = ResultStore(tmp_path / "ray")
    lines, results = [], []
    own_print = builtins.print
    driver = threading.Thread(target=lambda: results.append(
        dispatch([task], store, progress=False, log=lines.append)))
    driver.start()
    checkpoint, killed = store.folder(config) / CHECKPOINT_FILE, None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline and driver.is_alive():
        if checkpoint.exists() and store.claim_path(config).exists():
            killed = _lock_holder(store.claim_path(config))
            if killed is not None:
                import psutil

                assert "ray::" in " ".join(psutil.Process(killed).cmdline())  # a Ray worker, not this process
                os.kill(killed, signal.SIGKILL)  # the Ray worker process training the run, mid-run
        time.sleep(0.05)
    driver.join(timeout=180)
    assert killed is not None, "the run finished before it could be killed: give it more epochs"
    assert results == [True], lines
    assert builtins.print is own_print  # see the test above
    run = store.load(config)
    assert run.meta["resumed_from_epoch"] >= 1  # the retry went on from the checkpoint, not from scratch
    assert [row["epoch"] for row in run.history] == list(range(1, config.epochs + 1))  # each epoch once
    alone = ResultStore(tmp_path / "alone").run(config, progress=False)
    assert without_timings(run.history) == without_timings(alone.history)  # nothing lost, nothing trained twice
