"""Notebook 03, report section 1.4 (Tables 8-9, Fig 19): ResNet9, then FastResNet9's four tricks added one at a
time (pool before BN, label smoothing, ghost BN, flip TTA), and the report's claims (a) and (b)."""

from __future__ import annotations

import pandas as pd

from ... import models
from ...results import Run
from ...train import TrainConfig
from .. import recipes
from ..profiles import Profile
from ..reading import (COMPARABLE_HEADING, FULL_COLUMN, TOLERANCE, accuracy_at_verdict, column_heading,
                       comparability, devices, mean_time_to, reached_by_verdict, reading, seconds_per_epoch)
from ..reference import Claim
from ..settings import BAG_OF_TRICKS, EARLY_RESNET9_EPOCHS, LABEL_SMOOTHING, REPORT_EPOCHS, RESNET9_LR, ZOO_SETTINGS
from ..tasks import RunTask, run_tasks
from .model_zoo import zoo_config

NAME = "fastresnet9"
NOTEBOOK = "03_fastresnet9"
TITLE = "ResNet9 to FastResNet9, one trick at a time; claims (a) and (b) (report 1.4, Tables 8-9, Fig 19)"
ALIASES = ("resnet9",)
EPOCHS_FIELD = "resnet9_epochs"
PARAMETERS = ("backend", "ray_address", "gpus_per_run", "epochs", "n_train", "n_test")

LADDER_RECIPES = ("report", "plain")  # FastResNet9's bag-of-tricks training (the report's), Table 6's plain one


def trick_ladder(profile: Profile, recipe: str = "report") -> dict[str, TrainConfig]:
    """ResNet9 plus the report's four FastResNet9 tricks, added one at a time (the last step is FastResNet9).

    ``recipe="report"``: every step trains the way the report's FastResNet9 did (``settings.BAG_OF_TRICKS``:
    batch 512, Nesterov, warm-up/decay schedule, EMA, logits / 8), so each step measures a trick, not a schedule.
    ``recipe="plain"``: every step at ResNet9's plain settings (Table 6, lr 0.01, batch 128, plateau).
    """
    if recipe not in LADDER_RECIPES:
        raise ValueError(f"recipe={recipe!r} is not one of {', '.join(LADDER_RECIPES)}")
    if recipe == "plain":
        base = profile.config(profile.resnet9_epochs, model="resnet9", **{**ZOO_SETTINGS, "lr": RESNET9_LR})
        scale = {}
    else:
        # The recipe without the two tricks that live in training (label smoothing, flip TTA).
        training = {**BAG_OF_TRICKS, "label_smoothing": 0.0, "tta_flip": False}
        base = TrainConfig(**{**training, **profile.sizes(profile.resnet9_epochs), "model": "resnet9",
                              "batch_size": BAG_OF_TRICKS["batch_size"]})
        scale = dict(BAG_OF_TRICKS["model_options"])
    pooled = base.replace(model_options={**scale, "pool_before_bn": True})
    smoothed = pooled.replace(label_smoothing=LABEL_SMOOTHING)
    # fastresnet9 = resnet9 with pool before BN and ghost BN (ghost batches of 32)
    fast = smoothed.replace(model="fastresnet9", model_options=scale)
    return {
        "ResNet9": base,
        "+ pool before BN": pooled,
        "+ label smoothing": smoothed,
        "+ ghost BN (32)": fast,
        "+ flip TTA (= FastResNet9)": fast.replace(tta_flip=True),
    }


def resnet9_configs(profile: Profile) -> dict[str, TrainConfig]:
    """Report Tables 8-9: ResNet9 (plain settings, lr 0.01), FastResNet9 (bag-of-tricks) and the zoo's ResNet18."""
    resnet18 = zoo_config(profile, "resnet18").replace(epochs=profile.resnet9_epochs)
    return {"ResNet9": trick_ladder(profile, "plain")["ResNet9"],
            "FastResNet9": trick_ladder(profile, "report")["+ flip TTA (= FastResNet9)"],
            "ResNet18": resnet18}


def tasks(profile: Profile, seed: int, first_seed: bool = True) -> list[RunTask]:
    """Both trick ladders, the zoo's ResNet18 trained as long, and the ``fast`` recipe (the bag-of-tricks
    ladder's top, so the same run) at ``seed``."""
    return [*run_tasks(NAME, trick_ladder(profile, "report"), seed, "ladder: "),
            *run_tasks(NAME, trick_ladder(profile, "plain"), seed, "plain ladder: "),
            *run_tasks(NAME, {"ResNet18": resnet9_configs(profile)["ResNet18"],
                              "fast recipe": recipes.fast_for_profile(profile)}, seed)]


# What section 1.4.2 says each trick does (the report measured no step on its own).
REPORT_SAYS = {
    "ResNet9": "ResNet18 minus two residual blocks, GELU",
    "+ pool before BN": "much faster training, convergence slightly slower",
    "+ label smoothing": "faster training, better generalisation",
    "+ ghost BN (32)": "higher accuracy",
    "+ flip TTA (= FastResNet9)": "a little more time, higher accuracy",
}


TIME_TARGET = 94.0  # the accuracy the bag-of-tricks trainer races to (DAWNBench's CIFAR-10 target)
LADDER_RECIPE_NAMES = {"report": "bag-of-tricks recipe (the report's)", "plain": "plain recipe (Table 6, lr 0.01)"}
PLAIN_FASTRESNET9 = "FastResNet9 (plain recipe)"
CLAIM_LETTERS = "abcdefgh"


def parameters_millions(config: TrainConfig) -> float:
    """Parameters of ``config``'s model in millions, as Tables 8-9 give them."""
    return models.count_parameters(models.build(config.model, **config.model_kwargs())) / 1e6


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
