"""A notebook's ``backend`` parameter: "ray" trains the runs the store lacks on Ray, then loads them here."""
from __future__ import annotations

import builtins

import pytest

from cifarnb.study import cluster
from cifarnb.study.notebook import NotebookParameterError, setup
from cifarnb.study.tasks import RunTask
from cifarnb.train import TrainConfig


def quiet_setup(tmp_path, **options):
    return setup("01_optimize_resnet18", {"results_dir": str(tmp_path / "store"),
                                          "figures_dir": str(tmp_path / "figures"), **options})


def test_backend_and_gpus_per_run_are_checked_in_the_first_cell(tmp_path):
    with pytest.raises(NotebookParameterError, match="backend='slurm' is not one of local, ray"):
        quiet_setup(tmp_path, backend="slurm")
    with pytest.raises(NotebookParameterError, match="gpus_per_run=-1 must be a number >= 0"):
        quiet_setup(tmp_path, gpus_per_run=-1)


def test_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(NotebookParameterError, match=r'backend=.ray.: .*pip install -e "\.\[cluster\]"'):
        quiet_setup(tmp_path, backend="ray")


def test_ray_backend_dispatches_every_config_and_seed_then_loads_from_the_store(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    session = quiet_setup(tmp_path, backend="ray", ray_address="127.0.0.1:6379", gpus_per_run=0.25, seeds=[0, 1],
                          device="cpu")
    dispatched = []

    def fake_dispatch(tasks, store, address, gpus_per_run, cpus_per_run, **options):
        dispatched.append(([(type(t).__name__, t.config.seed, t.config.key()) for t in tasks], address, gpus_per_run))
        return True

    loaded = []
    monkeypatch.setattr(cluster, "dispatch", fake_dispatch)
    monkeypatch.setattr(RunTask, "compute", lambda task, store, wait=True: loaded.append(task.config.seed) or "stored")
    monkeypatch.setattr(session.store, "load", lambda config: f"run of seed {config.seed}")
    config = TrainConfig(model="lenet5", epochs=1)
    assert session.run_grid({"a": config}, log=lambda line: None) == {"a": ["run of seed 0", "run of seed 1"]}
    (tasks, address, gpus), = dispatched
    assert tasks == [("RunTask", 0, config.replace(seed=0).key()), ("RunTask", 1, config.replace(seed=1).key())]
    assert (address, gpus) == ("127.0.0.1:6379", 0.25)
    assert loaded == [0, 1]  # then every run loads through the store, as with the local backend


def test_local_backend_never_touches_ray(tmp_path, monkeypatch):
    session = quiet_setup(tmp_path, device="cpu")
    monkeypatch.setattr(cluster, "dispatch", lambda *a, **k: pytest.fail("dispatched on the local backend"))
    monkeypatch.setattr(RunTask, "compute", lambda task, store, wait=True: "stored")
    monkeypatch.setattr(session.store, "load", lambda config: "a run")
    assert session.run_grid({"a": TrainConfig(model="lenet5")}, log=lambda line: None) == {"a": ["a run"]}
