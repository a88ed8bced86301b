"""A sweep on Ray: ``cifarnb sweep --backend ray [--address ADDR]``, every task of :func:`sections.plan` one Ray task.

* **Claims.** Each Ray task claims its result through the store's lock (``results.claim``, a flock) exactly as
  ``--workers`` does, so two drivers on one cluster, or a Ray sweep beside a local one, never train a run twice.
  The store must therefore live on storage every node sees, with working flock (NFS with locking, Lustre
  mounted with ``flock``).
* **Faults.** A task whose worker process or node dies is retried by Ray (``max_retries``); the dead process
  released its flock, so the retry claims the run again and resumes it from the checkpoint in the store. A task
  that raises (a bug, a missing file) is logged and the sweep goes on, as with ``--workers``.
* **Progress.** One bar over the sweep's tasks (finished / running / queued) and one line per finished task.

Ray is an optional extra (``pip install -e ".[cluster]"``), imported only here and only when used.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import time
from typing import Callable

from ..results import ResultStore
from ..train import TrainConfig
from .profiles import Profile
from .sections import plan
from .sweep import COMPUTED, FAILED, SweepReport
from .tasks import Task, run_tasks

INSTALL_HINT = 'the Ray backend needs the cluster extra: pip install -e ".[cluster]"'
MAX_RETRIES = 3  # a worker or node dying this many times on one run is no longer a transient fault
# A local Ray instance gives its raylet a fixed 30 s to register; on a busy machine that can pass before it has,
# and Ray gives up with this message. Starting it again usually works (tests/test_cluster.py does the same).
STARTUP_TIMEOUT = "timed out during startup"
START_TRIES = 3


class MissingExtra(RuntimeError):
    """An optional dependency is not installed; the message says how to install it."""


def check_installed() -> None:
    """Raise :class:`MissingExtra` (saying how to install it) when Ray is not installed."""
    _ray()


def _ray():
    try:
        import ray
    except ImportError:
        raise MissingExtra(INSTALL_HINT) from None
    return ray


def _compute(task: Task, store_root: str, keep_weights: bool) -> tuple[str | None, bool]:
    """One task on a Ray worker: claim and compute it (resuming from the store's checkpoint), or load it. Returns
    how (None if claimed elsewhere) and whether this task computed it (False: another process stored it first)."""
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))  # Ray sets it to the task's CPUs
    store = ResultStore(store_root, keep_weights=keep_weights)
    return task.compute(store, wait=False), bool(store.written)


def _start_local(ray, num_cpus: int | None, log: Callable[[str], None], tries: int = START_TRIES) -> None:
    """``ray.init`` a local instance, starting it again (saying so in one line) when its start-up times out."""
    import psutil

    for attempt in range(1, tries + 1):
        before = {child.pid for child in psutil.Process().children(recursive=True)}
        try:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
            return
        except Exception as error:  # noqa: BLE001 - Ray raises a bare Exception for a start-up timeout
            if STARTUP_TIMEOUT not in str(error) or attempt == tries:
                raise
            log(f"Ray's local instance did not start in time ({str(error).split('.')[0]}); starting it again "
                f"({attempt + 1} of {tries})")
            ray.shutdown()
            # The failed start's own processes (GCS, raylet) would hold ports and memory: stop them, and only them.
            for child in psutil.Process().children(recursive=True):
                if child.pid not in before:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        child.kill()


def dispatch(tasks: list[Task], store: ResultStore, address: str | None = None,
             gpus_per_run: float = 0.0, cpus_per_run: float = 1.0, max_retries: int = MAX_RETRIES,
             num_cpus: int | None = None, progress: bool = True, log: Callable[[str], None] = print,
             on_finished: Callable[[], None] | None = None) -> bool:
    """Compute every task of ``tasks`` not yet stored, one Ray task each; returns False if a task failed.

    (:func:`dispatch_outcomes` has the same arguments and says, by task identity, what became of each.)
    """
    outcomes = dispatch_outcomes(tasks, store, address, gpus_per_run, cpus_per_run, max_retries, num_cpus, progress,
                                 log, on_finished)
    return FAILED not in outcomes.values()


def dispatch_outcomes(tasks: list[Task], store: ResultStore, address: str | None = None,
                      gpus_per_run: float = 0.0, cpus_per_run: float = 1.0, max_retries: int = MAX_RETRIES,
                      num_cpus: int | None = None, progress: bool = True, log: Callable[[str], None] = print,
                      on_finished: Callable[[], None] | None = None) -> dict[tuple, str]:
    """The tasks of ``tasks`` not yet stored, one Ray task each; returns the ones computed here or failed, as
    :func:`cifarnb.study.sweep.work` does.

    ``address``: a running cluster (``ray start --head`` printed it); None starts a local Ray instance with
    ``num_cpus`` CPUs (default: all). ``gpus_per_run`` may be fractional: 0.25 packs four runs per GPU.
    Each task computes on its config's device, from its config's data folder (which every node must see under
    that path; None: each worker's ``$CIFARNB_DATA``, then ./data).
    ``on_finished`` runs here, in the driver, after each finished task (e.g. to rewrite a results archive).
    """
    if gpus_per_run < 0 or cpus_per_run <= 0:
        raise ValueError(f"gpus_per_run={gpus_per_run} must be >= 0 and cpus_per_run={cpus_per_run} > 0")
    cuda = sorted({task.device for task in tasks if task.device.startswith("cuda")})
    if cuda and gpus_per_run == 0:
        # Ray hides every GPU from a task that reserved none.
        raise ValueError(f"device={cuda[0]!r} needs GPUs reserved per run: give --gpus-per-run (e.g. 1, or 0.25 to "
                         "pack four runs per GPU)")
    ray = _ray()
    # Ray's progress-bar support may replace builtins.print in the driver; a later `--workers` sweep in this process
    # then cannot pickle print for its spawned workers, so the driver's own print is put back when done.
    own_print = builtins.print
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            _start_local(ray, num_cpus, log)
    try:
        remote = ray.remote(_compute).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run,
                                              max_retries=max_retries, retry_exceptions=False)
        pending = {}
        for number, task in enumerate(tasks, 1):
            if not task.stored(store):
                ref = remote.remote(task, str(store.root), store.keep_weights)
                pending[ref] = (number, task)
        resources = ray.cluster_resources()
        places = int(resources.get("CPU", 1) // cpus_per_run)
        if gpus_per_run > 0:
            places = min(places, int(resources.get("GPU", 0) / gpus_per_run + 1e-9))
        return _collect(ray, pending, len(tasks), max(1, places), progress, log, on_finished)
    finally:
        if started_here:
            ray.shutdown()
        builtins.print = own_print


def _collect(ray, pending: dict, total: int, places: int, progress: bool, log: Callable[[str], None],
             on_finished: Callable[[], None] | None) -> dict[tuple, str]:
    from tqdm.auto import tqdm

    outcomes, finished = {}, 0
    # Ray does not say which queued task holds a worker; "running" is how many runs the cluster can hold at once.
    bar = tqdm(total=len(pending), desc="sweep", unit="task", disable=not progress)

    def show():
        running = min(len(pending), places)
        bar.set_postfix_str(f"finished {finished}, running {running}, queued {len(pending) - running}")

    show()
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        number, task = pending.pop(done[0])
        computed = False
        try:
            how, computed = ray.get(done[0])
        except Exception as error:  # noqa: BLE001 - one broken task must not cost the rest of the sweep
            outcomes[task.identity] = FAILED
            how = f"FAILED: {type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error) else ''}"
        finished += 1
        bar.update(1)
        show()
        if how is not None and not computed and task.identity not in outcomes:
            how = "stored by another process"
        line = f"[{number}/{total}] {task.label}: {how or 'claimed by another process (another driver?)'}"
        bar.write(line) if progress else log(line)  # above the bar, not through it
        if computed:
            outcomes[task.identity] = COMPUTED
            if on_finished is not None:
                on_finished()
    bar.close()
    return outcomes


def dispatch_runs(configs: dict[str, TrainConfig], seeds, store: ResultStore, address: str | None = None,
                  gpus_per_run: float = 0.0, cpus_per_run: float = 1.0,
                  log: Callable[[str], None] = print) -> bool:
    """Train every (config, seed) that ``store`` lacks on Ray, one task each (a notebook's runs with its
    ``backend="ray"``); the runs then load from the store. Returns False if a task failed."""
    tasks = [task for seed in seeds for task in run_tasks("notebook", configs, seed)]
    return dispatch(tasks, store, address, gpus_per_run, cpus_per_run, progress=False, log=log)


def sweep_on_ray(sections, profile: Profile, store: ResultStore, seeds=None, address: str | None = None,
                 gpus_per_run: float = 0.0, cpus_per_run: float = 1.0, max_retries: int = MAX_RETRIES,
                 num_cpus: int | None = None, progress: bool = True,
                 on_finished: Callable[[], None] | None = None, log: Callable[[str], None] = print) -> SweepReport:
    """:func:`sweep.sweep` with Ray as the engine: every task of ``sections`` (:func:`plan`) through ``store``."""
    _ray()  # without the extra, say so before anything else
    tasks = plan(sections, profile, seeds)
    before = {task: task.stored(store) for task in tasks}
    started = time.perf_counter()
    outcomes = dispatch_outcomes(tasks, store, address, gpus_per_run, cpus_per_run, max_retries, num_cpus, progress,
                                 log, on_finished)
    log(f"ray sweep took {time.perf_counter() - started:.1f} s")
    return SweepReport.of(tasks, before, outcomes, store)
