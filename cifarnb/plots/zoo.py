"""The model zoo's figures (notebook 02, report 1.3): accuracy per epoch, and accuracy against cost."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ..results import Run
from ..settings import EARLY_ZOO_EPOCHS, REPORT_EPOCHS
from .curves import plot_curve, scatter_labelled


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
    ``analysis.cost_points``) with the seeds' std as error bar, beside the report's (``report``:
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
