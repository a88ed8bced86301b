"""Notebook 02's analysis (the model zoo, report 1.3) on made-up histories with known answers: Table 7's rows,
the value frontier, the early ranking and the verdicts on the report's two claims."""

import math

import pytest

from cifarnb.study import reading, reference
from cifarnb.study.sections import model_zoo
from cifarnb.results import Run
from cifarnb.train import TrainConfig

REPORT = reference.model_zoo().set_index("model")
JPEG_COST = 3.0  # made-up runs score this much less on all 10,000 images than on the exact rows


def zoo_run(model: str, exact: list[float], seconds: float = 1.0, seed: int = 0, n_train: int | None = None,
            n_test: int | None = None, device: str = "cpu") -> Run:
    """A made-up run of ``model``: ``exact`` is its accuracy on the exact rows per epoch (one entry per epoch);
    a run on a test subset (``n_test``) has no exact-row column, as in the store."""
    history = [{"epoch": epoch, "train_acc": accuracy, "test_acc": accuracy - JPEG_COST, "seconds": seconds}
               for epoch, accuracy in enumerate(exact, 1)]
    if n_test is None:
        for row, accuracy in zip(history, exact):
            row["test_acc_exact1000"] = accuracy
    config = TrainConfig(model=model, seed=seed, epochs=len(exact), n_train=n_train, n_test=n_test)
    return Run(config, history, "finished", meta={"device": device})


def flat(model: str, accuracy: float, epochs: int, **options) -> Run:
    return zoo_run(model, [accuracy] * epochs, **options)


def label(model: str) -> str:
    return model_zoo.zoo_label(model, REPORT)


def test_measures_over_seeds():
    runs = [zoo_run("lenet5", [50.0, 60.0], seconds=2.0), zoo_run("lenet5", [52.0, 64.0], seconds=4.0, seed=1)]
    assert reading.measure(runs, "test_acc").mean == pytest.approx(62.0 - JPEG_COST)
    assert reading.measure(runs, "test_acc_exact1000", epoch=1).mean == pytest.approx(51.0)
    assert reading.seconds_per_epoch(runs) == pytest.approx(3.0)
    seconds = reading.seconds_summary(runs)
    assert (seconds.mean, seconds.count) == (3.0, 2) and seconds.std == pytest.approx(math.sqrt(2))
    first, count = model_zoo.first_epoch_reaching(runs, 60.0, "test_acc_exact1000")
    assert (first.mean, count) == (2.0, 2)
    assert model_zoo.first_epoch_reaching(runs, 99.0)[1] == 0


def test_zoo_comparability_reads_both_report_columns():
    assert model_zoo.zoo_comparability([flat("resnet18", 90.0, 200)]) == "yes"
    assert model_zoo.zoo_comparability([flat("resnet18", 90.0, 25)]) == "@25 yes; @200 no: 25 of the report's 200 epochs"
    smoke = [flat("resnet18", 10.0, 3, n_train=32, n_test=50)]
    assert model_zoo.zoo_comparability(smoke) == (
        "no: trained on 32 of 50,000 images; tested on 50 of 10,000 images; 3 of the report's 25 epochs")


def test_parameter_table_matches_to_a_hundredth_of_a_million():
    table = model_zoo.parameter_table({"lenet5": 0.0621, "resnet18": 11.5, "vgg_a": 9.0}, REPORT)
    assert list(table.index) == ["LeNet5", "ResNet18", "vgg_a"]
    assert list(table["match"]) == ["yes", "no", "(not in report)"]


def test_zoo_table_marks_untrained_and_incomparable_rows():
    results = {"ResNet18": [flat("resnet18", 80.0, 25, seconds=5.0), flat("resnet18", 84.0, 25, seconds=7.0, seed=1)]}
    table = model_zoo.zoo_table(results, REPORT, {"lenet5": 0.06, "resnet18": 11.17}, epochs=25, full_test_set=True)
    assert list(table.index) == ["LeNet5", "ResNet18"]
    resnet = table.loc["ResNet18"]
    assert resnet["report acc @25 (%)"] == 85.84 and resnet["report acc @200 (%)"] == 95.29
    assert resnet["ours exact rows 0-999 @25 (%)"].startswith("82.00 ± 2.83 sd (SE ")
    assert resnet["ours all 10,000 (JPEG-affected) @25 = final (%)"] == "79.00 ± 2.83"
    assert "ours all 10,000 (JPEG-affected) @25 (%)" not in table.columns  # early and final are one epoch here
    assert resnet["ours s/epoch"] == "6.00 ± 1.41"
    assert resnet[reading.COMPARABLE_HEADING] == "@25 yes; @200 no: 25 of the report's 200 epochs"
    assert (table.loc["LeNet5", ["ours s/epoch", reading.COMPARABLE_HEADING]] == reading.NOT_RUN).all()


def test_zoo_table_at_smoke_reads_the_subset():
    results = {"LeNet5": [zoo_run("lenet5", [10.0, 12.0, 14.0], n_train=32, n_test=50)]}
    table = model_zoo.zoo_table(results, REPORT, {"lenet5": 0.06}, epochs=3, full_test_set=False)
    row = table.loc["LeNet5"]
    assert row["ours test acc @3 = final (%)"].startswith(f"{14.0 - JPEG_COST:.2f} (SE ")  # test_acc: the subset
    assert not any("10,000" in column for column in table.columns)
    assert row[reading.COMPARABLE_HEADING].startswith("no: trained on 32 of 50,000 images")


def test_frontier_names_who_beats_a_model_on_both_counts():
    accuracy = {"slow and best": 95.0, "fast and good": 93.0, "slow and worse": 92.0, "fastest": 80.0}
    seconds = {"slow and best": 100.0, "fast and good": 10.0, "slow and worse": 50.0, "fastest": 1.0}
    assert model_zoo.frontier(accuracy, seconds) == {"slow and best": None, "fast and good": None,
                                                    "slow and worse": "fast and good", "fastest": None}


def test_value_table_against_our_best():
    results = {"ResNet18": [flat("resnet18", 90.0, 3, seconds=2.0)], "LeNet5": [flat("lenet5", 60.0, 3, seconds=4.0)]}
    table = model_zoo.value_table(results, REPORT, ["lenet5", "resnet18", "resnet34"], epochs=3)
    assert table.index.name == "model (report's best: GeResNeXt29_8x64d; ours: ResNet18)"
    assert table.loc["LeNet5", "ours: points below best @3"] == 30.0
    assert table.loc["LeNet5", "ours: time / best's"] == 2.0
    assert table.loc["LeNet5", "ours: on the frontier"] == "no" and table.loc["ResNet18", "ours: on the frontier"] == "yes"
    assert table.loc["ResNet34", "report: points below best @200"] == pytest.approx(1.30)
    assert table.loc["ResNet34", "ours: on the frontier"] == reading.NOT_RUN


def value_results(resnet34_seconds: float, epochs: int = 200, **options) -> dict[str, list[Run]]:
    """The best model slow, WRN28x10 and ResNet34 a little less accurate and faster; ResNet50 between them, so
    ResNet34 stays on the frontier only while it is faster than ResNet50's 80 s."""
    return {label("geresnext29_8x64d"): [flat("geresnext29_8x64d", 97.0, epochs, seconds=400.0, **options)],
            label("wideresnet28x10"): [flat("wideresnet28x10", 96.6, epochs, seconds=150.0, **options)],
            label("resnet34"): [flat("resnet34", 95.5, epochs, seconds=resnet34_seconds, **options)],
            label("resnet50"): [flat("resnet50", 95.8, epochs, seconds=80.0, **options)]}


def test_best_value_claim_holds_when_both_models_are_on_the_frontier():
    found, verdict = model_zoo.best_value_verdict(value_results(resnet34_seconds=50.0), REPORT)
    assert verdict == "holds: both on the frontier of 4 models"
    assert found == "ResNet34: on the frontier; WideResNet28x10: on the frontier"


def test_best_value_claim_fails_when_a_model_beats_resnet34_on_both_counts():
    found, verdict = model_zoo.best_value_verdict(value_results(resnet34_seconds=120.0), REPORT)
    assert verdict == "does not hold: ResNet50 is more accurate and faster than ResNet34"
    assert "ResNet34: behind ResNet50" in found


def test_best_value_claim_is_not_testable_before_200_epochs_on_all_data():
    assert model_zoo.best_value_verdict(value_results(50.0, epochs=25), REPORT)[1] == (
        "not testable: GeResNeXt29_8x64d is not comparable (25 of the report's 200 epochs)")
    assert model_zoo.best_value_verdict(value_results(50.0, n_train=32), REPORT)[1].startswith(
        "not testable: GeResNeXt29_8x64d is not comparable (trained on 32 of 50,000 images")
    without = {key: runs for key, runs in value_results(50.0).items() if key != "ResNet34"}
    assert model_zoo.best_value_verdict(without, REPORT) == ("n/a", "not testable: ResNet34 not run")


def early_results(densenet: float, rival: float, epochs: int = 25, seeds: int = 1, **options) -> dict[str, list[Run]]:
    return {label("densenet121"): [flat("densenet121", densenet, epochs, seed=s, **options) for s in range(seeds)],
            label("densenet100_bc"): [flat("densenet100_bc", rival, epochs, seed=s, **options) for s in range(seeds)],
            label("lenet5"): [flat("lenet5", 60.0, epochs, seed=s, **options) for s in range(seeds)]}


def test_fastest_early_claim_holds_with_a_lead_beyond_two_standard_errors():
    found, verdict = model_zoo.fastest_early_verdict(early_results(92.0, 88.0), REPORT)
    assert verdict.startswith("holds: DenseNet121 leads DenseNet100_bc by +4.00 pp, beyond 2 SE")
    assert found.startswith("@25: DenseNet121 92.00 (SE 0.86), DenseNet100_bc 88.00")


def test_fastest_early_claim_fails_when_another_model_leads_clearly():
    verdict = model_zoo.fastest_early_verdict(early_results(86.0, 90.0, epochs=200), REPORT)[1]
    assert verdict.startswith("does not hold: DenseNet100_bc leads DenseNet121 by +4.00 pp, beyond 2 SE")


def test_fastest_early_claim_is_undecided_within_the_error():
    """The report's own gap (0.9 points, single runs) is within two standard errors of 1,000 test images."""
    verdict = model_zoo.fastest_early_verdict(early_results(89.92, 89.02), REPORT)[1]
    assert verdict.startswith("undecided: DenseNet121 leads DenseNet100_bc by +0.90 pp, within 2 SE")
    assert model_zoo.fastest_early_verdict(early_results(89.02, 89.92), REPORT)[1].startswith(
        "undecided: DenseNet100_bc leads DenseNet121 by +0.90 pp")


def test_fastest_early_claim_is_not_testable_on_a_subset_or_short_runs():
    assert model_zoo.fastest_early_verdict(early_results(92.0, 88.0, n_train=32), REPORT)[1].startswith(
        "not testable: DenseNet121 is not comparable (trained on 32 of 50,000 images")
    assert model_zoo.fastest_early_verdict(early_results(92.0, 88.0, epochs=3), REPORT)[1] == (
        "not testable: DenseNet121 is not comparable (3 of the report's 25 epochs)")
    alone = {label("densenet121"): [flat("densenet121", 92.0, 25)]}
    assert model_zoo.fastest_early_verdict(alone, REPORT)[1] == "not testable: no other model to compare with"


def test_zoo_claims_puts_both_verdicts_beside_the_report():
    claims = model_zoo.zoo_claims(early_results(92.0, 88.0), REPORT)
    assert claims.loc["DenseNet121 converges fastest in the first 25 epochs", "verdict"].startswith("holds")
    assert claims.loc["DenseNet121 converges fastest in the first 25 epochs", "report"] == (
        "@25: DenseNet121 89.92%, then DenseNet100_bc 89.02%")
    value = claims.loc["ResNet34 and WideResNet28x10 are the best value"]
    assert value["verdict"] == "not testable: ResNet34 and WideResNet28x10 not run"
    assert value["report"].startswith("ResNet34: 1.30 points below GeResNeXt29_8x64d at 0.12 of its time")


def test_early_table_sorts_by_early_accuracy_and_measures_progress():
    results = {"slow": [zoo_run("resnet18", [10.0] * 20 + [85.0] * 5)],
               "fast": [zoo_run("densenet121", [82.0] * 25)]}
    table = model_zoo.early_table(results, REPORT, epochs=25, full_test_set=True)
    assert list(table.index) == ["slow", "fast"]  # at epoch 25: 85 against 82
    assert table.loc["slow", "ours mean acc, epochs 1-25 (%)"] == f"{(20 * 10.0 + 5 * 85.0) / 25 - JPEG_COST:.2f}"
    assert table.loc["fast", "ours first epoch >= 80%"] == "never"  # test_acc (all images) is 79
    assert table.loc["slow", "ours first epoch >= 80%"] == "21.00 (1/1 seeds)"
    assert table.loc["fast", "report acc @25 (%)"] == 89.92
    assert (table[reading.COMPARABLE_HEADING] == "yes").all()


def test_rank_correlation():
    import pandas as pd

    same = pd.Series({"a": 1.0, "b": 2.0, "c": 3.0})
    assert model_zoo.rank_correlation(same, same * 10) == pytest.approx(1.0)
    assert model_zoo.rank_correlation(same, -same) == pytest.approx(-1.0)
    assert math.isnan(model_zoo.rank_correlation(same[:2], same[:2]))


def test_ranking_agreement_for_the_report_and_for_ours():
    results = {name: [zoo_run(model, [early] * 25 + [final] * 175)]
               for name, model, early, final in (("a", "lenet5", 80.0, 90.0), ("b", "resnet18", 70.0, 95.0),
                                                 ("c", "resnet34", 60.0, 93.0))}
    table = model_zoo.ranking_agreement(results, REPORT, epochs=200)
    assert table.loc["report", "rank correlation, early vs final (Spearman)"] == "+0.54 (epochs 25 vs 200)"
    assert table.loc["report", "first early"] == "DenseNet121"
    assert table.loc["report", "first at the end"] == "GeResNeXt29_8x64d"
    ours = table.loc["ours"]
    assert ours["rank correlation, early vs final (Spearman)"] == "-0.50 (epochs 25 vs 200)"
    assert (ours["first early"], ours["first at the end"], ours["models"]) == ("a", "b", 3)
    short = model_zoo.ranking_agreement(results, REPORT, epochs=25)
    assert short.loc["ours", "rank correlation, early vs final (Spearman)"] == "not testable: our runs stop at epoch 25"


def test_best_model_cost_points_and_devices():
    results = {"LeNet5": [flat("lenet5", 60.0, 3, seconds=1.0)],
               "ResNet18": [flat("resnet18", 80.0, 3, seconds=5.0), flat("resnet18", 84.0, 3, seconds=5.0, seed=1,
                                                                          device="cuda")]}
    assert model_zoo.best_model(results) == "ResNet18"
    points = model_zoo.cost_points(results, {"lenet5": 0.06, "resnet18": 11.17}).set_index("label")
    assert points.loc["ResNet18", "acc"] == 82.0 and points.loc["ResNet18", "params"] == 11.17
    assert points.loc["LeNet5", "seconds"] == 1.0
    assert reading.devices([run for runs in results.values() for run in runs]) == "cpu, cuda"


def with_lr(run: Run, lr: float) -> Run:
    for row in run.history:
        row["lr"] = lr
    return run


def test_plateau_reading_table_puts_both_readings_beside_the_report():
    results = {"lenet5": {"test loss (default)": [with_lr(flat("lenet5", 49.0, 25), 0.1)],
                          "test accuracy, min mode": [with_lr(flat("lenet5", 62.0, 25), 0.025),
                                                      with_lr(flat("lenet5", 60.0, 25, seed=1), 0.025)]},
               "alexnet": {"test loss (default)": [], "test accuracy, min mode": []}}
    table = model_zoo.plateau_reading_table(results, REPORT)
    assert list(table.index) == [("LeNet5", "test loss (default)"), ("LeNet5", "test accuracy, min mode")]
    assert table.loc[("LeNet5", "test accuracy, min mode"), "seeds"] == 2
    assert table.loc[("LeNet5", "test accuracy, min mode"), "ours (%)"].startswith("61.00")
    assert table.loc[("LeNet5", "test loss (default)"), "lr in that epoch"] == "0.1"
    assert table.loc[("LeNet5", "test loss (default)"), "report acc @25 (%)"] == REPORT.loc["lenet5",
                                                                                            "report_test_acc_25_epochs"]
    assert table.loc[("LeNet5", "test loss (default)"), reading.COMPARABLE_HEADING] == "yes"
    short = model_zoo.plateau_reading_table({"lenet5": {"test loss (default)": [flat("lenet5", 10.0, 3, n_train=32)]}},
                                           REPORT)
    assert short.iloc[0][reading.COMPARABLE_HEADING].startswith("no")
    assert short.iloc[0]["epoch read"] == 3 and short.iloc[0]["ours (%)"].startswith("10.00")
    assert short.iloc[0]["against the report (mean)"] == "not testable: not comparable"
    assert short.iloc[0]["single runs matching it"] == "n/a"
    assert model_zoo.plateau_reading_table({"lenet5": {"test loss (default)": []}}, REPORT).empty
    # LeNet5's report figure is 59.87: 49.0 on one seed is far below, the two seeds at 61.00 ± 1.41 match it
    assert table.loc[("LeNet5", "test loss (default)"), "against the report (mean)"].startswith("below it: -10.87")
    assert table.loc[("LeNet5", "test accuracy, min mode"), "against the report (mean)"].startswith("matches: +1.13")
    assert table.loc[("LeNet5", "test loss (default)"), "single runs matching it"] == "0 of 1"
    assert table.loc[("LeNet5", "test accuracy, min mode"), "single runs matching it"] == "2 of 2"


def test_runs_matching_counts_single_runs_where_a_split_mean_matches():
    # seeds split between a dropped and a kept learning rate: the mean of 49, 58 and 50 (52.3 ± 4.9) has a standard
    # error of 3.3 (the rows' sampling error and 4.9 / √3), so 59.87 lies beyond 2 SE; the run at 58 matches the
    # report's single run on its own (a single run's error is its sampling error)
    split = [flat("lenet5", acc, 25, seed=seed) for seed, acc in enumerate((49.0, 58.0, 50.0))]
    mean = reading.reading(split)
    assert mean.error == pytest.approx(math.hypot(reading.sampling_error(52.33, 1000), 4.93 / math.sqrt(3)), abs=0.01)
    assert reading.agreement_verdict(mean, 59.87).startswith("below it")
    assert reading.runs_matching(split, 59.87) == "1 of 3"
    assert reading.runs_matching(split, 59.87, epoch=1) == "1 of 3"
