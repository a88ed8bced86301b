"""cifarnb sweep: the notebooks' runs without Jupyter, several workers on one store, a time budget."""

import os
import re
import shutil
import socket
import subprocess
import sys
import threading

import pytest

from pathlib import Path

from cifarnb import results as results_module
from cifarnb.cli import main
from cifarnb.results import ResultStore, claim
from cifarnb.study import profiles
from cifarnb.study import sweep as sweep_module
from cifarnb.study.estimate import SAFETY, SETUP_SECONDS, estimate_hours
from cifarnb.study.sections import SECTIONS, model_zoo, plan
from cifarnb.study.sections import feature_maps as feature_maps_section
from cifarnb.study.sweep import SweepReport, sweep
from cifarnb.study.tasks import LandscapeTask, RunTask

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def without_timings(history):
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in history]


def two_models(**execution):
    """The smoke profile with two cheap zoo models, on the CPU: a sweep of ``model_zoo`` trains two runs a seed."""
    return profiles.get("smoke", device="cpu", **execution).with_overrides(zoo_models=("lenet5", "alexnet"))


def test_sweep_fills_the_store_with_the_notebooks_runs(tmp_path, cifar_root, capsys):
    arguments = ["sweep", "--section", "model_zoo", "feature_maps", "--profile", "smoke", "--results", str(tmp_path),
                 "--data-root", str(cifar_root), "--device", "cpu"]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    store, smoke = ResultStore(tmp_path), profiles.get("smoke")
    for config in [*(model_zoo.zoo_config(smoke, model) for model in smoke.zoo_models),
                   *feature_maps_section.feature_map_configs(smoke, 0).values()]:
        assert store.load(config) is not None, config.model
    assert len(list((tmp_path / "arrays").glob("feature_maps_*.npz"))) == 3
    # ResNet18's maps draw Tables 8-9's ResNet18, at smoke the zoo's own run: trained once, by the zoo.
    assert "feature maps computed, model loaded" in out and "feature maps computed, model trained" in out
    assert "6 computed, 0 already stored, 0 left" in out
    # A second sweep only loads; the earlier section names still work, saying the new ones.
    assert main([*arguments[:2], "zoo", "features", *arguments[4:]]) == 0
    again = capsys.readouterr()
    assert "trained" not in again.out and "0 computed, 6 already stored, 0 left" in again.out
    assert "note: section 'zoo' is now called 'model_zoo'" in again.err


def test_plan_puts_every_first_seed_before_any_second_and_shares_runs_once():
    tasks = plan(["fastresnet9", "batchnorm"], profiles.get("smoke"), seeds=(0, 1))
    seeds = [task.config.seed for task in tasks if isinstance(task, RunTask)]
    assert seeds == sorted(seeds)  # seed 0 of every section's runs, then seed 1
    assert len({task.identity for task in tasks}) == len(tasks)
    # The fast recipe is the ladder's top step: one task, not two.
    assert not any(task.label.startswith("fast recipe") for task in tasks)
    # The first seed's only: the report's method one a model (its rates in sequence), the paper's one a model,
    # the one-step differences one a model and lr (3 at smoke).
    assert sum(isinstance(task, LandscapeTask) for task in tasks) == 2 + 2 + 2 * 3
    # Earlier names plan the same tasks.
    assert [t.identity for t in plan(["resnet9", "vgg"], profiles.get("smoke"), seeds=(0, 1))] == \
        [t.identity for t in tasks]


def test_workers_share_the_runs_and_train_each_once(tmp_path, cifar_root, capfd):
    profile = two_models(data_root=str(cifar_root))  # the spawned workers read the data folder from the configs
    store = ResultStore(tmp_path / "shared")
    report = sweep(["model_zoo"], profile, store, seeds=(7,), workers=2)
    out = capfd.readouterr().out
    assert report.ok and len(report.computed) == 2 and not report.left
    assert out.count("trained in") == 2 and "[worker 1]" in out and "[worker 2]" in out
    # Each run equals the same config trained alone, in this process.
    alone = ResultStore(tmp_path / "alone")
    for model in profile.zoo_models:
        config = model_zoo.zoo_config(profile, model).replace(seed=7)
        shared = store.load(config)
        assert without_timings(shared.history) == without_timings(alone.run(config, progress=False).history)


def test_a_claimed_run_is_waited_for_saying_which_run_and_which_process(tmp_path, cifar_root):
    notes, waiting = [], threading.Event()

    def note(line):
        notes.append(line)
        waiting.set()

    store = ResultStore(tmp_path, note=note)
    profile = two_models(data_root=str(cifar_root)).with_overrides(zoo_models=("lenet5",))
    config = model_zoo.zoo_config(profile, "lenet5")
    held = threading.Event()

    def other_process():  # holds the run's claim until the sweep waits for it, then stops without storing it
        with claim(store.claim_path(config)):
            held.set()
            waiting.wait(timeout=120)

    holder = threading.Thread(target=other_process)
    holder.start()
    assert held.wait(timeout=30)
    assert store.run(config, progress=False, wait=False) is None  # claimed: not trained here
    lines = []
    report = sweep(["model_zoo"], profile, store, log=lines.append)
    holder.join()
    assert "lenet5 (seed 0): claimed by another process" in lines[0]
    (waited,) = notes  # the owner's pid and host, from the claim file
    assert waited.startswith(f"waiting for {store.folder(config)}: process {os.getpid()} on {socket.gethostname()}")
    # The holder stopped without storing the run, so the sweep trained it itself.
    assert report.computed == ["lenet5 (seed 0)"] and report.ok and store.load(config).finished


def test_two_sweeps_on_one_store_each_count_only_the_runs_they_trained(tmp_path, cifar_root):
    command = [sys.executable, "-m", "cifarnb.cli", "sweep", "--section", "model_zoo", "--profile", "smoke",
               "--results", str(tmp_path), "--data-root", str(cifar_root), "--device", "cpu"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on a small machine
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=environment) for _ in range(2)]
    outputs = [process.communicate(timeout=900) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    counts = []
    for out, _ in outputs:
        computed, stored, by_others = (int(n) for n in re.search(
            r"(\d+) computed, (\d+) already stored(?:, (\d+) computed by another process)?", out).groups(default="0"))
        assert computed == out.count("trained in")  # what it says it computed is what it trained
        assert computed + stored + by_others == 3 and ", 0 left" in out
        counts.append(computed)
    assert sum(counts) == 3  # the smoke zoo's three runs, each trained once, by one of the two
    assert len(list(tmp_path.glob("*/run.json"))) == 3


def test_a_budget_that_leaves_runs_exits_0_and_says_so_a_failed_run_exits_1(tmp_path, cifar_root, capsys,
                                                                           monkeypatch):
    arguments = ["sweep", "--section", "model_zoo", "--profile", "smoke", "--results", str(tmp_path),
                 "--data-root", str(cifar_root), "--device", "cpu"]
    assert main([*arguments, "--budget-s", "1"]) == 0
    out = capsys.readouterr().out
    assert "0 computed, 0 already stored, 3 left; the budget stopped 3 (rerun to go on)" in out

    def broken_fit(*args, **kwargs):
        raise RuntimeError("a bug in training")

    monkeypatch.setattr(results_module, "fit", broken_fit)
    assert main(arguments) == 1
    out = capsys.readouterr().out
    assert "RuntimeError: a bug in training" in out and "3 left; 3 FAILED" in out
    assert not list(tmp_path.glob("*/run.json"))


def test_a_sweep_on_a_damaged_data_folder_stops_with_one_line_naming_the_file(tmp_path, cifar_root, capsys):
    damaged = tmp_path / "data" / "cifar-10-batches-py"
    shutil.copytree(cifar_root / "cifar-10-batches-py", damaged)
    (damaged / "data_batch_3").write_bytes(b"not a pickle")
    assert main(["sweep", "--section", "model_zoo", "--profile", "smoke", "--results", str(tmp_path / "store"),
                 "--data-root", str(tmp_path / "data"), "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    (error,) = captured.err.strip().splitlines()
    assert error.startswith("cifarnb: error: ") and str(damaged / "data_batch_3") in error
    assert "Traceback" not in captured.out and "trained" not in captured.out


def test_a_cpu_sweep_at_quick_prints_its_estimate_and_refuses_without_yes(tmp_path, capsys, monkeypatch):
    arguments = ["sweep", "--section", "model_zoo", "--profile", "quick", "--results", str(tmp_path), "--device", "cpu"]
    assert main(arguments) == 2
    captured = capsys.readouterr()
    assert "model_zoo: about " in captured.out and "CPU-hours left" in captured.out
    (error,) = captured.err.strip().splitlines()
    assert "CPU-hours (over 3); add --yes" in error
    started = []
    monkeypatch.setattr(sweep_module, "sweep", lambda *args, **kwargs: started.append(args) or SweepReport(
        [], [], [], [], []))
    assert main([*arguments, "--yes"]) == 0 and started  # --yes: no estimate, no refusal
    assert "CPU-hours" not in capsys.readouterr().out


def test_no_run_starts_past_the_budget(tmp_path, cifar_root):
    lines = []
    report = sweep(["model_zoo"], two_models(data_root=str(cifar_root)), ResultStore(tmp_path), budget_seconds=1,
                   log=lines.append)
    assert report.ok and not report.computed and len(report.left) == 2
    assert all("not started, needs ~" in line for line in lines) and not list(tmp_path.glob("*/run.json"))


def test_unknown_section_is_rejected(capsys):
    with pytest.raises(ValueError, match="section='plots' is not one of fastresnet9, batchnorm, feature_maps"):
        plan(["plots"], profiles.get("smoke"))
    with pytest.raises(SystemExit):
        main(["sweep", "--section", "plots", "--estimate", "cpu"])
    assert "invalid choice: 'plots'" in capsys.readouterr().err


def test_every_section_module_has_the_same_face():
    for name, section in SECTIONS.items():
        assert section.NAME == name and section.NOTEBOOK[:2].isdigit() and section.NOTEBOOK[3:] == name
        assert (NOTEBOOKS / f"{section.NOTEBOOK}.ipynb").exists()
        assert section.TITLE and isinstance(section.ALIASES, tuple) and isinstance(section.PARAMETERS, tuple)
        assert section.EPOCHS_FIELD is None or hasattr(profiles.get("smoke"), section.EPOCHS_FIELD)
        assert section.tasks(profiles.get("smoke"), 0), name


def test_estimate_hours_come_from_the_stores_measured_epochs(tmp_path, cifar_root, capsys):
    profile = two_models(data_root=str(cifar_root))
    store = ResultStore(tmp_path)
    sweep(["model_zoo"], profile, store, log=lambda line: None)
    expected = 0.0
    for model in profile.zoo_models:
        config = model_zoo.zoo_config(profile, model)
        rows = store.load(config).history
        per_epoch = sum(row["seconds"] + row.get("eval_seconds", 0.0) for row in rows) / len(rows)
        expected += SETUP_SECONDS + SAFETY * config.epochs * per_epoch
    hours, guessed = estimate_hours(["model_zoo"], profile, store, "cpu")["model_zoo"]
    assert hours == pytest.approx(expected / 3600) and guessed == []
    # No run of the store was timed on this device: every model's epoch is guessed, and said to be.
    _, guessed = estimate_hours(["model_zoo"], profile, store, "NVIDIA H200")["model_zoo"]
    assert guessed == ["alexnet", "lenet5"]
    # The command line plans the profile's three zoo models: ResNet18 is guessed, the other two measured.
    assert main(["sweep", "--estimate", "cpu", "--section", "model_zoo", "--profile", "smoke", "--results",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "model_zoo: " in out
    assert out.splitlines()[0].endswith("; assumed, from FLOPs at 0.02 TFLOP/s and 5 ms a step: resnet18")
    assert "total (smoke)" in out and "trained" not in out


def test_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError, as when it is absent
    assert main(["sweep", "--backend", "ray", "--section", "batchnorm", "--profile", "smoke", "--results",
                 str(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['cifarnb: error: the Ray backend needs the cluster extra: pip install -e ".[cluster]"']
    assert not list(tmp_path.glob("*/run.json"))


def test_local_only_flags_are_refused_with_ray_and_ray_flags_without_it(tmp_path, capsys):
    base = ["sweep", "--section", "batchnorm", "--profile", "smoke", "--results", str(tmp_path)]
    assert main([*base, "--backend", "ray", "--workers", "2"]) == 2
    assert "--workers, --budget-s and --fast-paths work with --backend local" in capsys.readouterr().err
    assert main([*base, "--address", "10.0.0.1:6379"]) == 2
    assert "--address needs --backend ray" in capsys.readouterr().err
    # The probes and self-test that choose the fast paths come from a folder the command names, never a default path
    assert main([*base, "--fast-paths", "auto"]) == 2
    assert "--fast-paths auto needs --probes DIR" in capsys.readouterr().err
