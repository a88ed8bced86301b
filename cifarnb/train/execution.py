"""How a run executes: the one place that turns a config's execution choices into what actually runs.

:func:`decide` reads the config's explicit choices, the device (a CUDA card, or the CPU's features) and the
evidence it is handed (:class:`Evidence`: a probe's timing, a self-test's or the CPU check's verdict), and returns
an :class:`Execution`: the precision, the autocast type, the memory layout and whether to compile. ``fit``,
``TrainingSteps`` (and so the command line, the sweep, Ray workers and the notebooks) all call it, so ``"auto"``
means the same thing in every entry point on the same device. It reads no file: evidence comes in as an argument.

What ``precision="auto"`` becomes:

* on CUDA: ``Evidence.reference_precision`` (the study passes the report's code's) unless the probe timed it at
  more than ``Evidence.max_precision_cost`` times bf16 autocast, or bf16 when there is no reference; a bf16 that a
  self-test saw fail goes back to the reference;
* on a CPU with native bf16 (``avx512_bf16`` or AMX, :func:`cpu_has_native_bf16`): the CPU fast path, bf16
  autocast with channels_last, compiled when the run is long enough to pay for the compile
  (:data:`CPU_COMPILE_MIN_STEPS`); :func:`bf16_agrees_with_fp32` guards it (``fit`` runs it once per model);
* on any other CPU: fp32 eager.

Every field decided here is an execution field (``config.EXECUTION_FIELDS``): out of the run's key, so a run made
in bf16 on a CPU is the same experiment as one made in TF32 on a GPU; each run records what it ran in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .config import TrainConfig

if TYPE_CHECKING:
    from ..data import CIFAR10

# The CPU fast path compiles a run of at least this many training steps. Measured on a 2-core EPYC (torch 2.14.1,
# the CPU speed benchmark): compiling FastResNet9 or ResNet18 costs one to two minutes once and saves about a
# third of every full-size step (seconds each), so a few hundred steps repay it; the CPU tests' tiny runs stay eager.
CPU_COMPILE_MIN_STEPS = 300


@dataclass(frozen=True)
class Evidence:
    """What is known about this device's fast paths, passed in explicitly (nothing here is read from a file).

    ``reference_precision``: the precision "auto" keeps on a GPU unless bf16 is much faster (the study gives the
    report's code's; None: bf16). ``precision_cost``: a probe's time of a step in that precision over bf16's, for
    this model on this card (None: not timed), and ``max_precision_cost`` the most it may cost before bf16 is
    taken. ``bf16_failed``: why a check of bf16 against the reference failed here (a GPU self-test's line, or the
    CPU check's), or None. A GPU's compiled mode is not evidence here: the sweep sets it on the config
    (``cifarnb.study.fast_paths``).
    """

    reference_precision: str | None = None
    precision_cost: float | None = None
    max_precision_cost: float = 1.5
    bf16_failed: str | None = None

    def replace(self, **changes: Any) -> Evidence:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Execution:
    """What :func:`decide` chose for one run: ``config`` with every execution field set as it runs (precision
    never "auto"), the autocast type (None: none) and one line saying why."""

    config: TrainConfig
    precision: str
    autocast: torch.dtype | None
    why: str
    cpu_fast_path: bool = False  # bf16 on a CPU, chosen by "auto": fit checks it against fp32 once per model

    def record(self) -> dict[str, Any]:
        """The execution fields as a run records them (``meta["execution"]``)."""
        return {"device": self.config.device, "loader": self.config.loader, "precision": self.precision,
                "channels_last": self.config.channels_last, "compile": self.config.compile}


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (``avx512_bf16`` or AMX), so that oneDNN's bf16 convolutions are
    faster than fp32 (elsewhere bf16 is emulated and slower)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def steps_per_epoch(config: TrainConfig) -> int:
    """The training steps of one epoch (all 50,000 images when ``n_train`` is unset; the last, smaller batch
    counted unless ``drop_last``)."""
    images = 50_000 if config.n_train is None else config.n_train
    return images // config.batch_size if config.drop_last else math.ceil(images / config.batch_size)


def training_steps(config: TrainConfig) -> int:
    """The training steps of the whole run."""
    return steps_per_epoch(config) * config.epochs


def decide(config: TrainConfig, device: torch.device, evidence: Evidence | None = None) -> Execution:
    """How ``config`` runs on ``device`` given ``evidence`` (see the module's docstring for what "auto" becomes)."""
    evidence = evidence or Evidence()
    chosen = config.precision
    if device.type == "cuda":
        precision, why = _cuda_precision(chosen, evidence)
        half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        return Execution(config.replace(precision=precision), precision, half, why)
    if chosen == "auto" and cpu_has_native_bf16() and evidence.bf16_failed is None:
        compiled = config.compile or training_steps(config) >= CPU_COMPILE_MIN_STEPS
        fast = config.replace(precision="bf16", channels_last=True, compile=compiled)
        return Execution(fast, "bf16", torch.bfloat16,
                         "the CPU fast path: this CPU has native bf16; bf16 autocast, channels_last"
                         + (", compiled" if compiled else f", eager (under {CPU_COMPILE_MIN_STEPS} steps)"),
                         cpu_fast_path=True)
    if chosen == "bf16":
        return Execution(config, "bf16", torch.bfloat16, "bf16 autocast, as chosen")
    why = ("auto on a CPU without native bf16" if chosen == "auto" and not cpu_has_native_bf16()
           else f"auto, but bf16 failed its check here ({evidence.bf16_failed})" if chosen == "auto"
           else f"{chosen} on a CPU runs in fp32 (no TF32 or fp16 autocast on a CPU)" if chosen != "fp32"
           else "fp32, as chosen")
    return Execution(config.replace(precision="fp32"), "fp32", None, why)


def _cuda_precision(chosen: str, evidence: Evidence) -> tuple[str, str]:
    if chosen != "auto":
        return chosen, f"{chosen}, as chosen"
    reference = evidence.reference_precision
    if reference is None:
        return ("bf16", "auto: bf16 autocast") if evidence.bf16_failed is None else (
            "fp32", f"auto, but bf16 failed its check here ({evidence.bf16_failed})")
    cost = evidence.precision_cost
    if reference != "bf16" and cost is not None and cost > evidence.max_precision_cost \
            and evidence.bf16_failed is None:
        return "bf16", (f"auto: bf16, since the probe timed {reference} at {cost:.2f}x bf16 "
                        f"(more than {evidence.max_precision_cost:g}x)")
    return reference, f"auto: the reference precision {reference}"


def autocast(device: torch.device, half: torch.dtype | None):
    """The context a step's forward pass and loss run in: autocast to ``half``, or nothing (None)."""
    if half is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=half)


def execution_mode(config: TrainConfig) -> str:
    """How ``config``'s steps run, as the probe's records and the estimate name it: "eager", "compiled" or
    "compiled+cuda_graphs", then "+cudnn_benchmark" when cuDNN autotunes."""
    mode = ("compiled+cuda_graphs" if uses_cuda_graphs(config) else "compiled") if config.compile else "eager"
    return mode + ("+cudnn_benchmark" if config.cudnn_benchmark else "")


def uses_cuda_graphs(config: TrainConfig) -> bool:
    return config.compile and config.compile_mode in ("reduce-overhead", "max-autotune")


def on_cuda(device: str) -> bool:
    """Whether a config's ``device`` runs on CUDA here ("auto" does where CUDA is available)."""
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def sweep_execution(device: str) -> dict[str, Any]:
    """The execution fields a sweep's runs get on ``device`` ("auto", "cpu", "cuda", "cuda:N") beyond what
    :func:`decide` chooses per run: the GPU's speed steps (``cifarnb.study.profiles.Profile.sizes`` gives them to
    every config). None is part of a run's key. The probe benchmark measures each step's gain (the section
    named)."""
    if not on_cuda(device):
        return {}  # CPU: decide() chooses its fast path; evaluation and checkpoints are a small share of an epoch
    return {
        # Step 1, cuDNN autotuning: cuDNN times its convolution algorithms once per input shape and keeps the
        # fastest (a few seconds once per run). Gain: probe section resnet18_eager, autotuning off against on.
        "cudnn_benchmark": True,
        # Step 2, evaluation in batches of 5,000 (the default 1,000): 2 launches of every kernel per evaluation
        # of 10,000 images instead of 10, for the activations of 5,000 images at once. Gain: probe fixed_costs.
        "eval_batch_size": 5000,
        # Step 3, a checkpoint every 60 s instead of after every epoch: each one writes 45-146 MB with fsync, which
        # a GPU epoch of a few seconds feels; an interrupted run repeats at most a minute. Gain: probe fixed_costs.
        "checkpoint_every_s": 60.0,
    }


# The CPU check: a few SGD steps of the run's model in fp32 and, at each step, its loss and gradient in bf16 on the
# same weights and the same batch.
CHECK_STEPS, CHECK_BATCH = 3, 16
# Same weights, so what differs is bf16 alone: each loss agrees with fp32's to 0.6% or better and the gradients point
# the same way (cosine 0.95-1.0 for VGG-A +- BN, ResNet9, FastResNet9 and ResNet18 on this CPU). Comparing two
# trajectories instead (each precision stepping its own weights) held a healthy bf16 to the drift of its chaotic
# steps: VGG-A + BN's loss fell from 2.4 to 1.5 in one step on 16 images and bf16's trajectory was 0.2 off by the
# second. A wrong result (NaN, a broken kernel, logits off by a factor, a wrong backward) is far outside either bound.
CHECK_RELATIVE_TOLERANCE = 0.05  # of the first fp32 loss
CHECK_MIN_GRADIENT_COSINE = 0.8  # a wrong backward (a sign, a layer's gradient lost) falls far below


def _loss_and_gradient(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                       half: torch.dtype | None, seed: int) -> tuple[float, torch.Tensor]:
    torch.manual_seed(seed)  # the same dropout masks in both precisions
    with autocast(torch.device("cpu"), half):
        loss = torch.nn.functional.cross_entropy(model(images).float(), labels)
    model.zero_grad(set_to_none=True)
    loss.backward()
    gradient = torch.cat([p.grad.flatten().float() for p in model.parameters() if p.grad is not None])
    return loss.item(), gradient


def bf16_agrees_with_fp32(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                          steps: int = CHECK_STEPS) -> str | None:
    """None when, at each of ``steps`` fp32 SGD steps of a copy of ``model`` (channels_last, train mode), bf16
    autocast on the same weights and batch gives a loss within :data:`CHECK_RELATIVE_TOLERANCE` times the first fp32
    loss of fp32's and a gradient with cosine at least :data:`CHECK_MIN_GRADIENT_COSINE` to fp32's; else one line
    saying how they differ. The global random state is left as it was."""
    import copy

    with torch.random.fork_rng(devices=[]):
        copied = copy.deepcopy(model).to(memory_format=torch.channels_last).train()
        images = images.contiguous(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(copied.parameters(), lr=0.01, momentum=0.9)
        allowed = None
        for step in range(1, steps + 1):
            fast, fast_gradient = _loss_and_gradient(copied, images, labels, torch.bfloat16, step)
            exact, exact_gradient = _loss_and_gradient(copied, images, labels, None, step)  # the step taken
            allowed = allowed or CHECK_RELATIVE_TOLERANCE * max(abs(exact), 1e-3)
            cosine = torch.nn.functional.cosine_similarity(fast_gradient, exact_gradient, dim=0).item()
            if not math.isfinite(fast) or abs(fast - exact) > allowed:
                return (f"bf16 loss {fast:.4g} against fp32's {exact:.4g} on the same weights at step {step} of "
                        f"{steps} (tolerance {allowed:.3g}, {CHECK_RELATIVE_TOLERANCE:.0%} of the first loss)")
            if not cosine >= CHECK_MIN_GRADIENT_COSINE:
                return (f"bf16's gradient has cosine {cosine:.3f} to fp32's on the same weights at step {step} of "
                        f"{steps} (at least {CHECK_MIN_GRADIENT_COSINE} expected)")
            optimizer.step()
    return None


# The CPU check's verdict per (model, options) in this process: it runs once, before the first run that needs it.
_CPU_CHECKS: dict[tuple[str, str], str | None] = {}


def checked_execution(config: TrainConfig, data: CIFAR10, device: torch.device,
                      evidence: Evidence | None = None) -> Execution:
    """:func:`decide`, with the CPU fast path checked first: once per model and options in a process, a few SGD
    steps in bf16 against fp32 on the run's first training images (``execution.bf16_agrees_with_fp32``); a failed
    check decides again without bf16 and says why in one line."""
    execution = decide(config, device, evidence)
    if not execution.cpu_fast_path:
        return execution
    options = config.model_kwargs()
    which = (config.model, repr(sorted(options.items())))
    if which not in _CPU_CHECKS:
        from .. import models
        from ..data import NORMALIZATIONS

        torch.manual_seed(config.seed)
        model = models.build(config.model, **options)
        models.init_from_data(model, data.x_train, *NORMALIZATIONS[config.normalization])
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMALIZATIONS[config.normalization])
        images = (data.x_train[:CHECK_BATCH].float() / 255 - mean) / std
        _CPU_CHECKS[which] = bf16_agrees_with_fp32(model, images, data.y_train[:CHECK_BATCH].long())
    failed = _CPU_CHECKS[which]
    if failed is None:
        return execution
    print(f"{config.model}: the CPU's bf16 check failed ({failed}); training in fp32", file=sys.stderr)
    return decide(config, device, (evidence or Evidence()).replace(bf16_failed=failed))
