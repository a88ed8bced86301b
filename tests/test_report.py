"""`cifarnb report` when a notebook fails, and what its kernels print: real papermill runs of tiny notebooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from cifarnb.cli import main

papermill = pytest.importorskip("papermill")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def tiny_notebook(folder: Path, name: str, body: str) -> Path:
    """A report-shaped notebook: a parameters cell (profile, device), then ``body``."""
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell('profile = "smoke"\ndevice = "auto"')
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(body)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / name)
    return folder / name


def test_a_failing_notebook_is_one_line_naming_it_and_its_cell_with_the_traceback_in_a_log(tmp_path, capfd):
    source = tiny_notebook(tmp_path / "notebooks", "01_fails.ipynb",
                           "def measure():\n    raise ValueError('no runs stored\\nfor this profile')\nmeasure()")
    output = tmp_path / "output"
    assert main(["report", "--profile", "smoke", "--notebooks", str(source.parent), "--output", str(output)]) == 2
    captured = capfd.readouterr()
    (error,) = [line for line in captured.err.splitlines() if line.startswith("cifarnb: error:")]
    log = output / "01_fails.log"
    assert error == (f"cifarnb: error: {source} failed in cell [3]: ValueError: no runs stored for this profile "
                     f"(traceback: {log}; the executed notebook: {output / '01_fails.ipynb'})")
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    text = log.read_text()
    assert "measure()" in text and "in measure" in text and "\x1b[" not in text  # source, frames, no colours


def test_report_kernels_start_without_the_unencrypted_tcp_warning(tmp_path, capfd):
    source = tiny_notebook(tmp_path / "notebooks", "01_prints.ipynb", "print('fine')")
    output = tmp_path / "output"
    assert main(["report", "--profile", "smoke", "--notebooks", str(source.parent), "--output", str(output)]) == 0
    captured = capfd.readouterr()
    assert "fine" in (output / "01_prints.ipynb").read_text()
    assert "without encryption" not in captured.err + captured.out


def test_a_misspelled_papermill_parameter_fails_in_the_first_cell(tmp_path, cifar_root):
    with pytest.raises(papermill.PapermillExecutionError, match="unknown notebook parameter 'profle'"):
        papermill.execute_notebook(
            str(NOTEBOOKS / "01_optimize_resnet18.ipynb"), str(tmp_path / "01.ipynb"), cwd=str(NOTEBOOKS),
            parameters={"profle": "quick", "results_dir": str(tmp_path / "results"),
                        "figures_dir": str(tmp_path / "figures"), "data_root": str(cifar_root)},
            progress_bar=False, kernel_name="python3")
    assert not (tmp_path / "results").exists() and not (tmp_path / "figures").exists()  # nothing ran


def test_the_html_report_has_contents_unique_anchors_and_folded_code(tmp_path):
    """Two notebooks with the same section heading: the contents list links each once by its own anchor, every
    code cell's source sits in a folded block above its outputs, the parameters cell is left out, and tables scroll
    inside the page."""
    import re

    import nbformat

    from cifarnb.study.render import render_html

    def notebook(title):
        parameters = nbformat.v4.new_code_cell("profile = 'quick'")
        parameters.metadata["tags"] = ["parameters"]
        shown = nbformat.v4.new_code_cell("1 + 1")
        shown.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {title}\nintro"), parameters,
                                               nbformat.v4.new_markdown_cell("## What is real here"), shown])

    page = render_html([notebook("01 · First"), notebook("02 · Second")], tmp_path / "report.html",
                       "cifarnb report (quick profile)").read_text()
    anchors = re.findall(r'<a id="(n\d-\d+)"></a>', page)
    assert len(anchors) == 4 and len(set(anchors)) == 4
    links = re.findall(r'<a href="#(n\d-\d+)">([^<]+)</a>', page)
    assert [text for _, text in links] == ["01 · First", "What is real here", "02 · Second", "What is real here"]
    assert {anchor for anchor, _ in links} == set(anchors)
    assert page.count('<details class="cifarnb-code"><summary>code</summary><pre>1 + 1</pre></details>') == 2
    assert "profile = &#x27;quick&#x27;" not in page and "profile = 'quick'" not in page
    assert "overflow-x: auto" in page
