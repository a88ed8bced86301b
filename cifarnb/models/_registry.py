"""Name -> model factory registry, in the manner of timm's `create_model`.

A factory is a function `fn(num_classes: int = 10, *, option=default, ...)` decorated with `@register`; its
name is the model's name (as timm's `register_model` takes it), and its keyword-only parameters are the model's
options, so the signature is the single place where a model's name and valid options are written down.
"""

from __future__ import annotations

import fnmatch
import inspect
from typing import Any, Callable, TypeVar

from torch import nn

Factory = Callable[..., nn.Module]
F = TypeVar("F", bound=Factory)

_FACTORIES: dict[str, Factory] = {}


def register(factory: F) -> F:
    """Decorator that makes a factory buildable as `build(factory.__name__)`."""
    key = factory.__name__.lower()
    if key in _FACTORIES:
        raise ValueError(f"model name {key!r} registered twice")
    _FACTORIES[key] = factory
    return factory


def list_models(pattern: str | None = None) -> list[str]:
    """The registered names, sorted; with ``pattern`` (shell-style, e.g. "resnext*") only those matching it."""
    names = sorted(_FACTORIES)
    return names if pattern is None else fnmatch.filter(names, pattern.lower())


def model_options(name: str) -> dict[str, Any]:
    """The options a model accepts, with their defaults."""
    factory = _lookup(name)
    return {
        p.name: p.default
        for p in inspect.signature(factory).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def build(name: str, num_classes: int = 10, **options: Any) -> nn.Module:
    """Build a registered model; the name is case-insensitive ("ResNet18" works).

    Raises ValueError for an unknown name or an option the model does not take.
    """
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(f"{k}={v!r}" for k, v in valid.items()) or "none"
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for model {name!r}; valid options: {listed}"
        )
    return _lookup(name)(num_classes=num_classes, **options)


def _lookup(name: str) -> Factory:
    try:
        return _FACTORIES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())}") from None
