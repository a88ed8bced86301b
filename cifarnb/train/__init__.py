"""Training: a typed config (:class:`TrainConfig`) and one loop (:func:`fit`) for every profile.

``engine`` holds the loop, ``execution`` the one decision of how a run executes (precision, layout, compile),
``speed_steps`` the loop's multi-line speed tricks, ``optim`` the optimizers, schedules and losses, ``timing`` the
throughput and time-to-accuracy measurements the benchmarks use.
"""

from .config import TrainConfig

_LAZY = {"FitResult": "engine", "fit": "engine", "evaluate": "engine", "measure_throughput": "timing",
         "time_to_accuracy": "timing"}


def __getattr__(name: str):
    """The loop and its measurements import torch when first used: reading a TrainConfig (the command line's
    help, a run.json) needs none of it."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["TrainConfig", "FitResult", "fit", "evaluate", "measure_throughput", "time_to_accuracy"]
