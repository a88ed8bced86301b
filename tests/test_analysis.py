"""Comparisons with the report: the exact test rows first, their sampling error, verdicts that allow for it."""

import pytest

from cifarnb.study import reading, reference
from cifarnb.study.sections import batchnorm, fastresnet9, optimize_resnet18
from cifarnb.results import Run
from cifarnb.train import TrainConfig


def run(exact: list[float], full: list[float], official: bool = False, seed: int = 0) -> Run:
    history = [{"epoch": e + 1, "test_acc": f, "test_acc_exact1000": x} for e, (x, f) in enumerate(zip(exact, full))]
    return Run(TrainConfig(model="lenet5", seed=seed), history, "finished", meta={"data_official": official})


def test_the_exact_rows_are_primary_unless_the_data_is_official():
    assert reading.primary_column([run([90], [85])]) == "test_acc_exact1000"
    assert reading.primary_column([run([90], [85], official=True)]) == "test_acc"
    subset = Run(TrainConfig(model="lenet5", n_test=50), [{"epoch": 1, "test_acc": 40.0}], "finished")
    assert reading.primary_column([subset]) == "test_acc"


def test_sampling_error_of_1000_images():
    assert reading.sampling_error(94.0, 1000) == pytest.approx(0.751, abs=1e-3)
    assert reading.sampling_error(75.0, 1000) == pytest.approx(1.369, abs=1e-3)
    one = reading.reading([run([94.0], [90.0])])
    assert one.column == "test_acc_exact1000" and one.error == pytest.approx(0.751, abs=1e-3)
    two = reading.reading([run([93.0], [90.0]), run([95.0], [90.0], seed=1)])
    assert two.summary.mean == 94.0 and two.error > one.error  # the seeds' spread adds to the error


@pytest.mark.parametrize("ours, verdict", [(94.5, "reproduced"), (93.0, "consistent"), (91.0, "not reproduced")])
def test_accuracy_verdict_allows_two_standard_errors(ours, verdict):
    assert reading.accuracy_verdict(reading.reading([run([ours], [80.0])]), 94.03).startswith(verdict)


@pytest.mark.parametrize("ours, verdict", [(96.0, "above it"), (94.5, "matches"), (93.0, "matches"),
                                           (91.0, "below it")])
def test_agreement_verdict_is_two_sided(ours, verdict):
    # one seed on the exact rows near 94%: SE 0.75 points, so 2 SE ~ 1.5 points on either side of 94.03
    assert reading.agreement_verdict(reading.reading([run([ours], [80.0])]), 94.03).startswith(verdict)


def test_reached_by_verdict():
    runs = [run([80, 88, 92.6, 93.2], [70, 80, 85, 86])]
    found, verdict = reading.reached_by_verdict(runs, 93.10, report_epoch=3)
    assert found.startswith("epoch 4") and verdict.startswith("consistent")
    assert reading.reached_by_verdict(runs, 93.10, report_epoch=8)[1].startswith("not testable")
    subset = [Run(run.config.replace(n_train=500), run.history, "finished", meta=run.meta) for run in runs]
    assert reading.reached_by_verdict(subset, 93.10, report_epoch=3)[1].startswith("not testable")


def test_report_pattern_reads_early_and_late_medians():
    import pandas as pd

    rows = [("vgg_a", step, "beta", 1.0) for step in range(0, 100, 10)]
    rows += [("vgg_a_bn", step, "beta", 5.0 if step < 20 else 0.5) for step in range(0, 100, 10)]
    table = pd.DataFrame(rows, columns=["model", "step", "quantity", "value"])
    medians = batchnorm.early_and_late(table, "beta")
    assert medians.loc["vgg_a_bn", "early median"] == 5.0 and medians.loc["vgg_a_bn", "late median"] == 0.5
    assert batchnorm.report_pattern(table, "beta").endswith("as the report describes")
    row = batchnorm.pattern_summary(table, "beta")
    assert row["vgg_a_bn, early median"] == 5.0 and row["vgg_a, late median"] == 1.0 and "shape" in row
    flipped = table.assign(model=table["model"].map({"vgg_a": "vgg_a_bn", "vgg_a_bn": "vgg_a"}))
    assert batchnorm.report_pattern(flipped, "beta").endswith("not what the report describes")


def test_comparability_names_every_reason_a_row_differs_from_the_report():
    full = run([80.0] * 25, [80.0] * 25)
    assert reading.comparability([full], report_epochs=25) == "yes"
    assert reading.comparability([full], report_epochs=200) == "no: 25 of the report's 200 epochs"
    smoke = Run(TrainConfig(model="resnet18", epochs=3, n_train=32, n_test=50),
                [{"epoch": e, "test_acc": 10.0} for e in (1, 2, 3)], "finished")
    assert reading.comparability([smoke], report_epochs=25) == (
        "no: trained on 32 of 50,000 images; tested on 50 of 10,000 images; 3 of the report's 25 epochs")
    assert reading.comparability([], report_epochs=25) == "no: no runs"


def test_comparison_table_marks_rows_that_do_not_compare():

    table = reading.comparison_table({"short": [run([70.0] * 10, [65.0] * 10)],
                                          "long": [run([80.0] * 25, [75.0] * 25)]},
                                         measures={"ours": (reading.PRIMARY, None)}, report_epochs=25)
    assert table.loc["long", reading.COMPARABLE_HEADING] == "yes"
    assert table.loc["short", reading.COMPARABLE_HEADING] == "no: 10 of the report's 25 epochs"


def timed(exact: list[float], seconds: float = 2.0, seed: int = 0) -> Run:
    made = run(exact, exact, seed=seed)
    for row in made.history:
        row["seconds"] = seconds
    return made


def test_accuracy_at_verdict_comes_out_true_and_false():
    """Claim (b) of report 1.4, "94.03% after 10 epochs", on made-up histories."""
    reaching = [timed([90.0] * 9 + [94.5], seed=s) for s in (0, 1)]
    found, verdict = reading.accuracy_at_verdict(reaching, 94.03, report_epoch=10)
    assert found.startswith("94.50") and verdict.startswith("reproduced")
    short = [timed([90.0] * 9 + [85.0], seed=s) for s in (0, 1)]
    assert reading.accuracy_at_verdict(short, 94.03, 10)[1].startswith("not reproduced")
    subset = [Run(run.config.replace(n_test=500), run.history, "finished", meta=run.meta) for run in reaching]
    assert reading.accuracy_at_verdict(subset, 94.03, 10)[1] == reading.SUBSET_NOT_TESTABLE
    assert reading.accuracy_at_verdict(reaching[:1], 94.03, 20)[1].startswith("not testable")


def test_reached_by_verdict_comes_out_true_and_false():
    """Claim (a): "passes 93.10% by epoch 8"."""
    early = [timed([80.0] * 5 + [94.0] * 5)]
    assert reading.reached_by_verdict(early, 93.10, 8)[1].startswith("reproduced")
    never = [timed([80.0] * 10)]
    found, verdict = reading.reached_by_verdict(never, 93.10, 8)
    assert found.startswith("not reached in 10 epochs") and verdict.startswith("not reproduced")


def test_mean_time_to_counts_the_seeds_that_reach_the_target():
    both = [timed([90.0, 94.0, 95.0], seconds=2.0, seed=s) for s in (0, 1)]
    assert reading.mean_time_to(both, 94.0) == "4.0"
    one = [timed([90.0, 94.0], seconds=3.0), timed([90.0, 91.0], seed=1)]
    assert reading.mean_time_to(one, 94.0) == "6.0 (1 of 2 seeds)"
    assert reading.mean_time_to(one, 99.0) == "not reached"


# Section 3: notebook 03's tables and claims on made-up trick ladders


def ladder(exact_by_step: dict[str, list[float]], seconds: float = 2.0, **config) -> dict[str, list[Run]]:
    """One recipe's trick ladder, one run per step, ``config`` applied to every run."""
    steps = {}
    for label, exact in exact_by_step.items():
        made = timed(exact, seconds)
        steps[label] = [Run(made.config.replace(**config), made.history, "finished",
                            meta={"device": "cpu"})] if config else [made]
    return steps


STEPS = ("ResNet9", "+ pool before BN", "+ flip TTA (= FastResNet9)")


def test_tables_8_9_take_the_ladders_first_and_last_steps():
    from cifarnb.study import profiles

    quick = profiles.get("quick")
    rows = fastresnet9.tables_8_9_configs(quick)
    report, plain = fastresnet9.trick_ladder(quick, "report"), fastresnet9.trick_ladder(quick, "plain")
    assert list(rows) == ["ResNet9", "FastResNet9", fastresnet9.PLAIN_FASTRESNET9, "ResNet18"]
    assert rows["ResNet9"] == plain["ResNet9"] and rows["FastResNet9"] == report["+ flip TTA (= FastResNet9)"]
    assert rows[fastresnet9.PLAIN_FASTRESNET9] == plain["+ flip TTA (= FastResNet9)"]
    assert rows["ResNet18"].bn_shards == 4 and fastresnet9.tables_8_9_configs(quick, earlier=True)[
        "ResNet18"].bn_shards is None


def test_claims_come_out_true_false_and_untestable():
    from cifarnb.study import reference

    claims = reference.fastresnet9_claims()
    assert [(c.kind, c.accuracy, c.epoch) for c in claims] == [("passes", 93.10, 8), ("reaches", 94.03, 10)]
    # Bag-of-tricks FastResNet9 at 94.5% from epoch 6 on: both claims hold. Plain: stuck at 85%: both fail.
    good = ladder({"ResNet9": [80.0] * 10, STEPS[-1]: [90.0] * 5 + [94.5] * 5})
    bad = ladder({"ResNet9": [80.0] * 10, STEPS[-1]: [85.0] * 10})
    table = fastresnet9.claims_table({"report": good, "plain": bad}, claims)
    verdicts = table["verdict"].tolist()
    assert [v.split(" ")[0] for v in verdicts] == ["reproduced", "reproduced", "not", "not"]
    assert verdicts[2].startswith("not reproduced") and verdicts[3].startswith("not reproduced")
    recipe = fastresnet9.LADDER_RECIPE_NAMES["report"]
    assert table.loc[(recipe, "(a) passes the 200-epoch ResNet9 accuracy (93.10%) after 8 epochs"), "ours"] \
        .startswith("epoch 6")
    # A subset, or a run shorter than the claim's epoch, cannot test it.
    subset = ladder({STEPS[-1]: [94.5] * 10}, n_train=500)
    short = ladder({STEPS[-1]: [94.5] * 5})
    untestable = fastresnet9.claims_table({"report": subset, "plain": short}, claims)["verdict"].tolist()
    assert untestable[:2] == [reading.SUBSET_NOT_TESTABLE] * 2
    assert all(v.startswith("not testable: ") for v in untestable[2:])


def test_reference_claim_without_numbers_is_one_clear_error(monkeypatch):
    from cifarnb.study import reference

    monkeypatch.setattr(reference, "raw", lambda: {"resnet9": {"claims": ["FastResNet9 is fast"]}})
    with pytest.raises(ValueError, match="'FastResNet9 is fast' does not name"):
        reference.fastresnet9_claims()


def test_resnet9_table_reads_both_epochs_and_marks_comparability():
    from cifarnb.study import reference

    results = {"FastResNet9": [timed([90.0] * 9 + [94.0], seconds=3.0)],
               fastresnet9.PLAIN_FASTRESNET9: [timed([80.0] * 10, seconds=5.0)]}
    configs = {label: runs[0].config for label, runs in results.items()}
    configs["ResNet9"] = TrainConfig(model="resnet9")  # a row the store holds no run of
    table = fastresnet9.resnet9_table(results, configs, reference.resnet9().set_index("label"), early_epoch=5,
                                      final_epoch=10)
    missing = table.loc["ResNet9"]
    assert missing["seeds"] == 0 and missing["ours: s/epoch"] == reading.NOT_RUN
    assert missing[f"{reading.COMPARABLE_HEADING}, epoch 10"] == "no: no runs"
    assert missing["ours: params (M)"] == pytest.approx(6.57, abs=0.01)
    fast = table.loc["FastResNet9"]
    assert fast["report: test acc, epoch 10 (%)"] == 94.03 and fast["report: test acc, epoch 200 (%)"] == 95.77
    assert fast["ours: test acc, exact rows 0-999, epoch 5 (%)"].startswith("90.00")
    assert fast["ours: test acc, exact rows 0-999, epoch 10 (%)"].startswith("94.00")
    assert fast["ours: s/epoch"] == 3.0 and fast["ours: time to 94% (s)"] == "30.0"
    assert fast["ours: params (M)"] == pytest.approx(0.06, abs=0.01)  # the made-up runs' model is LeNet5
    assert fast[f"{reading.COMPARABLE_HEADING}, epoch 10"] == "yes"
    assert fast[f"{reading.COMPARABLE_HEADING}, epoch 200"] == "no: 10 of the report's 200 epochs"
    plain = table.loc[fastresnet9.PLAIN_FASTRESNET9]  # reads the report's FastResNet9 row
    assert plain["report: s/epoch"] == 7.91 and plain["ours: time to 94% (s)"] == "not reached"


def test_devices_and_parameters():
    runs = [Run(TrainConfig(model="lenet5"), [], "finished", meta={"device": d}) for d in ("cuda", "cpu", "cpu")]
    assert reading.devices(runs) == "cpu, cuda"
    assert reading.devices([Run(TrainConfig(model="lenet5"), [], "finished")]) == "?"
    assert fastresnet9.parameters_millions(TrainConfig(model="resnet9")) == pytest.approx(6.57, abs=0.01)


def test_trick_ladder_tables_mark_steps_that_do_not_compare():
    report = ladder(dict(zip(STEPS, ([80.0] * 10, [85.0] * 10, [90.0] * 10))))
    smoke = ladder(dict(zip(STEPS, ([10.0] * 3, [11.0] * 3, [12.0] * 3))), n_train=32, n_test=None)
    table = fastresnet9.trick_ladder_tables({"report": report, "plain": smoke}, {"ResNet9": "the base"}, epoch=None)
    assert table.index.names == ["recipe", "step"] and len(table) == 6
    report_name, plain_name = fastresnet9.LADDER_RECIPE_NAMES["report"], fastresnet9.LADDER_RECIPE_NAMES["plain"]
    assert table.loc[(report_name, "ResNet9"), "report says"] == "the base"
    assert table.loc[(report_name, "+ pool before BN"), "Δ from the step above (pp)"].startswith("+5.00")
    assert (table.loc[report_name, reading.COMPARABLE_HEADING] == "yes").all()
    assert table.loc[(plain_name, STEPS[-1]), reading.COMPARABLE_HEADING] == (
        "no: trained on 32 of 50,000 images; 3 of the report's 10 epochs")


# Section 5: notebook 05's plateau exit and second-half summaries on made-up landscape tables


def landscape_rows(model: str, losses: list[float], lr: float = 0.1, grad: float = 1.0, beta: float = 2.0):
    """A report-method landscape table for one model and lr, one window per step 1, 2, ..."""
    rows = []
    for step, loss in enumerate(losses, start=1):
        rows += [(model, lr, step, "loss", loss), (model, lr, step, "train_loss", loss),
                 (model, lr, step, "grad_distance", grad * step), (model, lr, step, "beta", beta)]
    return rows


def test_plateau_exit_at_a_known_step():
    import pandas as pd

    columns = ["model", "lr", "step", "quantity", "value"]
    stuck = [2.30] * 4
    leaving = [2.30, 2.25, 2.19, 1.5]  # 2.19 < ln 10 - 0.1 = 2.2026: leaves at step 3, not at 2.25
    report = pd.DataFrame(landscape_rows("vgg_a", stuck) + landscape_rows("vgg_a_bn", leaving)
                          + landscape_rows("vgg_a", leaving, lr=0.05) + landscape_rows("vgg_a_bn", leaving, lr=0.05),
                          columns=columns)
    assert batchnorm.plateau_exit(report[(report["model"] == "vgg_a_bn") & (report["lr"] == 0.1)], "loss") == "step 3"
    assert batchnorm.plateau_exit(report[(report["model"] == "vgg_a") & (report["lr"] == 0.1)], "loss") \
        == "not by step 4"
    assert batchnorm.plateau_exit(report.iloc[0:0], "loss") == "no steps"
    paper = report[report["lr"] == 0.1]
    table = batchnorm.plateau_table(report, paper)
    assert list(table.columns) == ["report's method, lr 0.05", "report's method, lr 0.1", "paper's method, lr 0.1"]
    assert table.loc["vgg_a", "report's method, lr 0.1"] == "not by step 4"
    assert table.loc["vgg_a", "report's method, lr 0.05"] == "step 3"
    assert table.loc["vgg_a_bn", "paper's method, lr 0.1"] == "step 3"


def test_second_half_summary_means_and_band_width():
    import pandas as pd

    columns = ["model", "lr", "step", "quantity", "value"]
    # Steps 1-4: the second half is steps 3-4. vgg_a's losses at those steps: 2.0, 1.0 (lr 0.1) and 3.0, 2.0
    # (lr 0.05): mean 2.0, band widths 1.0 and 1.0; gradient distances 3, 4 at both lrs: median 3.5.
    rows = (landscape_rows("vgg_a", [9.0, 9.0, 2.0, 1.0]) + landscape_rows("vgg_a", [9.0, 9.0, 3.0, 2.0], lr=0.05)
            + landscape_rows("vgg_a_bn", [9.0, 9.0, 0.5, 0.5], beta=4.0)
            + landscape_rows("vgg_a_bn", [9.0, 9.0, 0.5, 0.5], lr=0.05, beta=4.0))
    summary = batchnorm.second_half_summary(pd.DataFrame(rows, columns=columns), "report's", "lr")
    assert summary.index.names == ["method", "model"]
    plain, bn = summary.loc[("report's", "vgg_a")], summary.loc[("report's", "vgg_a_bn")]
    assert plain["steps"] == "3-4" and plain["mean loss"] == "2.000" and plain["mean loss band width"] == "1.000"
    assert plain["median gradient distance"] == "3.5" and plain["median β"] == "2"
    assert bn["mean loss"] == "0.500" and bn["mean loss band width"] == "0.000" and bn["median β"] == "4"


def test_landscape_comparability_names_what_differs_from_table_11():
    import dataclasses

    from cifarnb.study import profiles

    report = batchnorm.landscape_config(profiles.get("full"))
    assert batchnorm.landscape_comparability(report) == "yes"
    assert batchnorm.landscape_comparability(dataclasses.replace(report, epochs=25)) == "no: epochs 25 (report: 20)"
    smoke = dataclasses.replace(report, n_train=256, epochs=2, batch_size=16, gap=2, learning_rates=(0.05, 0.1, 0.15))
    assert batchnorm.landscape_comparability(smoke) == (
        "no: trained on 256 of 50,000 images; epochs 2 (report: 20); batch 16 (report: 128); "
        "gap 2 (report: 30); learning rates 0.05, 0.1, 0.15 (report: 0.05, 0.075, 0.1, 0.125, 0.15)")


def test_report_choice_is_the_ablation_baseline():
    assert [optimize_resnet18.report_choice(g) for g in ("loss", "weight_decay", "activation", "optimizer", "scheduler")] == \
        ["CrossEntropyLoss", "5e-4", "ReLU", "SGD", "ReduceLROnPlateau"]


def test_recipe_choice_table_reads_the_choice_against_our_best_mean():
    results = {"loss": {"CrossEntropyLoss": [run([80.0], [80.0], seed=0), run([82.0], [82.0], seed=1)],
                        "MSELoss": [run([85.0], [85.0], seed=0), run([83.0], [83.0], seed=1)]},
               "activation": {"GELU": [run([70.0], [70.0])]}}
    table = optimize_resnet18.recipe_choice_table(results)
    assert table.loc["loss", "report's choice"] == "CrossEntropyLoss"
    assert table.loc["loss", "our best (mean test acc)"].startswith("MSELoss (84.00")
    assert table.loc["loss", "our choice's test acc"].startswith("81.00")
    assert table.loc["activation", "our choice's test acc"] == reading.NOT_RUN  # ReLU's runs are not there
    best_loss = max(reference.raw()["ablations_resnet18"]["loss"].items(), key=lambda item: item[1][1])[0]
    assert table.loc["loss", "report's best"] == best_loss
