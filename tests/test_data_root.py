"""The data folder is an execution field: passing none keeps the config's own, passing one replaces it."""
from __future__ import annotations

from dataclasses import dataclass, field

from cifarnb import experiments, sweep
from cifarnb.train import TrainConfig


@dataclass
class RecordingStore:
    """Stands in for ResultStore: records the config each run was asked for, trains nothing."""

    asked: list[TrainConfig] = field(default_factory=list)

    def load(self, config):
        return None

    def run(self, config, progress=False, wait=True):
        self.asked.append(config)

        class Finished:
            trained_here, diverged_epoch = True, None

            @staticmethod
            def final(column):
                return 10.0

        return Finished()


def test_run_grid_keeps_the_configs_data_folder_unless_given_one():
    config = TrainConfig(model="lenet5", epochs=1, data_root="/data/from-config")
    store = RecordingStore()
    experiments.run_grid(store, {"a": config}, [0], device="cpu", log=lambda line: None)
    experiments.run_grid(store, {"a": config}, [0], device="cpu", data_root="/data/given", log=lambda line: None)
    assert [c.data_root for c in store.asked] == ["/data/from-config", "/data/given"]
    assert store.asked[0].key() == store.asked[1].key() == config.key()  # not part of what the run means


def test_sweep_task_keeps_the_configs_data_folder_unless_given_one():
    config = TrainConfig(model="lenet5", epochs=1, data_root="/data/from-config")
    store = RecordingStore()
    task = sweep.Task("zoo", "lenet5", "run", config=config)
    task.compute(store, "cpu")
    task.compute(store, "cpu", data_root="/data/given")
    assert [c.data_root for c in store.asked] == ["/data/from-config", "/data/given"]


def test_stored_grid_loads_only_finished_runs_and_trains_nothing():
    from cifarnb.results import Run

    config = TrainConfig(model="lenet5", epochs=1)

    class HalfFullStore:
        def load(self, asked):
            return Run(asked, [], "finished") if asked.seed == 0 else None

        def run(self, *args, **kwargs):
            raise AssertionError("stored_grid must not train")

    found = experiments.stored_grid(HalfFullStore(), {"a": config}, [0, 1])
    assert [run.config.seed for run in found["a"]] == [0]


def test_zoo_plateau_readings_differ_only_in_what_the_scheduler_watches():
    from cifarnb import profiles

    readings = experiments.zoo_plateau_readings(profiles.get("quick"), "lenet5")
    default, accuracy = readings.values()
    assert default == experiments.zoo_config(profiles.get("quick"), "lenet5")
    assert accuracy == default.replace(plateau_metric="test_acc")
