"""Training: a typed config (:class:`TrainConfig`) and one loop (:func:`fit`) for every profile.

``engine`` holds the loop, ``fastpath`` its multi-line speed tricks, ``optim`` the optimizers, schedules and
losses, ``precision`` the autocast type a run trains in, ``timing`` the throughput and time-to-accuracy measurements
the benchmarks use.
"""

from .config import TrainConfig
from .engine import FitResult, evaluate, fit
from .timing import measure_throughput, time_to_accuracy

__all__ = ["TrainConfig", "FitResult", "fit", "evaluate", "measure_throughput", "time_to_accuracy"]
