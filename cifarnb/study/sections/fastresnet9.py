"""Notebook 03, report section 1.4 (Tables 8-9, Fig 19): ResNet9, then FastResNet9's four tricks added one at a
time (pool before BN, label smoothing, ghost BN, flip TTA), and the report's claims (a) and (b)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ... import models
from ...plots import curves
from ...results import Run
from ...train import TrainConfig
from .. import recipes
from ..profiles import Profile
from ..reading import (BEST, COMPARABLE_HEADING, FULL_COLUMN, NOT_RUN, PRECISION_HEADING, TOLERANCE,
                       accuracy_at_verdict, column_heading, comparability, devices, mean_time_to, precisions,
                       primary_column, reached_by_verdict, reading, seconds_per_epoch, split_table)
from ..reference import Claim
from ..settings import (EARLIER_BAG_OF_TRICKS, EARLY_RESNET9_EPOCHS, FASTRESNET9_MODEL,
                        FASTRESNET9_TRAINING, LABEL_SMOOTHING, REPORT_EPOCHS, RESNET9_LR, RESNET9_MODEL, ZOO_SETTINGS)
from ..tasks import RunTask, run_tasks
from .model_zoo import zoo_config

NAME = "fastresnet9"
NOTEBOOK = "03_fastresnet9"
TITLE = "ResNet9 to FastResNet9, one trick at a time; claims (a) and (b) (report 1.4, Tables 8-9, Fig 19)"
ALIASES = ("resnet9",)
EPOCHS_FIELD = "resnet9_epochs"
PARAMETERS = ("backend", "ray_address", "gpus_per_run", "epochs", "n_train", "n_test")

LADDER_RECIPES = ("report", "plain")  # the report's code's FastResNet9 training; Table 6's plain one (main.py)
LADDER_RECIPE_NAMES = {"report": "the report's code (main_fastresnet9.py)", "plain": "plain recipe (main.py, Table 6)"}
EARLIER_RECIPE_NAMES = {"report": "earlier reading: bag-of-tricks trainer",
                        "plain": "earlier reading: plain recipe, one BN over 128"}


def trick_ladder(profile: Profile, recipe: str = "report") -> dict[str, TrainConfig]:
    """The report's ResNet9 turned into its FastResNet9 one step at a time (the ladder is ours; the report
    measured no step alone). Every step has the report's code's ResNet9 layout; then, in order, FastResNet9's
    model as its code builds it (a frozen patch-whitening stem, BN scales frozen at 1, logits / 8: none of them
    named in the report), and the report's four tricks: pool before BN, label smoothing, ghost BN (32), flip TTA.
    The last step is FastResNet9.

    ``recipe="report"``: every step trains as main_fastresnet9.py trains FastResNet9 (``FASTRESNET9_TRAINING``,
    without its label smoothing and TTA until their steps), so each step measures a change of model or trick,
    not of schedule. Its first step trains ResNet9's BN scales, which the code's rule for 1-D parameters puts at 64x
    the rate (the code freezes them): that step diverges (measured on a CPU in bf16: loss 1.5e12 in its first epoch,
    10% test accuracy), so under this recipe the ladder's gains start at its second step.
    ``recipe="plain"``: every step at ResNet9's plain settings (main.py: Table 6, lr 0.01, batch 128, plateau, BN
    over DataParallel's four pieces).
    """
    if recipe not in LADDER_RECIPES:
        raise ValueError(f"recipe={recipe!r} is not one of {', '.join(LADDER_RECIPES)}")
    if recipe == "plain":  # main.py: BN as nn.DataParallel on 4 GPUs runs it (bn_shards)
        base = recipes.plain("resnet9", **profile.sizes(profile.resnet9_epochs))
    else:  # main_fastresnet9.py trains on one GPU
        training = {**FASTRESNET9_TRAINING, "label_smoothing": 0.0, "tta_flip": False}
        base = TrainConfig(**{**training, **profile.sizes(profile.resnet9_epochs), "model": "resnet9",
                              "batch_size": profile.batch(FASTRESNET9_TRAINING["batch_size"]),
                              "model_options": dict(RESNET9_MODEL)})
    code_model = {**RESNET9_MODEL, **FASTRESNET9_MODEL}
    stem = base.replace(model_options=code_model)
    pooled = stem.replace(model_options={**code_model, "pool_before_bn": True})
    smoothed = pooled.replace(label_smoothing=LABEL_SMOOTHING)
    # fastresnet9 = resnet9 with pool before BN and ghost BN (ghost batches of 32), which keeps its own ghost
    # batches under DataParallel: no plain BN left to shard.
    fast = smoothed.replace(model="fastresnet9", model_options=code_model, bn_shards=None)
    return {
        "ResNet9": base,
        "+ the code's stem, frozen BN scales, logits / 8": stem,
        "+ pool before BN": pooled,
        "+ label smoothing": smoothed,
        "+ ghost BN (32)": fast,
        "+ flip TTA (= FastResNet9)": fast.replace(tta_flip=True),
    }


def earlier_trick_ladder(profile: Profile, recipe: str = "report") -> dict[str, TrainConfig]:
    """The ladder as it was read before the report's code was public (the stored runs of that reading keep their
    keys): ``"report"`` on the bag-of-tricks trainer's recipe (``EARLIER_BAG_OF_TRICKS``), ``"plain"`` on Table 6
    with BN over whole batches; every step on ResNet9 as it read then (learnable 3x3 stem, trainable BN scales,
    a biased last layer)."""
    if recipe not in LADDER_RECIPES:
        raise ValueError(f"recipe={recipe!r} is not one of {', '.join(LADDER_RECIPES)}")
    if recipe == "plain":
        base = profile.config(profile.resnet9_epochs, model="resnet9", **{**ZOO_SETTINGS, "lr": RESNET9_LR})
        scale = {}
    else:
        training = {**EARLIER_BAG_OF_TRICKS, "label_smoothing": 0.0, "tta_flip": False}
        base = TrainConfig(**{**training, **profile.sizes(profile.resnet9_epochs), "model": "resnet9",
                              "batch_size": EARLIER_BAG_OF_TRICKS["batch_size"]})
        scale = dict(EARLIER_BAG_OF_TRICKS["model_options"])
    pooled = base.replace(model_options={**scale, "pool_before_bn": True})
    smoothed = pooled.replace(label_smoothing=LABEL_SMOOTHING)
    fast = smoothed.replace(model="fastresnet9", model_options=scale)
    return {
        "ResNet9": base,
        "+ pool before BN": pooled,
        "+ label smoothing": smoothed,
        "+ ghost BN (32)": fast,
        "+ flip TTA (= FastResNet9)": fast.replace(tta_flip=True),
    }


def resnet9_configs(profile: Profile) -> dict[str, TrainConfig]:
    """Report Tables 8-9: ResNet9 (main.py, lr 0.01), FastResNet9 (main_fastresnet9.py) and the zoo's ResNet18,
    trained as long as the ResNet9s."""
    resnet18 = zoo_config(profile, "resnet18").replace(epochs=profile.resnet9_epochs)
    return {"ResNet9": trick_ladder(profile, "plain")["ResNet9"],
            "FastResNet9": trick_ladder(profile, "report")["+ flip TTA (= FastResNet9)"],
            "ResNet18": resnet18}


def earlier_resnet18(profile: Profile) -> TrainConfig:
    """The zoo's ResNet18 as it was trained before the report's code was public: BN over whole batches."""
    return resnet9_configs(profile)["ResNet18"].replace(bn_shards=None)


def tasks(profile: Profile, seed: int, first_seed: bool = True) -> list[RunTask]:
    """At ``seed``, table by table: Tables 8-9's four rows first (the report's own table; claims (a) and (b) read
    its two FastResNet9 rows, the ladders' tops), then the rest of the report's-code ladder, then the rest of the
    plain one; the ``fast`` recipe (the report ladder's top, so the same run) last, planned once by ``plan``."""
    report = run_tasks(NAME, trick_ladder(profile, "report"), seed, "ladder: ")
    plain = run_tasks(NAME, trick_ladder(profile, "plain"), seed, "plain ladder: ")
    others = run_tasks(NAME, {"ResNet18": resnet9_configs(profile)["ResNet18"],
                              "fast recipe": recipes.fast_for_profile(profile)}, seed)
    # tables_8_9_configs' rows, as the ladders label them: ResNet9, FastResNet9, FastResNet9 (plain), ResNet18.
    tables_8_9 = [plain[0], report[-1], plain[-1], others[0]]
    return [*tables_8_9, *(task for task in (*report, *plain, *others) if task not in tables_8_9)]


# What section 1.4.2 says each trick does (the report measured no step on its own).
REPORT_SAYS = {
    "ResNet9": "ResNet18 minus two residual blocks, GELU",
    "+ pool before BN": "much faster training, convergence slightly slower",
    "+ label smoothing": "faster training, better generalisation",
    "+ ghost BN (32)": "higher accuracy",
    "+ flip TTA (= FastResNet9)": "a little more time, higher accuracy",
    "+ the code's stem, frozen BN scales, logits / 8": "(not in the report; in its code)",
}


TIME_TARGET = 94.0  # the accuracy the bag-of-tricks trainer races to (DAWNBench's CIFAR-10 target)
PLAIN_FASTRESNET9 = "FastResNet9 (plain recipe)"
CLAIM_LETTERS = "abcdefgh"


def parameters_millions(config: TrainConfig) -> float:
    """Parameters of ``config``'s model in millions, as Tables 8-9 give them."""
    return models.count_parameters(models.build(config.model, **config.model_kwargs())) / 1e6


def tables_8_9_configs(profile: Profile, earlier: bool = False) -> dict[str, TrainConfig]:
    """The rows of Tables 8-9: ResNet9 (the plain ladder's first step), FastResNet9 (the report ladder's last),
    FastResNet9 under the plain recipe (an extra row) and the zoo's ResNet18 trained as long; ``earlier``: the
    same rows as read before the report's code was public (:func:`earlier_trick_ladder`)."""
    ladder = earlier_trick_ladder if earlier else trick_ladder
    report, plain = ladder(profile, "report"), ladder(profile, "plain")
    return {"ResNet9": plain["ResNet9"], "FastResNet9": report["+ flip TTA (= FastResNet9)"],
            PLAIN_FASTRESNET9: plain["+ flip TTA (= FastResNet9)"],
            "ResNet18": earlier_resnet18(profile) if earlier else resnet9_configs(profile)["ResNet18"]}


def resnet9_table(results: dict[str, list[Run]], configs: dict[str, TrainConfig], reference_rows: pd.DataFrame,
                  early_epoch: int, final_epoch: int) -> pd.DataFrame:
    """Tables 8-9: per row (``configs``, its runs in ``results``, maybe none) the report's parameters, accuracies
    after 10 and 200 epochs and seconds per epoch beside ours at ``early_epoch`` and ``final_epoch`` (the last
    epoch's, as the report quotes; the best of any epoch beside the final one), time to :data:`TIME_TARGET`, the
    devices, and whether the row compares with the report's two accuracy columns. ``reference_rows``:
    ``reference.resnet9()`` indexed by label; a row "X (...)" reads the report's row X."""
    rows = []
    for label, config in configs.items():
        runs = results.get(label, [])
        report = reference_rows.loc[label.split(" (")[0]]
        early, final = reading(runs, early_epoch), reading(runs, final_epoch)
        heading = column_heading(early.column)
        rows.append({
            "model": label, "seeds": len(runs),
            "report: params (M)": report["report_params_millions"],
            "ours: params (M)": round(parameters_millions(config), 2),
            f"report: test acc, epoch {EARLY_RESNET9_EPOCHS} (%)": report["report_test_acc_10_epochs"],
            f"ours: {heading}, epoch {early_epoch} (%)": str(early),
            f"ours: all 10,000 (JPEG-affected), epoch {early_epoch} (%)": str(reading(runs, early_epoch, FULL_COLUMN)),
            f"report: test acc, epoch {REPORT_EPOCHS} (%)": report["report_test_acc_200_epochs"],
            f"ours: {heading}, epoch {final_epoch} (%)": str(final),
            f"ours: best {heading} to epoch {final_epoch} (%)": str(reading(runs, final_epoch, statistic=BEST)),
            "report: s/epoch": report["report_seconds_per_epoch"],
            "ours: s/epoch": round(seconds_per_epoch(runs), 2) if runs else NOT_RUN,
            f"ours: time to {TIME_TARGET:g}% (s)": mean_time_to(runs, TIME_TARGET) if runs else NOT_RUN,
            "ours: device": devices(runs) if runs else NOT_RUN,
            PRECISION_HEADING: precisions(runs) if runs else NOT_RUN,
            f"{COMPARABLE_HEADING}, epoch {EARLY_RESNET9_EPOCHS}": comparability(runs, EARLY_RESNET9_EPOCHS),
            f"{COMPARABLE_HEADING}, epoch {REPORT_EPOCHS}": comparability(runs, REPORT_EPOCHS),
        })
    return pd.DataFrame(rows).set_index("model")


def resnet9_tables(results: dict[str, list[Run]], configs: dict[str, TrainConfig], reference_rows: pd.DataFrame,
                   early_epoch: int, final_epoch: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tables 8-9 (:func:`resnet9_table`) as two that a page holds: the accuracies beside the report's with
    whether each row compares, and the details (parameters, all 10,000 images, the best epoch, seconds per epoch,
    time to 94%, device)."""
    table = resnet9_table(results, configs, reference_rows, early_epoch, final_epoch)
    heading = next(column.removeprefix("ours: ").split(", epoch")[0] for column in table.columns
                   if column.startswith("ours: test acc"))
    comparison = ["seeds", f"report: test acc, epoch {EARLY_RESNET9_EPOCHS} (%)",
                  f"ours: {heading}, epoch {early_epoch} (%)", f"report: test acc, epoch {REPORT_EPOCHS} (%)",
                  f"ours: {heading}, epoch {final_epoch} (%)", f"{COMPARABLE_HEADING}, epoch {EARLY_RESNET9_EPOCHS}",
                  f"{COMPARABLE_HEADING}, epoch {REPORT_EPOCHS}"]
    return split_table(table, comparison)


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


def trick_ladder_tables(ladder_results: dict[str, dict[str, list[Run]]], report_says: dict[str, str],
                        epoch: int | None = None, names: dict[str, str] = LADDER_RECIPE_NAMES) -> pd.DataFrame:
    """Both recipes' :func:`ladder_table` at ``epoch``, one block per recipe (named by ``names``), each step saying
    whether its runs compare with the report's FastResNet9 reading at epoch 10, the earliest the report gives."""
    tables = {}
    for recipe, ladder in ladder_results.items():
        table = ladder_table(ladder, report_says, epoch)
        table[COMPARABLE_HEADING] = [comparability(runs, EARLY_RESNET9_EPOCHS) for runs in ladder.values()]
        tables[names.get(recipe, recipe)] = table
    return pd.concat(tables, names=["recipe", "step"])


def claims_table(ladder_results: dict[str, dict[str, list[Run]]], claims: list[Claim],
                 names: dict[str, str] = LADDER_RECIPE_NAMES) -> pd.DataFrame:
    """Each of the report's claims about FastResNet9 (``reference.fastresnet9_claims()``) checked on each
    recipe's FastResNet9 (its ladder's last step): what we found and the verdict (:func:`reached_by_verdict` for a
    "passes" claim, :func:`accuracy_at_verdict` for a "reaches" one). Runs on a subset make a claim not testable."""
    rows = []
    for recipe, ladder in ladder_results.items():
        fast = list(ladder.values())[-1]
        for letter, claim in zip(CLAIM_LETTERS, claims):
            check = reached_by_verdict if claim.kind == "passes" else accuracy_at_verdict
            found, verdict = check(fast, claim.accuracy, claim.epoch) if fast else (NOT_RUN, "not testable: not run")
            rows.append({"recipe": names.get(recipe, recipe),
                         "claim": f"({letter}) {claim.text.removeprefix('FastResNet9 ')}",
                         "ours": found, "verdict": verdict})
    return pd.DataFrame(rows).set_index(["recipe", "claim"])


def ladder_figure(ladder_results: dict[str, dict[str, list[Run]]], names: dict[str, str], title: str):
    """One panel per recipe: every step's test accuracy (primary column) per epoch, mean over seeds with the
    seeds' range shaded."""
    figure, axes = plt.subplots(1, len(ladder_results), figsize=(6.5 * len(ladder_results), 4.5), sharey=True,
                                squeeze=False)
    for ax, (recipe, ladder) in zip(axes[0], ladder_results.items()):
        curves.plot_curve(ladder, primary_column(next(iter(ladder.values()))), ax)
        ax.set_title(names.get(recipe, recipe))
        ax.legend(loc="lower right", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
