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

import pandas as pd

from . import landscape, models
from .reference import Claim
from .results import Run, SeedSummary, summarize
from .settings import EARLY_RESNET9_EPOCHS, REPORT_EPOCHS
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
    gap = ours.summary.mean - report
    allowed = TOLERANCE * ours.error
    if gap >= 0:
        return f"reproduced ({gap:+.2f} pp)"
    if -gap <= allowed:
        return f"consistent: {gap:+.2f} pp, within {TOLERANCE:g} SE ({allowed:.2f} pp)"
    return f"not reproduced: {gap:+.2f} pp, beyond {TOLERANCE:g} SE ({allowed:.2f} pp)"


def first_epoch_mean_reaches(runs: list[Run], target: float, column: str | None = None) -> int | None:
    """The first epoch whose mean accuracy over ``runs`` reaches ``target`` (None: never)."""
    column = column or primary_column(runs)
    epochs = sorted({row["epoch"] for run in runs for row in run.history})
    for epoch in epochs:
        mean = summarize(run.at_epoch(epoch, column) for run in runs)
        if mean.count == len(runs) and mean.mean >= target:
            return epoch
    return None


def reached_by_verdict(runs: list[Run], target: float, report_epoch: int, full_data: bool) -> tuple[str, str]:
    """A claim "reaches ``target`` % by epoch ``report_epoch``": (what we found, the verdict)."""
    if not full_data:
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


def accuracy_at_verdict(runs: list[Run], target: float, report_epoch: int, full_data: bool) -> tuple[str, str]:
    """A claim "``target`` % after ``report_epoch`` epochs": (our reading at that epoch, the verdict)."""
    at = reading(runs, report_epoch)
    if not full_data:
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


def column_heading(column: str) -> str:
    """How a table heads an accuracy column."""
    return "test acc, exact rows 0-999" if column == EXACT_COLUMN else "test acc"


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
            found, verdict = check(fast, claim.accuracy, claim.epoch, on_all_data(fast))
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
