"""What a reader is told: how much of a section is real, and "not run" (never a number or 0 seeds) for the rest."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from cifarnb.results import ResultStore, Run  # noqa: E402
from cifarnb.study import profiles, reading, reference  # noqa: E402
from cifarnb.study.coverage import coverage  # noqa: E402
from cifarnb.study.probes import REFERENCE_CARD as CARD  # noqa: E402
from cifarnb.study.estimate import estimate  # noqa: E402
from cifarnb.study.notebook import Session, stored_part  # noqa: E402
from cifarnb.study.sections import batchnorm, model_zoo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _store_with_zoo_runs(tmp_path: Path) -> ResultStore:
    """A store holding the committed quick LeNet5 and AlexNet zoo runs (seeds 0 and 1) and nothing else."""
    quick = profiles.get("quick")
    for model in ("lenet5", "alexnet"):
        for seed in (0, 1):
            folder = f"{model}-{model_zoo.zoo_config(quick, model).replace(seed=seed).key()}"
            (tmp_path / folder).mkdir()
            shutil.copy(ROOT / "results" / folder / "run.json", tmp_path / folder / "run.json")
    return ResultStore(tmp_path)


def test_coverage_counts_what_is_stored_and_estimates_the_rest(tmp_path):
    store, quick = _store_with_zoo_runs(tmp_path), profiles.get("quick")
    found = coverage(model_zoo, quick, store, seeds=(0, 1))
    assert (found.configurations, found.complete, found.partial, found.tasks, found.stored) == (13, 2, 0, 26, 4)
    # The hours are the estimate `cifarnb sweep --estimate` makes, for the missing tasks only
    everything = estimate(["model_zoo"], quick, store, CARD, (0, 1), None)["model_zoo"].hours
    missing = estimate(["model_zoo"], quick, store, CARD, (0, 1), None, missing_only=True)["model_zoo"].hours
    assert 0 < found.hours_left == missing < everything
    text = str(found)
    assert "real: 2 of 13 configurations" in text and "not run" in text
    assert ("To fill the rest: `cifarnb sweep --section model_zoo --profile quick --seeds 0 1 --device cuda`, then "
            "`cifarnb report --only 02 --profile quick`: about") in text  # two commands to paste
    assert f"{missing:.1f} GPU-hours on an {CARD}, a reference card (this machine has no GPU" in text
    named = coverage(model_zoo, quick, store, seeds=(0, 1), card="NVIDIA A100-SXM4-80GB")
    assert "GPU-hours on an NVIDIA A100-SXM4-80GB, for the missing" in str(named)
    partly = coverage(model_zoo, quick, store, seeds=(0, 1, 2))
    assert (partly.complete, partly.partial) == (0, 2)  # seed 2 is not in this store


def test_a_table_of_missing_runs_says_not_run(tmp_path):
    store, quick = _store_with_zoo_runs(tmp_path), profiles.get("quick")
    results = reading.stored_grid(store, {"LeNet5": model_zoo.zoo_config(quick, "lenet5"),
                                          "ResNet18": model_zoo.zoo_config(quick, "resnet18")}, (0, 1))
    table = reading.comparison_table(results, {"acc": (reading.PRIMARY, None)}, report_epochs=25)
    assert table.loc["LeNet5", "seeds"] == 2 and table.loc["LeNet5", "acc"] != reading.NOT_RUN
    assert set(table.loc["ResNet18"]) == {reading.NOT_RUN}  # no number, no "0 seeds", no "n/a"
    assert str(reading.reading([])) == reading.NOT_RUN
    earlier = reading.stored_grid(store, batchnorm.earlier_vgg_configs(quick), (0,))
    vgg = batchnorm.accuracy_table(earlier, quick, best_over="epoch ends")
    assert vgg.filter(like="ours").eq(reading.NOT_RUN).all().all() and "0 seed" not in vgg.index.name


def test_a_figure_with_nothing_stored_says_so_and_leaves_no_stale_file(tmp_path, capsys):
    assert stored_part({"a": [], "b": {"c": []}}) is None
    assert stored_part({"a": [1], "b": {"c": []}}) == {"a": [1]}
    session = Session(name="02_model_zoo", section=model_zoo, profile=profiles.get("quick"), seeds=(0,),
                      store=ResultStore(tmp_path / "store"), figures=tmp_path / "figures")
    session.figures.mkdir()
    stale = session.figures / "accuracy_per_epoch.png"
    stale.write_bytes(b"a smoke run's figure")
    drawn = []
    session.figure("accuracy_per_epoch", {"ResNet18": []}, drawn.append)
    assert not drawn and not stale.exists()
    assert "not run" in capsys.readouterr().out


def test_the_best_model_sentence_reads_what_table_7_reads(tmp_path):
    """Prose and table tell one story: the number in notebook 02's best-model sentence is Table 7's final cell."""
    store, quick = _store_with_zoo_runs(tmp_path), profiles.get("quick")
    labels = {"LeNet5": "lenet5", "AlexNet": "alexnet", "ResNet18": "resnet18"}
    results = reading.stored_grid(store, {label: model_zoo.zoo_config(quick, model) for label, model in labels.items()},
                                  (0, 1))
    params = {model: 1.0 for model in labels.values()}
    table = model_zoo.zoo_table(results, reference.model_zoo().set_index("model"), params, 25, True)
    line = model_zoo.best_model_line(results, "quick", 25, True)
    best = model_zoo.best_model(results)
    final = next(column for column in table.columns if column.endswith("= final (%)") and "10,000" not in column)
    assert best in line and f"{table.loc[best, final]} %" in line
    assert "not run" in model_zoo.best_model_line({"ResNet18": []}, "quick", 25, True)


def test_rows_trained_on_a_cpu_are_named_with_their_precision_and_the_report_s():
    from cifarnb.study.fast_paths import report_precision
    from cifarnb.train import TrainConfig

    def run(model, device, precision, seed=0, **config):
        return Run(TrainConfig(model=model, seed=seed, **config), [{"epoch": 1, "test_acc": 50.0}], "finished",
                   meta={"device": device, "precision": precision})

    fast = [run("fastresnet9", "cpu", "bf16", optimizer="sgd_velocity"), run("fastresnet9", "cpu", "bf16", seed=1,
                                                                            optimizer="sgd_velocity")]
    note = reading.cpu_rows_note({"FastResNet9": fast, "ResNet9": [run("resnet9", "NVIDIA H200", "tf32")],
                                  "missing": []}, report_precision)
    assert note.startswith("**Trained on a CPU here:** FastResNet9 (seeds 0, 1: bf16; the report: a GPU in fp16).")
    assert "ResNet9" not in note.replace("FastResNet9", "") and reading.CPU_BF16_CAVEAT in note
    fp32 = reading.cpu_rows_note({"LeNet5": [run("lenet5", "cpu", "fp32")]}, report_precision)
    assert "a GPU in tf32" in fp32 and reading.CPU_BF16_CAVEAT not in fp32
    assert reading.cpu_rows_note({"ResNet9": [run("resnet9", "NVIDIA H200", "tf32")]}, report_precision) == ""
