"""The schema of a stored run (``<model>-<key>/run.json``), declared once with pydantic.

The store checks every run.json it reads against it, and so does an archive's merge, so a truncated or
hand-edited file (an empty history, a string where an accuracy belongs, a missing field) is refused with one line
naming the file and the field instead of being loaded as a good result. What pydantic cannot see stays with the
store: whether the config's values are valid choices and build a model (:meth:`TrainConfig.validate`) and whether
the config hashes to its folder's key.

Validation is a check only: the run is built from the file's own values (never pydantic's converted ones), so a
stored ``"lr": 1`` keeps its key even though the schema reads it as a float.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from .train.config import TrainConfig

RUN_STATUSES = ("finished", "diverged")  # a run.json records a run that ended; an unfinished one has none


def _percentage(value: float | None) -> float | None:
    # NaN is how a diverged epoch records its accuracy (JSON NaN, as json.dumps writes it); null is "not measured".
    if value is not None and not math.isnan(value) and not 0 <= value <= 100:
        raise ValueError(f"an accuracy must lie in [0, 100], not {value}")
    return value


Accuracy = Annotated[float | None, AfterValidator(_percentage)]
Seconds = Annotated[float, Field(ge=0)]


class _Record(BaseModel):
    # strict: "25" is not an epoch and 1 is not True (JSON arrays still read as tuples, ints as floats).
    model_config = ConfigDict(strict=True, extra="allow")


class StepEvaluation(_Record):
    """An evaluation within an epoch (TrainConfig.eval_every_steps): the VGG runs' every-100-steps curve."""

    step: int = Field(ge=1)
    test_loss: float
    test_acc: Accuracy
    test_acc_exact1000: Accuracy = None
    seconds: Seconds | None = None  # the evaluation's, outside the epoch's training seconds


class EpochRow(_Record):
    """One epoch of a run's history, as :func:`cifarnb.train.fit` writes it (later columns are allowed)."""

    epoch: int = Field(ge=1)
    train_loss: float
    train_acc: Accuracy
    lr: float = Field(ge=0)
    seconds: Seconds
    test_loss: float
    test_acc: Accuracy
    eval_seconds: Seconds | None = None  # absent from a diverged epoch, which is not evaluated
    test_acc_exact1000: Accuracy = None
    test_loss_exact1000: float | None = None
    step_evals: list[StepEvaluation] | None = None


class RunMeta(_Record):
    """How a run was made (the store's ResultStore._train); every field optional, typed when present."""

    cifarnb: str | None = None
    torch: str | None = None
    device: str | None = None
    wall_seconds: Seconds | None = None
    date: str | None = None
    resumed_from_epoch: int | None = Field(default=None, ge=0)
    data_official: bool | None = None
    execution: dict[str, Any] | None = None
    precision: str | None = None
    trainable_parameters: int | None = Field(default=None, ge=0)


def _config_fields() -> type[BaseModel]:
    """TrainConfig's fields and their types, as a pydantic model: unknown fields and wrong types are refused."""
    hints = typing.get_type_hints(TrainConfig)
    fields = {f.name: (hints[f.name], None) for f in dataclasses.fields(TrainConfig)}  # any field may be left out
    return create_model("TrainConfigFields", __config__=ConfigDict(strict=True, extra="forbid"), **fields)


TrainConfigFields = _config_fields()


class RunFile(BaseModel):
    """A whole run.json."""

    model_config = ConfigDict(strict=True, extra="forbid")

    config: TrainConfigFields
    status: Literal[RUN_STATUSES]
    diverged_epoch: int | None = Field(default=None, ge=1)
    history: list[EpochRow]
    meta: RunMeta = RunMeta()

    @model_validator(mode="after")
    def _ended(self) -> "RunFile":
        epochs = [row.epoch for row in self.history]
        if epochs != list(range(1, len(epochs) + 1)):
            raise ValueError(f"history's epochs must run 1, 2, ..., not {epochs[:5]}{' ...' if len(epochs) > 5 else ''}")
        if self.status == "finished" and not self.history:
            raise ValueError("a finished run's history must not be empty")
        if self.status == "diverged" and self.diverged_epoch is None:
            raise ValueError("a diverged run must name its diverged_epoch")
        return self


def check_run_file(text: str | bytes) -> dict:
    """The content of a run.json's text, parsed, if it follows :class:`RunFile`; else ValueError in one line that
    names the field ("has history[0].test_acc = '95': Input should be a valid number").

    Invalid JSON raises ValueError too ("is not valid JSON").
    """
    import json

    try:
        content = json.loads(text)
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8 text at all
        raise ValueError("is not valid JSON") from None
    if not isinstance(content, dict):
        raise ValueError(f"holds {type(content).__name__}, not a JSON object")
    try:
        RunFile.model_validate_json(text)
    except ValidationError as error:
        raise ValueError(describe(error)) from None
    return content


def describe(error: ValidationError) -> str:
    """One line for a pydantic error: the fields missing ("lacks history, status"), else the first wrong field,
    its value and what it should be, and how many other fields are wrong."""
    problems = error.errors(include_url=False)
    missing = [_path(p["loc"]) for p in problems if p["type"] == "missing"]
    if missing:
        return f"lacks {', '.join(missing)}"
    first = problems[0]
    where = _path(first["loc"])
    message = "not a field of a run file" if first["type"] == "extra_forbidden" else first["msg"]
    message = message.removeprefix("Value error, ")
    shown = "" if first["type"] in ("model_type", "value_error") and not first["loc"] else f" = {_short(first['input'])}"
    line = f"has {where}{shown}: {message}" if where else f"is not a valid run: {message}"
    more = len(problems) - 1
    return line + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def _path(loc: tuple) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        elif not str(part).startswith(("function-", "nullable[", "float", "list[")):  # pydantic's type tags
            parts.append(str(part))
    return ".".join(parts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
