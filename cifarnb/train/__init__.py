"""Training: a typed config (:class:`TrainConfig`) and one loop (:func:`fit`) for every profile."""

from .config import TrainConfig
from .engine import FitResult, evaluate, fit, resolve_device

__all__ = ["TrainConfig", "FitResult", "fit", "evaluate", "resolve_device"]
