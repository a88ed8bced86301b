"""Notebook 02, report section 1.3 (Tables 6-7, Fig 14): thirteen architectures at one common recipe; their
parameters, accuracy after 25 and 200 epochs, seconds per epoch, and the report's two claims about them.

``report`` is always ``reference.model_zoo()`` indexed by model (our names, with the report's spelling in
"label"); ``results`` maps a row label to its runs over seeds.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd

from ...plots.curves import plot_curve, scatter_labelled
from ...results import ResultStore, Run, SeedSummary, summarize
from ...train import TrainConfig
from .. import recipes
from ..profiles import Profile
from ..profiles import get as get_profile
from ..reading import (COMPARABLE_HEADING, NOT_RUN, PRECISION_HEADING, TOLERANCE, agreement_verdict, comparability,
                       devices, measure, precisions, reading, runs_matching, seconds_per_epoch, seconds_summary,
                       split_table, stored_grid)
from ..settings import EARLY_ZOO_EPOCHS, PLATEAU_READINGS, REPORT_EPOCHS
from ..tasks import RunTask, run_tasks

NAME = "model_zoo"
NOTEBOOK = "02_model_zoo"
TITLE = "The model zoo: thirteen architectures, accuracy at 25 and 200 epochs, seconds per epoch (report 1.3, Table 7)"
ALIASES = ("zoo",)
EPOCHS_FIELD = "zoo_epochs"
PARAMETERS = ("backend", "ray_address", "gpus_per_run", "epochs", "models", "n_train", "n_test")


def zoo_config(profile: Profile, model: str) -> TrainConfig:
    """Report Table 7: one model at the common settings of Table 6, built as the report's code builds it
    (``settings.ZOO_MODEL_OPTIONS``)."""
    return recipes.plain(model, **profile.sizes(profile.zoo_epochs))


def tasks(profile: Profile, seed: int, first_seed: bool = True) -> list[RunTask]:
    """Every zoo model of the profile at ``seed``."""
    return run_tasks(NAME, {model: zoo_config(profile, model) for model in profile.zoo_models}, seed)


def zoo_plateau_readings(profile: Profile, model: str) -> dict[str, TrainConfig]:
    """``model``'s zoo run under each reading of what the plateau scheduler watches (``settings.PLATEAU_READINGS``)."""
    return {reading: zoo_config(profile, model).replace(plateau_metric=metric)
            for reading, metric in PLATEAU_READINGS.items()}


VALUE_CLAIM_MODELS = ("resnet34", "wideresnet28x10")  # "the best value" against the best model (report 1.3)
EARLY_CLAIM_MODEL = "densenet121"  # "converges fastest in the first 25 epochs"
EARLY_THRESHOLD = 80.0  # the early table's "first epoch at 80%": a measure of early progress not tied to one epoch


def first_epoch_reaching(runs: list[Run], accuracy: float, column: str = "test_acc") -> tuple[SeedSummary, int]:
    """Mean ± std over seeds of the first epoch whose ``column`` reaches ``accuracy`` (runs that never do: NaN),
    and how many runs reach it."""
    epochs = [run.first_epoch_reaching(accuracy, column) for run in runs]
    return summarize(math.nan if e is None else float(e) for e in epochs), sum(e is not None for e in epochs)


def zoo_label(model: str, report: pd.DataFrame) -> str:
    """The report's spelling of ``model`` (e.g. "ResNeXt29_2x32d"), or the model's own name outside the report."""
    return str(report.loc[model, "label"]) if model in report.index else model


def zoo_accuracy_heading(full_test_set: bool) -> str:
    """What the zoo's accuracy columns read: the exact rows 0-999 of the full test set, else the test subset."""
    return "exact rows 0-999" if full_test_set else "test acc"


def zoo_comparability(runs: list[Run]) -> str:
    """:func:`comparability` for Table 7's two report columns (epochs 25 and 200) in one cell."""
    early = comparability(runs, EARLY_ZOO_EPOCHS)
    final = comparability(runs, REPORT_EPOCHS)
    if early != "yes" or final == "yes":
        return early  # whatever keeps a run from the 25-epoch column keeps it from the 200-epoch one too
    return f"@{EARLY_ZOO_EPOCHS} yes; @{REPORT_EPOCHS} {final}"


def parameter_table(params: dict[str, float], report: pd.DataFrame) -> pd.DataFrame:
    """Our parameter counts (millions, by model) beside the report's, and whether they agree to 0.01 M."""
    table = pd.DataFrame({
        "report params (M)": report["report_params_millions"].reindex(list(params)),
        "ours params (M)": pd.Series(params).round(2),
    })
    matches = (table["report params (M)"] - table["ours params (M)"]).abs().lt(0.005)
    table["match"] = matches.map({True: "yes", False: "no"}).where(table["report params (M)"].notna(),
                                                                  "(not in report)")
    table.index = [zoo_label(model, report) for model in table.index]
    table.index.name = "model"
    return table


def run_overview(results: dict[str, list[Run]]) -> pd.DataFrame:
    """Where and how far each run was trained: its device (seconds per epoch depend on it), epochs and status."""
    return pd.DataFrame([{"model": label, "seed": run.config.seed, "device": run.meta.get("device", "unknown"),
                          "epochs stored": len(run.history), "status": run.status}
                         for label, runs in results.items() for run in runs]).set_index(["model", "seed"])


def zoo_row(runs: list[Run], report_row: pd.Series | None, params_millions: float, epochs: int,
            full_test_set: bool) -> dict[str, object]:
    """One row of Table 7: parameters, accuracy at epoch ``min(25, epochs)`` and at the last, seconds per epoch,
    each beside the report's, and whether the runs compare with the report. ``runs`` empty: "not run"."""
    early = min(EARLY_ZOO_EPOCHS, epochs)
    primary = zoo_accuracy_heading(full_test_set)

    def report_value(column: str) -> float:
        return report_row[column] if report_row is not None else math.nan

    def ours(compute) -> str:
        return str(compute()) if runs else NOT_RUN

    row = {
        "report params (M)": report_value("report_params_millions"),
        "ours params (M)": round(params_millions, 2),
        f"report acc @{EARLY_ZOO_EPOCHS} (%)": report_value("report_test_acc_25_epochs"),
        f"ours {primary} @{early} (%)": ours(lambda: reading(runs, early)),
        f"report acc @{REPORT_EPOCHS} (%)": report_value("report_test_acc_200_epochs"),
        f"ours {primary} @{epochs} = final (%)": ours(lambda: reading(runs)),
    }
    if full_test_set:  # beside it, all 10,000 images (JPEG-affected)
        if early != epochs:
            row[f"ours all 10,000 (JPEG-affected) @{early} (%)"] = ours(lambda: measure(runs, "test_acc", early))
        row[f"ours all 10,000 (JPEG-affected) @{epochs} = final (%)"] = ours(lambda: measure(runs, "test_acc"))
    row["report s/epoch"] = report_value("report_seconds_per_epoch")
    row["ours s/epoch"] = ours(lambda: seconds_summary(runs))
    row["ours: device"] = devices(runs) if runs else NOT_RUN  # seconds per epoch depend on it ...
    row[PRECISION_HEADING] = precisions(runs) if runs else NOT_RUN  # ... and on this
    row[COMPARABLE_HEADING] = zoo_comparability(runs) if runs else NOT_RUN
    return row


def zoo_table(results: dict[str, list[Run]], report: pd.DataFrame, params: dict[str, float], epochs: int,
              full_test_set: bool) -> pd.DataFrame:
    """Table 7: one :func:`zoo_row` per model of ``params`` (model -> millions of parameters, in table order),
    labelled as the report spells it; ``results`` holds the trained ones under those labels."""
    rows = {}
    for model, millions in params.items():
        label = zoo_label(model, report)
        report_row = report.loc[model] if model in report.index else None
        rows[label] = zoo_row(results.get(label, []), report_row, millions, epochs, full_test_set)
    return pd.DataFrame(rows).T


def zoo_tables(results: dict[str, list[Run]], report: pd.DataFrame, params: dict[str, float], epochs: int,
               full_test_set: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 7 (:func:`zoo_table`) as two that a page holds: the accuracies beside the report's with whether each
    row compares, and the details (parameters, all 10,000 images, seconds per epoch and their device)."""
    table = zoo_table(results, report, params, epochs, full_test_set)
    early, primary = min(EARLY_ZOO_EPOCHS, epochs), zoo_accuracy_heading(full_test_set)
    comparison = [f"report acc @{EARLY_ZOO_EPOCHS} (%)", f"ours {primary} @{early} (%)",
                  f"report acc @{REPORT_EPOCHS} (%)", f"ours {primary} @{epochs} = final (%)", COMPARABLE_HEADING]
    return split_table(table, comparison)


def final_accuracy(runs: list[Run]) -> float:
    """Mean final test accuracy over seeds (all test images): what the zoo's best model and frontier rank by."""
    return measure(runs).mean


def best_model(results: dict[str, list[Run]]) -> str | None:
    """The label with the highest mean final test accuracy among those with runs (a tie goes to the first in
    ``results``' order); None when no label has any."""
    accuracies = {label: final_accuracy(runs) for label, runs in results.items() if runs}
    if not accuracies:
        return None
    return max(accuracies, key=lambda label: -math.inf if math.isnan(accuracies[label]) else accuracies[label])


def best_model_line(results: dict[str, list[Run]], profile_name: str, epochs: int, full_test_set: bool) -> str:
    """The sentence naming the best model trained, its accuracy read as Table 7 reads it (:func:`zoo_row`'s final
    column: the same reading of the same column, with its error), beside the report's best; or that none is."""
    best = best_model(results)
    if best is None:
        return f"No zoo model is stored at profile {profile_name}: the best model is {NOT_RUN}."
    return (f"Best model trained at profile {profile_name}: {best}, {zoo_accuracy_heading(full_test_set)} "
            f"{reading(results[best])} % after {epochs} epochs, as in Table 7 (the report's best: "
            "GeResNeXt29_8x64d, 96.88 %).")


def cost_points(results: dict[str, list[Run]], params: dict[str, float]) -> pd.DataFrame:
    """One point per trained model for the accuracy-vs-cost figure: its parameters (millions, from ``params`` by
    model), final accuracy on the primary column (mean and std over seeds) and seconds per epoch; a model not
    run has no point."""
    rows = []
    for label, runs in results.items():
        if not runs:
            continue
        final = reading(runs).summary
        rows.append({"label": label, "model": runs[0].config.model, "params": params[runs[0].config.model],
                     "acc": final.mean, "acc_std": final.std, "seconds": seconds_per_epoch(runs)})
    return pd.DataFrame(rows, columns=["label", "model", "params", "acc", "acc_std", "seconds"])


def frontier(accuracy: dict[str, float], seconds: dict[str, float]) -> dict[str, str | None]:
    """For each label: None when it is on the value frontier (no other is both more accurate and faster), else
    the most accurate label that is."""
    dominating = {}
    for label in accuracy:
        better = [other for other in accuracy if accuracy[other] > accuracy[label] and seconds[other] < seconds[label]]
        dominating[label] = max(better, key=accuracy.__getitem__) if better else None
    return dominating


def value_table(results: dict[str, list[Run]], report: pd.DataFrame, models: list[str], epochs: int) -> pd.DataFrame:
    """The report's "best value" measure for every model of ``models``: points of accuracy given up against the
    best model and seconds per epoch as a fraction of the best's, the report's (at 200 epochs) and ours (at our
    last epoch), and whether ours sits on the value frontier. Models not trained show "not run"."""
    report_accuracy = report["report_test_acc_200_epochs"]
    report_best = report_accuracy.idxmax()
    accuracy = {label: final_accuracy(runs) for label, runs in results.items()}
    seconds = {label: seconds_per_epoch(runs) for label, runs in results.items()}
    best = best_model(results) if results else None
    table = pd.DataFrame({
        f"report: points below best @{REPORT_EPOCHS}": report_accuracy.max() - report_accuracy,
        "report: time / best's": report["report_seconds_per_epoch"] / report.loc[report_best, "report_seconds_per_epoch"],
    }).reindex(models).rename(index=lambda model: zoo_label(model, report))
    table[f"ours: points below best @{epochs}"] = pd.Series({label: accuracy[best] - a for label, a in accuracy.items()},
                                                            dtype=float)
    table["ours: time / best's"] = pd.Series({label: s / seconds[best] for label, s in seconds.items()}, dtype=float)
    table["ours: on the frontier"] = pd.Series({label: "yes" if dominated is None else "no"
                                                for label, dominated in frontier(accuracy, seconds).items()},
                                               dtype=object)
    table.index.name = f"model (report's best: {zoo_label(report_best, report)}; ours: {best})"
    table = table.round(3).astype(object)
    ours = [column for column in table.columns if column.startswith("ours")]
    table[ours] = table[ours].where(table[ours].notna(), NOT_RUN)
    return table


def _not_comparable(results: dict[str, list[Run]], report_epochs: int) -> str | None:
    """The first row of ``results`` whose runs do not compare with a report column of ``report_epochs`` epochs,
    and why; None when all do."""
    for label, runs in results.items():
        verdict = comparability(runs, report_epochs)
        if verdict != "yes":
            return f"{label} is not comparable ({verdict.removeprefix('no: ')})"
    return None


def best_value_verdict(results: dict[str, list[Run]], report: pd.DataFrame) -> tuple[str, str]:
    """The report's claim "ResNet34 and WideResNet28x10 are the best value": it holds when both sit on our value
    :func:`frontier` (no other trained model both more accurate and faster), read after the report's 200 epochs
    on all the data. Returns (what we found, the verdict)."""
    named = [zoo_label(model, report) for model in VALUE_CLAIM_MODELS]
    missing = [label for label in named if not results.get(label)]
    if missing:
        return "n/a", f"not testable: {' and '.join(missing)} not run"
    if len(results) < len(named) + 1:
        return "n/a", "not testable: no other model to compare with"
    reason = _not_comparable(results, REPORT_EPOCHS)
    if reason:
        return "n/a", f"not testable: {reason}"
    accuracy = {label: final_accuracy(runs) for label, runs in results.items()}
    seconds = {label: seconds_per_epoch(runs) for label, runs in results.items()}
    dominating = frontier(accuracy, seconds)
    found = "; ".join(f"{label}: {'on the frontier' if dominating[label] is None else 'behind ' + dominating[label]}"
                      for label in named)
    beaten = [label for label in named if dominating[label] is not None]
    if not beaten:
        return found, f"holds: both on the frontier of {len(results)} models"
    return found, "does not hold: " + "; ".join(
        f"{dominating[label]} is more accurate and faster than {label}" for label in beaten)


def fastest_early_verdict(results: dict[str, list[Run]], report: pd.DataFrame) -> tuple[str, str]:
    """The report's claim "DenseNet121 converges fastest in the first 25 epochs", read as "DenseNet121 has the
    highest accuracy (primary column) at epoch 25": it holds when DenseNet121 leads the runner-up by more than
    :data:`TOLERANCE` standard errors, does not hold when another model leads it by that much, and is undecided
    in between. Returns (what we found, the verdict)."""
    claimed = zoo_label(EARLY_CLAIM_MODEL, report)
    if not results.get(claimed):
        return "n/a", f"not testable: {claimed} not run"
    if len(results) < 2:
        return "n/a", "not testable: no other model to compare with"
    reason = _not_comparable(results, EARLY_ZOO_EPOCHS)
    if reason:
        return "n/a", f"not testable: {reason}"
    readings = {label: reading(runs, EARLY_ZOO_EPOCHS) for label, runs in results.items()}
    ranked = sorted(readings, key=lambda label: readings[label].summary.mean, reverse=True)
    leader, rival = (claimed, ranked[1]) if ranked[0] == claimed else (ranked[0], claimed)
    gap = readings[leader].summary.mean - readings[rival].summary.mean
    # Both read on the same test rows: as in ladder_table, the larger of the two errors is the conservative bar.
    bar = TOLERANCE * max(readings[leader].error, readings[rival].error)
    found = f"@{EARLY_ZOO_EPOCHS}: {leader} {readings[leader]}, {rival} {readings[rival]}"
    lead = f"{leader} leads {rival} by {gap:+.2f} pp"
    if gap <= bar:
        return found, f"undecided: {lead}, within {TOLERANCE:g} SE ({bar:.2f} pp)"
    return found, f"{'holds' if leader == claimed else 'does not hold'}: {lead}, beyond {TOLERANCE:g} SE ({bar:.2f} pp)"


def zoo_claims(results: dict[str, list[Run]], report: pd.DataFrame) -> pd.DataFrame:
    """The report's two claims about the zoo, each with what we found and the verdict (see
    :func:`best_value_verdict` and :func:`fastest_early_verdict`)."""
    final, early = report["report_test_acc_200_epochs"], report["report_test_acc_25_epochs"]
    seconds = report["report_seconds_per_epoch"]
    best = final.idxmax()
    value_said = "; ".join(f"{zoo_label(model, report)}: {final[best] - final[model]:.2f} points below "
                           f"{zoo_label(best, report)} at {seconds[model] / seconds[best]:.2f} of its time"
                           for model in VALUE_CLAIM_MODELS)
    first, second = early.sort_values(ascending=False).index[:2]
    early_said = (f"@{EARLY_ZOO_EPOCHS}: {zoo_label(first, report)} {early[first]:.2f}%, "
                  f"then {zoo_label(second, report)} {early[second]:.2f}%")
    claims = {
        "ResNet34 and WideResNet28x10 are the best value": (value_said, best_value_verdict(results, report)),
        "DenseNet121 converges fastest in the first 25 epochs": (early_said, fastest_early_verdict(results, report)),
    }
    return pd.DataFrame([{"claim": claim, "report": said, "ours": found, "verdict": verdict}
                         for claim, (said, (found, verdict)) in claims.items()]).set_index("claim")


def early_table(results: dict[str, list[Run]], report: pd.DataFrame, epochs: int, full_test_set: bool) -> pd.DataFrame:
    """Early progress per trained model, sorted by accuracy at epoch ``min(25, epochs)``: that accuracy beside the
    report's 25-epoch one, the mean accuracy over the epochs up to it (area under the curve) and the first epoch
    at :data:`EARLY_THRESHOLD` %, measures that do not hang on one epoch."""
    early = min(EARLY_ZOO_EPOCHS, epochs)
    primary = zoo_accuracy_heading(full_test_set)
    rows = []
    ours = (f"ours {primary} @{early} (%)", f"ours mean acc, epochs 1-{early} (%)",
            f"ours first epoch >= {EARLY_THRESHOLD:.0f}%", COMPARABLE_HEADING)
    for label, runs in results.items():
        report_acc = report["report_test_acc_25_epochs"].get(runs[0].config.model if runs else label.lower(), math.nan)
        if not runs:
            rows.append({"model": label, f"report acc @{EARLY_ZOO_EPOCHS} (%)": report_acc,
                         **dict.fromkeys(ours, NOT_RUN), "_sort": -math.inf})
            continue
        reaching, count = first_epoch_reaching(runs, EARLY_THRESHOLD)
        at_early = reading(runs, early)
        rows.append({
            "model": label,
            f"report acc @{EARLY_ZOO_EPOCHS} (%)": report_acc,
            f"ours {primary} @{early} (%)": str(at_early),
            f"ours mean acc, epochs 1-{early} (%)": str(summarize(
                sum(run.at_epoch(e) for e in range(1, early + 1)) / early for run in runs)),
            f"ours first epoch >= {EARLY_THRESHOLD:.0f}%": f"{reaching} ({count}/{len(runs)} seeds)" if count else "never",
            COMPARABLE_HEADING: comparability(runs, EARLY_ZOO_EPOCHS),
            "_sort": at_early.summary.mean,
        })
    table = pd.DataFrame(rows).sort_values("_sort", ascending=False, kind="stable").drop(columns="_sort")
    table = table.set_index("model")
    table.index.name = f"model (sorted by our {primary} @{early})"
    return table


def plateau_reading_table(results: dict[str, dict[str, list[Run]]], report: pd.DataFrame) -> pd.DataFrame:
    """Table 7's 25-epoch column under each reading of the plateau scheduler (model -> reading -> runs): the
    report's accuracy, ours at epoch 25 (a shorter run: its last) with its error, the learning rate then, whether
    it compares, and whether it matches the report on either side: the seeds' mean (:func:`agreement_verdict`)
    and each run alone (:func:`runs_matching`). Readings without stored runs are left out."""
    rows = []
    for model, by_reading in results.items():
        for name, runs in by_reading.items():
            if not runs:
                continue
            epoch = min(EARLY_ZOO_EPOCHS, *(len(run.history) for run in runs))  # a shorter run: its last epoch
            theirs = report.loc[model, "report_test_acc_25_epochs"] if model in report.index else math.nan
            ours, comparable = reading(runs, epoch), comparability(runs, EARLY_ZOO_EPOCHS)
            if comparable == "yes" and not math.isnan(theirs):
                mean_verdict, single_runs = agreement_verdict(ours, theirs), runs_matching(runs, theirs, epoch)
            else:
                mean_verdict, single_runs = "not testable: not comparable", "n/a"
            rows.append({"model": zoo_label(model, report), "plateau steps on": name, "seeds": len(runs),
                         f"report acc @{EARLY_ZOO_EPOCHS} (%)": theirs, "epoch read": epoch, "ours (%)": str(ours),
                         "lr in that epoch": ", ".join(f"{run.at_epoch(epoch, 'lr'):g}" for run in runs),
                         COMPARABLE_HEADING: comparable, "against the report (mean)": mean_verdict,
                         "single runs matching it": single_runs})
    return pd.DataFrame(rows).set_index(["model", "plateau steps on"]) if rows else pd.DataFrame()


def rank_correlation(first: pd.Series, second: pd.Series) -> float:
    """Spearman's rank correlation of two series over their common, non-missing labels (NaN under 3)."""
    both = pd.DataFrame({"first": first, "second": second}).dropna()
    if len(both) < 3:
        return math.nan
    return float(both["first"].rank().corr(both["second"].rank()))


def ranking_agreement(results: dict[str, list[Run]], report: pd.DataFrame, epochs: int) -> pd.DataFrame:
    """Does the ranking at epoch 25 predict the ranking at the last epoch? Spearman's rank correlation between the
    two, and the first model at each, for the report's thirteen models (epochs 25 and 200) and for ours
    (primary column, epoch ``min(25, epochs)`` and the last; not testable when the runs stop at epoch 25)."""
    report_early = report.set_index("label")["report_test_acc_25_epochs"]
    report_final = report.set_index("label")["report_test_acc_200_epochs"]
    rows = [_ranking_row("report", report_early, report_final, EARLY_ZOO_EPOCHS, REPORT_EPOCHS)]
    early = min(EARLY_ZOO_EPOCHS, epochs)
    if epochs <= early:
        rows.append({"who": "ours", "models": len(results),
                     "rank correlation, early vs final (Spearman)": f"not testable: our runs stop at epoch {epochs}",
                     "first early": "n/a", "first at the end": "n/a"})
    else:
        ours_early = pd.Series({label: reading(runs, early).summary.mean for label, runs in results.items()}, dtype=float)
        ours_final = pd.Series({label: reading(runs).summary.mean for label, runs in results.items()}, dtype=float)
        rows.append(_ranking_row("ours", ours_early, ours_final, early, epochs))
    return pd.DataFrame(rows).set_index("who")


def _ranking_row(who: str, early: pd.Series, final: pd.Series, early_epoch: int, final_epoch: int) -> dict:
    correlation = rank_correlation(early, final)
    return {"who": who, "models": int(early.notna().sum()),
            "rank correlation, early vs final (Spearman)": "n/a (under 3 models)" if math.isnan(correlation)
            else f"{correlation:+.2f} (epochs {early_epoch} vs {final_epoch})",
            "first early": str(early.idxmax()) if early.notna().any() else "n/a",
            "first at the end": str(final.idxmax()) if final.notna().any() else "n/a"}


# Figures (Fig 14 is ``plots.curves.learning_curves`` of the best model)


def accuracy_per_epoch(results: dict[str, list[Run]], title: str):
    """Train and test accuracy per epoch of every trained model, side by side (mean over seeds, range shaded)."""
    figure, (train_ax, test_ax) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    plot_curve(results, "train_acc", train_ax)
    plot_curve(results, "test_acc", test_ax)
    train_ax.set_title("train accuracy (augmented batches)")
    test_ax.set_title("test accuracy")
    test_ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def accuracy_vs_cost(points: pd.DataFrame, report: pd.DataFrame, epochs: int, ours_label: str, devices: str):
    """Final accuracy against parameters and against seconds per epoch: ours (``points``, from
    :func:`cost_points`) with the seeds' std as error bar, beside the report's (``report``:
    ``reference.model_zoo()`` indexed by model) at its epoch nearest to our ``epochs`` (25 or 200) for the same
    models. Seconds come from different devices, so the time panel compares orderings, not speeds."""
    report_epoch = REPORT_EPOCHS if epochs >= REPORT_EPOCHS else EARLY_ZOO_EPOCHS
    report_accuracy = f"report_test_acc_{report_epoch}_epochs"
    report_points = report.loc[[model for model in points.model if model in report.index]].reset_index()
    figure, (params_ax, time_ax) = plt.subplots(1, 2, figsize=(13, 5))
    for ax, x_ours, x_report, x_label in (
            (params_ax, "params", "report_params_millions", "parameters (millions, log scale)"),
            (time_ax, "seconds", "report_seconds_per_epoch", "training time per epoch (s, log scale)")):
        scatter_labelled(points, x_ours, "acc", "label", ax, x_label=x_label, y_label="test accuracy (%)",
                         log_x=True, yerr="acc_std", legend_label=f"ours, epoch {epochs} ({ours_label})")
        scatter_labelled(report_points, x_report, report_accuracy, "label", ax, x_label=x_label,
                         y_label="test accuracy (%)", log_x=True, legend_label=f"report, epoch {report_epoch}")
        ax.legend(loc="best")
    params_ax.set_title("accuracy vs parameter count")
    time_ax.set_title(f"accuracy vs training time (ours: {devices}; report: its GPU)")
    figure.tight_layout()
    return figure


def stored_full_profile(store: ResultStore, models: list[str], report: pd.DataFrame) -> dict[str, list[Run]]:
    """The zoo runs at the full profile (Table 7's settings, 200 epochs) that ``store`` holds, by the report's
    label, for every model of ``models`` with at least one; trains nothing (a notebook at ``quick`` shows the
    200-epoch column from them)."""
    full = get_profile("full")
    configs = {zoo_label(model, report): zoo_config(full, model) for model in models}
    return {label: runs for label, runs in stored_grid(store, configs, full.seeds).items() if runs}
