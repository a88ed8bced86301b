"""Fill the results store for report sections without Jupyter: ``cifarnb sweep --section model_zoo --profile quick``.

Each section trains exactly the runs its notebook asks for (same configs, same keys), so a store filled here
(on a GPU machine, say, brought back as one archive and merged) makes the notebook render without retraining.

* **Plan.** :func:`cifarnb.study.sections.plan` lists a sweep's tasks (``cifarnb.study.tasks``: training runs,
  landscape tables, feature maps): sections in the order given, the first seed of every run before any second.
* **Claims.** A process claims a task through the store (a file lock) before computing it, so ``workers=N``
  processes sharing one device, or two commands on one store, never compute the same result twice.
* **Budget.** With a deadline, no task starts that cannot finish before it (its duration estimated by
  :mod:`cifarnb.study.estimate`); the sweep then says what is left.
* **Resume.** Finished results load, interrupted runs resume from their checkpoint: stop and rerun freely.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from ..results import ResultStore
from .estimate import Estimator
from .profiles import Profile
from .sections import plan
from .tasks import Task


def work(tasks: list[Task], store: ResultStore, deadline: float | None = None,
         on_finished: Callable[[], None] | None = None, log: Callable[[str], None] = print) -> bool:
    """One process's share of a sweep: every task not yet stored and not claimed by another process, in order,
    each on its config's device.

    ``deadline`` (``time.time()`` seconds): a task whose estimate would end past it is not started.
    ``on_finished`` runs after each computed task (e.g. to rewrite a results archive). Returns False if a task
    failed (its traceback is logged and the sweep goes on with the rest).
    """
    ok = True
    estimators: dict[str, Estimator] = {}  # by device, read from the store only when a deadline needs them
    for number, task in enumerate(tasks, 1):
        if task.stored(store):
            continue
        if deadline is not None:
            if task.device not in estimators:
                estimators[task.device] = Estimator.on(store, task.device)
            estimate = task.estimate_seconds(store, estimators[task.device])
            if time.time() + estimate > deadline:
                log(f"[{number}/{len(tasks)}] {task.label}: not started, needs ~{estimate:.0f} s of the "
                    f"{max(0.0, deadline - time.time()):.0f} s left")
                continue
        try:
            how = task.compute(store, wait=False)
        except Exception:  # noqa: BLE001 - one broken task must not cost the rest of a device session
            ok = False
            log(f"[{number}/{len(tasks)}] {task.label}: FAILED\n{traceback.format_exc()}")
            continue
        if how is None:
            continue  # another process has it
        log(f"[{number}/{len(tasks)}] {task.label}: {how}")
        if task.device in estimators:
            estimators[task.device].refresh()  # the task just finished measured this device: better estimates
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

    @classmethod
    def of(cls, tasks: list[Task], before: dict, store: ResultStore, ok: bool) -> SweepReport:
        """What became of ``tasks``, given which were stored ``before`` the sweep."""
        after = {task: task.stored(store) for task in tasks}
        return cls(computed=[t.label for t in tasks if after[t] and not before[t]],
                   already_stored=[t.label for t in tasks if before[t]],
                   left=[t.label for t in tasks if not after[t]], ok=ok)


def sweep(sections, profile: Profile, store: ResultStore, seeds=None, workers: int = 1,
          budget_seconds: float | None = None, on_finished: Callable[[], None] | None = None,
          log: Callable[[str], None] = print) -> SweepReport:
    """Every task of ``sections`` (:func:`plan`) through ``store``, by ``workers`` processes sharing the
    profile's device.

    ``budget_seconds``: no task starts that would not end within this many seconds from now. With several
    workers, ``on_finished`` and ``log`` must be picklable (module-level functions or partials of them).
    """
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    tasks = plan(sections, profile, seeds)
    before = {task: task.stored(store) for task in tasks}
    deadline = None if budget_seconds is None else time.time() + budget_seconds
    if workers == 1:
        ok = work(tasks, store, deadline, on_finished, log)
    else:
        # Fresh interpreters ("spawn"): CUDA cannot be shared with forked children.
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_worker, args=(tasks, store.root, store.keep_weights, deadline,
                                                            on_finished, log, f"[worker {n}] "))
                     for n in range(1, workers + 1)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        ok = all(process.exitcode == 0 for process in processes)
    return SweepReport.of(tasks, before, store, ok)


def _worker(tasks, root, keep_weights, deadline, on_finished, log, prefix) -> None:
    ok = work(tasks, ResultStore(root, keep_weights=keep_weights), deadline, on_finished,
              lambda line: log(prefix + line))
    raise SystemExit(0 if ok else 1)
