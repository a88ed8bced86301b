"""Notebook 05, report section 2 (Tables 10-11, Figs 28-32): VGG-A with and without BatchNorm; their accuracy
(2.1) and the smoothness of the landscape SGD walks on (2.2), the report's way and the paper's (Santurkar et al.
2018, Fig. 4)."""

from __future__ import annotations

import time
from typing import Callable

import pandas as pd

from ... import landscape
from ...landscape import UNIFORM_LOSS, LandscapeConfig
from ...results import ResultStore, Run
from ...train import TrainConfig
from .. import reference
from ..profiles import FULL, Profile
from ..reading import BEST, NOT_RUN, PRIMARY, column_heading, comparison_table, primary_column
from ..settings import VGG_CODE_SEED, VGG_EPOCHS, VGG_EVAL_EVERY_STEPS, VGG_SETTINGS, VGG_TEMPLATE
from ..tasks import LandscapeTask, RunTask, landscape_tasks, run_tasks

NAME = "batchnorm"
NOTEBOOK = "05_batchnorm"
TITLE = "BatchNorm on VGG-A: accuracy with and without BN, loss landscape, gradient predictiveness, β-smoothness " \
        "(report 2, Figs 28-32)"
ALIASES = ("vgg", "landscape")
EPOCHS_FIELD = "vgg_epochs"
PARAMETERS = ("backend", "ray_address", "gpus_per_run", "epochs", "learning_rates", "gap", "n_train", "n_test")

VGG_PIPELINES = ("template", "augmented")  # the course template's (the report's), crop + flip with CIFAR mean/std


def vgg_configs(profile: Profile, pipeline: str = "template") -> dict[str, TrainConfig]:
    """Report 2.1 (Fig 28): VGG-A with and without BatchNorm.

    ``pipeline="template"`` (the report's): the course template's data (no augmentation, pixels to [-1, 1]),
    models (its biases) and initialisation (Xavier normal); ``"augmented"``: random crop and flip, CIFAR-10
    mean/std, PyTorch's default initialisation and biases everywhere, as every other section trains. Either way
    the test accuracy is also evaluated every 100 steps, as VGG_acc.py does (its best is what the report quotes).
    """
    if pipeline not in VGG_PIPELINES:
        raise ValueError(f"pipeline={pipeline!r} is not one of {', '.join(VGG_PIPELINES)}")
    data = VGG_TEMPLATE if pipeline == "template" else {}
    return {label: profile.config(profile.vgg_epochs, model=model, eval_every_steps=VGG_EVAL_EVERY_STEPS,
                                  **VGG_SETTINGS, **data)
            for label, model in (("VGG-A", "vgg_a"), ("VGG-A + BN", "vgg_a_bn"))}


def earlier_vgg_configs(profile: Profile) -> dict[str, TrainConfig]:
    """The first reading of 2.1, before the course template's models and initialisation were read: the template's
    data and VGG_acc.py's plain SGD, but PyTorch's default initialisation, biases on every layer and evaluations at
    epoch ends only. Its H200 runs (2026-11-27) keep their keys; notebook 05 shows them as "earlier reading"."""
    return {label: profile.config(profile.vgg_epochs, model=model, augment=VGG_TEMPLATE["augment"],
                                  normalization=VGG_TEMPLATE["normalization"], **VGG_SETTINGS)
            for label, model in (("VGG-A", "vgg_a"), ("VGG-A + BN", "vgg_a_bn"))}


def accuracy_table(results: dict[str, list[Run]], profile: Profile, best_over: str = "every 100 steps"
                   ) -> pd.DataFrame:
    """Report 2.1: per model the report's test accuracy beside ours. VGG_acc.py evaluates every 100 steps and
    prints the best, so that is what the report quotes and our first column; the last epoch's beside it.
    ``best_over`` names the evaluations the runs made (the earlier reading's: "epoch ends")."""
    epochs = profile.vgg_epochs
    report = reference.batchnorm_accuracy()
    heading = column_heading(primary_column(next(iter(results.values()))))
    models = {label: config.model for label, config in vgg_configs(profile).items()}
    table = comparison_table(
        results,
        measures={f"ours: best {heading}, {best_over} to epoch {epochs} (%)": (PRIMARY, None, BEST),
                  f"ours: {heading}, epoch {epochs} (%)": (PRIMARY, None),
                  f"ours: train acc, epoch {epochs} (%)": ("train_acc", None),
                  f"ours: test acc, all test images, epoch {epochs} (%)": ("test_acc", None)},
        reference_rows=pd.DataFrame([{"label": label, "report_test_acc": report[model]}
                                     for label, model in models.items()]),
        reference_columns={f"report: best test acc, {VGG_EPOCHS} epochs (%)": "report_test_acc"},
        report_epochs=VGG_EPOCHS,
    )
    seeds = max(len(runs) for runs in results.values())
    table.index.name = f"model (ours: {seeds} seed(s), final epoch {epochs})" if seeds else f"model (ours: {NOT_RUN})"
    return table


def landscape_config(profile: Profile) -> LandscapeConfig:
    """Report 2.2 (Figs 30-32) and the paper's Fig. 4: VGG-A with and without BN, plain SGD, per-step measures,
    on the course template's data pipeline and initialisation, on the profile's device and data folder."""
    return LandscapeConfig(learning_rates=tuple(profile.landscape_learning_rates), epochs=profile.vgg_epochs,
                           batch_size=profile.batch_size, gap=profile.landscape_gap, n_train=profile.landscape_n_train,
                           seed=VGG_CODE_SEED, augment=VGG_TEMPLATE["augment"],
                           normalization=VGG_TEMPLATE["normalization"], init=VGG_TEMPLATE["model_options"]["init"],
                           bias=VGG_TEMPLATE["model_options"]["bias"], device=profile.device,
                           data_root=profile.data_root)


def method_tasks(profile: Profile, method: str) -> list[LandscapeTask]:
    """The landscape tables of one method at ``profile`` (the paper's probed every ``profile.probe_every`` steps)."""
    return landscape_tasks(NAME, landscape_config(profile), method, profile.probe_every)


def tasks(profile: Profile, seed: int, first_seed: bool = True) -> list[RunTask | LandscapeTask]:
    """The VGG-A accuracy runs at ``seed``; with the first seed, the landscape tables too (they fix their own
    seed, the code's 2023: the spread of their bands comes from learning rates or step sizes, not seeds): the
    report's method and the paper's first, the one-step differences (the earlier reading) last."""
    runs = run_tasks(NAME, vgg_configs(profile), seed)
    if not first_seed:
        return runs
    return [*runs, *(task for method in ("report", "paper", "one_step") for task in method_tasks(profile, method))]


def landscape_tables(store: ResultStore, config: LandscapeConfig, method: str, probe_every: int | None = None,
                     log: Callable[[str], None] = print, compute_missing: bool = True) -> pd.DataFrame | None:
    """The landscape measurements of one method under ``config`` (``tasks.landscape_tasks``: one table per model
    and lr), each computed once and cached in ``store``, on ``config.device``; one line per table. With
    ``compute_missing`` False a table the store lacks is "not run" and left out; None when none is stored."""
    tables = landscape_tasks(NAME, config, method, probe_every)
    frames = []
    for number, task in enumerate(tables, 1):
        started, existed = time.perf_counter(), task.stored(store)
        if not existed and not compute_missing:
            log(f"[{number}/{len(tables)}] {task.label}: not run")
            continue
        frames.append(task.table(store))
        log(f"[{number}/{len(tables)}] {task.label}: "
            + ("stored" if existed else f"computed in {time.perf_counter() - started:.1f} s"))
    return pd.concat(frames, ignore_index=True) if frames else None


# Reading the tables

PLATEAU_MARGIN = 0.1  # a loss this far below ln 10 has left the plateau


def landscape_comparability(config: LandscapeConfig) -> str:
    """Whether landscape runs under ``config`` compare with the report's (Table 11: :func:`landscape_config` at
    the full profile): "yes", or "no: " and each setting that differs (a training subset, another number of
    epochs, batch size, gap or set of learning rates)."""
    report = landscape_config(FULL)
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


def plateau_table(report_table: pd.DataFrame | None, paper_table: pd.DataFrame | None) -> pd.DataFrame:
    """When each model leaves the ln 10 plateau: one column per learning rate of the report's method (the window
    mean loss) and one per learning rate of the paper's (the training loss of the step); a method whose table is
    not stored (None) reads "not run"."""
    columns = {}
    for method, table in (("report's method", report_table), ("paper's method", paper_table)):
        if table is None:
            columns[method] = {model: NOT_RUN for model in landscape.MODELS}
    report_table = report_table if report_table is not None else pd.DataFrame(columns=["lr", "model"])
    paper_table = paper_table if paper_table is not None else pd.DataFrame(columns=["lr", "model"])
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
    because β early on is a ratio of small numbers). Indexed by (method, model); "not run" when ``table`` is
    None (not stored)."""
    if table is None:
        return pd.DataFrame([{"method": method, "model": model, "band over": band_over, "steps": NOT_RUN}
                             for model in landscape.MODELS]).set_index(["method", "model"])
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
    :func:`report_pattern` verdict under ``"shape"`` ("not run" when ``table`` is None: not stored)."""
    if table is None:
        return {"shape": NOT_RUN}
    medians = early_and_late(table, quantity)
    row: dict[str, object] = {f"{model}, {when}": float(f"{medians.loc[model, when]:.4g}")
                              for model in medians.index for when in medians.columns}
    row["shape"] = report_pattern(table, quantity)
    return row
