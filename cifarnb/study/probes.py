"""Probes of a card (``probe-<card>-<date>.json`` in a folder the caller names, as the project's probe benchmark
writes them), read: the sustained training rate of a model on a card (:meth:`Probe.rate`, for the estimate) and what a precision costs
against bf16 autocast there (:meth:`Probe.precision_cost`, for the sweep's choice of precision)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..train import TrainConfig

# Short names of the cards the project knows -> the name a run records (torch's, as nvidia-smi prints it).
CARD_NAMES = {"H200": "NVIDIA H200", "H100": "NVIDIA H100 80GB HBM3", "A100": "NVIDIA A100-SXM4-80GB", "CPU": "cpu"}
# Dense (no sparsity) bf16 tensor-core FLOP/s from the vendors' datasheets, by a name the card's name contains;
# the first match wins. A bf16 matrix product measured on this project's H200 reached about 790 (device notes).
DENSE_BF16_PEAK = (("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("A100", 312e12), ("L40S", 362e12))
# The card whose timings the committed store holds: estimates are for it, said as a reference, where the reader's
# machine has no GPU of its own.
REFERENCE_CARD = CARD_NAMES["H200"]


def estimate_card() -> tuple[str, bool]:
    """The card an estimate is for, and whether it is the reference card: this machine's GPU, else
    :data:`REFERENCE_CARD`."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(), False
    return REFERENCE_CARD, True


def resolve_card(name: str, seen: set[str] = frozenset()) -> str:
    """The device name a run records for the card ``name``: the name itself (any letter case) where it is one of
    :data:`CARD_NAMES`' or ``seen`` (the devices the store's runs and the committed probes name), else a short form
    ("H200", "nvidia h200"); an unknown card is a ValueError listing the known ones (an estimate for a name no run
    carries would silently guess every figure)."""
    known = {*CARD_NAMES.values(), *seen}
    by_case = {label.lower(): label for label in known}
    if name.strip().lower() in by_case:
        return by_case[name.strip().lower()]
    short = name.upper().replace("NVIDIA", "").strip()
    if short in CARD_NAMES:
        return CARD_NAMES[short]
    listed = ", ".join(f"{label} ({short})" for short, label in CARD_NAMES.items())
    others = sorted(set(seen) - set(CARD_NAMES.values()))
    raise ValueError(f"unknown card {name!r} for --estimate; known: {listed}"
                     + (f", and the store's {', '.join(others)}" if others else ""))


def card_slug(name: str) -> str:
    """"NVIDIA H200" -> "nvidia-h200": the card's part of a committed probe's file name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def probe_paths(folder: str | Path | None) -> list[Path]:
    """Every probe (``probe-<card>-<date>.json``) in ``folder``, sorted; none without a folder."""
    return sorted(Path(folder).glob("probe-*-[0-9]*.json")) if folder else []


def newest_probe_path(card: str, folder: str | Path) -> Path | None:
    """The newest ``probe-<card>-<date>.json`` of ``card`` in ``folder`` (ISO dates: the last sorted), or None."""
    paths = sorted(Path(folder).glob(f"probe-{card_slug(card)}-[0-9]*.json"))
    return paths[-1] if paths else None


def model_family(model: str) -> str:
    """The family of ``model`` as the models' registry recorded it when the model registered (the module of
    :mod:`cifarnb.models` that registers it: "resnet" for resnet18/34/50, "resnet9" for resnet9 and fastresnet9)."""
    from .. import models

    return models.model_family(model)


@dataclass(frozen=True)
class Probe:
    """A probe of one card (the probe benchmark's JSON): the records that measured training throughput alone
    on it (one worker), each with its model, batch size, mode and sustained training FLOP/s."""

    path: Path
    device: str
    records: tuple[dict, ...]
    cpu: str | None = None  # a CPU's probe (the CPU speed benchmark): which CPU, with how many threads
    threads: int | None = None

    @classmethod
    def read(cls, path: str | Path) -> Probe:
        try:
            content = json.loads(Path(path).read_text())
            records = tuple(record for record in content["records"]
                            if record.get("achieved_flops") and record.get("workers", 1) == 1)
            return cls(Path(path), content["device"], records, content.get("cpu"), content.get("threads"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path} is not a probe written by the probe benchmark ({type(error).__name__}: "
                             f"{error})") from None

    @classmethod
    def newest(cls, device_label: str, folder: str | Path) -> Probe | None:
        """The newest probe of ``device_label``'s card in ``folder`` (``probe-<card>-<date>.json``), or None."""
        path = newest_probe_path(device_label, folder)
        return None if path is None else cls.read(path)

    def precision_cost(self, model: str, precision: str) -> float | None:
        """How many times bf16 autocast's time a training step takes in ``precision``, from the probe's
        "precision" section: the same model's records, else its family's (None: the probe did not time both)."""
        family = model_family(model)
        for alike in (lambda r: r["model"] == model, lambda r: r.get("family") == family):
            timed = {r.get("precision"): r["ms_per_step"] for r in self.records
                     if r.get("section") == "precision" and alike(r) and r.get("ms_per_step")}
            if precision in timed and "bf16" in timed:
                return timed[precision] / timed["bf16"]
        return None

    def rate(self, config: TrainConfig, mode: str) -> tuple[float, dict] | None:
        """Sustained training FLOP/s for ``config`` run in ``mode``, and the record it comes from: the first kind
        of record there is of the same model in ``mode``, its family in ``mode``, the same model, its family; of
        those, the one at the batch size nearest ``config``'s."""
        family = model_family(config.model)
        kinds = (lambda r: r["model"] == config.model and r.get("mode") == mode,
                 lambda r: r.get("family") == family and r.get("mode") == mode,
                 lambda r: r["model"] == config.model,
                 lambda r: r.get("family") == family)
        for alike in kinds:
            candidates = [record for record in self.records if alike(record)]
            if candidates:
                best = min(candidates, key=lambda r: (abs(math.log(r["batch_size"] / config.batch_size)),
                                                      -r["achieved_flops"]))
                return best["achieved_flops"], best
        return None


def dense_bf16_peak(name: str) -> float | None:
    """The card's dense bf16 peak FLOP/s (:data:`DENSE_BF16_PEAK`), None for a card not listed (or a CPU)."""
    return next((peak for part, peak in DENSE_BF16_PEAK if part in name), None)
