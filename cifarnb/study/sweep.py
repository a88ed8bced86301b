"""Fill the results store for report sections without Jupyter: ``cifarnb sweep --section model_zoo --profile quick``.

Each section trains exactly the runs its notebook asks for (same configs, same keys), so a store filled here
(on a GPU machine, say, brought back as one archive and merged) makes the notebook render without retraining.

* **Plan.** :func:`cifarnb.study.sections.plan` lists a sweep's tasks (``cifarnb.study.tasks``: training runs,
  landscape tables, feature maps): sections in the order given, the first seed of every run before any second.
* **Claims.** A process claims a task through the store (a file lock) before computing it, so ``workers=N``
  processes sharing one device, or two commands on one store, never compute the same result twice.
  A task another process holds is passed over, then waited for once the rest are done (the claim says which
  process holds it); if that process stops without storing it, this one computes it.
* **Budget.** With a deadline, no task starts that cannot finish before it (its duration estimated by
  :mod:`cifarnb.study.estimate`); the sweep then says what is left.
* **Counting.** Each process counts what it computed itself (``ResultStore.written``), so two sweeps on one store
  each report their own work, and the report says what failed apart from what the budget left.
* **Resume.** Finished results load, interrupted runs resume from their checkpoint: stop and rerun freely.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable

from ..data import load_cifar10
from ..interrupt import Interrupted, describe, leave_sigint_to_parent, pending, signal_of, terminate_raises
from ..results import ResultStore
from .estimate import Estimator
from .fast_paths import FastPaths
from .fast_paths import apply as apply_fast_paths
from .profiles import Profile
from .sections import plan
from .tasks import Task

# What became of a task in one process, when that process did more than find it stored (see SweepReport).
COMPUTED, FAILED, OVER_BUDGET = "computed", "failed", "over budget"


def work(tasks: list[Task], store: ResultStore, deadline: float | None = None,
         on_finished: Callable[[], None] | None = None, log: Callable[[str], None] = print) -> dict[tuple, str]:
    """One process's share of a sweep: every task not yet stored, in order, each on its config's device.

    A task another process has claimed is passed over and, once the rest are done, waited for (the store says
    which process holds it); it then loads, or is computed here if that process stopped without storing it.
    ``deadline`` (``time.time()`` seconds): a task whose estimate would end past it is not started (nor waited
    for). ``on_finished`` runs after each task computed here (e.g. to rewrite a results archive). Returns, by task
    identity, the tasks this process computed, that failed here (their traceback is logged and the sweep goes on
    with the rest) or that it left for the budget.
    """
    outcomes: dict[tuple, str] = {}
    estimators: dict[str, Estimator] = {}  # by device, read from the store only when a deadline needs them

    def over_budget(number: int, task: Task) -> bool:
        if deadline is None:
            return False
        if task.device not in estimators:
            estimators[task.device] = Estimator.on(store, task.device)
        estimate = task.estimate_seconds(store, estimators[task.device])
        if time.time() + estimate <= deadline:
            return False
        log(f"[{number}/{len(tasks)}] {task.label}: not started, needs ~{estimate:.0f} s of the "
            f"{max(0.0, deadline - time.time()):.0f} s left")
        outcomes.setdefault(task.identity, OVER_BUDGET)
        return True

    def attempt(number: int, task: Task, wait: bool) -> bool:
        """Compute (or load) ``task``; False if another process holds it and ``wait`` is False."""
        written = len(store.written)
        try:
            how = task.compute(store, wait=wait)
        except Exception:  # noqa: BLE001 - one broken task must not cost the rest of a device session
            if pending() is not None:  # a stop a library turned into an error of its own: stop, do not go on
                raise Interrupted(pending()) from None
            outcomes[task.identity] = FAILED
            log(f"[{number}/{len(tasks)}] {task.label}: FAILED\n{traceback.format_exc()}")
            return True
        if how is None:
            return False
        if len(store.written) == written:  # loaded: another process stored it first
            log(f"[{number}/{len(tasks)}] {task.label}: stored by another process")
            return True
        outcomes[task.identity] = COMPUTED
        log(f"[{number}/{len(tasks)}] {task.label}: {how}")
        if task.device in estimators:
            estimators[task.device].refresh()  # the task just finished measured this device: better estimates
        if on_finished is not None:
            on_finished()
        return True

    held_elsewhere = []
    for number, task in enumerate(tasks, 1):
        if task.stored(store) or over_budget(number, task):
            continue
        if not attempt(number, task, wait=False):
            log(f"[{number}/{len(tasks)}] {task.label}: claimed by another process; back to it after the rest")
            held_elsewhere.append((number, task))
    for number, task in held_elsewhere:
        if task.stored(store):
            log(f"[{number}/{len(tasks)}] {task.label}: stored by another process")
        elif not over_budget(number, task):
            attempt(number, task, wait=True)  # the store's claim says whom it waits for
    return outcomes


@dataclass
class SweepReport:
    """What became of a sweep's tasks (their labels)."""

    computed: list[str]  # by this sweep's processes
    already_stored: list[str]  # before the sweep began
    by_others: list[str]  # stored during the sweep by another process (another sweep, a notebook)
    over_budget: list[str]  # not started: they would not have finished within the budget
    failed: list[str]  # raised here, or not stored when the sweep ended (claimed elsewhere, a worker died)

    @property
    def left(self) -> list[str]:
        """Not stored at the end."""
        return [*self.over_budget, *self.failed]

    @property
    def ok(self) -> bool:
        """Every task stored, or left only by the budget."""
        return not self.failed

    def summary(self) -> str:
        text = f"{len(self.computed)} computed, {len(self.already_stored)} already stored"
        if self.by_others:
            text += f", {len(self.by_others)} computed by another process"
        text += f", {len(self.left)} left"
        if self.over_budget:
            text += (f"; the budget stopped {len(self.over_budget)} (rerun to go on): " + "; ".join(self.over_budget))
        if self.failed:
            text += f"; {len(self.failed)} FAILED (see above): " + "; ".join(self.failed)
        return text

    @classmethod
    def of(cls, tasks: list[Task], before: dict, outcomes: dict[tuple, str], store: ResultStore) -> SweepReport:
        """The report of ``tasks``, given which were stored ``before`` the sweep and the ``outcomes`` of its
        processes (:func:`work`; a task two processes attempted counts as computed if either computed it)."""
        kinds = {COMPUTED: [], "already stored": [], "by others": [], OVER_BUDGET: [], FAILED: []}
        for task in tasks:
            outcome = outcomes.get(task.identity)
            if outcome == COMPUTED:
                kind = COMPUTED
            elif task.stored(store):
                kind = "already stored" if before[task] else "by others"
            else:
                kind = OVER_BUDGET if outcome == OVER_BUDGET else FAILED
            kinds[kind].append(task.label)
        return cls(computed=kinds[COMPUTED], already_stored=kinds["already stored"], by_others=kinds["by others"],
                   over_budget=kinds[OVER_BUDGET], failed=kinds[FAILED])


def merge_outcomes(outcomes: list[dict[tuple, str]]) -> dict[tuple, str]:
    """Several processes' :func:`work` outcomes as one: computed anywhere beats failed beats over budget."""
    rank = {COMPUTED: 0, FAILED: 1, OVER_BUDGET: 2}
    merged: dict[tuple, str] = {}
    for each in outcomes:
        for identity, outcome in each.items():
            if identity not in merged or rank[outcome] < rank[merged[identity]]:
                merged[identity] = outcome
    return merged


def sweep(sections, profile: Profile, store: ResultStore, seeds=None, workers: int = 1,
          budget_seconds: float | None = None, on_finished: Callable[[], None] | None = None,
          log: Callable[[str], None] = print, fast_paths: FastPaths | None = None) -> SweepReport:
    """Every task of ``sections`` (:func:`plan`) through ``store``, by ``workers`` processes sharing the
    profile's device.

    ``budget_seconds``: no task starts that would not end within this many seconds from now. With several
    workers, ``on_finished`` and ``log`` must be picklable (module-level functions or partials of them).
    A data set that is missing or damaged stops the sweep before any task, with the loader's one-line error.
    ``fast_paths``: each model's fast path from the card's probe and self-test (:mod:`.fast_paths`; None: the
    profile's execution fields as they are); a failed check of concurrent workers makes the sweep one process.
    """
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    tasks = plan(sections, profile, seeds)
    stored = {task.identity: task.stored(store) for task in tasks}  # read once: a fast path keeps the identity
    if fast_paths is not None:
        if workers > 1 and "workers" in fast_paths.broken:
            log(f"one worker, not {workers}: the self-test's workers check failed on this card "
                f"({next(iter(fast_paths.broken['workers'].values()))})")
            workers = 1
        tasks = apply_fast_paths(tasks, fast_paths, workers, lambda task: stored[task.identity], log)
    before = {task: stored[task.identity] for task in tasks}
    if not all(before.values()):
        # Read once here: a missing or damaged copy is one error now, not one traceback per task. (Kept in memory,
        # so a sweep in this process does not read it again.)
        load_cifar10(profile.data_root)
    deadline = None if budget_seconds is None else time.time() + budget_seconds
    if workers == 1:
        outcomes = work(tasks, store, deadline, on_finished, log)
    else:
        # Fresh interpreters ("spawn"): CUDA cannot be shared with forked children.
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=leave_sigint_to_parent) as pool:
            futures = [pool.submit(_worker, tasks, store.root, store.keep_weights, deadline, on_finished, log,
                                   f"[worker {n}] ") for n in range(1, workers + 1)]
            shares = []
            try:
                for future in futures:
                    try:
                        shares.append(future.result()[0])
                    except Exception as error:  # noqa: BLE001 - a dead worker; its runs resume on the next sweep
                        log(f"a worker process stopped ({type(error).__name__}: {error}); its unfinished runs "
                            "resume from their checkpoints when the sweep runs again")
            except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM here: every worker stops its run too
                raise _stop_workers(futures, stop) from None
        outcomes = merge_outcomes(shares)
    return SweepReport.of(tasks, before, outcomes, store)


def hours_left(sections, profile: Profile, store: ResultStore, device: str,
               seeds=None) -> tuple[dict[str, float], list[str]]:
    """Hours on ``device`` (as configs name it: "cpu", "cuda", ...) that each section's tasks the store lacks take
    (``Task.estimate_seconds``), and the models whose epochs are guessed from FLOPs for want of a measured run."""
    estimator = Estimator.on(store, device)
    hours, guessed = {}, set()
    for section in sections:
        left = [task for task in plan([section], profile, seeds) if not task.stored(store)]
        hours[section] = sum(task.estimate_seconds(store, estimator) for task in left) / 3600
        guessed |= {task.timing_config().model for task in left if not estimator.measured(task.timing_config())}
    return hours, sorted(guessed)


def _worker(tasks, root, keep_weights, deadline, on_finished, log, prefix) -> tuple[dict[tuple, str], str | None]:
    """One worker process's share: its outcomes, and the line of its interruption if the parent stopped it."""
    def prefixed(line: str) -> None:
        log(prefix + line)

    with terminate_raises(sigint=False):  # the parent relays a stop as SIGTERM (SIGINT is left to it)
        try:
            store = ResultStore(root, keep_weights=keep_weights, note=prefixed)
            return work(tasks, store, deadline, on_finished, prefixed), None
        except KeyboardInterrupt as stop:
            return {}, describe(stop)


def _stop_workers(futures, stop: BaseException) -> Interrupted:
    """Relay a stop to every worker as SIGTERM and gather what each was doing, as one line per stopped run."""
    for child in multiprocessing.active_children():
        child.terminate()
    lines = []
    for future in futures:
        with contextlib.suppress(Exception):  # a worker that had finished, or died, has nothing to say
            lines.append(future.result(timeout=60)[1])
    lines = sorted({line for line in lines if line and " in epoch " in line}) or [describe(stop)]
    return Interrupted(signal_of(stop), "\n".join(lines))


def check_cpu_hours(sections, profile: Profile, store: ResultStore, seeds, device: str, limit_hours: float,
                    log: Callable[[str], None] = print) -> None:
    """On a CPU, say the hours the sweep's unstored tasks take; ValueError above ``limit_hours`` (a quick or full
    sweep started there by mistake would run for days). On a GPU, nothing."""
    from ..device import resolve_device

    if resolve_device(device).type != "cpu":
        return
    hours, guessed = hours_left(sections, profile, store, "cpu", seeds=seeds)
    for section, section_hours in hours.items():
        log(f"{section}: about {section_hours:,.1f} CPU-hours left")
    total = sum(hours.values())
    log(f"total ({profile.name}): about {total:,.1f} CPU-hours"
        + (f" (guessed from FLOPs, not measured: {', '.join(guessed)})" if guessed else ""))
    if total > limit_hours:
        raise ValueError(f"this sweep needs about {total:,.0f} CPU-hours (over {limit_hours:g}); add --yes to start it "
                         "anyway, give --budget-s, run it on a GPU (--device cuda), or use --profile smoke")
