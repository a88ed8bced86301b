"""The data folder and device are execution fields, set once on the profile: every config built from it gets them,
and no run's key changes."""
from __future__ import annotations

from dataclasses import dataclass, field

from cifarnb.study import profiles, reading
from cifarnb.study.sections import SECTIONS, model_zoo, plan
from cifarnb.study.tasks import RunTask
from cifarnb.train import TrainConfig


@dataclass
class RecordingStore:
    """Stands in for ResultStore: records the config each run was asked for, trains nothing."""

    asked: list[TrainConfig] = field(default_factory=list)

    def load(self, config):
        return None

    def run(self, config, progress=False, wait=True, evidence=None):
        self.asked.append((config, evidence))

        class Finished:
            trained_here, diverged_epoch = True, None

            @staticmethod
            def final(column):
                return 10.0

        return Finished()


def test_the_profiles_device_and_data_folder_reach_every_planned_task_and_change_no_key():
    plain = profiles.get("smoke")
    placed = profiles.get("smoke", device="cpu", data_root="/data/here")
    before, after = plan(list(SECTIONS), plain), plan(list(SECTIONS), placed)
    assert [task.identity for task in before] == [task.identity for task in after]
    for task in after:
        assert (task.config.device, task.config.data_root) == ("cpu", "/data/here"), task.label
        assert task.device == "cpu"


def test_a_task_trains_its_config_as_given():
    config = TrainConfig(model="lenet5", epochs=1, data_root="/data/from-config", device="cpu")
    store = RecordingStore()
    how = RunTask("model_zoo", "lenet5", config).compute(store)
    # as given, with the study's evidence: the report's precision (main.py's: TF32 convolutions) as the reference
    # train.execution.decide keeps on a GPU, an execution choice outside the key
    ((asked, evidence),) = store.asked
    assert asked == config and evidence.reference_precision == "tf32" and how.startswith("trained in ")


def test_stored_grid_loads_only_finished_runs_and_trains_nothing():
    from cifarnb.results import Run

    config = TrainConfig(model="lenet5", epochs=1)

    class HalfFullStore:
        def load(self, asked):
            return Run(asked, [], "finished") if asked.seed == 0 else None

        def run(self, *args, **kwargs):
            raise AssertionError("stored_grid must not train")

    found = reading.stored_grid(HalfFullStore(), {"a": config}, [0, 1])
    assert [run.config.seed for run in found["a"]] == [0]


def test_zoo_plateau_readings_differ_only_in_what_the_scheduler_watches():
    readings = model_zoo.zoo_plateau_readings(profiles.get("quick"), "lenet5")
    default, accuracy = readings.values()
    assert default == model_zoo.zoo_config(profiles.get("quick"), "lenet5")
    assert accuracy == default.replace(plateau_metric="test_acc")
