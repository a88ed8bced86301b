"""Reading stored runs against the report: which accuracy to compare, with what error, and the verdict on a claim.

The shared CIFAR-10 copy has exact test rows 0-999 and JPEG approximations for the rest, which cost a trained
model several points (FastResNet9, 10 epochs, H200: 92.5% on the exact rows, 85.5% on all 10,000). So beside the
report the exact rows are the fair measure, with the sampling error of 1,000 images (about 1.4 points at 75%,
0.75 at 94%); the 10,000-image accuracy is shown beside it, labelled as JPEG-affected. Runs trained on the
official archive (``meta["data_official"]``) compare on all 10,000 images instead.

A verdict allows for that error: our mean within two standard errors of the report's number is "consistent".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import landscape, models, reference
from .reference import Claim
from .results import Run, SeedSummary, summarize
from .settings import ABLATION_BASELINE, EARLY_RESNET9_EPOCHS, EARLY_ZOO_EPOCHS, REPORT_EPOCHS
from .train import TrainConfig
from .train.timing import time_to_accuracy

EXACT_COLUMN = "test_acc_exact1000"
FULL_COLUMN = "test_acc"
EXACT_ROWS = 1000
FULL_ROWS = 10_000
TOLERANCE = 2.0  # standard errors within which a difference is not a measured one


def primary_column(runs: list[Run]) -> str:
    """``test_acc`` where every run saw the official test set, else the exact rows' ``test_acc_exact1000``."""
    official = bool(runs) and all(run.meta.get("data_official") for run in runs)
    if official or not all(any(EXACT_COLUMN in row for row in run.history) for run in runs):
        return FULL_COLUMN  # official data, or a test subset (no exact-row column): the test set as it is
    return EXACT_COLUMN



COMPARABLE_HEADING = "comparable with the report"
NOT_RUN = "not run"  # a table cell whose runs the store does not hold


def comparability(runs: list[Run], report_epochs: int | None = None) -> str:
    """Whether ``runs`` compare with a report column read after ``report_epochs`` epochs: "yes", or "no: " and
    why (a training or test subset, as at the smoke profile, or fewer epochs than the report's column)."""
    if not runs:
        return "no: no runs"
    reasons = []
    train_sizes = sorted({run.config.n_train for run in runs if run.config.n_train})
    if train_sizes:
        reasons.append(f"trained on {train_sizes[0]} of 50,000 images")
    test_sizes = sorted({run.config.n_test for run in runs if run.config.n_test})
    if test_sizes:
        reasons.append(f"tested on {test_sizes[0]} of 10,000 images")
    epochs = min(len(run.history) for run in runs)
    if report_epochs is not None and epochs < report_epochs:
        reasons.append(f"{epochs} of the report's {report_epochs} epochs")
    return "no: " + "; ".join(reasons) if reasons else "yes"


def sampling_error(accuracy: float, images: int) -> float:
    """Standard error (percentage points) of an accuracy measured on ``images`` test images."""
    p = min(max(accuracy / 100.0, 0.0), 1.0)
    return 100.0 * math.sqrt(p * (1.0 - p) / images)


@dataclass(frozen=True)
class Reading:
    """One accuracy reading over seeds: the mean ± std, and the standard error a comparison should allow."""

    column: str
    summary: SeedSummary
    images: int

    @property
    def error(self) -> float:
        """Sampling error of the test images, combined with the seeds' spread (the report's run had one seed)."""
        if not self.summary.count:
            return math.nan
        return math.hypot(sampling_error(self.summary.mean, self.images), self.summary.std)

    def __str__(self) -> str:
        if not self.summary.count:
            return "n/a"
        return f"{self.summary} (SE {self.error:.2f})"


def reading(runs: list[Run], epoch: int | None = None, column: str | None = None) -> Reading:
    """The accuracy of ``runs`` at ``epoch`` (None: the last) in ``column`` (None: :func:`primary_column`)."""
    column = column or primary_column(runs)
    values = [run.final(column) if epoch is None else run.at_epoch(epoch, column) for run in runs]
    images = EXACT_ROWS if column == EXACT_COLUMN else _test_images(runs)
    return Reading(column, summarize(values), images)


def _test_images(runs: list[Run]) -> int:
    sizes = {run.config.n_test or FULL_ROWS for run in runs}
    return min(sizes) if sizes else FULL_ROWS


def accuracy_verdict(ours: Reading, report: float) -> str:
    """Whether our accuracy reproduces the report's, allowing :data:`TOLERANCE` standard errors."""
    if not ours.summary.count:
        return "not testable: no run reaches that epoch"
    gap, allowed = _gap_and_allowance(ours, report)
    if gap >= 0:
        return f"reproduced ({gap:+.2f} pp)"
    if -gap <= allowed:
        return f"consistent: {gap:+.2f} pp, within {TOLERANCE:g} SE ({allowed:.2f} pp)"
    return f"not reproduced: {gap:+.2f} pp, beyond {TOLERANCE:g} SE ({allowed:.2f} pp)"


def _gap_and_allowance(ours: Reading, report: float) -> tuple[float, float]:
    """Our mean minus the report's accuracy, and the :data:`TOLERANCE` standard errors a difference may be."""
    return ours.summary.mean - report, TOLERANCE * ours.error


def matches_report(ours: Reading, report: float) -> bool:
    """Whether our accuracy lies within :data:`TOLERANCE` standard errors of the report's, on either side."""
    if not ours.summary.count:
        return False
    gap, allowed = _gap_and_allowance(ours, report)
    return abs(gap) <= allowed


def agreement_verdict(ours: Reading, report: float) -> str:
    """Whether our accuracy matches the report's on either side (:func:`matches_report`): the test for a setting
    (such as a scheduler reading) that could land too high as well as too low."""
    if not ours.summary.count:
        return "not testable: no run reaches that epoch"
    gap, allowed = _gap_and_allowance(ours, report)
    if matches_report(ours, report):
        return f"matches: {gap:+.2f} pp, within {TOLERANCE:g} SE ({allowed:.2f} pp)"
    return f"{'above' if gap > 0 else 'below'} it: {gap:+.2f} pp, beyond {TOLERANCE:g} SE ({allowed:.2f} pp)"


def runs_matching(runs: list[Run], report: float, epoch: int | None = None) -> str:
    """How many single runs match the report's single run (:func:`matches_report`, each with its own sampling
    error): the mean of a setting whose outcome splits between seeds can match while most of its runs do not."""
    matching = sum(matches_report(reading([run], epoch), report) for run in runs)
    return f"{matching} of {len(runs)}"


def first_epoch_mean_reaches(runs: list[Run], target: float, column: str | None = None) -> int | None:
    """The first epoch whose mean accuracy over ``runs`` reaches ``target`` (None: never)."""
    column = column or primary_column(runs)
    epochs = sorted({row["epoch"] for run in runs for row in run.history})
    for epoch in epochs:
        mean = summarize(run.at_epoch(epoch, column) for run in runs)
        if mean.count == len(runs) and mean.mean >= target:
            return epoch
    return None


def reached_by_verdict(runs: list[Run], target: float, report_epoch: int) -> tuple[str, str]:
    """A claim "reaches ``target`` % by epoch ``report_epoch``": (what we found, the verdict); not testable on a
    data subset (:func:`on_all_data`)."""
    if not on_all_data(runs):
        return "n/a", SUBSET_NOT_TESTABLE
    epochs = max((len(run.history) for run in runs), default=0)
    first = first_epoch_mean_reaches(runs, target)
    found = f"epoch {first}" if first is not None else f"not reached in {epochs} epochs"
    if epochs < report_epoch:
        return found, f"not testable: the runs stop at epoch {epochs}"
    at = reading(runs, report_epoch)
    found += f"; at epoch {report_epoch}: {at}"
    return found, accuracy_verdict(at, target)



SUBSET_NOT_TESTABLE = "not testable: trained on a subset, not all of CIFAR-10"


def accuracy_at_verdict(runs: list[Run], target: float, report_epoch: int) -> tuple[str, str]:
    """A claim "``target`` % after ``report_epoch`` epochs": (our reading at that epoch, the verdict); not
    testable on a data subset (:func:`on_all_data`)."""
    at = reading(runs, report_epoch)
    if not on_all_data(runs):
        return str(at), SUBSET_NOT_TESTABLE
    return str(at), accuracy_verdict(at, target)


def mean_time_to(runs: list[Run], target: float) -> str:
    """Mean training seconds (the stored per-epoch ``seconds``) to the first epoch at ``target`` % on the primary
    column, over the seeds that reach it (saying how many when not all do)."""
    column = primary_column(runs)
    times = [t for t in (time_to_accuracy(run.history, target, column) for run in runs) if t is not None]
    if not times:
        return "not reached"
    return f"{sum(times) / len(times):.1f}" + (f" ({len(times)} of {len(runs)} seeds)" if len(times) < len(runs) else "")


def ladder_table(ladder: dict[str, list[Run]], report_says: dict[str, str], epoch: int | None = None) -> pd.DataFrame:
    """One row per step of a trick ladder: our accuracy (primary column, with its SE), the change from the step
    above, and whether that change is larger than the two steps' combined error (else: no measured effect)."""
    rows, previous = [], None
    for label, runs in ladder.items():
        ours = reading(runs, epoch)
        row = {"step": label, "seeds": len(runs), "report says": report_says.get(label, ""),
               f"ours: {column_heading(ours.column)} (%)": str(ours), "Δ from the step above (pp)": ""}
        if previous is not None and ours.summary.count and previous.summary.count:
            change = ours.summary.mean - previous.summary.mean
            # Two steps measured on the same test rows: their sampling errors are correlated, so the seeds'
            # spread is what separates them; with one seed, the larger of the two errors is the conservative bar.
            bar = TOLERANCE * max(ours.error, previous.error)
            row["Δ from the step above (pp)"] = (f"{change:+.2f}" + ("" if abs(change) > bar else
                                                                     f" (within {TOLERANCE:g} SE: no measured effect)"))
        rows.append(row)
        previous = ours
    return pd.DataFrame(rows).set_index("step")


PRIMARY = "primary"  # comparison_table: the test accuracy to compare with the report's (:func:`reading`)


def comparison_table(results: dict[str, list[Run]], measures: dict[str, tuple[str, int | None]],
                     reference_rows: pd.DataFrame | None = None, reference_columns: dict[str, str] | None = None,
                     key: str = "label", report_epochs: int | None = None) -> pd.DataFrame:
    """One row per label: our mean ± std for each measure (name -> (history column, epoch)) beside the report's.

    With ``report_epochs`` (the epochs behind the report's column) each row also says in
    :data:`COMPARABLE_HEADING` whether its runs compare with the report (:func:`comparability`).

    The column :data:`PRIMARY` reads the test accuracy that compares with the report's (the exact test rows
    0-999 for a run on the whole shared test set; :func:`primary_column`), with its standard error.

    ``reference_columns`` maps a heading to a reference column; those come before our columns.
    """
    rows = []
    reference_by_label = reference_rows.set_index(key) if reference_rows is not None else None
    for label, runs in results.items():
        row = {key: label, "seeds": len(runs)}
        for heading, source in (reference_columns or {}).items():
            value = reference_by_label.loc[label, source] if reference_by_label is not None and label in \
                reference_by_label.index else math.nan
            row[heading] = value
        for heading, (column, epoch) in measures.items():
            # PRIMARY: the accuracy to compare with the report's, with its error (:func:`reading`).
            row[heading] = str(reading(runs, epoch) if column == PRIMARY else measure(runs, column, epoch))
        if report_epochs is not None:
            row[COMPARABLE_HEADING] = comparability(runs, report_epochs)
        rows.append(row)
    return pd.DataFrame(rows).set_index(key)


def column_heading(column: str) -> str:
    """How a table heads an accuracy column."""
    return "test acc, exact rows 0-999" if column == EXACT_COLUMN else "test acc"


# Section 1: the ResNet18 ablations (notebook 01; report 1.1, Tables 1-5)

def report_choice(group: str) -> str:
    """The report's label for the setting it kept in ``group`` (its baseline, which the zoo trains with)."""
    field = reference.ABLATION_FIELDS[group]
    kept = [label for label, value in reference.REPORT_VALUE_NAMES[group].items() if value == ABLATION_BASELINE[field]]
    return kept[0]


def recipe_choice_table(results: dict[str, dict[str, list[Run]]]) -> pd.DataFrame:
    """Per ablation group: the report's choice, the report's best single run, our best mean test accuracy, and
    our mean for the report's choice, so that the choice can be read against the seed spread."""
    rows = []
    for group, by_label in results.items():
        ours = {label: measure(runs, "test_acc") for label, runs in by_label.items()}
        best_ours = max(ours, key=lambda label: ours[label].mean)
        report = reference.ablation(group).set_index("label")["report_test_acc"]
        choice = report_choice(group)
        rows.append({"group": group, "report's choice": choice, "report's best": report.idxmax(),
                     "our best (mean test acc)": f"{best_ours} ({ours[best_ours]})",
                     "our choice's test acc": str(ours[choice]) if choice in ours else NOT_RUN})
    return pd.DataFrame(rows).set_index("group")


# Section 3: ResNet9 → FastResNet9 (notebook 03; report 1.4, Tables 8-9, the trick ladders, claims (a) and (b))

TIME_TARGET = 94.0  # the accuracy the bag-of-tricks trainer races to (DAWNBench's CIFAR-10 target)
LADDER_RECIPE_NAMES = {"report": "bag-of-tricks recipe (the report's)", "plain": "plain recipe (Table 6, lr 0.01)"}
PLAIN_FASTRESNET9 = "FastResNet9 (plain recipe)"
CLAIM_LETTERS = "abcdefgh"


def parameters_millions(config: TrainConfig) -> float:
    """Parameters of ``config``'s model in millions, as Tables 8-9 give them."""
    return models.count_parameters(models.build(config.model, **config.model_kwargs())) / 1e6


def devices(runs: list[Run]) -> str:
    """The devices ``runs`` trained on, sorted and comma-separated ("?" for a run that recorded none)."""
    return ", ".join(sorted({str(run.meta.get("device", "?")) for run in runs}))


def on_all_data(runs: list[Run]) -> bool:
    """Whether every run trained on all 50,000 images and tested on all 10,000 (a claim about CIFAR-10 needs it)."""
    return bool(runs) and all(run.config.n_train is None and run.config.n_test is None for run in runs)


def resnet9_results(ladder_results: dict[str, dict[str, list[Run]]], resnet18: list[Run]) -> dict[str, list[Run]]:
    """Tables 8-9's rows from the trick ladders' runs (recipe -> step -> runs; a ladder's first step is ResNet9,
    its last FastResNet9): ResNet9 is the plain ladder's first step, FastResNet9 the bag-of-tricks ladder's last,
    FastResNet9 under the plain recipe an extra row, and ResNet18 the zoo's configuration."""
    report, plain = list(ladder_results["report"].values()), list(ladder_results["plain"].values())
    return {"ResNet9": plain[0], "FastResNet9": report[-1], PLAIN_FASTRESNET9: plain[-1], "ResNet18": resnet18}


def resnet9_table(results: dict[str, list[Run]], reference_rows: pd.DataFrame, early_epoch: int,
                  final_epoch: int) -> pd.DataFrame:
    """Tables 8-9: per row the report's parameters, accuracies after 10 and 200 epochs and seconds per epoch beside
    ours at ``early_epoch`` and ``final_epoch``, time to :data:`TIME_TARGET`, the devices, and whether the row
    compares with each of the report's two accuracy columns. ``reference_rows``: ``reference.resnet9()`` indexed
    by label; a row "X (...)" reads the report's row X."""
    rows = []
    for label, runs in results.items():
        report = reference_rows.loc[label.split(" (")[0]]
        early, final = reading(runs, early_epoch), reading(runs, final_epoch)
        rows.append({
            "model": label, "seeds": len(runs),
            "report: params (M)": report["report_params_millions"],
            "ours: params (M)": round(parameters_millions(runs[0].config), 2),
            f"report: test acc, epoch {EARLY_RESNET9_EPOCHS} (%)": report["report_test_acc_10_epochs"],
            f"ours: {column_heading(early.column)}, epoch {early_epoch} (%)": str(early),
            f"ours: all 10,000 (JPEG-affected), epoch {early_epoch} (%)": str(reading(runs, early_epoch, FULL_COLUMN)),
            f"report: test acc, epoch {REPORT_EPOCHS} (%)": report["report_test_acc_200_epochs"],
            f"ours: {column_heading(final.column)}, epoch {final_epoch} (%)": str(final),
            "report: s/epoch": report["report_seconds_per_epoch"],
            "ours: s/epoch": round(seconds_per_epoch(runs), 2),
            f"ours: time to {TIME_TARGET:g}% (s)": mean_time_to(runs, TIME_TARGET),
            "ours: device": devices(runs),
            f"{COMPARABLE_HEADING}, epoch {EARLY_RESNET9_EPOCHS}": comparability(runs, EARLY_RESNET9_EPOCHS),
            f"{COMPARABLE_HEADING}, epoch {REPORT_EPOCHS}": comparability(runs, REPORT_EPOCHS),
        })
    return pd.DataFrame(rows).set_index("model")


def seconds_per_epoch(runs: list[Run]) -> float:
    """Mean training seconds per epoch over every epoch of every run (evaluation excluded)."""
    seconds = [row["seconds"] for run in runs for row in run.history]
    return sum(seconds) / len(seconds) if seconds else math.nan


def trick_ladder_tables(ladder_results: dict[str, dict[str, list[Run]]], report_says: dict[str, str],
                        epoch: int | None = None) -> pd.DataFrame:
    """Both recipes' :func:`ladder_table` at ``epoch``, one block per recipe (:data:`LADDER_RECIPE_NAMES`), each
    step saying whether its runs compare with the report's FastResNet9 reading at epoch 10, the earliest the
    report gives."""
    tables = {}
    for recipe, ladder in ladder_results.items():
        table = ladder_table(ladder, report_says, epoch)
        table[COMPARABLE_HEADING] = [comparability(runs, EARLY_RESNET9_EPOCHS) for runs in ladder.values()]
        tables[LADDER_RECIPE_NAMES.get(recipe, recipe)] = table
    return pd.concat(tables, names=["recipe", "step"])


def claims_table(ladder_results: dict[str, dict[str, list[Run]]], claims: list[Claim]) -> pd.DataFrame:
    """Each of the report's claims about FastResNet9 (``reference.fastresnet9_claims()``) checked on each
    recipe's FastResNet9 (its ladder's last step): what we found and the verdict (:func:`reached_by_verdict` for a
    "passes" claim, :func:`accuracy_at_verdict` for a "reaches" one). Runs on a subset make a claim not testable."""
    rows = []
    for recipe, ladder in ladder_results.items():
        fast = list(ladder.values())[-1]
        for letter, claim in zip(CLAIM_LETTERS, claims):
            check = reached_by_verdict if claim.kind == "passes" else accuracy_at_verdict
            found, verdict = check(fast, claim.accuracy, claim.epoch)
            rows.append({"recipe": LADDER_RECIPE_NAMES.get(recipe, recipe),
                         "claim": f"({letter}) {claim.text.removeprefix('FastResNet9 ')}",
                         "ours": found, "verdict": verdict})
    return pd.DataFrame(rows).set_index(["recipe", "claim"])


# Section 5: BatchNorm's landscape (notebook 05; report 2.2): the ln 10 plateau and the second half of training

UNIFORM_LOSS = math.log(10)  # cross-entropy of uniform predictions over CIFAR-10's 10 classes
PLATEAU_MARGIN = 0.1  # a loss this far below ln 10 has left the plateau


def landscape_comparability(config: landscape.LandscapeConfig) -> str:
    """Whether landscape runs under ``config`` compare with the report's (Table 11: ``LandscapeConfig``'s
    defaults): "yes", or "no: " and each setting that differs (a training subset, another number of epochs,
    batch size, gap or set of learning rates)."""
    report = landscape.LandscapeConfig()
    reasons = [f"trained on {config.n_train} of 50,000 images"] if config.n_train else []
    # Any other length counts: the figures' early and late parts are fractions of the run.
    for name, heading in (("epochs", "epochs"), ("batch_size", "batch"), ("gap", "gap"),
                          ("learning_rates", "learning rates")):
        ours, theirs = getattr(config, name), getattr(report, name)
        if ours != theirs:
            reasons.append(f"{heading} {_listed(ours)} (report: {_listed(theirs)})")
    return "no: " + "; ".join(reasons) if reasons else "yes"


def _listed(value) -> str:
    return ", ".join(f"{item:g}" for item in value) if isinstance(value, tuple) else f"{value:g}"


def plateau_exit(rows: pd.DataFrame, quantity: str) -> str:
    """The first step of a landscape table's ``rows`` whose ``quantity`` falls more than :data:`PLATEAU_MARGIN`
    below ln 10: "step N", or "not by step M" (M: the last step) when none does."""
    if rows.empty:
        return "no steps"
    below = rows[(rows["quantity"] == quantity) & (rows["value"] < UNIFORM_LOSS - PLATEAU_MARGIN)]
    return f"step {int(below['step'].min())}" if len(below) else f"not by step {int(rows['step'].max())}"


def plateau_table(report_table: pd.DataFrame, paper_table: pd.DataFrame) -> pd.DataFrame:
    """When each model leaves the ln 10 plateau: one column per learning rate of the report's method (the window
    mean loss) and one per learning rate of the paper's (the training loss of the step)."""
    columns = {}
    for lr in sorted(report_table["lr"].unique()):
        runs = report_table[report_table["lr"] == lr]
        columns[f"report's method, lr {lr:g}"] = {model: plateau_exit(runs[runs["model"] == model], landscape.LOSS)
                                                 for model in landscape.MODELS}
    for lr in sorted(paper_table["lr"].unique()):
        runs = paper_table[paper_table["lr"] == lr]
        columns[f"paper's method, lr {lr:g}"] = {model: plateau_exit(runs[runs["model"] == model],
                                                                     landscape.TRAIN_LOSS)
                                                for model in landscape.MODELS}
    table = pd.DataFrame(columns)
    table.index.name = "model"
    return table


def second_half_summary(table: pd.DataFrame, method: str, band_over: str) -> pd.DataFrame:
    """Per model, over the steps past the middle of a landscape table: the mean loss, the mean width of the loss
    band (max - min across ``band_over``: lr or eta), and the medians of the gradient distance and of β (medians,
    because β early on is a ratio of small numbers). Indexed by (method, model)."""
    late = table[table["step"] > table["step"].max() / 2]
    band = landscape.min_max_band(late)
    rows = []
    for model in landscape.MODELS:
        mine, my_band = late[late["model"] == model], band[band["model"] == model]
        values = {quantity: mine.loc[mine["quantity"] == quantity, "value"]
                  for quantity in (landscape.LOSS, landscape.GRAD_DISTANCE, landscape.BETA)}
        loss_band = my_band[my_band["quantity"] == landscape.LOSS]
        rows.append({
            "method": method, "model": model, "band over": band_over,
            "steps": f"{int(mine['step'].min())}-{int(mine['step'].max())}" if len(mine) else "none",
            "mean loss": f"{values[landscape.LOSS].mean():.3f}",
            "mean loss band width": f"{(loss_band['max'] - loss_band['min']).mean():.3f}",
            "median gradient distance": f"{values[landscape.GRAD_DISTANCE].median():.3g}",
            "median β": f"{values[landscape.BETA].median():.3g}",
        })
    return pd.DataFrame(rows).set_index(["method", "model"])


EARLY_FRACTION, LATE_FRACTION = 0.2, 0.5  # "early": the first fifth of the steps; "late": the second half


def early_and_late(table: pd.DataFrame, quantity: str) -> pd.DataFrame:
    """Median of ``quantity`` per model over the early and the late steps of a landscape table (every lr or eta
    pooled): the shape of the report's Figs 31-32 in two numbers per model."""
    rows = table[table["quantity"] == quantity]
    last = rows["step"].max()
    early = rows[rows["step"] < EARLY_FRACTION * last].groupby("model")["value"].median()
    late = rows[rows["step"] >= LATE_FRACTION * last].groupby("model")["value"].median()
    return pd.DataFrame({"early median": early, "late median": late})


def report_pattern(table: pd.DataFrame, quantity: str, plain: str = "vgg_a", with_bn: str = "vgg_a_bn") -> str:
    """Whether ``quantity`` shows what the report describes for Figs 31-32: VGG-A + BN above VGG-A early in
    training, below it later."""
    medians = early_and_late(table, quantity)
    if not {plain, with_bn} <= set(medians.index):
        return "not testable: both models are needed"
    early_above = medians.loc[with_bn, "early median"] > medians.loc[plain, "early median"]
    late_below = medians.loc[with_bn, "late median"] < medians.loc[plain, "late median"]
    found = (f"BN {'above' if early_above else 'below'} plain early, "
             f"{'below' if late_below else 'above'} plain late")
    return found + (": as the report describes" if early_above and late_below else ": not what the report describes")


def pattern_summary(table: pd.DataFrame, quantity: str) -> dict[str, object]:
    """:func:`early_and_late` flattened into one table row (``"<model>, early median"``, ...) plus the
    :func:`report_pattern` verdict under ``"shape"``."""
    medians = early_and_late(table, quantity)
    row: dict[str, object] = {f"{model}, {when}": float(f"{medians.loc[model, when]:.4g}")
                              for model in medians.index for when in medians.columns}
    row["shape"] = report_pattern(table, quantity)
    return row


# Section 2: the model zoo
# Notebook 02 (report 1.3, Tables 6-7, Fig 14). ``report`` is always ``reference.model_zoo()`` indexed by model
# (our names, with the report's spelling in "label"); ``results`` maps a row label to its runs over seeds.

VALUE_CLAIM_MODELS = ("resnet34", "wideresnet28x10")  # "the best value" against the best model (report 1.3)
EARLY_CLAIM_MODEL = "densenet121"  # "converges fastest in the first 25 epochs"
EARLY_THRESHOLD = 80.0  # the early table's "first epoch at 80%": a measure of early progress not tied to one epoch


def measure(runs: list[Run], column: str = "test_acc", epoch: int | None = None) -> SeedSummary:
    """Mean ± std over seeds of ``column`` at ``epoch`` (1-based; None: the last epoch)."""
    return summarize(run.final(column) if epoch is None else run.at_epoch(epoch, column) for run in runs)


def seconds_summary(runs: list[Run]) -> SeedSummary:
    """Mean ± std over seeds of each run's mean training seconds per epoch."""
    return summarize(seconds_per_epoch([run]) for run in runs)


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


def final_accuracy(runs: list[Run]) -> float:
    """Mean final test accuracy over seeds (all test images): what the zoo's best model and frontier rank by."""
    return measure(runs).mean


def best_model(results: dict[str, list[Run]]) -> str:
    """The label with the highest mean final test accuracy (a tie goes to the first in ``results``' order)."""
    accuracies = {label: final_accuracy(runs) for label, runs in results.items()}
    return max(accuracies, key=lambda label: -math.inf if math.isnan(accuracies[label]) else accuracies[label])


def cost_points(results: dict[str, list[Run]], params: dict[str, float]) -> pd.DataFrame:
    """One point per trained model for the accuracy-vs-cost figure: its parameters (millions, from ``params`` by
    model), final accuracy on the primary column (mean and std over seeds) and seconds per epoch."""
    rows = []
    for label, runs in results.items():
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
    for label, runs in results.items():
        reaching, count = first_epoch_reaching(runs, EARLY_THRESHOLD)
        at_early = reading(runs, early)
        rows.append({
            "model": label,
            f"report acc @{EARLY_ZOO_EPOCHS} (%)": report["report_test_acc_25_epochs"].get(runs[0].config.model, math.nan),
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


# Section 4: feature maps
# Notebook 04 (report 1.5, Figs 21-26): numbers behind the report's "less interpretable, more compact" reading.

DEAD_RANGE = 1e-3  # a channel whose map varies less than this over the image is dead (e.g. all zero after ReLU)
NEAR_COPY_CORRELATION = 0.9  # |r| above which one channel's map is a near-copy of another's


@dataclass(frozen=True)
class FeatureMapStatistics:
    """What one layer's C x H x W activation on one image shows: dead channels, how much is active, and how
    redundant the live channels are (correlations between their maps)."""

    channels: int
    height: int
    width: int
    dead_fraction: float  # channels constant over the image (max - min < DEAD_RANGE)
    mean_activation: float
    active_fraction: float  # values above zero
    mean_abs_correlation: float  # mean |Pearson r| over pairs of live channels (NaN under 2 live channels)
    near_copy_fraction: float  # live channels with |r| > NEAR_COPY_CORRELATION to another (NaN under 2)

    def row(self) -> dict[str, object]:
        """The statistics as a table row, headed and rounded as notebook 04 shows them."""
        return {"channels": self.channels, "map size (px)": f"{self.height}x{self.width}",
                "dead channels (%)": f"{100 * self.dead_fraction:.1f}", "mean activation": f"{self.mean_activation:.3f}",
                "active pixels (%)": f"{100 * self.active_fraction:.1f}",
                "mean |r| between channels": f"{self.mean_abs_correlation:.3f}",
                "channels with a near-copy (%)": f"{100 * self.near_copy_fraction:.1f}"}


def feature_map_statistics(activation: np.ndarray) -> FeatureMapStatistics:
    """:class:`FeatureMapStatistics` of one C x H x W activation."""
    if activation.ndim != 3:
        raise ValueError(f"activation has shape {activation.shape}; expected channels x height x width")
    flat = activation.reshape(len(activation), -1).astype(np.float64)
    dead = np.ptp(flat, axis=1) < DEAD_RANGE
    live = flat[~dead]
    if len(live) > 1:
        correlation = np.abs(np.corrcoef(live))
        np.fill_diagonal(correlation, np.nan)
        mean_r = float(np.nanmean(correlation))
        near_copy = float(np.mean(np.nanmax(correlation, axis=1) > NEAR_COPY_CORRELATION))
    else:
        mean_r = near_copy = math.nan
    return FeatureMapStatistics(channels=len(activation), height=activation.shape[1], width=activation.shape[2],
                                dead_fraction=float(dead.mean()), mean_activation=float(flat.mean()),
                                active_fraction=float((flat > 0).mean()), mean_abs_correlation=mean_r,
                                near_copy_fraction=near_copy)


def feature_map_table(maps: dict[str, dict[str, np.ndarray]], layers: tuple[str, ...]) -> pd.DataFrame:
    """One row of :class:`FeatureMapStatistics` per model (``maps``' keys) and layer of ``layers``."""
    return pd.DataFrame([{"model": label, "layer": layer, **feature_map_statistics(maps[label][layer]).row()}
                         for label in maps for layer in layers]).set_index(["model", "layer"])
