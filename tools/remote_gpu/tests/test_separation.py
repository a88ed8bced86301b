"""The procedure stands apart from the product: nothing of the package, the notebooks or the product's tests names
it or imports it, and its own imports go only into the library (and the standard library, torch, each other)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # tools/remote_gpu
CHECKOUT = HERE.parents[1]
OWN = {path.stem for path in HERE.glob("*.py")}  # slot_plan, rehearse, ledger, stage_parts, warm, sweep_call
PRODUCT = ("cifarnb", "notebooks", "tests")


def _product_files() -> list[Path]:
    return sorted(path for folder in PRODUCT for path in (CHECKOUT / folder).rglob("*")
                  if path.suffix in (".py", ".ipynb", ".md") and ".ipynb_checkpoints" not in path.parts)


def test_nothing_of_the_product_names_the_procedure():
    named = [str(path.relative_to(CHECKOUT)) for path in _product_files()
             if re.search(r"remote_gpu|gpu_report|slot_plan|rehearse\.py|stage_parts|sweep_call", path.read_text())]
    assert not named, f"these name the remote-GPU procedure: {named}"


def test_the_package_has_no_word_of_the_procedure():
    worded = [f"{path.relative_to(CHECKOUT)}:{number}" for folder in ("cifarnb", "notebooks/src")
              for path in sorted((CHECKOUT / folder).rglob("*.py"))
              for number, line in enumerate(path.read_text().splitlines(), 1)
              if re.search(r"\b(slots?|ledgers?)\b", line, re.IGNORECASE)]
    assert not worded, f"a slot or ledger of the procedure in the product: {worded}"


def test_the_procedure_imports_only_the_library_and_itself():
    allowed = {*OWN, "cifarnb", "torch", *sys.stdlib_module_names}
    outside = []
    for path in sorted(HERE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            outside += [f"{path.name}: {name}" for name in names if name.split(".")[0] not in allowed]
    assert not outside, f"the procedure imports from outside the library: {outside}"
