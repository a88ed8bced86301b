"""Notebook 01, report section 1.1 (Tables 1-5, Figs 2-6): ResNet18 for 25 epochs from one baseline, changing
one choice at a time (loss, weight decay, activation, optimizer, learning-rate schedule)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ...plots import curves
from ...results import Run
from ...train.execution import steps_per_epoch
from ...train.optim import lr_schedule
from .. import reference
from ..profiles import Profile, get as get_profile
from ..reading import BEST, NOT_RUN, PRIMARY, column_heading, comparison_table, measure, primary_column
from ..settings import ABLATION_BASELINE, ABLATION_EPOCHS, REPORT_SCHEDULES
from ..tasks import RunTask, run_tasks

NAME = "optimize_resnet18"
NOTEBOOK = "01_optimize_resnet18"
TITLE = "ResNet18 ablations: loss, weight decay, activation, optimizer, LR schedule (report 1.1, Tables 1-5)"
ALIASES = ("ablations",)
EPOCHS_FIELD = "ablation_epochs"
PARAMETERS = ("backend", "ray_address", "gpus_per_run", "epochs", "n_train", "n_test")

GROUPS = {"loss": "Table 1 / Fig 2: loss function", "weight_decay": "Table 2 / Fig 3: weight decay",
          "activation": "Table 3 / Fig 4: activation", "optimizer": "Table 4 / Fig 5: optimizer",
          "scheduler": "Table 5 / Fig 6: learning-rate schedule"}


def ablation_configs(profile: Profile, group: str):
    """Report Tables 1-5: the baseline with one field varied (a schedule with main.py's parameters for it,
    ``settings.REPORT_SCHEDULES``); keys are the report's labels."""
    table = reference.ablation(group)
    field = reference.ABLATION_FIELDS[group]
    return {row.label: profile.config(profile.ablation_epochs, **{
                **ABLATION_BASELINE, field: row.value,
                **(REPORT_SCHEDULES.get(row.value, {}) if field == "scheduler" else {})})
            for row in table.itertuples()}


def tasks(profile: Profile, seed: int, first_seed: bool = True) -> list[RunTask]:
    """Every ablation run at ``seed`` (the baseline, shared by the five groups, once)."""
    return [task for group in reference.ABLATION_FIELDS
            for task in run_tasks(NAME, ablation_configs(profile, group), seed, f"{group}: ")]


def ablation_table(results: dict[str, list[Run]], group: str) -> pd.DataFrame:
    """One of Tables 1-5: per setting the report's train and test accuracy beside ours, and whether the row
    compares. The report quotes the last epoch's accuracies (see ``docs/assumptions.md``): ours are the last
    epoch's (train; the test accuracy that compares with the report's, with its error; all test images), and the
    best test accuracy of any epoch beside them (main.py's "Best Acc")."""
    heading = column_heading(primary_column(next(iter(results.values()))))
    table = comparison_table(
        results,
        measures={"ours: train acc (%)": ("train_acc", None), f"ours: {heading} (%)": (PRIMARY, None),
                  f"ours: best {heading} (%)": (PRIMARY, None, BEST),
                  "ours: test acc, all test images (%)": ("test_acc", None)},
        reference_rows=reference.ablation(group),
        reference_columns={"report: train acc (%)": "report_train_acc", "report: test acc (%)": "report_test_acc"},
        report_epochs=ABLATION_EPOCHS,
    )
    table.index.name = GROUPS[group].split(":")[1].strip()
    return table


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
        ours = {label: measure(runs, "test_acc") for label, runs in by_label.items() if runs}
        best_ours = max(ours, key=lambda label: ours[label].mean) if ours else None
        report = reference.ablation(group).set_index("label")["report_test_acc"]
        choice = report_choice(group)
        rows.append({"group": group, "report's choice": choice, "report's best": report.idxmax(),
                     "our best (mean test acc)": f"{best_ours} ({ours[best_ours]})" if ours else NOT_RUN,
                     "our choice's test acc": str(ours[choice]) if choice in ours else NOT_RUN})
    return pd.DataFrame(rows).set_index("group")


def group_figure(results: dict[str, list[Run]], group: str, profile_name: str):
    """Figs 2-6: the learning curves of one group's settings (mean over seeds, range shaded)."""
    return curves.learning_curves(results, title=f"ResNet18, {GROUPS[group]} (profile {profile_name}, mean and "
                                  "seed range)")


def scheduler_lr_figure(results: dict[str, list[Run]], profile_name: str):
    """Fig 6's learning rates: the five schedules over the report's 25 epochs as the configs give them (the
    plateau scheduler fed a loss that never improves: its fastest cut), beside the rates and test accuracy our
    runs recorded."""
    figure, (preview_ax, lr_ax, acc_ax) = plt.subplots(1, 3, figsize=(15, 4))
    for label, config in ablation_configs(get_profile("full"), "scheduler").items():
        preview_ax.plot(range(1, config.epochs + 1), lr_schedule(config, steps_per_epoch(config)), label=label)
    preview_ax.set(yscale="log", xlabel="epoch", ylabel="learning rate",
                   title="the five schedules at the report's 25 epochs\n(plateau: loss never improving, fastest cut)")
    curves.plot_curve(results, "lr", lr_ax, log_y=True)
    curves.plot_curve(results, "test_acc", acc_ax)
    lr_ax.set_title(f"learning rate in our runs ({profile_name})")
    acc_ax.set_title(f"test accuracy in our runs ({profile_name})")
    preview_ax.legend()
    figure.tight_layout()
    return figure
