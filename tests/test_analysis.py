"""Comparisons with the report: the exact test rows first, their sampling error, verdicts that allow for it."""

import pytest

from cifarnb import analysis
from cifarnb.results import Run
from cifarnb.train import TrainConfig


def run(exact: list[float], full: list[float], official: bool = False, seed: int = 0) -> Run:
    history = [{"epoch": e + 1, "test_acc": f, "test_acc_exact1000": x} for e, (x, f) in enumerate(zip(exact, full))]
    return Run(TrainConfig(model="lenet5", seed=seed), history, "finished", meta={"data_official": official})


def test_the_exact_rows_are_primary_unless_the_data_is_official():
    assert analysis.primary_column([run([90], [85])]) == "test_acc_exact1000"
    assert analysis.primary_column([run([90], [85], official=True)]) == "test_acc"
    subset = Run(TrainConfig(model="lenet5", n_test=50), [{"epoch": 1, "test_acc": 40.0}], "finished")
    assert analysis.primary_column([subset]) == "test_acc"


def test_sampling_error_of_1000_images():
    assert analysis.sampling_error(94.0, 1000) == pytest.approx(0.751, abs=1e-3)
    assert analysis.sampling_error(75.0, 1000) == pytest.approx(1.369, abs=1e-3)
    one = analysis.reading([run([94.0], [90.0])])
    assert one.column == "test_acc_exact1000" and one.error == pytest.approx(0.751, abs=1e-3)
    two = analysis.reading([run([93.0], [90.0]), run([95.0], [90.0], seed=1)])
    assert two.summary.mean == 94.0 and two.error > one.error  # the seeds' spread adds to the error


@pytest.mark.parametrize("ours, verdict", [(94.5, "reproduced"), (93.0, "consistent"), (91.0, "not reproduced")])
def test_accuracy_verdict_allows_two_standard_errors(ours, verdict):
    assert analysis.accuracy_verdict(analysis.reading([run([ours], [80.0])]), 94.03).startswith(verdict)


def test_reached_by_verdict():
    runs = [run([80, 88, 92.6, 93.2], [70, 80, 85, 86])]
    found, verdict = analysis.reached_by_verdict(runs, 93.10, report_epoch=3, full_data=True)
    assert found.startswith("epoch 4") and verdict.startswith("consistent")
    assert analysis.reached_by_verdict(runs, 93.10, report_epoch=8, full_data=True)[1].startswith("not testable")
    assert analysis.reached_by_verdict(runs, 93.10, report_epoch=3, full_data=False)[1].startswith("not testable")


def test_report_pattern_reads_early_and_late_medians():
    import pandas as pd

    rows = [("vgg_a", step, "beta", 1.0) for step in range(0, 100, 10)]
    rows += [("vgg_a_bn", step, "beta", 5.0 if step < 20 else 0.5) for step in range(0, 100, 10)]
    table = pd.DataFrame(rows, columns=["model", "step", "quantity", "value"])
    medians = analysis.early_and_late(table, "beta")
    assert medians.loc["vgg_a_bn", "early median"] == 5.0 and medians.loc["vgg_a_bn", "late median"] == 0.5
    assert analysis.report_pattern(table, "beta").endswith("as the report describes")
    row = analysis.pattern_summary(table, "beta")
    assert row["vgg_a_bn, early median"] == 5.0 and row["vgg_a, late median"] == 1.0 and "shape" in row
    flipped = table.assign(model=table["model"].map({"vgg_a": "vgg_a_bn", "vgg_a_bn": "vgg_a"}))
    assert analysis.report_pattern(flipped, "beta").endswith("not what the report describes")


def test_comparability_names_every_reason_a_row_differs_from_the_report():
    full = run([80.0] * 25, [80.0] * 25)
    assert analysis.comparability([full], report_epochs=25) == "yes"
    assert analysis.comparability([full], report_epochs=200) == "no: 25 of the report's 200 epochs"
    smoke = Run(TrainConfig(model="resnet18", epochs=3, n_train=32, n_test=50),
                [{"epoch": e, "test_acc": 10.0} for e in (1, 2, 3)], "finished")
    assert analysis.comparability([smoke], report_epochs=25) == (
        "no: trained on 32 of 50,000 images; tested on 50 of 10,000 images; 3 of the report's 25 epochs")
    assert analysis.comparability([], report_epochs=25) == "no: no runs"


def test_comparison_table_marks_rows_that_do_not_compare():
    from cifarnb import experiments

    table = experiments.comparison_table({"short": [run([70.0] * 10, [65.0] * 10)],
                                          "long": [run([80.0] * 25, [75.0] * 25)]},
                                         measures={"ours": (experiments.PRIMARY, None)}, report_epochs=25)
    assert table.loc["long", analysis.COMPARABLE_HEADING] == "yes"
    assert table.loc["short", analysis.COMPARABLE_HEADING] == "no: 10 of the report's 25 epochs"


def timed(exact: list[float], seconds: float = 2.0, seed: int = 0) -> Run:
    made = run(exact, exact, seed=seed)
    for row in made.history:
        row["seconds"] = seconds
    return made


def test_accuracy_at_verdict_comes_out_true_and_false():
    """Claim (b) of report 1.4, "94.03% after 10 epochs", on made-up histories."""
    reaching = [timed([90.0] * 9 + [94.5], seed=s) for s in (0, 1)]
    found, verdict = analysis.accuracy_at_verdict(reaching, 94.03, report_epoch=10, full_data=True)
    assert found.startswith("94.50") and verdict.startswith("reproduced")
    short = [timed([90.0] * 9 + [85.0], seed=s) for s in (0, 1)]
    assert analysis.accuracy_at_verdict(short, 94.03, 10, full_data=True)[1].startswith("not reproduced")
    assert analysis.accuracy_at_verdict(reaching, 94.03, 10, full_data=False)[1] == analysis.SUBSET_NOT_TESTABLE
    assert analysis.accuracy_at_verdict(reaching[:1], 94.03, 20, full_data=True)[1].startswith("not testable")


def test_reached_by_verdict_comes_out_true_and_false():
    """Claim (a): "passes 93.10% by epoch 8"."""
    early = [timed([80.0] * 5 + [94.0] * 5)]
    assert analysis.reached_by_verdict(early, 93.10, 8, full_data=True)[1].startswith("reproduced")
    never = [timed([80.0] * 10)]
    found, verdict = analysis.reached_by_verdict(never, 93.10, 8, full_data=True)
    assert found.startswith("not reached in 10 epochs") and verdict.startswith("not reproduced")


def test_mean_time_to_counts_the_seeds_that_reach_the_target():
    both = [timed([90.0, 94.0, 95.0], seconds=2.0, seed=s) for s in (0, 1)]
    assert analysis.mean_time_to(both, 94.0) == "4.0"
    one = [timed([90.0, 94.0], seconds=3.0), timed([90.0, 91.0], seed=1)]
    assert analysis.mean_time_to(one, 94.0) == "6.0 (1 of 2 seeds)"
    assert analysis.mean_time_to(one, 99.0) == "not reached"
