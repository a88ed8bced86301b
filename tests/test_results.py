import json
import math
from pathlib import Path

import pytest
import torch

from cifarnb import results
from cifarnb.results import CHECKPOINT_FILE, RUN_FILE, WEIGHTS_FILE, ResultStore, atomic_write_json, summarize
from cifarnb.train import TrainConfig, fit


def small(**changes) -> TrainConfig:
    settings = dict(model="lenet5", epochs=3, batch_size=16, lr=0.05, device="cpu", eval_batch_size=64)
    return TrainConfig(**{**settings, **changes})


def without_timings(history):
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in history]


def test_round_trip_and_second_call_loads_instead_of_training(tiny, tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    config = small()
    run = store.run(config, data=tiny, progress=False)
    folder = tmp_path / f"lenet5-{config.key()}"
    assert (folder / RUN_FILE).exists() and (folder / WEIGHTS_FILE).exists()
    assert not (folder / CHECKPOINT_FILE).exists()
    assert run.finished and len(run.history) == 3
    assert {"torch", "device", "wall_seconds", "date"} <= set(run.meta)

    monkeypatch.setattr(results, "fit", lambda *a, **k: pytest.fail("a stored run was trained again"))
    again = store.run(config, data=tiny, progress=False)
    assert again.config == config and again.history == run.history
    model = again.load_model()
    assert isinstance(model, torch.nn.Module) and not model.training


def test_interrupted_run_resumes_and_equals_uninterrupted(tiny, tmp_path):
    config = small(model="alexnet", epochs=4)
    uninterrupted = ResultStore(tmp_path / "a").run(config, data=tiny, progress=False)
    store = ResultStore(tmp_path / "b")

    def crash(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, tiny, checkpoint_path=store.folder(config) / CHECKPOINT_FILE, progress=False, on_epoch=crash)
    assert store.load(config) is None  # nothing half-written looks finished
    resumed = store.run(config, data=tiny, progress=False)
    assert resumed.meta["resumed_from_epoch"] == 2
    assert without_timings(resumed.history) == without_timings(uninterrupted.history)


def test_diverged_run_is_stored_as_diverged(tiny, tmp_path):
    store = ResultStore(tmp_path)
    run = store.run(small(lr=1e12, momentum=0.0, scheduler="none", epochs=5), data=tiny, progress=False)
    assert run.status == "diverged" and run.diverged_epoch == len(run.history)
    stored = json.loads((run.path / RUN_FILE).read_text())
    assert stored["status"] == "diverged" and stored["diverged_epoch"] == run.diverged_epoch


def test_atomic_write_leaves_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "run.json"
    atomic_write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert list(tmp_path.iterdir()) == [path]


def test_run_seeds_and_summary(tiny, tmp_path):
    store = ResultStore(tmp_path)
    runs = [store.run(small(epochs=1, seed=seed), data=tiny, progress=False) for seed in (0, 1)]
    assert [r.config.seed for r in runs] == [0, 1]
    assert len(list(store.runs())) == 2
    summary = summarize([70.0, 74.0])
    assert (summary.mean, round(summary.std, 4), summary.count) == (72.0, 2.8284, 2)
    assert str(summary) == "72.00 ± 2.83" and str(summarize([])) == "n/a"


def test_cached_table_computes_once(tmp_path):
    import pandas as pd

    store = ResultStore(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return pd.DataFrame({"step": [1, 2], "value": [0.5, 0.25]})

    first = store.cached_table("demo", {"lr": 0.1}, compute)
    second = store.cached_table("demo", {"lr": 0.1}, compute)
    assert calls == [1] and first.equals(second)
    store.cached_table("demo", {"lr": 0.2}, compute)
    assert calls == [1, 1]


def test_corrupt_run_file_names_the_file(tmp_path):
    store = ResultStore(tmp_path)
    config = small()
    store.folder(config).mkdir(parents=True)
    (store.folder(config) / RUN_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="run.json is not valid JSON"):
        store.load(config)


COMMITTED = Path(__file__).resolve().parents[1] / "results"


def test_every_committed_run_is_found_under_its_own_key():
    """A stored run's key never changes: each committed run.json's config hashes to its folder's name."""
    paths = sorted(COMMITTED.glob(f"*/{RUN_FILE}"))
    assert paths, "the committed store holds no runs"
    for path in paths:
        config = TrainConfig.from_dict(json.loads(path.read_text())["config"])
        assert path.parent.name == f"{config.model}-{config.key()}", path
        results.read_run(path)  # and each follows the declared schema (run_schema.RunFile)


def test_every_committed_table_is_found_under_its_own_key():
    from cifarnb.results import content_key

    for path in sorted((COMMITTED / "tables").glob("*.json")):
        content = json.loads(path.read_text())
        assert path.name == f"{content['name']}-{content_key(content['config'])}.json", path


def test_fields_added_later_leave_earlier_keys_alone():
    """Keys computed before augment, normalization, ema_every and lr_knots existed (pinned literals)."""
    assert TrainConfig().key() == "06ab1ca01247e511"
    assert TrainConfig(model="fastresnet9", ema_decay=0.99, tta_flip=True).key() == "1b459faabc519ff0"
    assert TrainConfig(augment=True, normalization="cifar10", ema_every=1).key() == "06ab1ca01247e511"
    assert TrainConfig(augment=False).key() != TrainConfig().key()


def test_corrupt_checkpoint_is_moved_aside_and_the_run_restarts(tiny, tmp_path, capsys):
    store = ResultStore(tmp_path)
    config = small(epochs=2)
    checkpoint = store.folder(config) / CHECKPOINT_FILE
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"half a checkpoint")
    run = store.run(config, data=tiny, progress=False)
    (warning,) = [line for line in capsys.readouterr().err.splitlines() if "checkpoint" in line]
    assert str(checkpoint) in warning and "epoch 0" in warning
    assert (checkpoint.parent / "checkpoint.pt.corrupt").read_bytes() == b"half a checkpoint"
    assert run.finished and len(run.history) == 2 and run.origin == "trained"
    assert store.run(config, data=tiny, progress=False).origin == "loaded"


def test_resumed_run_says_from_which_epoch(tiny, tmp_path):
    config = small(epochs=3)
    store = ResultStore(tmp_path)

    def crash(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, tiny, checkpoint_path=store.folder(config) / CHECKPOINT_FILE, progress=False, on_epoch=crash)
    assert store.run(config, data=tiny, progress=False).origin == "resumed from epoch 1"


def test_run_file_lacking_fields_names_the_file_and_the_fields(tmp_path):
    store = ResultStore(tmp_path)
    config = small()
    store.folder(config).mkdir(parents=True)
    (store.folder(config) / RUN_FILE).write_text(json.dumps({"config": config.to_dict(), "meta": {}}))
    with pytest.raises(ValueError, match=r"run.json lacks status, history; delete that folder") as error:
        store.load(config)
    assert "\n" not in str(error.value)


def test_store_files_are_readable_by_others(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


def test_binary_garbage_in_a_run_file_names_the_file(tmp_path):
    store = ResultStore(tmp_path)
    config = small()
    store.folder(config).mkdir(parents=True)
    (store.folder(config) / RUN_FILE).write_bytes(bytes(range(256)))
    with pytest.raises(ValueError) as error:
        store.load(config)
    assert str(error.value) == (f"{store.folder(config) / RUN_FILE} is not valid JSON; delete that folder to rerun "
                                "the experiment")


EPOCH_ROW = {"epoch": 1, "train_loss": 2.3, "train_acc": 11.0, "lr": 0.05, "seconds": 0.4, "test_loss": 2.2,
             "test_acc": 10.0}


@pytest.mark.parametrize("change, reason", [
    (lambda content: content.update(history=None), "has history = None: Input should be a valid array"),
    (lambda content: content.update(history=[]), "is not a valid run: a finished run's history must not be empty"),
    (lambda content: content["history"][0].update(test_acc="95.1"),
     "has history[0].test_acc = '95.1': Input should be a valid number"),
    (lambda content: content["history"][0].update(test_acc=101.0),
     "has history[0].test_acc = 101.0: an accuracy must lie in [0, 100], not 101.0"),
    (lambda content: content["history"][0].pop("train_loss"), "lacks history[0].train_loss"),
    (lambda content: content["config"].update(epochs="3"), "has config.epochs = '3': Input should be a valid integer"),
    (lambda content: content["config"].update(colour=1), "has config.colour = 1: not a field of a run file"),
    (lambda content: content["meta"].update(wall_seconds=-1.0), "has meta.wall_seconds = -1.0"),
    (lambda content: content.update(status="running"), "has status = 'running': Input should be 'finished' or "
                                                       "'diverged'"),
    (lambda content: content.update(status="diverged"), "is not a valid run: a diverged run must name its "
                                                        "diverged_epoch"),
    (lambda content: content["config"].update(seed=1), "holds the config lenet5-"),
    (lambda content: content["config"].update(optimizer="rmsprop"), "has an invalid config (ValueError: "
                                                                    "optimizer='rmsprop' is not valid"),
])
def test_a_run_file_merge_would_refuse_is_refused_on_load(change, reason, tmp_path):
    store = ResultStore(tmp_path)
    config = small()
    content = results.Run(config, [dict(EPOCH_ROW)], "finished", meta={"wall_seconds": 1.0}).to_json()
    change(content)
    atomic_write_json(store.folder(config) / RUN_FILE, content)
    for read in (lambda: store.load(config), lambda: list(store.runs())):
        with pytest.raises(ValueError) as error:
            read()
        message = str(error.value)
        assert message.startswith(f"{store.folder(config) / RUN_FILE} {reason}") and "\n" not in message
        assert message.endswith("; delete that folder to rerun the experiment")


def test_diverged_epochs_and_unmeasured_accuracies_are_well_formed(tmp_path):
    """NaN (a diverged epoch's accuracy, as json.dumps writes it) and null (not measured) both validate."""
    store = ResultStore(tmp_path)
    config = small()
    rows = [dict(EPOCH_ROW, test_acc_exact1000=None), dict(EPOCH_ROW, epoch=2, test_acc=math.nan, test_loss=math.nan)]
    atomic_write_json(store.folder(config) / RUN_FILE,
                      results.Run(config, rows, "diverged", diverged_epoch=2).to_json())
    run = store.load(config)
    assert run.status == "diverged" and math.isnan(run.final())


def test_a_checkpoint_that_does_not_fit_its_model_is_moved_aside_and_the_run_restarts(tiny, tmp_path, capsys):
    store = ResultStore(tmp_path)
    lenet, alexnet = small(epochs=2), small(model="alexnet", epochs=2)

    def crash(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # leaves LeNet5's checkpoint after epoch 1
        fit(lenet, tiny, checkpoint_path=store.folder(lenet) / CHECKPOINT_FILE, progress=False, on_epoch=crash)
    foreign = (store.folder(lenet) / CHECKPOINT_FILE).read_bytes()
    store.folder(alexnet).mkdir(parents=True)
    (store.folder(alexnet) / CHECKPOINT_FILE).write_bytes(foreign)  # a readable checkpoint of another model
    capsys.readouterr()
    run = store.run(alexnet, data=tiny, progress=False)
    (warning,) = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith(f"warning: checkpoint {store.folder(alexnet) / CHECKPOINT_FILE} does not fit this run "
                              "(its model weights differ in ")
    assert warning.endswith("moved it aside to checkpoint.pt.corrupt, restarting from epoch 0")
    assert (store.folder(alexnet) / "checkpoint.pt.corrupt").read_bytes() == foreign
    assert run.finished and run.origin == "trained" and len(run.history) == 2
    alone = ResultStore(tmp_path / "alone").run(alexnet, data=tiny, progress=False)
    assert without_timings(run.history) == without_timings(alone.history)  # nothing of the foreign state kept


def test_partial_files_left_by_a_killed_write_are_removed_on_the_next_start(tiny, tmp_path):
    store = ResultStore(tmp_path)
    config = small(epochs=1)
    folder = store.folder(config)
    folder.mkdir(parents=True)
    leftovers = [folder / "checkpoint.ptk3j2h1.partial", folder / "weights.ptz9y8x7.partial"]
    for leftover in leftovers:
        leftover.write_bytes(b"half a file")
    store.run(config, data=tiny, progress=False)
    assert not any(leftover.exists() for leftover in leftovers)
    assert sorted(path.name for path in folder.iterdir()) == [RUN_FILE, WEIGHTS_FILE]


def test_a_non_finite_test_loss_marks_the_run_diverged(tiny, tmp_path):
    # One step per epoch: the epoch's training loss is the loss before the (infinite) step, so it stays finite.
    config = small(lr=float("inf"), batch_size=len(tiny.y_train), epochs=3)
    run = ResultStore(tmp_path).run(config, data=tiny, progress=False)
    first = run.history[0]
    assert math.isfinite(first["train_loss"]) and not math.isfinite(first["test_loss"])
    assert run.status == "diverged" and run.diverged_epoch == 1 and len(run.history) == 1
    assert json.loads((run.path / RUN_FILE).read_text())["status"] == "diverged"


def test_a_results_store_that_is_a_file_is_one_clear_error(tmp_path):
    path = tmp_path / "results"
    path.write_text("not a folder")
    with pytest.raises(ValueError, match=f"^results store {path} is a file, not a folder; give a folder"):
        ResultStore(path)


@pytest.mark.parametrize("ending", ["finished", "failed", "interrupted"])
def test_a_claim_file_goes_when_its_block_ends(tmp_path, ending):
    """The holder removes its claim file when the run ends however it ends; a later claim of the same result works."""
    from cifarnb.results import claim

    path = tmp_path / "lenet5-0123.claim"
    raised = {"finished": None, "failed": RuntimeError("boom"), "interrupted": KeyboardInterrupt()}[ending]
    try:
        with claim(path) as taken:
            assert taken and path.exists()
            if raised is not None:
                raise raised
    except (RuntimeError, KeyboardInterrupt):
        pass
    assert not path.exists()
    with claim(path, wait=False) as taken:
        assert taken
    assert not path.exists()
