"""The device a run uses, and the environment it ran in; the bottom layer, beside ``data``.

* :func:`resolve_device` turns ``"auto"``/``"cpu"``/``"cuda[:N]"`` into a ``torch.device``, with one clear error
  when CUDA is asked for and absent; :func:`device_name` names it (the GPU's model, else ``"cpu"``).
* :func:`software_versions` is what every stored run records in its meta; :func:`describe` adds the hardware
  (device, CPU, threads) that a benchmark report needs.
* :func:`synchronized_clock`: a wall clock that first waits for queued GPU work, so timings are honest.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
from pathlib import Path

import torch


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but CUDA is not available here; use device='auto' or 'cpu'")
    return device


def use_tf32_convolutions(enabled: bool) -> None:
    """Whether cuDNN may run float32 convolutions on TF32 tensor cores (10-bit mantissa inputs, fp32 accumulation).
    PyTorch's default is yes, and it is how the report's main.py and VGG scripts ran their fp32 convolutions on an
    Ampere or later GPU; a run sets it each time (it is process-wide), so runs in one process do not leak it.
    Matmuls stay in full fp32, PyTorch's default. Nothing changes on a CPU."""
    torch.backends.cudnn.allow_tf32 = enabled


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return "cpu: " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu: " + (platform.processor() or platform.machine())


def software_versions() -> dict[str, str]:
    import numpy
    import torchvision

    from . import __version__

    return {
        "cifarnb": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda or "none",
    }


def hardware() -> dict:
    """What a run's numbers also depend on beyond its config: two runs of one key on different CPUs or thread
    counts differ in the last bits, which can flip a plateau scheduler's decision and so a whole trajectory."""
    return {"torch_threads": torch.get_num_threads(), "cpu": cpu_name().removeprefix("cpu: "),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def describe(device: torch.device) -> dict:
    """The device (the GPU's model, else the CPU's), software versions, cuDNN, CPU threads and today's date."""
    return {
        "device": device_name(device) if device.type == "cuda" else cpu_name(),
        "device_type": device.type,
        **software_versions(),
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "cpu_threads": torch.get_num_threads(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
    }


def synchronized_clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
