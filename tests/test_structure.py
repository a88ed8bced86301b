"""The package's shape: the library knows nothing of the study, modules stay short, the README's section table is
the sections' own, and models register under their function's name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cifarnb import models
from cifarnb.study.sections import in_notebook_order

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cifarnb"
MODULE_LINE_LIMIT = 460  # "no module over about 450 lines": a long module is two modules
# Outside the library: the study itself, the command line on top of it, and the package's face.
NOT_LIBRARY = ("study", "cli.py", "__init__.py")


def _library_modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py")
                  if path.relative_to(PACKAGE).parts[0] not in NOT_LIBRARY)


def _imported(path: Path) -> list[str]:
    """Every module ``path`` imports, resolved to an absolute dotted name (relative imports included)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return names


@pytest.mark.parametrize("path", _library_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_modules_import_nothing_from_the_study(path):
    study = [name for name in _imported(path) if name == "cifarnb.study" or name.startswith("cifarnb.study.")]
    assert not study, f"{path.relative_to(ROOT)} imports {study}: the library must not know the report's study"


def test_the_import_check_sees_relative_imports():
    # The check above would pass vacuously if it missed "from ..study import x" in a nested module.
    imported = _imported(PACKAGE / "train" / "engine.py")
    assert "cifarnb.models" in imported and "cifarnb.train.config" in imported


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_long(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MODULE_LINE_LIMIT, f"{path.relative_to(ROOT)} has {lines} lines; split it"


def test_the_readmes_section_table_is_the_sections_own():
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `cifarnb/study/sections/(\w+)\.py` \| `notebooks/(\w+)\.ipynb` \| "
                      r"`figures/(\w+)/` \|", readme, re.MULTILINE)
    assert rows == [(section.NAME, section.NAME, section.NOTEBOOK, section.NOTEBOOK) for section in in_notebook_order()]


def test_models_register_under_their_function_name_and_list_by_pattern():
    assert models.list_models("resnext*") == ["resnext29_2x32d", "resnext29_2x64d", "resnext29_32x4d"]
    assert models.list_models("ResNet?") == ["resnet9"]
    assert "fastresnet9" in models.list_models() and models.list_models("nothing*") == []

    @models.register
    def structure_test_model(num_classes: int = 10):
        return None

    assert "structure_test_model" in models.list_models()
    assert models.model_family("structure_test_model") == "test_structure"  # its module's name, as timm records it
    with pytest.raises(ValueError, match="registered twice"):
        models.register(structure_test_model)
    models._registry._MODELS.pop("structure_test_model")


def test_a_model_of_the_zoo_registers_only_as_the_torch_free_list_has_it(monkeypatch):
    """cifarnb.names.MODEL_FAMILIES (the command line's help, read without torch) and the registry are one list:
    a model of cifarnb.models outside it, or in another family, is refused; one listed but never registered stops
    the package's import."""
    from cifarnb import names

    def unlisted_model(num_classes: int = 10):
        return None

    unlisted_model.__module__ = "cifarnb.models.resnet"
    with pytest.raises(ValueError, match="'unlisted_model' of cifarnb.models.resnet is not listed"):
        models.register(unlisted_model)
    monkeypatch.setitem(names.MODEL_FAMILIES, "unlisted_model", "vgg")
    with pytest.raises(ValueError, match="listed in family 'vgg'"):
        models.register(unlisted_model)
    with pytest.raises(ImportError, match="lists unlisted_model, which no module of cifarnb.models registers"):
        models._registry.check_complete()
    assert "unlisted_model" not in models.list_models()
