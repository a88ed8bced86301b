"""Write a .ipynb from a plain-text cell list (used to author the report notebooks; outputs come from papermill).

    python tools/make_notebook.py notebooks/src/01_optimize_resnet18.py notebooks/01_optimize_resnet18.ipynb

The source uses "# %% [markdown]", "# %%" and "# %% tags=parameters" separators (jupytext's percent format).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def cells_from(text: str):
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("# %%"):
            if current:
                blocks.append(current)
            kind = "markdown" if "[markdown]" in line else "code"
            tags = [t.strip() for t in line.split("tags=", 1)[1].split(",")] if "tags=" in line else []
            current = {"kind": kind, "tags": tags, "lines": []}
        elif current is not None:
            current["lines"].append(line)
    if current:
        blocks.append(current)
    for block in blocks:
        source = "\n".join(block["lines"]).strip("\n")
        if block["kind"] == "markdown":
            source = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in source.splitlines())
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
        if block["tags"]:
            cell.metadata["tags"] = block["tags"]
        yield cell


def main(source: str, target: str) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.cells = list(cells_from(Path(source).read_text()))
    nbformat.write(notebook, target)


if __name__ == "__main__":
    main(*sys.argv[1:3])
