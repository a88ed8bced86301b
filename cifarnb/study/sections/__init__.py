"""The report's sections, one module each, named as their notebooks are.

A section module holds everything one notebook trains and shows: its configs (built from a ``Profile``), the
tasks a sweep computes for it, its tables and verdicts, and its section-only figures. Each has the same face:

* ``NAME``, ``NOTEBOOK`` (its notebook's file name without ``.ipynb``; figures go to ``figures/<NOTEBOOK>/``),
  ``TITLE``, ``ALIASES`` (its names on the command line before sections were named after notebooks);
* ``EPOCHS_FIELD``: the profile field its notebook's ``epochs`` parameter overrides (None: no such parameter);
* ``PARAMETERS``: its notebook's parameters beyond the ones every notebook has;
* ``tasks(profile, seed, first_seed)``: the results it needs at one seed.

:data:`SECTIONS` lists them in the order a GPU session fills them (the sections whose claims need real numbers
most come first); the sweep's planning, ``--estimate``, the command line's ``--section`` and ``report --only``
and the README's section table all read it, so a new section is one new module and one line here.
"""

from __future__ import annotations

from types import ModuleType
from typing import Callable

from ..profiles import Profile
from ..section_index import ALIASES, NUMBERS, SECTION_INDEX
from ..tasks import Task
from . import batchnorm, fastresnet9, feature_maps, model_zoo, optimize_resnet18

SECTIONS: dict[str, ModuleType] = {section.NAME: section for section in (
    fastresnet9, batchnorm, feature_maps, optimize_resnet18, model_zoo)}
# The command line reads the sections' names from the torch-free index; the modules must say the same.
if [(s.NAME, s.NOTEBOOK, tuple(s.ALIASES)) for s in SECTIONS.values()] != [tuple(s) for s in SECTION_INDEX]:
    raise ImportError("cifarnb.study.section_index.SECTION_INDEX differs from the section modules' NAME, NOTEBOOK and "
                      "ALIASES (or their order in SECTIONS): make them agree")


def in_notebook_order() -> list[ModuleType]:
    """The sections in the order of their notebooks (01 ... 05)."""
    return sorted(SECTIONS.values(), key=lambda section: section.NOTEBOOK)


def by_notebook(notebook: str) -> ModuleType:
    """The section whose notebook is ``notebook`` (e.g. "02_model_zoo")."""
    for section in SECTIONS.values():
        if section.NOTEBOOK == notebook:
            return section
    raise ValueError(f"no section has the notebook {notebook!r}; notebooks: "
                     f"{', '.join(s.NOTEBOOK for s in in_notebook_order())}")


def resolve(names, note: Callable[[str], None] | None = None, aliases: dict[str, str] = ALIASES) -> list[str]:
    """Section names for ``names`` (section names or ``aliases``, each once, in the order given); an alias is
    noted once with its section's name (``note``, e.g. ``print``); anything else is a ValueError."""
    resolved = []
    for name in names:
        if name in aliases:
            if note is not None:
                note(f"note: section {name!r} is now called {aliases[name]!r}")
            name = aliases[name]
        if name not in SECTIONS:
            raise ValueError(f"section={name!r} is not one of {', '.join(SECTIONS)} "
                             f"(or an earlier name: {', '.join(aliases)})")
        if name not in resolved:
            resolved.append(name)
    return resolved


def plan(sections, profile: Profile, seeds=None) -> list[Task]:
    """Every task of ``sections`` (names or aliases) at ``profile``: sections in the order given, seed by seed
    (the first seed of every run before any second seed); a result two sections need is planned once.

    Within a section and seed the tasks come table by table (each section's ``tasks`` emits them so; a table's
    runs that an earlier table already planned are not repeated), so a sweep cut off at any point leaves whole
    tables and one table in progress, not one run of each (tests/test_fill_order.py holds each section to it).
    """
    # The tables go in the report's order (its notebook's), a superseded earlier reading last, rather than
    # cheapest first: the report's own tables are what its claims read (Tables 8-9 before our trick ladders),
    # the tables of one section cost about the same per row (Tables 1-5: every row one ResNet18 run), and the
    # order stays one a reader can follow and that does not move with a card's measured speeds.
    names = resolve(sections)
    seeds = tuple(profile.seeds if seeds is None else seeds)
    tasks: list[Task] = []
    for index, seed in enumerate(seeds):
        for name in names:
            tasks += SECTIONS[name].tasks(profile, seed, first_seed=index == 0)
    unique = {task.identity: task for task in reversed(tasks)}  # the first of two tasks with one result wins
    return [task for task in tasks if unique[task.identity] is task]  # (the fast recipe is the ladder's top)
