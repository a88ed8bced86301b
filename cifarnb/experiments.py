"""The report's experiments as TrainConfigs, one builder per section, sized by a Profile.

Notebooks ask here for "the configs of Table 2 at this profile", run them through the results store over the
profile's seeds, and tabulate them beside the report's numbers. Nothing here trains by itself except
:func:`run_grid` and :func:`landscape_tables`, which go through the results store.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import pandas as pd

from . import reference
from .profiles import Profile
from .results import ResultStore, Run, summarize
from .train import TrainConfig

# Report 1.1: ResNet18, 25 epochs, batch 128, lr 0.01, CE, wd 5e-4, ReLU, SGD(momentum 0.9), ReduceLROnPlateau.
ABLATION_BASELINE = dict(model="resnet18", lr=0.01, loss="cross_entropy", weight_decay=5e-4, activation="relu",
                         optimizer="sgd", momentum=0.9, scheduler="plateau")
# Report 1.3, Table 6: lr 0.1, otherwise as above, 200 epochs; activation left at each model's own default.
ZOO_SETTINGS = dict(lr=0.1, loss="cross_entropy", weight_decay=5e-4, optimizer="sgd", momentum=0.9,
                    scheduler="plateau")
# Report 1.4.1: ResNet9 starts at lr 0.01, everything else as the zoo.
RESNET9_LR = 0.01
# Report 1.4.2 gives no smoothing factor; 0.2 is the value of Page's ResNet9, which the report's tricks follow.
LABEL_SMOOTHING = 0.2
# Report 2.1: plain SGD (no momentum, no L2, no decay), lr 0.1, batch 128, 20 epochs.
VGG_SETTINGS = dict(lr=0.1, momentum=0.0, weight_decay=0.0, optimizer="sgd", scheduler="none", loss="cross_entropy")


def _sized(profile: Profile, epochs: int, **settings) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=profile.batch_size, n_train=profile.n_train, n_test=profile.n_test,
                       channels_last=profile.channels_last, **settings)


def ablation_configs(profile: Profile, group: str) -> dict[str, TrainConfig]:
    """Report Tables 1-5: the baseline with one field varied; keys are the report's labels."""
    table = reference.ablation(group)
    field = reference.ABLATION_FIELDS[group]
    return {
        row.label: _sized(profile, profile.ablation_epochs, **{**ABLATION_BASELINE, field: row.value})
        for row in table.itertuples()
    }


def zoo_config(profile: Profile, model: str) -> TrainConfig:
    """Report Table 7: one model at the common settings of Table 6."""
    return _sized(profile, profile.zoo_epochs, model=model, **ZOO_SETTINGS)


def trick_ladder(profile: Profile) -> dict[str, TrainConfig]:
    """ResNet9 plus the report's four FastResNet9 tricks, added one at a time (the last step is FastResNet9)."""
    base = _sized(profile, profile.resnet9_epochs, model="resnet9", **{**ZOO_SETTINGS, "lr": RESNET9_LR})
    pooled = base.replace(model_options={"pool_before_bn": True})
    smoothed = pooled.replace(label_smoothing=LABEL_SMOOTHING)
    fast = smoothed.replace(model="fastresnet9", model_options={})  # fastresnet9 = pool before BN + ghost BN
    return {
        "ResNet9": base,
        "+ pool before BN": pooled,
        "+ label smoothing": smoothed,
        "+ ghost BN (32)": fast,
        "+ flip TTA (= FastResNet9)": fast.replace(tta_flip=True),
    }


def resnet9_configs(profile: Profile) -> dict[str, TrainConfig]:
    """Report Tables 8-9: ResNet9, FastResNet9 (report recipe) and the zoo's ResNet18."""
    ladder = trick_ladder(profile)
    resnet18 = zoo_config(profile, "resnet18").replace(epochs=profile.resnet9_epochs)
    return {"ResNet9": ladder["ResNet9"], "FastResNet9": ladder["+ flip TTA (= FastResNet9)"], "ResNet18": resnet18}


def vgg_configs(profile: Profile) -> dict[str, TrainConfig]:
    """Report 2.1 (Fig 28): VGG-A with and without BatchNorm."""
    return {label: _sized(profile, profile.vgg_epochs, model=model, **VGG_SETTINGS)
            for label, model in (("VGG-A", "vgg_a"), ("VGG-A + BN", "vgg_a_bn"))}


def run_grid(store: ResultStore, configs: dict[str, TrainConfig], seeds, *, device: str = "auto",
             progress: bool = False, log: Callable[[str], None] = print) -> dict[str, list[Run]]:
    """Every config over every seed, through the store (finished runs load, interrupted ones resume).

    Prints one line per run so a long notebook shows where it is.
    """
    results: dict[str, list[Run]] = {}
    total, done = len(configs) * len(seeds), 0
    for label, config in configs.items():
        results[label] = []
        for seed in seeds:
            done += 1
            seeded = config.replace(seed=seed, device=device)
            started, existed = time.perf_counter(), store.load(seeded) is not None
            run = store.run(seeded, progress=progress)
            how = "stored" if existed else f"trained in {time.perf_counter() - started:.1f} s"
            log(f"[{done}/{total}] {label} (seed {seed}): {how}, final test acc {run.final('test_acc'):.2f}%"
                + (f", DIVERGED at epoch {run.diverged_epoch}" if run.diverged_epoch else ""))
            results[label].append(run)
    return results


def measure(runs: list[Run], column: str = "test_acc", epoch: int | None = None):
    """Mean ± std over seeds of ``column`` at ``epoch`` (1-based; None: the last epoch)."""
    return summarize(r.final(column) if epoch is None else r.at_epoch(epoch, column) for r in runs)


def comparison_table(results: dict[str, list[Run]], measures: dict[str, tuple[str, int | None]],
                     reference_rows: pd.DataFrame | None = None, reference_columns: dict[str, str] | None = None,
                     key: str = "label") -> pd.DataFrame:
    """One row per label: our mean ± std for each measure (name -> (history column, epoch)) beside the report's.

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
            row[heading] = str(measure(runs, column, epoch))
        rows.append(row)
    return pd.DataFrame(rows).set_index(key)


def seconds_per_epoch(runs: list[Run]) -> float:
    """Mean training seconds per epoch over every epoch of every run (evaluation excluded)."""
    seconds = [row["seconds"] for run in runs for row in run.history]
    return sum(seconds) / len(seconds) if seconds else math.nan


def landscape_config(profile: Profile, device: str = "auto"):
    """Report 2.2 (Figs 30-32) and the paper's Fig. 4: VGG-A with and without BN, plain SGD, per-step measures."""
    from .landscape import LandscapeConfig

    return LandscapeConfig(learning_rates=tuple(profile.landscape_learning_rates), epochs=profile.vgg_epochs,
                           batch_size=profile.batch_size, gap=profile.landscape_gap,
                           n_train=profile.landscape_n_train, device=device)


def first_epoch_reaching(runs: list[Run], accuracy: float, column: str = "test_acc"):
    """Mean ± std over seeds of the first epoch whose ``column`` reaches ``accuracy`` (runs that never do: NaN)."""
    epochs = [run.first_epoch_reaching(accuracy, column) for run in runs]
    return summarize(math.nan if e is None else float(e) for e in epochs), sum(e is not None for e in epochs)


def landscape_tables(store: ResultStore, config, method: str, *, device: str = "auto", probe_every: int | None = None,
                     log: Callable[[str], None] = print) -> pd.DataFrame:
    """The landscape measurements of one method, each unit computed once and cached in ``store``.

    ``method="report"``: every (model, lr) of ``config``; ``"paper"``: every model at the paper's lr 0.1, probed
    every ``probe_every`` steps (default ``config.gap``). A unit's key is ``config`` narrowed to that model and lr,
    with the device left out, so tables made on a GPU are found again on a CPU machine and changing the list of
    learning rates keeps the tables already made.
    """
    import dataclasses
    import functools

    from . import landscape
    from .data import load_cifar10

    if method not in ("report", "paper"):
        raise ValueError(f"method={method!r} is not one of report, paper")
    rates = config.learning_rates if method == "report" else (landscape.PAPER_LEARNING_RATE,)
    probe_every = config.gap if probe_every is None else probe_every
    etas = landscape.paper_etas(landscape.PAPER_LEARNING_RATE)
    # Read the training subset only if some unit has to be computed.
    data = functools.cache(lambda: load_cifar10(config.data_root, n_train=config.n_train, seed=config.subset_seed))
    units = [(model, lr) for model in config.models for lr in rates]
    frames = []
    for number, (model, lr) in enumerate(units, 1):
        unit = dataclasses.replace(config, device="auto", models=(model,), learning_rates=(lr,))
        key = {**dataclasses.asdict(unit), "method": method}
        if method == "paper":
            key.update(probe_every=probe_every, etas=list(etas))
        on_device = dataclasses.replace(unit, device=device)

        def compute(model=model, lr=lr, on_device=on_device):
            if method == "report":
                return landscape.run_report_method(on_device, model, lr, data())
            return landscape.run_paper_method(on_device, model, lr, probe_every, etas, data())

        name = f"landscape_{method}_{model}_lr{lr:g}"
        started, existed = time.perf_counter(), store.table_path(name, key).exists()
        frames.append(store.cached_table(name, key, compute))
        log(f"[{number}/{len(units)}] {method}'s method, {model} lr {lr:g}: "
            + ("stored" if existed else f"computed in {time.perf_counter() - started:.1f} s"))
    return pd.concat(frames, ignore_index=True)


def feature_map_configs(profile: Profile, seed: int) -> dict[str, TrainConfig]:
    """Report 1.5: the models whose first layers are drawn, i.e. the runs of Tables 8-9 and Table 7 (one seed)."""
    nine = resnet9_configs(profile)
    configs = {"FastResNet9": nine["FastResNet9"], "ResNet9": nine["ResNet9"],
               "ResNet18": zoo_config(profile, "resnet18")}
    return {label: config.replace(seed=seed) for label, config in configs.items()}
