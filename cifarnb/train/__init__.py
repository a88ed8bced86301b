"""Training: a typed config (:class:`TrainConfig`) and one loop (:func:`fit`) for every profile."""

from .config import TrainConfig
from .engine import FitResult, evaluate, fit, measure_throughput, resolve_device, time_to_accuracy

__all__ = ["TrainConfig", "FitResult", "fit", "evaluate", "measure_throughput", "resolve_device", "time_to_accuracy"]
