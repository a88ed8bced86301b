"""The report's experiments as TrainConfigs, one builder per section, sized by a Profile.

Notebooks ask here for "the configs of Table 2 at this profile", run them through the results store over the
profile's seeds, and tabulate them beside the report's numbers. Nothing here trains by itself except
:func:`run_grid` and :func:`landscape_tables`, which go through the results store.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from . import landscape, recipes, reference
from .landscape import LandscapeConfig
from .profiles import Profile
from .results import ResultStore, Run
from .settings import (ABLATION_BASELINE, BAG_OF_TRICKS, LABEL_SMOOTHING, PLATEAU_READINGS, RESNET9_LR,
                       VGG_SETTINGS,
                       VGG_TEMPLATE, ZOO_SETTINGS)
from .train import TrainConfig

LADDER_RECIPES = ("report", "plain")  # FastResNet9's bag-of-tricks training (the report's), Table 6's plain one
VGG_PIPELINES = ("template", "augmented")  # the course template's (the report's), crop + flip with CIFAR mean/std


def _sizes(profile: Profile, epochs: int) -> dict:
    """How much of the report a profile runs: epochs, batch size, data subset (and channels_last, execution)."""
    return dict(epochs=epochs, batch_size=profile.batch_size, n_train=profile.n_train, n_test=profile.n_test,
                channels_last=profile.channels_last)


def _sized(profile: Profile, epochs: int, **settings) -> TrainConfig:
    return TrainConfig(**{**_sizes(profile, epochs), **settings})


def ablation_configs(profile: Profile, group: str) -> dict[str, TrainConfig]:
    """Report Tables 1-5: the baseline with one field varied; keys are the report's labels."""
    table = reference.ablation(group)
    field = reference.ABLATION_FIELDS[group]
    return {
        row.label: _sized(profile, profile.ablation_epochs, **{**ABLATION_BASELINE, field: row.value})
        for row in table.itertuples()
    }


def zoo_config(profile: Profile, model: str) -> TrainConfig:
    """Report Table 7: one model at the common settings of Table 6 (WideResNets with dropout 0.3)."""
    return recipes.plain(model, **_sizes(profile, profile.zoo_epochs))


def zoo_plateau_readings(profile: Profile, model: str) -> dict[str, TrainConfig]:
    """``model``'s zoo run under each reading of what the plateau scheduler watches (``settings.PLATEAU_READINGS``)."""
    return {reading: zoo_config(profile, model).replace(plateau_metric=metric)
            for reading, metric in PLATEAU_READINGS.items()}


def stored_grid(store: ResultStore, configs: dict[str, TrainConfig], seeds) -> dict[str, list[Run]]:
    """The runs of every config over ``seeds`` that ``store`` holds finished; trains nothing (evidence tables)."""
    found = {label: [store.load(config.replace(seed=seed)) for seed in seeds] for label, config in configs.items()}
    return {label: [run for run in runs if run is not None and run.finished] for label, runs in found.items()}


def trick_ladder(profile: Profile, recipe: str = "report") -> dict[str, TrainConfig]:
    """ResNet9 plus the report's four FastResNet9 tricks, added one at a time (the last step is FastResNet9).

    ``recipe="report"``: every step trains the way the report's FastResNet9 did (``settings.BAG_OF_TRICKS``:
    batch 512, Nesterov, warm-up/decay schedule, EMA, logits / 8), so each step measures a trick, not a schedule.
    ``recipe="plain"``: every step at ResNet9's plain settings (Table 6, lr 0.01, batch 128, plateau).
    """
    if recipe not in LADDER_RECIPES:
        raise ValueError(f"recipe={recipe!r} is not one of {', '.join(LADDER_RECIPES)}")
    if recipe == "plain":
        base = _sized(profile, profile.resnet9_epochs, model="resnet9", **{**ZOO_SETTINGS, "lr": RESNET9_LR})
        scale = {}
    else:
        # The recipe without the two tricks that live in training (label smoothing, flip TTA).
        training = {**BAG_OF_TRICKS, "label_smoothing": 0.0, "tta_flip": False}
        base = TrainConfig(**{**training, **_sizes(profile, profile.resnet9_epochs), "model": "resnet9",
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


def vgg_configs(profile: Profile, pipeline: str = "template") -> dict[str, TrainConfig]:
    """Report 2.1 (Fig 28): VGG-A with and without BatchNorm.

    ``pipeline="template"`` (the report's): the course template's data (no augmentation, pixels to [-1, 1]) and
    initialisation (Xavier normal); ``"augmented"``: random crop and flip, CIFAR-10 mean/std, PyTorch's default
    initialisation, as every other section trains.
    """
    if pipeline not in VGG_PIPELINES:
        raise ValueError(f"pipeline={pipeline!r} is not one of {', '.join(VGG_PIPELINES)}")
    data = VGG_TEMPLATE if pipeline == "template" else {}
    return {label: _sized(profile, profile.vgg_epochs, model=model, **VGG_SETTINGS, **data)
            for label, model in (("VGG-A", "vgg_a"), ("VGG-A + BN", "vgg_a_bn"))}


def run_grid(store: ResultStore, configs: dict[str, TrainConfig], seeds, *, device: str = "auto",
             data_root: str | None = None, progress: bool = False,
             log: Callable[[str], None] = print) -> dict[str, list[Run]]:
    """Every config over every seed, through the store (finished runs load, interrupted ones resume).

    ``device`` and ``data_root`` (the data folder; None: ``$CIFARNB_DATA``, then ./data) are execution fields:
    they do not change which run is meant.

    Prints one line per run so a long notebook shows where it is.
    """
    results: dict[str, list[Run]] = {}
    total, done = len(configs) * len(seeds), 0
    for label, config in configs.items():
        results[label] = []
        for seed in seeds:
            done += 1
            seeded = config.replace(seed=seed, device=device,
                                    data_root=config.data_root if data_root is None else data_root)
            started, existed = time.perf_counter(), store.load(seeded) is not None
            run = store.run(seeded, progress=progress)
            how = "stored" if existed else f"trained in {time.perf_counter() - started:.1f} s"
            log(f"[{done}/{total}] {label} (seed {seed}): {how}, final test acc {run.final('test_acc'):.2f}%"
                + (f", DIVERGED at epoch {run.diverged_epoch}" if run.diverged_epoch else ""))
            results[label].append(run)
    return results


def landscape_config(profile: Profile, device: str = "auto") -> LandscapeConfig:
    """Report 2.2 (Figs 30-32) and the paper's Fig. 4: VGG-A with and without BN, plain SGD, per-step measures."""
    return LandscapeConfig(learning_rates=tuple(profile.landscape_learning_rates), epochs=profile.vgg_epochs,
                           batch_size=profile.batch_size, gap=profile.landscape_gap,
                           n_train=profile.landscape_n_train, device=device)


@dataclass(frozen=True)
class LandscapeUnit:
    """One table of the landscape experiments: one method, one model, one learning rate, cached in the store.

    Its key is the landscape config narrowed to that model and lr, with the device left out, so tables made on a
    GPU are found again on a CPU machine and changing the list of learning rates keeps the tables already made.
    """

    method: str  # "report" or "paper"
    config: LandscapeConfig  # narrowed: one model, one lr, device "auto"
    probe_every: int  # paper's method only

    @property
    def model(self) -> str:
        return self.config.models[0]

    @property
    def lr(self) -> float:
        return self.config.learning_rates[0]

    @property
    def name(self) -> str:
        return f"landscape_{self.method}_{self.model}_lr{self.lr:g}"

    @property
    def label(self) -> str:
        return f"{self.method}'s method, {self.model} lr {self.lr:g}"

    def key(self) -> dict:
        key = {**dataclasses.asdict(self.config), "method": self.method}
        if self.method == "report":
            key["quantities"] = list(landscape.REPORT_QUANTITIES)
        else:
            key.update(probe_every=self.probe_every, etas=list(landscape.paper_etas(landscape.PAPER_LEARNING_RATE)))
        return key

    def stored(self, store: ResultStore) -> bool:
        return store.table_path(self.name, self.key()).exists()

    def table(self, store: ResultStore, device: str = "auto", wait: bool = True,
              data_root: str | None = None) -> pd.DataFrame | None:
        """The unit's table, computed (on ``device``) only if the store lacks it. While another process computes
        it: waits, or returns None if not ``wait``. The images are read only to compute (``load_cifar10`` keeps
        the data set in memory, so a sweep of units reads it once)."""
        on_device = dataclasses.replace(self.config, device=device,
                                        data_root=self.config.data_root if data_root is None else data_root)

        def compute():
            if self.method == "report":
                return landscape.run_report_method(on_device, self.model, self.lr)
            etas = landscape.paper_etas(landscape.PAPER_LEARNING_RATE)
            return landscape.run_paper_method(on_device, self.model, self.lr, self.probe_every, etas)

        return store.cached_table(self.name, self.key(), compute, wait=wait)


def landscape_units(config: LandscapeConfig, method: str, probe_every: int | None = None) -> list[LandscapeUnit]:
    """``method="report"``: every (model, lr) of ``config``; ``"paper"``: every model at the paper's lr 0.1,
    probed every ``probe_every`` steps (default ``config.gap``)."""
    if method not in ("report", "paper"):
        raise ValueError(f"method={method!r} is not one of report, paper")
    rates = config.learning_rates if method == "report" else (landscape.PAPER_LEARNING_RATE,)
    probe_every = config.gap if probe_every is None else probe_every
    return [LandscapeUnit(method, dataclasses.replace(config, device="auto", models=(model,), learning_rates=(lr,)),
                          probe_every)
            for model in config.models for lr in rates]


def landscape_tables(store: ResultStore, config: LandscapeConfig, method: str, *, device: str = "auto",
                     data_root: str | None = None, probe_every: int | None = None,
                     log: Callable[[str], None] = print) -> pd.DataFrame:
    """The landscape measurements of one method (:func:`landscape_units`), each computed once and cached."""
    units = landscape_units(config, method, probe_every)
    frames = []
    for number, unit in enumerate(units, 1):
        started, existed = time.perf_counter(), unit.stored(store)
        frames.append(unit.table(store, device, data_root=data_root))
        log(f"[{number}/{len(units)}] {unit.label}: "
            + ("stored" if existed else f"computed in {time.perf_counter() - started:.1f} s"))
    return pd.concat(frames, ignore_index=True)


def feature_map_configs(profile: Profile, seed: int) -> dict[str, TrainConfig]:
    """Report 1.5: the models whose first layers are drawn, i.e. the runs of Tables 8-9 and Table 7 (one seed)."""
    nine = resnet9_configs(profile)
    configs = {"FastResNet9": nine["FastResNet9"], "ResNet9": nine["ResNet9"],
               "ResNet18": zoo_config(profile, "resnet18")}
    return {label: config.replace(seed=seed) for label, config in configs.items()}
