"""Fill the results store for report sections without Jupyter: ``cifarnb sweep --section zoo --profile quick``.

Each section trains exactly the runs its notebook asks for (same configs, same keys), so a store filled here
(on a GPU machine, say, brought back as one archive and merged) makes the notebook render without retraining.

* **Plan.** :func:`plan` lists a sweep's tasks (training runs, landscape tables, feature maps): sections in the
  order given, the first seed of every run before any second seed.
* **Claims.** A process claims a task through the store (a file lock) before computing it, so ``workers=N``
  processes sharing one device, or two commands on one store, never compute the same result twice.
* **Budget.** With a deadline, no task starts that cannot finish before it (its duration estimated from the
  store's measured seconds per epoch on this device, else from its FLOPs); the sweep then says what is left.
* **Resume.** Finished results load, interrupted runs resume from their checkpoint: stop and rerun freely.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from . import experiments, recipes, reference
from .landscape import PAPER_ETA_COUNT
from .profiles import Profile
from .results import ResultStore
from .train import TrainConfig

SECTIONS = ("ablations", "zoo", "resnet9", "features", "vgg", "landscape")
# The order a device session fills them in when none is given: the sections whose claims need real numbers most.
PRIORITY = ("resnet9", "vgg", "landscape", "features", "ablations", "zoo")

# For a task never timed on this device: deliberately slow guesses (they only decide what not to start near the
# deadline) of sustained training FLOP/s and of the fixed cost of a step (kernel launches, Python).
GUESSED_FLOPS = {"cuda": 20e12, "cpu": 2e10}
GUESSED_STEP_SECONDS = {"cuda": 0.015, "cpu": 0.005}
SAFETY = 1.25  # measured seconds per epoch vary with what else shares the device
SETUP_SECONDS = 15.0  # data upload, model build, cuDNN autotuning


@dataclass(frozen=True, eq=False)
class Task:
    """One result a section needs: a training run, a landscape table, or one trained model's feature maps."""

    section: str
    label: str
    kind: str  # "run" | "landscape" | "features"
    config: TrainConfig | None = None  # the run (for "features": the run whose model is drawn)
    unit: experiments.LandscapeUnit | None = None

    @property
    def identity(self) -> tuple[str, str]:
        """The result it makes: two tasks with one identity are one task."""
        if self.kind == "landscape":
            return self.kind, f"{self.unit.name}-{json.dumps(self.unit.key(), sort_keys=True, default=str)}"
        return self.kind, f"{self.config.model}-{self.config.key()}"

    def stored(self, store: ResultStore) -> bool:
        if self.kind == "landscape":
            return self.unit.stored(store)
        if self.kind == "features":
            from .features import feature_maps_path

            return feature_maps_path(store, self.config).exists()
        return store.load(self.config) is not None

    def compute(self, store: ResultStore, device: str, wait: bool = True, data_root: str | None = None) -> str | None:
        """Compute into ``store`` (or load); a few words on how, or None while another process holds the claim."""
        started = time.perf_counter()
        if data_root is None:  # the config's own data folder (itself None: $CIFARNB_DATA, then ./data)
            data_root = self.config.data_root if self.config is not None else None
        if self.kind == "run":
            run = store.run(self.config.replace(device=device, data_root=data_root), progress=False, wait=wait)
            if run is None:
                return None
            how = f"trained in {time.perf_counter() - started:.1f} s" if run.trained_here else "stored meanwhile"
            return (f"{how}, final test acc {run.final('test_acc'):.2f}%"
                    + (f", DIVERGED at epoch {run.diverged_epoch}" if run.diverged_epoch else ""))
        if self.kind == "landscape":
            table = self.unit.table(store, device, wait=wait, data_root=data_root)
            return None if table is None else f"computed in {time.perf_counter() - started:.1f} s"
        from .features import stored_feature_maps, stored_test_image

        image, _ = stored_test_image(store, root=data_root)
        on_device = self.config.replace(device=device, data_root=data_root)
        maps, how = stored_feature_maps(store, on_device, image, wait=wait)
        return None if maps is None else f"feature maps {how}"

    def timing_config(self) -> TrainConfig:
        """The training run whose measured seconds per epoch time this task (for a landscape table: a run of the
        same model, batch size and data, the VGG runs it is measured on)."""
        if self.kind != "landscape":
            return self.config
        unit = self.unit
        return TrainConfig(model=unit.model, epochs=unit.config.epochs, batch_size=unit.config.batch_size,
                           n_train=unit.config.n_train, n_test=1, device="cpu")

    def estimate_seconds(self, store: ResultStore, times: EpochTimes, device_label: str, device_type: str) -> float:
        """How long :meth:`compute` will take on this device (see :func:`run_seconds`)."""
        if self.kind == "features":
            trained = store.load(self.config) is not None
            return 10.0 + (0.0 if trained else run_seconds(self.config, times, device_label, device_type))
        if self.kind == "landscape":
            # Timed like its training run, without evaluation: the report's method keeps gradients every gap
            # steps; the paper's makes 2 passes per eta per probe.
            extra = 0.3 + (2 * PAPER_ETA_COUNT / self.unit.probe_every if self.unit.method == "paper" else 0.0)
            return run_seconds(self.timing_config(), times, device_label, device_type) * (1 + extra)
        return run_seconds(self.config, times, device_label, device_type)


def plan(sections, profile: Profile, seeds=None) -> list[Task]:
    """Every task of ``sections`` at ``profile``: sections in the order given, seed by seed."""
    for section in sections:
        if section not in SECTIONS:
            raise ValueError(f"section={section!r} is not one of {', '.join(SECTIONS)}")
    seeds = tuple(profile.seeds if seeds is None else seeds)
    tasks: list[Task] = []
    for index, seed in enumerate(seeds):
        for section in sections:
            if index > 0 and section in ("landscape", "features"):
                continue  # one seed's: the landscape runs fix their own seed, the maps draw the first seed's runs
            tasks += _section_tasks(section, profile, seed)
    unique = {task.identity: task for task in reversed(tasks)}  # the first of two tasks with one result wins
    return [task for task in tasks if unique[task.identity] is task]  # (the fast recipe is the ladder's top)


def run_tasks(section: str, configs: dict[str, TrainConfig], seed: int, prefix: str = "") -> list[Task]:
    """One training task per config, at ``seed``, labelled "<prefix><label> (seed <seed>)"."""
    return [Task(section, f"{prefix}{label} (seed {seed})", "run", config=config.replace(seed=seed))
            for label, config in configs.items()]


def _section_tasks(section: str, profile: Profile, seed: int) -> list[Task]:
    if section == "ablations":
        return [task for group in reference.ABLATION_FIELDS
                for task in run_tasks(section, experiments.ablation_configs(profile, group), seed, f"{group}: ")]
    if section == "zoo":
        return run_tasks(section, {m: experiments.zoo_config(profile, m) for m in profile.zoo_models}, seed)
    if section == "resnet9":
        return [*run_tasks(section, experiments.trick_ladder(profile, "report"), seed, "ladder: "),
                *run_tasks(section, experiments.trick_ladder(profile, "plain"), seed, "plain ladder: "),
                *run_tasks(section, {"ResNet18": experiments.resnet9_configs(profile)["ResNet18"],
                                 "fast recipe": recipes.fast_for_profile(profile)}, seed)]
    if section == "vgg":
        return run_tasks(section, experiments.vgg_configs(profile), seed)
    if section == "features":
        return [Task(section, f"{label} feature maps", "features", config=config)
                for label, config in experiments.feature_map_configs(profile, seed).items()]
    config = experiments.landscape_config(profile)
    units = [*experiments.landscape_units(config, "report"),
             *experiments.landscape_units(config, "paper", profile.probe_every)]
    return [Task(section, unit.label, "landscape", unit=unit) for unit in units]


@dataclass(frozen=True)
class EpochTimes:
    """The store's measured seconds per epoch (training + evaluation), read once: the mean over every epoch of
    the store's runs with one device, model, batch size and number of training images.

    Reading the store validates every run's config (building its model), about 25 ms a run on a CPU: done once
    per sweep or estimate, not once per task."""

    means: dict[tuple[str, str, int, int | None], float]

    @classmethod
    def read(cls, store: ResultStore) -> EpochTimes:
        totals: dict[tuple[str, str, int, int | None], list[float]] = {}
        for run in store.runs():
            key = (run.meta.get("device"), run.config.model, run.config.batch_size, run.config.n_train)
            seconds = [row["seconds"] + row.get("eval_seconds", 0.0) for row in run.history if "seconds" in row]
            totals.setdefault(key, []).extend(seconds)
        return cls({key: sum(rows) / len(rows) for key, rows in totals.items() if rows})

    def per_epoch(self, config: TrainConfig, device_label: str) -> float | None:
        return self.means.get((device_label, config.model, config.batch_size, config.n_train))


def run_seconds(config: TrainConfig, times: EpochTimes, device_label: str, device_type: str) -> float:
    """Seconds to train ``config`` here: the store's mean measured seconds per epoch of the same model, batch
    size and data on this device (``times``), else a guess from its FLOPs; times :data:`SAFETY`, plus set-up."""
    per_epoch = times.per_epoch(config, device_label)
    if per_epoch is None:
        per_epoch = _guessed_epoch_seconds(config, device_type)
    return SETUP_SECONDS + SAFETY * config.epochs * per_epoch


def _guessed_epoch_seconds(config: TrainConfig, device_type: str) -> float:
    n_train, n_test = config.n_train or 50_000, config.n_test or 10_000
    macs = _macs_per_image(config.model, tuple(sorted(config.model_kwargs().items())))
    # Training: forward + backward ~ 3 forward passes; 2 FLOPs per multiply-add. Evaluation: 1 pass (2 with TTA).
    flops = 2 * macs * (3 * n_train + n_test * (2 if config.tta_flip else 1))
    kind = device_type if device_type in GUESSED_FLOPS else "cpu"
    return flops / GUESSED_FLOPS[kind] + math.ceil(n_train / config.batch_size) * GUESSED_STEP_SECONDS[kind]


@functools.cache
def _macs_per_image(model: str, options: tuple) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .models import build

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        network = build(model, **dict(options)).eval()
        with FlopCounterMode(display=False) as counter:
            network(torch.empty(2, 3, 32, 32))
    return counter.get_total_flops() / 2 / 2  # two images, two FLOPs per multiply-add


def work(tasks: list[Task], store: ResultStore, device: str = "auto", deadline: float | None = None,
         on_finished: Callable[[], None] | None = None, log: Callable[[str], None] = print,
         data_root: str | None = None) -> bool:
    """One process's share of a sweep: every task not yet stored and not claimed by another process, in order.

    ``data_root``: the folder holding cifar-10-batches-py/ (None: ``$CIFARNB_DATA``, then ./data).
    ``deadline`` (``time.time()`` seconds): a task whose estimate would end past it is not started.
    ``on_finished`` runs after each computed task (e.g. to rewrite a results archive). Returns False if a task
    failed (its traceback is logged and the sweep goes on with the rest).
    """
    from .device import device_name, resolve_device

    resolved = resolve_device(device)
    label, device_type = device_name(resolved), resolved.type
    ok = True
    times = EpochTimes.read(store) if deadline is not None else None
    for number, task in enumerate(tasks, 1):
        if task.stored(store):
            continue
        if deadline is not None:
            estimate = task.estimate_seconds(store, times, label, device_type)
            if time.time() + estimate > deadline:
                log(f"[{number}/{len(tasks)}] {task.label}: not started, needs ~{estimate:.0f} s of the "
                    f"{max(0.0, deadline - time.time()):.0f} s left")
                continue
        try:
            how = task.compute(store, device, wait=False, data_root=data_root)
        except Exception:  # noqa: BLE001 - one broken task must not cost the rest of a device session
            ok = False
            log(f"[{number}/{len(tasks)}] {task.label}: FAILED\n{traceback.format_exc()}")
            continue
        if how is None:
            continue  # another process has it
        log(f"[{number}/{len(tasks)}] {task.label}: {how}")
        if deadline is not None:
            times = EpochTimes.read(store)  # the run just finished measured this device: better estimates
        if on_finished is not None:
            on_finished()
    return ok


@dataclass
class SweepReport:
    computed: list[str]  # by this sweep
    already_stored: list[str]
    left: list[str]  # not stored at the end: over the budget, or failed
    ok: bool  # no task failed

    def summary(self) -> str:
        text = (f"{len(self.computed)} computed, {len(self.already_stored)} already stored, "
                f"{len(self.left)} left")
        return text + (": " + "; ".join(self.left) if self.left else "")


def sweep(sections, profile: Profile, store: ResultStore, seeds=None, device: str = "auto", workers: int = 1,
          budget_seconds: float | None = None, on_finished: Callable[[], None] | None = None,
          log: Callable[[str], None] = print, data_root: str | None = None) -> SweepReport:
    """Every task of ``sections`` (:func:`plan`) through ``store``, by ``workers`` processes sharing ``device``.

    ``budget_seconds``: no task starts that would not end within this many seconds from now. With several
    workers, ``on_finished`` and ``log`` must be picklable (module-level functions or partials of them).
    """
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    tasks = plan(sections, profile, seeds)
    before = {task: task.stored(store) for task in tasks}
    deadline = None if budget_seconds is None else time.time() + budget_seconds
    if workers == 1:
        ok = work(tasks, store, device, deadline, on_finished, log, data_root)
    else:
        # Fresh interpreters ("spawn"): CUDA cannot be shared with forked children.
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_worker, args=(tasks, store.root, store.keep_weights, device, deadline,
                                                            on_finished, log, f"[worker {n}] ", data_root))
                     for n in range(1, workers + 1)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        ok = all(process.exitcode == 0 for process in processes)
    after = {task: task.stored(store) for task in tasks}
    return SweepReport(computed=[t.label for t in tasks if after[t] and not before[t]],
                       already_stored=[t.label for t in tasks if before[t]],
                       left=[t.label for t in tasks if not after[t]], ok=ok)


def _worker(tasks, root, keep_weights, device, deadline, on_finished, log, prefix, data_root) -> None:
    ok = work(tasks, ResultStore(root, keep_weights=keep_weights), device, deadline, on_finished,
              lambda line: log(prefix + line), data_root)
    raise SystemExit(0 if ok else 1)


def estimate_hours(sections, profile: Profile, store: ResultStore, device_label: str,
                   seeds=None) -> dict[str, tuple[float, list[str]]]:
    """Device-hours each section's tasks take at ``profile`` on ``device_label`` (a run's ``meta["device"]``,
    e.g. "NVIDIA H200" or "cpu"), from scratch, by :meth:`Task.estimate_seconds`; with the models whose seconds
    per epoch are guessed from FLOPs because the store has no run of theirs on that device with that batch size
    and data size. A features task counts the training of the run it draws only when that run is not stored."""
    times = EpochTimes.read(store)
    device_type = "cpu" if device_label == "cpu" else "cuda"
    hours: dict[str, tuple[float, list[str]]] = {}
    for section in sections:
        seconds, guessed = 0.0, set()
        for task in plan([section], profile, seeds):
            seconds += task.estimate_seconds(store, times, device_label, device_type)
            if times.per_epoch(task.timing_config(), device_label) is None:
                guessed.add(task.timing_config().model)
        hours[section] = (seconds / 3600, sorted(guessed))
    return hours
