"""A run's checkpoint (model, optimizer, schedule, EMA, scaler, RNG states, history): written atomically after an
epoch, read back only when it fits the run that resumes from it (``fit(..., checkpoint_path=p)``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write

Parts = Any  # engine.Parts: what the run trains with (its model, EMA and optimizer are checked against the file)

_CHECKPOINT_KEYS = ("model", "optimizer", "schedule", "scaler", "rng_cpu", "history", "epoch", "wall_seconds")


class _Misfit(ValueError):
    """A checkpoint that reads but cannot resume this run (another model's, or one saved before its code changed)."""


def load(path: Path, device, parts: Parts) -> dict | None:
    """The checkpoint's state, or None when there is none, it cannot be read, or it does not fit ``parts``.

    A damaged checkpoint (a disk fault, a copy cut short), or one whose weights or optimizer do not match the
    run's model, must not stop the run for good: it is renamed ``<name>.corrupt`` (kept for inspection, out of the
    resume path) and the run starts again from epoch 0. The fit is checked before any state is loaded, since
    ``load_state_dict`` copies the matching tensors before it raises on the others.
    """
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        missing = [key for key in _CHECKPOINT_KEYS if key not in state]
        if missing:
            raise KeyError(f"missing {', '.join(missing)}")
        _check_fit(state, parts)
    except Exception as error:  # any unreadable file: unpickling, zip, or missing-entry errors alike
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        problem = (f"does not fit this run ({error})" if isinstance(error, _Misfit)
                   else f"is unreadable ({type(error).__name__})")
        print(f"warning: checkpoint {path} {problem}; moved it aside to {aside.name}, restarting from epoch 0",
              file=sys.stderr, flush=True)
        return None
    return state


def _check_fit(state: dict, parts: Parts) -> None:
    """Raise :class:`_Misfit` unless the checkpoint's model, EMA and optimizer have this run's shapes."""
    def shapes(tensors: dict) -> dict:
        return {name: tuple(value.shape) for name, value in tensors.items() if isinstance(value, torch.Tensor)}

    wanted = [("model", parts.model.state_dict(), state["model"])]
    if (parts.ema is None) != (state.get("ema") is None):
        raise _Misfit("one of run and checkpoint averages its weights (EMA), the other does not")
    if parts.ema is not None:
        wanted.append(("EMA", parts.ema.state_dict(), state["ema"]))
    for what, own, saved in wanted:
        if not isinstance(saved, dict):
            raise _Misfit(f"its {what} state is not a dict of tensors")
        own, saved = shapes(own), shapes(saved)
        differing = sorted(set(own) ^ set(saved)) or sorted(name for name in own if own[name] != saved[name])
        if differing:
            more = f" and {len(differing) - 1} more" if len(differing) > 1 else ""
            raise _Misfit(f"its {what} weights differ in {differing[0]}{more}")
    own_groups = [len(group["params"]) for group in parts.optimizer.state_dict()["param_groups"]]
    saved_groups = [len(group.get("params", ())) for group in state["optimizer"].get("param_groups", ())]
    if own_groups != saved_groups:
        raise _Misfit(f"its optimizer has parameter groups of sizes {saved_groups}, this run {own_groups}")


def save(path: Path, model, optimizer, schedule, scaler, ema, history, epoch, wall, device) -> float:
    started = time.perf_counter()  # returns the seconds it took (run.json's meta.phases)
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "scaler": scaler.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None,
        "history": history,
        "wall_seconds": wall,
    }
    atomic_write(path, lambda out: torch.save(state, out))  # a crash mid-write keeps the previous checkpoint
    return time.perf_counter() - started

