"""Throughput probe: where a GPU sweep's time goes, on synthetic images, in the first call of a device session.

    python benchmarks/probe.py --out $OUT/probe.json        # on the GPU
    python benchmarks/probe.py --cpu --out probe-cpu.json   # every section at tiny sizes on a CPU (~1 minute; CI)
    python benchmarks/probe.py --sections resnet18_eager workers
    python benchmarks/probe.py --choose [FILE]              # "WORKERS MPS" for a sweep, from a probe of this card
    python benchmarks/probe.py --decide --first-section fastresnet9 --out $OUT/probe.json   # the decisions: <= 90 s
    python benchmarks/probe.py --sections families --extend benchmarks/probe-<card>-<date>.json --out $OUT/probe.json

No data staging: the images are random (a step's speed does not depend on them). Every timing runs the sweep's
own configs (the runs ``plan`` makes for the ``quick`` profile on this device, so with ``sweep_execution``'s speed
steps) through the sweep's own loop (``prepare`` + ``train_one_epoch``: ``timing.TrainingSteps``), timed after
warm-up (CUDA events on a GPU). The JSON is rewritten after every record, so a call cut off at its limit still
returns what it measured. Sections, most important first:

1. ``resnet18_eager``: ResNet18 at batch 128, eager, cuDNN autotuning off and on: ms per step; kernels per step and
   the GPU-busy fraction (torch.profiler: kernel time over step time); host syncs per step (sync debug mode).
2. ``precision``: ResNet18 (main.py), VGG-A + BN (the VGG scripts) and FastResNet9 (main_fastresnet9.py) in the
   precision the report's code ran them in (TF32 convolutions; fp16) and in bf16 autocast: the sweep keeps the
   report's unless it costs more than 1.5x (``study.fast_paths``).
3. ``resnet18_compiled``: the same compiled with CUDA graphs: compile seconds, ms per step, a second instance's
   warm-up (the graph reused).
4. ``fixed_costs``: evaluation at batch 1,000 and 5,000, with and without flip TTA; one checkpoint write.
5. ``ghost_bn``: the FastResNet9 ladder's distinct models at batch 512 (ResNet9, + pool before BN, FastResNet9) and
   ghost BN alone on ResNet9 with pool before BN; where the sweep's ResNet18 normalises per DataParallel shard
   (``bn_shards``), that against plain BN; each record names the normalisation classes its model holds.
6. ``modes``: the first section's models (``--first-section``) eager, compiled and compiled with CUDA graphs, with
   the seconds compiling cost: what ``cifarnb sweep --fast-paths auto`` chooses each model's fast path from
   (``cifarnb.study.fast_paths``).
7. ``workers``: aggregate images/s of the first section's first run with 1, 4 and 8 worker processes, without and
   with MPS.
8. ``lenet5_wrn``: LeNet5 eager against CUDA graphs (launch-bound); WideResNet28-10 (compute-bound reference).
9. ``families``: every other model the sweep trains, so ``cifarnb sweep --estimate`` has each family's MFU.

``--decide`` runs only ``modes`` and ``workers`` (1, 2, 4, 8 processes), within 90 s: what a short first call
measures before a sweep; what the budget leaves is recorded as skipped. ``--extend`` goes on from an earlier probe
of the card (a later call adds sections to the same file).

Every record carries model, family, batch size, mode (``execution.execution_mode``), workers, ms per step, images/s,
seconds per epoch of 50,000 images, training FLOPs per image (``flops.training_flops``), achieved FLOP/s, MFU (over
the card's dense bf16 peak; None where that is unknown, as on a CPU), device, torch version and date. What cannot
run here is recorded as skipped, with why; what fails is recorded as an error and the probe goes on. ``--cpu``
replaces the batch sizes (2 for 128, 64 for 512), the worker counts (1, 2) and times one model of each family:
a smoke run, not a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import multiprocessing
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cifarnb import models  # noqa: E402
from cifarnb.atomic import atomic_write  # noqa: E402
from cifarnb.data import random_cifar10  # noqa: E402
from cifarnb.device import cpu_name, device_name  # noqa: E402
from cifarnb.study import profiles  # noqa: E402
from cifarnb.study.fast_paths import report_precision  # noqa: E402
from cifarnb.study.probes import card_slug, dense_bf16_peak, model_family, newest_probe_path  # noqa: E402
from cifarnb.study.fast_paths import MODES as FAST_PATH_MODES  # noqa: E402
from cifarnb.study.sections import SECTIONS, plan  # noqa: E402
from cifarnb.study.tasks import RunTask  # noqa: E402
from cifarnb.train import TrainConfig, evaluate  # noqa: E402
from cifarnb.train.checkpoint import save as save_checkpoint  # noqa: E402
from cifarnb.train.execution import execution_mode, sweep_execution  # noqa: E402
from cifarnb.train.timing import TrainingSteps  # noqa: E402
from flops import training_flops  # noqa: E402

EPOCH_IMAGES = 50_000
HERE = Path(__file__).resolve().parent  # where the probes of each card are committed


@dataclass(frozen=True)
class Sizes:
    steps: int  # timed steps per measurement
    warmup_steps: int  # untimed steps first (CUDA graphs record on the third call)
    profile_steps: int
    n_train: int  # synthetic images
    n_test: int
    eval_batches: tuple[int, int]
    workers: tuple[int, ...]
    worker_steps: int
    compiled_model: str
    checkpoint_models: tuple[str, ...]
    timeout_s: float  # the longest wait for worker processes to start, and then for each measurement
    every_model: bool = True  # families: every other model the sweep trains (False: one of each family)
    batches: dict[int, int] | None = None  # the sweep's batch size -> the one used here (None: unchanged)

    def batch(self, size: int) -> int:
        return size if self.batches is None else self.batches.get(size, min(size, 2))


GPU = Sizes(steps=30, warmup_steps=10, profile_steps=5, n_train=10_240, n_test=10_000, eval_batches=(1000, 5000),
            workers=(1, 4, 8), worker_steps=100, compiled_model="resnet18",
            checkpoint_models=("resnet18", "wideresnet28x10"), timeout_s=120)
CPU = Sizes(steps=1, warmup_steps=1, profile_steps=1, n_train=128, n_test=16, eval_batches=(8, 16), workers=(1, 2),
            worker_steps=2, compiled_model="lenet5", checkpoint_models=("resnet18",), timeout_s=240,
            every_model=False, batches={128: 2, 512: 64})


class Skip(Exception):
    """A measure that cannot run on this machine; its message says why."""


def _first_line(error: BaseException) -> str:
    return f"{type(error).__name__}: " + (str(error).strip().splitlines() or [""])[0][:300]


class Probe:
    """The probe's state: where it runs, the sweep's configs, the records so far and the JSON they go to."""

    def __init__(self, out: Path, cpu: bool, first_section: str = next(iter(SECTIONS)), budget_s: float | None = None,
                 extend: Path | None = None):
        self.out, self.cpu, self.first_section = out, cpu, first_section
        # Past the budget, the measures left are recorded as skipped (a decision probe fits its call: --decide).
        self.deadline = None if budget_s is None else time.monotonic() + budget_s
        self.device = "cpu" if cpu else "cuda"
        self.sizes = CPU if cpu else GPU
        self.card = "cpu" if cpu else device_name(torch.device("cuda"))
        self.peak = None if cpu else dense_bf16_peak(self.card)
        self.data = random_cifar10(self.sizes.n_train, self.sizes.n_test)
        profile = profiles.get("quick", device=self.device)
        self.runs = [(task.label, task.config) for task in plan(list(SECTIONS), profile, seeds=[0])
                     if isinstance(task, RunTask)]
        # What a sweep trains first (the first of SECTIONS): the fast paths and workers it decides.
        self.first_runs = [task.config for task in plan([first_section], profile, seeds=[0])
                           if isinstance(task, RunTask)]
        self.header = {
            "probe": 1, "kind": "cpu smoke run (tiny sizes: not a measurement)" if cpu else "gpu",
            "device": self.card, "card": card_slug(self.card),
            "host_cpu": cpu_name().removeprefix("cpu: "), "torch": torch.__version__, "cuda": torch.version.cuda,
            "python": platform.python_version(), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
            "peak_flops": self.peak, "peak": "dense bf16, datasheet" if self.peak else "unknown for this device",
            "sweep_execution": sweep_execution(self.device), "sections": {},
        }
        self.header["commit_as"] = f"benchmarks/probe-{self.header['card']}-{self.header['date']}.json"
        self.records: list[dict] = []
        if extend is not None:  # a probe of this card made in an earlier call: its records go on, with these
            earlier = json.loads(extend.read_text())
            if earlier.get("device") != self.card:
                raise ValueError(f"--extend {extend} probed {earlier.get('device')}, not this {self.card}")
            self.header["sections"] = earlier.get("sections", {})
            self.records = earlier.get("records", [])
        self.write()

    def write(self) -> None:
        content = json.dumps({**self.header, "records": self.records}, indent=1, default=str).encode()
        atomic_write(self.out, lambda file: file.write(content))

    def config(self, model: str, where: Callable[[TrainConfig], bool] = lambda c: True) -> TrainConfig:
        """The sweep's first run of ``model`` that ``where`` accepts, at this probe's batch size."""
        for _, config in self.runs:
            if config.model == model and where(config):
                return config.replace(batch_size=self.sizes.batch(config.batch_size))
        raise LookupError(f"the quick sweep trains no {model} run of that kind")

    def add(self, section: str, label: str, config: TrainConfig | None = None, **values) -> dict:
        record = {"section": section, "label": label}
        if config is not None:
            record.update(model=config.model, family=model_family(config.model), batch_size=config.batch_size,
                          mode=execution_mode(config), precision=config.precision,
                          channels_last=config.channels_last, model_options=config.model_options, workers=1)
        record.update(values)
        if "images_per_second" in record and config is not None:
            flops = training_flops(config.model, **config.model_kwargs())
            achieved = flops * record["images_per_second"]
            record.update(seconds_per_epoch=EPOCH_IMAGES / record["images_per_second"], train_flops_per_image=flops,
                          achieved_flops=achieved, mfu=achieved / self.peak if self.peak else None)
        record.update(device=self.card, torch=torch.__version__, date=self.header["date"])
        self.records.append(record)
        self.write()
        return record

    def attempt(self, section: str, label: str, measure: Callable[[], dict | None]) -> None:
        """Run one measure; a Skip or an error is recorded in its place and the probe goes on."""
        try:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise Skip("over the probe's budget (--budget-s)")
            measure()
        except Skip as reason:
            self.add(section, label, skipped=str(reason))
        except Exception as error:  # noqa: BLE001 - one broken measure must not cost the rest of the call
            self.add(section, label, error=_first_line(error))

    def steps(self, config: TrainConfig) -> TrainingSteps:
        torch.backends.cudnn.benchmark = config.cudnn_benchmark  # process-wide; prepare() only ever turns it on
        return TrainingSteps(config, self.data)

    def time(self, section: str, label: str, config: TrainConfig, **extra) -> tuple[dict, TrainingSteps]:
        runner = self.steps(config)
        warmup = runner.run(self.sizes.warmup_steps)
        seconds, timer = runner.time(self.sizes.steps)
        images = self.sizes.steps * config.batch_size
        return self.add(section, label, config, ms_per_step=1000 * seconds / self.sizes.steps,
                        images_per_second=images / seconds, warmup_seconds=warmup, timer=timer, **extra), runner


# --- measures used by several sections ------------------------------------------------------------------------

def kernels_and_busy(runner: TrainingSteps, steps: int, step_seconds: float) -> dict:
    """CUDA kernels (and copies) per step and the GPU-busy fraction: kernel time per step over the unprofiled
    step time. On a CPU: the top-level aten calls per step, and the two CUDA measures skipped."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = runner.device.type == "cuda"
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as profiler:
        runner.run(steps)
    events = profiler.events()
    if not cuda:
        calls = [e for e in events if e.name.startswith("aten::")
                 and not (e.cpu_parent is not None and e.cpu_parent.name.startswith("aten::"))]
        skipped = {"skipped": "CUDA kernels: needs CUDA"}
        return {"aten_calls_per_step": len(calls) / steps, "kernels_per_step": skipped, "gpu_busy_fraction": skipped}
    spans = sorted((e.time_range.start, e.time_range.end) for e in events if e.device_type == DeviceType.CUDA)
    busy_us, reach = 0.0, float("-inf")
    for start, end in spans:  # the union of the kernels' intervals: overlapping kernels count once
        busy_us += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return {"kernels_per_step": len(spans) / steps,
            "gpu_busy_fraction": min(1.0, busy_us / 1e6 / steps / step_seconds)}


def host_syncs_per_step(runner: TrainingSteps, steps: int) -> float | dict:
    """Synchronising calls per step (torch's sync debug mode), without the epoch end's two reads."""
    if runner.device.type != "cuda":
        return {"skipped": "host syncs: needs CUDA"}
    counts = []
    for n in (steps, 2 * steps):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                runner.take(n)
            finally:
                torch.cuda.set_sync_debug_mode(0)
        torch.cuda.synchronize()
        counts.append(sum("synchroniz" in str(w.message) for w in caught))
    return (counts[1] - counts[0]) / steps


# --- the sections, in the order they run ----------------------------------------------------------------------

def resnet18_eager(probe: Probe) -> None:
    base = probe.config("resnet18", lambda c: c.batch_size == 128 and not c.compile)
    for cudnn in (False, True):
        label = f"eager, cuDNN autotuning {'on' if cudnn else 'off'}"

        def measure(cudnn=cudnn, label=label):
            if cudnn and probe.cpu:
                raise Skip("cuDNN autotuning: needs CUDA")
            record, runner = probe.time("resnet18_eager", label, base.replace(cudnn_benchmark=cudnn, compile=False))
            step_seconds = record["ms_per_step"] / 1000
            record.update(kernels_and_busy(runner, probe.sizes.profile_steps, step_seconds),
                          host_syncs_per_step=host_syncs_per_step(runner, probe.sizes.profile_steps))
            probe.write()

        probe.attempt("resnet18_eager", label, measure)


def resnet18_compiled(probe: Probe) -> None:
    def measure():
        config = probe.config("resnet18", lambda c: c.batch_size == 128)
        if probe.cpu:  # the compile path still runs, on the cheapest model
            probe.add("resnet18_compiled", "CUDA graphs", skipped="CUDA graphs: needs CUDA")
            config = probe.config(probe.sizes.compiled_model).replace(compile=True, compile_mode="default")
        else:
            config = config.replace(compile=True, compile_mode="reduce-overhead")
        record, _ = probe.time("resnet18_compiled", "compiled", config)
        record["compile_seconds"] = record.pop("warmup_seconds")  # compilation and graph recording are the warm-up
        second = probe.steps(config.replace(seed=1))
        record["second_instance_warmup_seconds"] = second.run(probe.sizes.warmup_steps)
        probe.write()

    probe.attempt("resnet18_compiled", "compiled", measure)


def fixed_costs(probe: Probe) -> None:
    base = probe.config("resnet18", lambda c: c.batch_size == 128)
    for batch in probe.sizes.eval_batches:
        for tta in (False, True):
            label = f"evaluation at batch {batch}{', flip TTA' if tta else ''}"

            def measure(batch=batch, tta=tta, label=label):
                config = base.replace(eval_batch_size=batch, tta_flip=tta)
                runner = probe.steps(config)
                parts = runner.parts
                evaluate(parts.eval_model, parts.test_loader, parts.loss_fn, parts.half, tta_flip=tta)  # warm-up
                started = _synced(runner)
                evaluate(parts.eval_model, parts.test_loader, parts.loss_fn, parts.half, tta_flip=tta)
                seconds = _synced(runner) - started
                probe.add("fixed_costs", label, config, eval_batch_size=batch, tta_flip=tta, images=probe.sizes.n_test,
                          seconds_per_10000_images=seconds * 10_000 / probe.sizes.n_test)

            probe.attempt("fixed_costs", label, measure)
    for model in probe.sizes.checkpoint_models:
        def measure(model=model):
            runner = probe.steps(probe.config(model, lambda c: c.batch_size == 128))
            runner.run(1)  # the optimizer's state (momentum) exists from the first step on, as in a run's checkpoints
            parts = runner.parts
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "checkpoint.pt"
                started = time.perf_counter()
                save_checkpoint(path, parts.model, parts.optimizer, parts.schedule, parts.scaler, parts.ema, [], 1,
                                 0.0, runner.device)
                seconds = time.perf_counter() - started
                size = path.stat().st_size
            probe.add("fixed_costs", f"checkpoint write, {model}", runner.config, seconds=seconds,
                      megabytes=size / 1e6)

        probe.attempt("fixed_costs", f"checkpoint write, {model}", measure)


def _synced(runner: TrainingSteps) -> float:
    if runner.device.type == "cuda":
        torch.cuda.synchronize(runner.device)
    return time.perf_counter()


def ghost_bn(probe: Probe) -> None:
    """The FastResNet9 ladder's distinct models at batch 512 (eager), then ghost BN alone on the pooled ResNet9."""
    chosen: dict[tuple, tuple[str, TrainConfig]] = {}
    for label, config in probe.runs:
        if config.model in ("resnet9", "fastresnet9") and config.batch_size == 512 and not config.compile:
            chosen.setdefault((config.model, json.dumps(config.model_options, sort_keys=True)), (label, config))
    variants = [(label.removesuffix(" (seed 0)"), config.replace(batch_size=probe.sizes.batch(512)))
                for label, config in chosen.values()]
    pooled = [config for _, config in variants
              if config.model == "resnet9" and config.model_options.get("pool_before_bn")]
    if pooled and "ghost_batch_size" in models.model_options("resnet9"):
        alone = pooled[0].replace(model_options={**pooled[0].model_options, "ghost_batch_size": 32})
        variants.append(("ResNet9 + pool before BN + ghost BN (32) alone", alone))
    if not variants:
        raise LookupError("the quick sweep trains no ResNet9 or FastResNet9 run at batch 512")
    # BN per nn.DataParallel shard (the report's main.py on 4 GPUs), where the sweep's ResNet18 has it: against plain.
    resnet18 = probe.config("resnet18", lambda c: c.batch_size == 128 and not c.compile)
    if getattr(resnet18, "bn_shards", None):
        variants += [(f"ResNet18, BN per DataParallel shard (bn_shards={resnet18.bn_shards})", resnet18),
                     ("ResNet18, plain BN", resnet18.replace(bn_shards=None))]
    for label, config in variants:
        def measure(label=label, config=config):
            record, runner = probe.time("ghost_bn", label, config)
            record["bn_classes"] = sorted({type(m).__name__ for m in runner.parts.model.modules()
                                           if "Norm" in type(m).__name__})
            probe.write()

        probe.attempt("ghost_bn", label, measure)


# The runs whose precision the sweep chooses, one of each script of the report's code: main.py (ResNet18, batch 128),
# the VGG scripts (VGG-A + BN) and main_fastresnet9.py (FastResNet9, batch 512).
PRECISION_RUNS = {"resnet18": lambda c: c.batch_size == 128 and not c.compile,
                  "vgg_a_bn": lambda c: not c.compile,
                  "fastresnet9": lambda c: c.optimizer == "sgd_velocity" and not c.compile}


def precision(probe: Probe) -> None:
    """Each script's precision as the report's code ran it (``study.fast_paths.report_precision``: TF32 convolutions
    for main.py and the VGG scripts, fp16 for FastResNet9) against bf16 autocast, eager: the sweep keeps the report's
    unless it costs more than ``settings.PRECISION_MAX_COST`` times bf16 (``Probe.precision_cost``)."""
    for model, where in PRECISION_RUNS.items():
        config = probe.config(model, where)
        for chosen in dict.fromkeys((report_precision(config), "bf16")):
            label = f"{model} {chosen}"
            probe.attempt("precision", label,
                          lambda label=label, config=config.replace(precision=chosen): probe.time("precision", label,
                                                                                                   config))


def workers(probe: Probe) -> None:
    """Aggregate images/s of the first section's first run (eager, at its batch size) with 1, 4, 8 processes (1, 2,
    4, 8 with --decide) sharing the device (images over the span from the first worker's start to the last one's
    end), without and then with MPS (where nvidia-cuda-mps-control exists)."""
    config = probe.first_runs[0].replace(compile=False)
    config = config.replace(batch_size=probe.sizes.batch(config.batch_size))
    for mps in (False, True):
        def measure(mps=mps):
            if mps and probe.cpu:
                raise Skip("MPS: needs CUDA")
            with mps_daemon() if mps else contextlib.nullcontext() as control:
                seen = {}
                measured = worker_group(config, probe.sizes, on_ready=lambda: seen.update(mps_server(control)))
            one = measured[min(measured)]["images_per_second"]
            for count, values in measured.items():
                label = f"{count} worker{'s' * (count > 1)}, {'MPS' if mps else 'no MPS'}"
                probe.add("workers", label, config, workers=count, mps=mps,
                          speedup_over_one=values["images_per_second"] / one, **values, **seen)

        probe.attempt("workers", "MPS" if mps else "no MPS", measure)


@contextlib.contextmanager
def mps_daemon():
    control = shutil.which("nvidia-cuda-mps-control")
    if control is None:
        raise Skip("MPS: nvidia-cuda-mps-control is not on PATH")
    started = subprocess.run([control, "-d"], timeout=30, capture_output=True, text=True)
    if started.returncode != 0:
        raise Skip(f"MPS: the daemon did not start ({(started.stderr or started.stdout).strip()[:200]})")
    try:
        yield control
    finally:
        subprocess.run([control], input="quit\n", text=True, timeout=30, capture_output=True)


def mps_server(control: str | None) -> dict:
    if control is None:
        return {}
    listed = subprocess.run([control], input="get_server_list\n", text=True, timeout=30, capture_output=True)
    return {"mps_server_running": bool(listed.stdout.split())}


def worker_group(config: TrainConfig, sizes: Sizes, on_ready: Callable[[], None]) -> dict[int, dict]:
    """Start max(sizes.workers) spawned processes, each warmed up on its own copy of ``config``; then for each
    count, the first ``count`` take ``sizes.worker_steps`` steps at once."""
    context = multiprocessing.get_context("spawn")  # CUDA cannot be shared with forked children
    results = context.Queue()
    commands = [context.Queue() for _ in range(max(sizes.workers))]
    threads = max(1, (os.cpu_count() or 1) // len(commands))
    processes = [context.Process(target=_worker, daemon=True, args=(n, config.to_dict(), sizes.n_train,
                                                                     sizes.warmup_steps, threads, commands[n], results))
                 for n in range(len(commands))]
    for process in processes:
        process.start()
    try:
        _collect(results, len(processes), time.monotonic() + sizes.timeout_s)
        on_ready()
        measured = {}
        for count in sizes.workers:
            for command in commands[:count]:
                command.put(sizes.worker_steps)
            starts, ends, images = zip(*_collect(results, count, time.monotonic() + sizes.timeout_s))
            measured[count] = {"images_per_second": sum(images) / (max(ends) - min(starts)),
                               "images_per_second_each": [n / (end - start) for start, end, n in
                                                          zip(starts, ends, images)]}
        return measured
    finally:
        for command in commands:
            command.put(None)
        for process in processes:
            process.join(timeout=20)
            if process.is_alive():
                process.terminate()


def _collect(results, count: int, deadline: float) -> list:
    collected = []
    while len(collected) < count:
        try:
            kind, number, value = results.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"{count - len(collected)} worker(s) did not answer in time") from None
        if kind == "error":
            raise RuntimeError(f"worker {number}: {value}")
        collected.append(value)
    return collected


def _worker(number, config, n_train, warmup_steps, threads, commands, results) -> None:
    torch.set_num_threads(threads)
    try:
        runner = TrainingSteps(TrainConfig.from_dict(config), random_cifar10(n_train, 1))
        runner.run(warmup_steps)
        results.put(("ready", number, None))
        while (steps := commands.get()) is not None:
            _synced(runner)
            started = time.time()  # the wall clock: comparable across the processes
            runner.run(steps)
            results.put(("done", number, (started, time.time(), steps * runner.config.batch_size)))
    except Exception as error:  # noqa: BLE001 - the parent records it
        results.put(("error", number, _first_line(error)))


def lenet5_wrn(probe: Probe) -> None:
    lenet = probe.config("lenet5", lambda c: not c.compile)
    probe.attempt("lenet5_wrn", "LeNet5 eager", lambda: probe.time("lenet5_wrn", "LeNet5 eager", lenet))

    def graphs():
        if probe.cpu:
            raise Skip("CUDA graphs: needs CUDA")
        record, _ = probe.time("lenet5_wrn", "LeNet5, CUDA graphs",
                               lenet.replace(compile=True, compile_mode="reduce-overhead"))
        record["compile_seconds"] = record.pop("warmup_seconds")
        probe.write()

    probe.attempt("lenet5_wrn", "LeNet5, CUDA graphs", graphs)
    wide = probe.config("wideresnet28x10")
    probe.attempt("lenet5_wrn", "WideResNet28-10 eager",
                  lambda: probe.time("lenet5_wrn", "WideResNet28-10 eager (compute-bound reference)", wide))


def modes_configs(first_runs: list[TrainConfig], runs: list[tuple[str, TrainConfig]], sizes: Sizes,
                  cpu: bool) -> list[TrainConfig]:
    """What ``modes`` times: the first section's runs, each model and batch size once, at the probe's batch size (on a
    CPU: the sweep's first run of LeNet5 alone)."""
    chosen = [next(c for _, c in runs if c.model == sizes.compiled_model)] if cpu else first_runs
    distinct: dict[tuple, TrainConfig] = {}
    for config in chosen:
        distinct.setdefault((config.model, config.batch_size),
                            config.replace(batch_size=sizes.batch(config.batch_size)))
    return list(distinct.values())


def decided(path: Path | None, first_section: str, cpu: bool) -> tuple[bool, str]:
    """Whether the probe at ``path`` (this card's newest) already holds a sweep's decisions for ``first_section``
    under this torch: each of its models timed eager and compiled (``modes``) and a workers record; and why not."""
    if path is None:
        return False, "no probe of this card is committed"
    content = json.loads(path.read_text())
    if content.get("torch") != torch.__version__:
        return False, f"{path.name} was made with torch {content.get('torch')}, this is {torch.__version__}"
    profile = profiles.get("quick", device="cpu" if cpu else "cuda")
    runs = [(task.label, task.config) for task in plan(list(SECTIONS), profile, seeds=[0]) if isinstance(task, RunTask)]
    first = [task.config for task in plan([first_section], profile, seeds=[0]) if isinstance(task, RunTask)]
    timed = {(r.get("model"), r.get("batch_size"), r.get("fast_path")) for r in content.get("records", [])
             if r.get("section") == "modes" and "ms_per_step" in r}
    for config in modes_configs(first, runs, CPU if cpu else GPU, cpu):
        for fast_path in ("eager", "compiled"):
            if (config.model, config.batch_size, fast_path) not in timed:
                return False, f"{path.name} has no {fast_path} timing of {config.model} at batch {config.batch_size}"
    if not any(r.get("section") == "workers" and "images_per_second" in r for r in content.get("records", [])):
        return False, f"{path.name} has no workers records"
    return True, f"{path.name} holds the decisions for {first_section} (modes, workers) under this torch"


def modes(probe: Probe) -> None:
    """The first section's models (each model and batch size once, in the sweep's order), eager and in each compiled
    mode: ms per step and the seconds compiling cost (the warm-up: compiling and recording CUDA graphs), from which
    ``cifarnb.study.fast_paths`` chooses each model's fast path. Eager first, then CUDA graphs, the likelier gain.
    On a CPU: LeNet5 alone (the cheapest to compile), without CUDA graphs."""
    for config in modes_configs(probe.first_runs, probe.runs, probe.sizes, probe.cpu):
        for fast_path in ("eager", "compiled+cuda_graphs", "compiled"):
            label = f"{config.model} at batch {config.batch_size}, {fast_path}"

            def measure(fast_path=fast_path, label=label, config=config):
                if fast_path == "compiled+cuda_graphs" and probe.cpu:
                    raise Skip("CUDA graphs: needs CUDA")
                record, _ = probe.time("modes", label, config.replace(**FAST_PATH_MODES[fast_path]),
                                       fast_path=fast_path)
                if fast_path != "eager":
                    record["compile_seconds"] = record["warmup_seconds"]
                probe.write()

            probe.attempt("modes", label, measure)


TIMED_EARLIER = ("resnet18", "resnet9", "fastresnet9", "lenet5", "wideresnet28x10")


def families(probe: Probe) -> None:
    """Every other model the sweep trains, eager at its sweep batch size: first one of each family not timed yet
    (so a call cut off here still has every family), then the rest."""
    covered = {model_family(model) for model in TIMED_EARLIER}
    remaining = list(dict.fromkeys(config.model for _, config in probe.runs if config.model not in TIMED_EARLIER))
    order = []
    for model in remaining:
        if model_family(model) not in covered:
            covered.add(model_family(model))
            order.append(model)
    if probe.sizes.every_model:
        order += [model for model in remaining if model not in order]
    for model in order:
        probe.attempt("families", model,
                      lambda model=model: probe.time("families", model, probe.config(model, lambda c: not c.compile)))


NOISE = 0.05  # worker counts within 5% of the best aggregate are taken as equal: the fewest wins, then no MPS


def choose_workers(path: Path) -> tuple[int, bool, str]:
    """The sweep's number of processes and whether to start MPS: the probe's best aggregate images/s, where counts
    within :data:`NOISE` of it count as equal and the fewest processes, then no MPS, win; with why."""
    content = json.loads(Path(path).read_text())
    group = [r for r in content["records"] if r.get("section") == "workers" and "images_per_second" in r]
    if not group:
        raise ValueError(f"{path} has no workers records")
    best = max(r["images_per_second"] for r in group)
    chosen = min((r for r in group if r["images_per_second"] >= (1 - NOISE) * best),
                 key=lambda r: (r["workers"], bool(r.get("mps"))))
    return chosen["workers"], bool(chosen.get("mps")), (
        f"{chosen['label']}: {chosen['images_per_second']:.0f} images/s of {chosen['model']} "
        f"({chosen['images_per_second'] / best:.0%} of the best), from {Path(path).name}")


SECTION_FUNCTIONS = {f.__name__: f for f in (resnet18_eager, precision, resnet18_compiled, fixed_costs, ghost_bn,
                                             modes, workers, lenet5_wrn, families)}
# The decisions a sweep needs, in a short first call (--decide): each model's fast path, the worker count and MPS.
DECISIONS = ("modes", "workers")
DECISION_BUDGET_S = 90
DECISION_WORKERS = {"gpu": (1, 2, 4, 8), "cpu": (1, 2)}


def _summary(record: dict) -> str:
    if "skipped" in record or "error" in record:
        why = f"skipped: {record['skipped']}" if "skipped" in record else f"ERROR {record['error']}"
        return f"  {record['label']}: {why}"
    parts = [f"{record[k]:.2f} {unit}" for k, unit in (("ms_per_step", "ms/step"), ("seconds_per_epoch", "s/epoch"),
                                                      ("seconds_per_10000_images", "s per 10,000 images"),
                                                      ("seconds", "s"), ("compile_seconds", "s compiling"))
             if isinstance(record.get(k), float)]
    if record.get("mfu") is not None:
        parts.append(f"MFU {100 * record['mfu']:.1f}%")
    return f"  {record['label']}: " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="every section at tiny sizes on the CPU (a smoke run)")
    parser.add_argument("--out", default="probe.json", help="the JSON, rewritten after every record")
    parser.add_argument("--sections", nargs="+", choices=list(SECTION_FUNCTIONS), default=list(SECTION_FUNCTIONS))
    parser.add_argument("--choose", nargs="?", const="", default=None, metavar="FILE",
                        help="print the sweep's 'WORKERS MPS' from FILE's workers section (default: the newest "
                        "benchmarks/probe-<card>-<date>.json of this device's card) and exit")
    parser.add_argument("--decide", action="store_true", help="only what a sweep decides from (sections "
                        f"{' '.join(DECISIONS)}, 1/2/4/8 workers), within --budget-s (default {DECISION_BUDGET_S})")
    parser.add_argument("--decided", action="store_true", help="exit 0 if the newest committed probe of this card "
                        "already holds --decide's decisions for --first-section under this torch, else 1; say why")
    parser.add_argument("--first-section", default=next(iter(SECTIONS)), choices=list(SECTIONS),
                        help="the section a sweep trains first, whose runs modes and workers time (default: "
                        "%(default)s)")
    parser.add_argument("--budget-s", type=float, default=None, help="past this many seconds the measures left are "
                        "recorded as skipped (default: none; with --decide "
                        f"{DECISION_BUDGET_S})")
    parser.add_argument("--extend", type=Path, default=None, metavar="FILE",
                        help="go on from FILE, a probe of this card made earlier (auto: the newest committed one, if "
                        "any): its records, then these sections'")
    args = parser.parse_args(argv)
    if args.decide:
        args.sections = list(DECISIONS) if args.sections == list(SECTION_FUNCTIONS) else args.sections
        args.budget_s = DECISION_BUDGET_S if args.budget_s is None else args.budget_s
    card = "cpu" if args.cpu or not torch.cuda.is_available() else device_name(torch.device("cuda"))
    if args.decided:
        done, why = decided(newest_probe_path(card, HERE), args.first_section, args.cpu)
        print(f"probe: {'decisions not needed: ' if done else 'decisions needed: '}{why}")
        return 0 if done else 1
    if args.choose is not None:
        path = Path(args.choose) if args.choose else newest_probe_path(card, HERE)
        if path is None:
            print(f"probe: no benchmarks/probe-{card_slug(card)}-<date>.json to choose from", file=sys.stderr)
            return 3
        workers, mps, why = choose_workers(path)
        print(why, file=sys.stderr)
        print(workers, int(mps))
        return 0
    if not args.cpu and not torch.cuda.is_available():
        print("probe: CUDA is not available here; --cpu runs every section at tiny sizes on the CPU", file=sys.stderr)
        return 2
    if args.cpu:
        torch.set_num_threads(1)  # a smoke run: one thread stays fast beside other jobs (OpenMP's waits do not)
    if args.extend == Path("auto"):  # the newest committed probe of this card, if there is one
        args.extend = newest_probe_path(card, HERE)
    probe = Probe(Path(args.out), args.cpu, args.first_section, args.budget_s, args.extend)
    if args.decide:
        probe.sizes = dataclasses.replace(probe.sizes, workers=DECISION_WORKERS["cpu" if args.cpu else "gpu"])
    print(f"probe: {probe.card}, torch {torch.__version__}, peak {probe.peak or 'unknown'}; writing {args.out}",
          flush=True)
    for name in [name for name in SECTION_FUNCTIONS if name in args.sections]:
        started, first = time.perf_counter(), len(probe.records)
        try:
            SECTION_FUNCTIONS[name](probe)
            status = "done"
        except Exception as error:  # noqa: BLE001 - a section that cannot start is recorded; the next one runs
            probe.add(name, "the whole section", error=_first_line(error))
            status = "failed"
        probe.header["sections"][name] = {"status": status, "seconds": round(time.perf_counter() - started, 1)}
        probe.write()
        print(f"probe: {name} ({probe.header['sections'][name]['seconds']} s)", flush=True)
        for record in probe.records[first:]:
            print(_summary(record), flush=True)
    errors = [record for record in probe.records if "error" in record]
    print(f"probe: {len(probe.records)} records, {len(errors)} error(s); {args.out}"
          + ("" if args.cpu else f" (commit it as {probe.header['commit_as']})"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
