"""The report's sections by name, notebook and earlier names, without importing them (they import torch and
pandas): what the command line's ``--section``, ``report --only`` and ``--help`` need, in a fraction of a second.

:mod:`cifarnb.study.sections` holds the sections themselves and checks at import that they say the same.
"""

from __future__ import annotations

from typing import NamedTuple


class SectionName(NamedTuple):
    name: str
    notebook: str  # the notebook's file name without .ipynb
    aliases: tuple[str, ...]  # its names on the command line before sections were named after notebooks


# In the order a GPU session fills them (cifarnb.study.sections.SECTIONS).
SECTION_INDEX: tuple[SectionName, ...] = (
    SectionName("fastresnet9", "03_fastresnet9", ("resnet9",)),
    SectionName("batchnorm", "05_batchnorm", ("vgg", "landscape")),
    SectionName("feature_maps", "04_feature_maps", ("features",)),
    SectionName("optimize_resnet18", "01_optimize_resnet18", ("ablations",)),
    SectionName("model_zoo", "02_model_zoo", ("zoo",)),
)
SECTION_NAMES: tuple[str, ...] = tuple(section.name for section in SECTION_INDEX)
# Earlier names -> section name: the sweep's, and report --only's notebook numbers ("02").
ALIASES: dict[str, str] = {alias: section.name for section in SECTION_INDEX for alias in section.aliases}
NUMBERS: dict[str, str] = {section.notebook[:2]: section.name
                           for section in sorted(SECTION_INDEX, key=lambda section: section.notebook)}


def in_notebook_order() -> list[SectionName]:
    """The sections in the order of their notebooks (01 ... 05)."""
    return sorted(SECTION_INDEX, key=lambda section: section.notebook)
