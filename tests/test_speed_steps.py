"""The GPU sweep's speed steps, on the CPU: what each changes (nothing a run measures) and what it keeps."""

from __future__ import annotations

import pytest
import torch

from cifarnb.study import profiles
from cifarnb.study.sections import SECTIONS, plan
from cifarnb.train import TrainConfig, fit
from cifarnb.train.config import EXECUTION_FIELDS
from cifarnb.train.execution import execution_mode, sweep_execution
from cifarnb.train.speed_steps import CheckpointCadence


def small(**changes) -> TrainConfig:
    settings = dict(model="lenet5", epochs=3, batch_size=16, lr=0.05, device="cpu", eval_batch_size=64)
    return TrainConfig(**{**settings, **changes})


def without_timings(history):
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in history]


class Interrupt(Exception):
    pass


def test_a_run_cut_off_between_timed_checkpoints_resumes_to_the_uninterrupted_history(tiny, tmp_path, monkeypatch):
    # A clock that moves only when the test says: a checkpoint is due once 60 "seconds" have passed.
    now = [0.0]
    monkeypatch.setattr(CheckpointCadence, "clock", staticmethod(lambda: now[0]))
    config = small(model="alexnet", epochs=5, ema_decay=0.9, ema_every=3, checkpoint_every_s=60.0)
    uninterrupted = fit(config, tiny, progress=False).history
    checkpoint, written = tmp_path / "checkpoint.pt", []

    def minute_after_epoch_1_then_cut_at_4(row):
        written.append((row["epoch"], checkpoint.exists() and torch.load(checkpoint, weights_only=True)["epoch"]))
        if row["epoch"] == 1:
            now[0] += 61.0  # epoch 2 ends more than a minute after training started: its checkpoint is written
        if row["epoch"] == 4:
            raise Interrupt  # epochs 3 and 4 ended within the minute after it: no checkpoint since epoch 2

    with pytest.raises(Interrupt):
        fit(config, tiny, checkpoint_path=checkpoint, progress=False, on_epoch=minute_after_epoch_1_then_cut_at_4)
    assert written == [(1, False), (2, 2), (3, 2), (4, 2)]
    resumed = fit(config, tiny, checkpoint_path=checkpoint, progress=False)
    assert resumed.resumed_from_epoch == 2  # epochs 3 and 4 were trained again
    assert without_timings(resumed.history) == without_timings(uninterrupted)


def test_without_a_cadence_every_epoch_is_checkpointed(tiny, tmp_path):
    epochs = []
    checkpoint = tmp_path / "checkpoint.pt"
    fit(small(epochs=2), tiny, checkpoint_path=checkpoint, progress=False,
        on_epoch=lambda row: epochs.append(torch.load(checkpoint, weights_only=True)["epoch"]))
    assert epochs == [1, 2]


def test_checkpoint_every_s_must_be_positive():
    with pytest.raises(ValueError, match=r"checkpoint_every_s=0 must be > 0, or None for every epoch"):
        small(checkpoint_every_s=0)


def test_a_compiled_run_matches_eager_and_a_second_run_reuses_its_graph(tiny):
    """torch.compile (inductor, CPU) against eager over 3 epochs: losses within 0.1% (relative), accuracies within
    one image of the 64; a second run of the same model, options and batch size (seed 1) compiles no new graph."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    eager = fit(small(), tiny, progress=False).history
    compiled = fit(small(compile=True), tiny, progress=False, warmup_steps=1).history
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1
    again = fit(small(compile=True, seed=1), tiny, progress=False, warmup_steps=1)
    assert counters["stats"]["unique_graphs"] == graphs  # reused, not recompiled
    eager_again = fit(small(seed=1), tiny, progress=False).history
    for first, second in ((eager, compiled), (eager_again, again.history)):
        for row, other in zip(first, second, strict=True):
            for key in ("train_loss", "test_loss"):
                assert other[key] == pytest.approx(row[key], rel=1e-3)
            for key in ("train_acc", "test_acc"):
                assert abs(other[key] - row[key]) <= 100 / 64 + 1e-9


def test_the_sweep_execution_changes_no_key_and_is_chosen_in_one_place():
    assert sweep_execution("cpu") == {} and sweep_execution("auto" if not torch.cuda.is_available() else "cpu") == {}
    fields = sweep_execution("cuda")
    assert fields and set(fields) <= set(EXECUTION_FIELDS)
    assert TrainConfig(**fields).key() == TrainConfig().key()
    assert execution_mode(TrainConfig(**fields)) == "eager+cudnn_benchmark"
    assert execution_mode(TrainConfig(compile=True, compile_mode="reduce-overhead")) == "compiled+cuda_graphs"
    # Every task of every section is the same result on a GPU as on a CPU: same identities, in the same order.
    on_gpu, on_cpu = (plan(list(SECTIONS), profiles.get("quick", device=device)) for device in ("cuda", "cpu"))
    assert [task.identity for task in on_gpu] == [task.identity for task in on_cpu]
    run_configs = [task.config for task in on_gpu if isinstance(getattr(task, "config", None), TrainConfig)]
    assert run_configs and all(config.checkpoint_every_s == fields["checkpoint_every_s"] for config in run_configs)
