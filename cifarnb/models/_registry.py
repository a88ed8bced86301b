"""Name -> model factory registry, in the manner of timm's `create_model` and `register_model`.

A factory is a function `fn(num_classes: int = 10, *, option=default, ...)` decorated with `@register`; its
name is the model's name (as timm's `register_model` takes it), and its keyword-only parameters are the model's
options, so the signature is the single place where a model's name and valid options are written down.
Registering also records the model's module and family (the module's last name: "resnet" for resnet18/34/50), as
timm's registry does; a model of this package must be one of ``cifarnb.names.MODEL_FAMILIES``, in that family, the
torch-free list the command line's help reads, and :func:`check_complete` checks that every model listed there
registered.
"""

from __future__ import annotations

import fnmatch
import inspect
from typing import Any, Callable, NamedTuple, TypeVar

from torch import nn

from ..names import MODEL_FAMILIES

Factory = Callable[..., nn.Module]
F = TypeVar("F", bound=Factory)


class Registered(NamedTuple):
    factory: Factory
    module: str  # the module that registered it, e.g. "cifarnb.models.resnet"
    family: str  # the module's last name, e.g. "resnet"


_MODELS: dict[str, Registered] = {}
_PACKAGE = __name__.rsplit(".", 1)[0]  # cifarnb.models


def register(factory: F) -> F:
    """Decorator that makes a factory buildable as `build(factory.__name__)`, recording its module and family."""
    key = factory.__name__.lower()
    if key in _MODELS:
        raise ValueError(f"model name {key!r} registered twice")
    module = factory.__module__
    family = module.rsplit(".", 1)[-1]
    if module.startswith(_PACKAGE + ".") and MODEL_FAMILIES.get(key) != family:
        listed = MODEL_FAMILIES.get(key)
        raise ValueError(f"model {key!r} of {module} is " + (f"listed in family {listed!r}" if listed else "not listed")
                         + " in cifarnb.names.MODEL_FAMILIES (the command line's torch-free list of the zoo); "
                         f"add it there as {key!r}: {family!r}")
    _MODELS[key] = Registered(factory, module, family)
    return factory


def check_complete() -> None:
    """Every model of ``cifarnb.names.MODEL_FAMILIES`` registered (called once the family modules are imported)."""
    missing = sorted(set(MODEL_FAMILIES) - set(_MODELS))
    if missing:
        raise ImportError(f"cifarnb.names.MODEL_FAMILIES lists {', '.join(missing)}, which no module of "
                          f"{_PACKAGE} registers")


def list_models(pattern: str | None = None) -> list[str]:
    """The registered names, sorted; with ``pattern`` (shell-style, e.g. "resnext*") only those matching it."""
    names = sorted(_MODELS)
    return names if pattern is None else fnmatch.filter(names, pattern.lower())


def model_family(name: str) -> str:
    """The family of a registered model: the module that registered it ("resnet" for resnet18/34/50, "resnet9" for
    resnet9 and fastresnet9)."""
    return _lookup(name).family


def model_options(name: str) -> dict[str, Any]:
    """The options a model accepts, with their defaults."""
    factory = _lookup(name).factory
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
    return _lookup(name).factory(num_classes=num_classes, **options)


def _lookup(name: str) -> Registered:
    try:
        return _MODELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())}") from None
