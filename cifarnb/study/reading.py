"""Reading stored runs against the report, for every section: which accuracy to compare, with what error, and
the verdict on a claim.

The shared CIFAR-10 copy has exact test rows 0-999 and JPEG approximations for the rest, which cost a trained
model several points (FastResNet9, 10 epochs, H200: 92.5% on the exact rows, 85.5% on all 10,000). So beside the
report the exact rows are the fair measure, with the sampling error of 1,000 images (about 1.4 points at 75%,
0.75 at 94%); the 10,000-image accuracy is shown beside it, labelled as JPEG-affected. Runs trained on the
official archive (``meta["data_official"]``) compare on all 10,000 images instead.

A verdict allows for that error: our mean within two standard errors of the report's number is "consistent".
Each section's own tables and claims live in its module (``cifarnb.study.sections``) and are built from these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..results import ResultStore, Run, SeedSummary, summarize
from ..train import TrainConfig
from ..train.timing import time_to_accuracy

EXACT_COLUMN = "test_acc_exact1000"
FULL_COLUMN = "test_acc"
EXACT_ROWS = 1000
FULL_ROWS = 10_000
TOLERANCE = 2.0  # standard errors within which a difference is not a measured one
COMPARABLE_HEADING = "comparable with the report"
PRECISION_HEADING = "ours: precision"  # what the runs trained in (precision is execution only: not in the key)
NOT_RUN = "not run"  # a table cell whose runs the store does not hold
SUBSET_NOT_TESTABLE = "not testable: trained on a subset, not all of CIFAR-10"
PRIMARY = "primary"  # comparison_table: the test accuracy to compare with the report's (:func:`reading`)


def primary_column(runs: list[Run]) -> str:
    """``test_acc`` where every run saw the official test set, else the exact rows' ``test_acc_exact1000``."""
    official = bool(runs) and all(run.meta.get("data_official") for run in runs)
    if official or not all(any(EXACT_COLUMN in row for row in run.history) for run in runs):
        return FULL_COLUMN  # official data, or a test subset (no exact-row column): the test set as it is
    return EXACT_COLUMN


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
    """One accuracy reading over seeds: the mean ± the seeds' standard deviation (the spread of a single run),
    and the standard error of the mean, which a verdict on the mean allows for."""

    column: str
    summary: SeedSummary
    images: int
    runs: int | None = None  # how many runs were read (0: none is stored, the reading is "not run")

    @property
    def error(self) -> float:
        """Standard error of the mean: the test images' sampling error (the same rows for every seed, so it does
        not shrink with more seeds) combined with the seeds' spread over the square root of their number."""
        if not self.summary.count:
            return math.nan
        return math.hypot(sampling_error(self.summary.mean, self.images),
                          self.summary.std / math.sqrt(self.summary.count))

    def __str__(self) -> str:
        """"mean ± std sd (SE x)" over seeds (sd: the seeds' standard deviation, the spread of one run; SE: the
        mean's standard error); one seed: "value (SE x)" (its sampling error)."""
        if not self.summary.count:
            return NOT_RUN if self.runs == 0 else "n/a"
        spread = f" ± {self.summary.std:.2f} sd" if self.summary.count > 1 else ""
        return f"{self.summary.mean:.2f}{spread} (SE {self.error:.2f})"
LAST, BEST = "last", "best"  # the accuracy after the epoch read, or the best evaluation up to it


def run_accuracy(run: Run, column: str, epoch: int | None = None, statistic: str = LAST) -> float:
    """One run's ``column`` after ``epoch`` (None: its last), or with ``statistic="best"`` the highest value of
    the evaluations the report's script would have made up to that epoch (its "Best Acc"): those every
    ``eval_every_steps`` steps when the run makes them (VGG_acc.py evaluates only there, about 78 times in 20
    epochs; the epoch ends are not among them), else the epochs' ends (main.py)."""
    if statistic == LAST:
        return run.final(column) if epoch is None else run.at_epoch(epoch, column)
    rows = [row for row in run.history if epoch is None or row["epoch"] <= epoch]
    if epoch is not None and (not rows or rows[-1]["epoch"] < epoch):
        return math.nan  # the run stopped before that epoch
    evaluations = ([evaluation for row in rows for evaluation in row.get("step_evals", ())]
                   if run.config.eval_every_steps else rows)
    values = [evaluation[column] for evaluation in evaluations if column in evaluation]
    return max(values) if values else math.nan


def reading(runs: list[Run], epoch: int | None = None, column: str | None = None, statistic: str = LAST) -> Reading:
    """The accuracy of ``runs`` at ``epoch`` (None: the last) in ``column`` (None: :func:`primary_column`),
    the last evaluation's or the best up to it (:func:`run_accuracy`)."""
    column = column or primary_column(runs)
    values = [run_accuracy(run, column, epoch, statistic) for run in runs]
    images = EXACT_ROWS if column == EXACT_COLUMN else _test_images(runs)
    return Reading(column, summarize(values), images, len(runs))


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


def comparison_table(results: dict[str, list[Run]], measures: dict[str, tuple],
                     reference_rows: pd.DataFrame | None = None, reference_columns: dict[str, str] | None = None,
                     key: str = "label", report_epochs: int | None = None) -> pd.DataFrame:
    """One row per label: our mean ± std for each measure (name -> (history column, epoch[, statistic])) beside
    the report's; ``statistic`` is :data:`LAST` (default) or :data:`BEST` (:func:`run_accuracy`).

    With ``report_epochs`` (the epochs behind the report's column) each row also says in
    :data:`COMPARABLE_HEADING` whether its runs compare with the report (:func:`comparability`).

    The column :data:`PRIMARY` reads the test accuracy that compares with the report's (the exact test rows
    0-999 for a run on the whole shared test set; :func:`primary_column`), with its standard error.

    ``reference_columns`` maps a heading to a reference column; those come before our columns.
    """
    rows = []
    reference_by_label = reference_rows.set_index(key) if reference_rows is not None else None
    for label, runs in results.items():
        row = {key: label, "seeds": len(runs) if runs else NOT_RUN}
        for heading, source in (reference_columns or {}).items():
            value = reference_by_label.loc[label, source] if reference_by_label is not None and label in \
                reference_by_label.index else math.nan
            row[heading] = value
        for heading, (column, epoch, *statistic) in measures.items():
            if not runs:
                row[heading] = NOT_RUN
                continue
            # PRIMARY: the accuracy to compare with the report's, with its error (:func:`reading`).
            read = reading(runs, epoch, None if column == PRIMARY else column, *statistic)
            row[heading] = str(read if column == PRIMARY else read.summary)
        if report_epochs is not None:
            row[COMPARABLE_HEADING] = comparability(runs, report_epochs) if runs else NOT_RUN
        row[PRECISION_HEADING] = precisions(runs) if runs else NOT_RUN
        rows.append(row)
    return pd.DataFrame(rows).set_index(key)


def split_table(table: pd.DataFrame, comparison: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A wide table as two that a page holds: the comparison with the report (the ``comparison`` columns: the
    report's numbers, ours beside them, whether they compare) and the details (every other column)."""
    comparison = list(dict.fromkeys(comparison))  # a heading named twice (the early epoch is the last) once
    return table[comparison], table[[column for column in table.columns if column not in comparison]]


def column_heading(column: str) -> str:
    """How a table heads an accuracy column."""
    return "test acc, exact rows 0-999" if column == EXACT_COLUMN else "test acc"


def measure(runs: list[Run], column: str = "test_acc", epoch: int | None = None) -> SeedSummary:
    """Mean ± std over seeds of ``column`` at ``epoch`` (1-based; None: the last epoch)."""
    return summarize(run.final(column) if epoch is None else run.at_epoch(epoch, column) for run in runs)


def seconds_per_epoch(runs: list[Run]) -> float:
    """Mean training seconds per epoch over every epoch of every run (evaluation excluded)."""
    seconds = [row["seconds"] for run in runs for row in run.history]
    return sum(seconds) / len(seconds) if seconds else math.nan


def seconds_summary(runs: list[Run]) -> SeedSummary:
    """Mean ± std over seeds of each run's mean training seconds per epoch."""
    return summarize(seconds_per_epoch([run]) for run in runs)


def run_precision(run: Run) -> str:
    """The precision ``run`` trained in (``meta["precision"]``; for a run stored before runs recorded it, what its
    config's precision was on its device: "auto" was bf16 on CUDA, every precision fp32 on a CPU)."""
    if run.meta.get("precision"):
        return run.meta["precision"]
    device = str(run.meta.get("device", "?"))
    if device == "?":
        return "?"
    chosen = run.meta.get("execution", {}).get("precision", run.config.precision)
    return "fp32" if device == "cpu" else ("bf16" if chosen == "auto" else chosen)


def precisions(runs: list[Run]) -> str:
    """The precisions ``runs`` trained in, sorted and comma-separated (:func:`run_precision`)."""
    return ", ".join(sorted({run_precision(run) for run in runs}))


def devices(runs: list[Run]) -> str:
    """The devices ``runs`` trained on, sorted and comma-separated ("?" for a run that recorded none)."""
    return ", ".join(sorted({str(run.meta.get("device", "?")) for run in runs}))


def on_all_data(runs: list[Run]) -> bool:
    """Whether every run trained on all 50,000 images and tested on all 10,000 (a claim about CIFAR-10 needs it)."""
    return bool(runs) and all(run.config.n_train is None and run.config.n_test is None for run in runs)


def stored_grid(store: ResultStore, configs: dict[str, TrainConfig], seeds) -> dict[str, list[Run]]:
    """The runs of every config over ``seeds`` that ``store`` holds finished; trains nothing (evidence tables)."""
    found = {label: [store.load(config.replace(seed=seed)) for seed in seeds] for label, config in configs.items()}
    return {label: [run for run in runs if run is not None and run.finished] for label, runs in found.items()}


# What training in bf16 on a CPU may change against the report's GPU runs, said beside every row trained so.
CPU_BF16_CAVEAT = ("bf16 autocast keeps 7 bits of mantissa where fp16 and TF32 keep 10 (weights and their updates "
                   "stay fp32 here), so each step's arithmetic is coarser: expect a difference of the order of the "
                   "seed-to-seed spread, not a different result; and their seconds per epoch are this CPU's, not "
                   "comparable with the report's GPU")


def cpu_rows_note(results: dict[str, list[Run]], report_precision) -> str:
    """One Markdown paragraph naming the rows of ``results`` (label -> runs) whose runs trained on a CPU, with the
    precision each trained in beside the report's (``report_precision(config)``: what the report's code ran on its
    GPU) and what that may change (:data:`CPU_BF16_CAVEAT`); "" when no row trained on a CPU."""
    rows = []
    for label, runs in results.items():
        on_cpu = [run for run in runs if run.meta.get("device") == "cpu"]
        if on_cpu:
            seeds = ", ".join(str(run.config.seed) for run in on_cpu)
            rows.append(f"{label} (seed{'s' * (len(on_cpu) > 1)} {seeds}: {precisions(on_cpu)}; the report: a GPU "
                        f"in {report_precision(on_cpu[0].config)})")
    if not rows:
        return ""
    bf16 = any(run_precision(run) == "bf16" for runs in results.values() for run in runs
               if run.meta.get("device") == "cpu")
    return ("**Trained on a CPU here:** " + "; ".join(rows) + "."
            + (f" Those in bf16: {CPU_BF16_CAVEAT}." if bf16 else ""))
