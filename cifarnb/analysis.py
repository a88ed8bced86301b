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

from .results import Run, SeedSummary, summarize
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
