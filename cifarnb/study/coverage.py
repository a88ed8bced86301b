"""How much of a report section is real at a profile, and what fills the rest: the line each notebook shows at its
top, so a reader never takes a missing run for a result.

    >>> print(coverage(model_zoo, profiles.get("quick"), store, seeds=(0, 1)))
    real: 2 of 13 configurations at profile `quick`, at each of its 2 seeds (0, 1) ...; to fill the rest:
    `cifarnb sweep --section model_zoo ...`, then `cifarnb report --only 02 ...`: about 4.1 GPU-hours on ...

A configuration is one task label of the section's plan without its seed (one zoo model, one ablation row, one
feature-map set, one landscape table); it is real at a seed when the store holds that seed's result. The hours
are the estimate ``cifarnb sweep --estimate`` prints (:func:`cifarnb.study.estimate.estimate`), for the missing
tasks only, on the reader's own GPU, or on a reference card (:data:`~cifarnb.study.probes.REFERENCE_CARD`, said
as such) where the machine has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import ModuleType

from ..results import ResultStore
from .estimate import estimate
from .probes import Probe, estimate_card
from .profiles import Profile
from .sections import plan

_SEED_SUFFIX = re.compile(r" \(seed \d+\)$")


@dataclass(frozen=True)
class Coverage:
    section: str
    notebook: str
    profile: str
    seeds: tuple[int, ...]
    configurations: int  # distinct configurations the section plans
    complete: int  # ... stored at every seed
    partial: int  # ... stored at some seeds but not all
    tasks: int
    stored: int
    hours_left: float  # estimated device-hours on ``card`` of the tasks the store lacks
    guessed: list[str] = field(default_factory=list)  # models whose hours are guessed from FLOPs, not measured
    card: str = ""  # the card the hours are for, in words: "this machine's NVIDIA ...", "an NVIDIA H200, a ..."

    @property
    def commands(self) -> tuple[str, str]:
        """What fills the rest, two commands to paste: the sweep, then the notebook re-executed at the profile."""
        seeds = " ".join(map(str, self.seeds))
        return (f"cifarnb sweep --section {self.section} --profile {self.profile} --seeds {seeds} --device cuda",
                f"cifarnb report --only {self.notebook[:2]} --profile {self.profile}")

    def __str__(self) -> str:
        seeds = (f"seed {self.seeds[0]}" if len(self.seeds) == 1
                 else f"each of its {len(self.seeds)} seeds ({', '.join(map(str, self.seeds))})")
        real = (f"**real: {self.complete} of {self.configurations} configurations** at profile `{self.profile}`, "
                f"at {seeds}" + (f", and {self.partial} more at some of them" if self.partial else "")
                + f" ({self.stored} of {self.tasks} results stored)")
        if self.stored == self.tasks:
            return real + "; nothing is missing."
        guessed = (f"; the times of {', '.join(self.guessed)} are guessed from their FLOPs, not measured"
                   if self.guessed else "")
        sweep, report = self.commands
        return (f"{real}. Every other cell reads *not run*. To fill the rest: `{sweep}`, then `{report}`: about "
                f"{self.hours_left:.1f} GPU-hours on {self.card}, for the missing results only{guessed}.")


def coverage(section: ModuleType, profile: Profile, store: ResultStore, seeds, probe: Probe | None = None,
             card: str | None = None) -> Coverage:
    """How much of ``section`` (a module of :mod:`cifarnb.study.sections`) ``store`` holds at ``profile`` over
    ``seeds``, and the estimated hours of the rest on ``card`` (default :func:`~cifarnb.study.probes.estimate_card`:
    this machine's GPU, else the reference card) with ``probe``'s efficiency (None: the store's timings or FLOPs)."""
    seeds = tuple(seeds)
    tasks = plan([section.NAME], profile, seeds)
    by_configuration: dict[tuple[str, str], list[bool]] = {}
    for task in tasks:
        key = (task.identity[0], _SEED_SUFFIX.sub("", task.label))
        by_configuration.setdefault(key, []).append(task.stored(store))
    complete = sum(all(found) for found in by_configuration.values())
    partial = sum(any(found) and not all(found) for found in by_configuration.values())
    stored = sum(sum(found) for found in by_configuration.values())
    if card is not None:
        words = f"an {card}"
    else:
        card, reference = estimate_card()
        words = (f"an {card}, a reference card (this machine has no GPU; `cifarnb sweep --estimate CARD` answers "
                 f"for yours)" if reference else f"this machine's {card}")
    left = estimate([section.NAME], profile, store, card, seeds, probe, missing_only=True)[section.NAME]
    return Coverage(section.NAME, section.NOTEBOOK, profile.name, seeds, len(by_configuration), complete, partial,
                    len(tasks), stored, left.hours, left.models("guessed"), words)
