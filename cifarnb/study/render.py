"""Render the report: execute the five notebooks with papermill and join them into one HTML page
(``cifarnb report``)."""

from __future__ import annotations

import contextlib
import html
import os
import re
import signal
import threading
import time
import weakref
from pathlib import Path
from typing import Iterator

from ..interrupt import Interrupted, signal_handlers
from . import profiles
from .sections import ALIASES, NUMBERS, SECTIONS, resolve

NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"
AS_COMMITTED = "committed"  # the profile name meaning "each notebook at the parameters it was last executed with"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # the colours of IPython's tracebacks


class NotebookFailed(RuntimeError):
    """A notebook raised in one of its cells; the message is one line, the full traceback is in a log file."""


def notebook_paths(folder: str | Path, only: list[str] | None = None) -> list[Path]:
    """The report's notebooks in ``folder``, in order; ``only``: those of these sections (names or aliases)."""
    paths = sorted(Path(folder).glob(NOTEBOOK_PATTERN))
    if only:
        names = resolve(only, note=print, aliases={**ALIASES, **NUMBERS})
        wanted = {SECTIONS[name].NOTEBOOK + ".ipynb" for name in names}
        paths = [p for p in paths if p.name in wanted]
    if not paths:
        raise FileNotFoundError(f"no notebooks matching {NOTEBOOK_PATTERN} in {folder}"
                                + (f" for section(s) {', '.join(only)}" if only else "")
                                + "; pass --notebooks with the repository's notebooks/ folder")
    return paths


def committed_parameters(path: Path) -> dict:
    """The parameters papermill last executed ``path`` with (profile, seeds, ...), from its metadata.

    Re-executing a committed notebook with them renders its committed store again: every run it shows is loaded,
    none is trained, and its figures come out as committed.
    """
    import nbformat

    parameters = nbformat.read(path, as_version=4).metadata.get("papermill", {}).get("parameters")
    if not parameters or "profile" not in parameters:
        raise ValueError(f"{path} holds no papermill parameters with a profile (it was never executed with "
                         f"papermill); pass --profile smoke|quick|full")
    return dict(parameters)


def run_report(profile: str = AS_COMMITTED, output: str | Path = "output", notebooks: str | Path = "notebooks",
               results: str | None = None, figures: str | None = None, data_root: str | None = None,
               device: str = "auto",
               only: list[str] | None = None, log=print) -> Path:
    """Run every notebook into ``output/`` (one progress line each) and write ``output/report.html``.

    ``profile``: smoke | quick | full for every notebook, or "committed": each notebook at the profile and seeds
    it was committed with (papermill's record in its metadata), so a fresh clone renders the committed store.
    """
    import nbformat
    import papermill

    if profile != AS_COMMITTED:
        profiles.get(profile)  # fail on an unknown profile before starting anything
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    notebooks = Path(notebooks).resolve()
    parameters = {"device": device}
    if results:
        parameters["results_dir"] = str(Path(results).resolve())
    if results and not figures:
        # Figures of another store must not overwrite the committed figures/ (drawn from the committed store).
        figures = output / "figures"
    if figures:
        parameters["figures_dir"] = str(Path(figures).resolve())
    if data_root:
        parameters["data_root"] = str(Path(data_root).resolve())
    executed = []
    paths = notebook_paths(notebooks, only)
    chosen = {path: committed_parameters(path) if profile == AS_COMMITTED else {"profile": profile} for path in paths}
    for number, path in enumerate(paths, 1):
        shown = ", ".join(f"{name} {value}" for name, value in chosen[path].items())
        log(f"[{number}/{len(paths)}] {path.name} ({shown}) ...", flush=True)
        started = time.perf_counter()
        target = output / path.name
        stopped: list[int] = []  # the signals a stop was relayed to the kernel with
        try:
            with _stops_relayed_to_kernels(stopped):
                papermill.execute_notebook(str(path), str(target), parameters={**chosen[path], **parameters},
                                           cwd=str(notebooks), progress_bar=False, kernel_name="python3",
                                           **_kernel_options())
        except papermill.PapermillExecutionError as error:
            raise (_interrupted(path, error, stopped[0]) if stopped else _failed(path, target, error)) from None
        if stopped:  # relayed between two cells: the kernel had nothing to stop, the report stops here
            raise Interrupted(stopped[0], f"interrupted after {path.name}; every finished run is stored: the same "
                                          "command goes on from there")
        log(f"[{number}/{len(paths)}] {path.name} done in {time.perf_counter() - started:.0f} s", flush=True)
        executed.append(nbformat.read(target, as_version=4))
    return render_html(executed, output / "report.html", title=f"cifarnb report ({profile_title(chosen)})")


def _failed(path: Path, target: Path, error) -> NotebookFailed:
    """One line for a notebook whose cell raised: the notebook, the cell, the error; the cell's source and full
    traceback go to ``<output>/<notebook>.log``."""
    log_file = target.with_suffix(".log")
    traceback = _ANSI.sub("", "\n".join(error.traceback))
    log_file.write_text(f"{path}, cell [{error.exec_count}] of {target}:\n{error.source}\n\n{traceback}\n")
    message = " ".join(f"{error.ename}: {error.evalue}".split())
    return NotebookFailed(f"{path} failed in cell [{error.exec_count}]: {message} (traceback: {log_file}; the "
                          f"executed notebook: {target})")


def _interrupted(path: Path, error, signal_number: int) -> Interrupted:
    """The line of a notebook stopped by a relayed signal: the run the cell was training, else the cell."""
    if error.ename == "TrainingInterrupted":  # its message is the line: run, epoch, where the rerun resumes
        return Interrupted(signal_number, " ".join(error.evalue.split()))
    return Interrupted(signal_number, f"interrupted in {path.name}, cell [{error.exec_count}]; every finished run is "
                                      "stored: the same command goes on from there")


# The kernels this process started. They run in a session of their own, so a terminal's Ctrl-C does not reach
# them: a stop is relayed to the kernel as SIGINT, which ends the cell in progress as Ctrl-C ends a training run
# (its claim file goes, its checkpoint stays), and the notebook's error says which run stopped where.
_KERNELS: weakref.WeakSet = weakref.WeakSet()


@contextlib.contextmanager
def _stops_relayed_to_kernels(stopped: list[int]) -> Iterator[None]:
    def relay(signal_number: int, frame) -> None:
        pids = [pid for manager in list(_KERNELS) if (pid := getattr(manager.provisioner, "pid", None))]
        if not pids:
            raise Interrupted(signal_number)
        stopped.append(signal_number)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)

    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return
    with signal_handlers(relay, (signal.SIGINT, signal.SIGTERM)):
        yield


def _kernel_options() -> dict:
    """Kernels here talk to papermill over Unix sockets: over TCP, ipykernel warns at every start that its traffic
    is unencrypted (it stays on this machine either way)."""
    if os.name != "posix":
        return {}
    from jupyter_client.manager import AsyncKernelManager

    class LocalKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(transport="ipc", **kwargs)
            _KERNELS.add(self)

    return {"kernel_manager_class": LocalKernelManager}


def profile_title(chosen: dict[Path, dict]) -> str:
    """'smoke profile', or 'profiles: 01 smoke, 03 quick, ...' when the notebooks differ."""
    names = {path: parameters["profile"] for path, parameters in chosen.items()}
    if len(set(names.values())) == 1:
        return f"{next(iter(names.values()))} profile"
    return "profiles: " + ", ".join(f"{path.name[:2]} {name}" for path, name in names.items())


# Tables scroll inside the page instead of widening it (notebook 03's settings table has 13 columns).
PAGE_STYLE = """<style>
.jp-RenderedHTMLCommon table, .jp-OutputArea-output table { display: block; max-width: 100%; overflow-x: auto; }
details.cifarnb-code > summary { cursor: pointer; color: #666; font-size: 0.85em; }
nav.cifarnb-contents ol { columns: 2; }
</style>"""


def render_html(notebooks, target: Path, title: str) -> Path:
    """Concatenate executed notebooks into one page and render it with nbconvert (images embedded): a contents
    list first, linking every notebook's title and sections by anchors unique across the page; each code cell
    folded away under a "code" line that one click opens; the findings (outputs and text) in the open."""
    import nbformat
    from nbconvert import HTMLExporter

    combined = nbformat.v4.new_notebook()
    combined.metadata = notebooks[0].metadata
    combined.metadata["title"] = title
    contents = []
    for number, notebook in enumerate(notebooks, 1):
        for cell in notebook.cells:
            if "parameters" in cell.metadata.get("tags", []):
                continue
            if cell.cell_type == "markdown":
                cell = _anchored(cell, f"n{number}", contents)
            elif cell.cell_type == "code":
                cell = _folded(cell)
            combined.cells.append(cell)
    items = "".join(f'<li style="margin-left:{(level - 1) * 1.2}em"><a href="#{anchor}">{html.escape(text)}</a></li>'
                    for level, anchor, text in contents)
    combined.cells.insert(0, nbformat.v4.new_markdown_cell(
        f'{PAGE_STYLE}<h1>{html.escape(title)}</h1><nav class="cifarnb-contents"><h2>Contents</h2><ol>{items}</ol></nav>'))
    exporter = HTMLExporter()
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    exporter.exclude_input = True  # each code cell's source is in its folded block (_folded)
    body, _ = exporter.from_notebook_node(combined)
    target.write_text(body)
    return target


_HEADING = re.compile(r"^(#{1,2})\s+(.+?)\s*$", re.MULTILINE)


def _anchored(cell, prefix: str, contents: list):
    """A copy of a markdown cell whose level-1 and level-2 headings carry anchors unique across the report
    (``<prefix>-<k>``), each listed in ``contents`` as (level, anchor, text)."""
    import copy

    cell = copy.deepcopy(cell)

    def anchor(match: re.Match) -> str:
        name = f"{prefix}-{len(contents) + 1}"
        contents.append((len(match.group(1)), name, match.group(2)))
        return f'<a id="{name}"></a>\n\n{match.group(0)}'

    cell.source = _HEADING.sub(anchor, cell.source)
    return cell


def _folded(cell):
    """A copy of a code cell whose source leads its outputs as a folded ``<details>`` block."""
    import copy

    import nbformat

    cell = copy.deepcopy(cell)
    if cell.source.strip():
        code = nbformat.v4.new_output("display_data", data={"text/html": (
            f'<details class="cifarnb-code"><summary>code</summary><pre>{html.escape(cell.source)}</pre></details>')})
        cell.outputs = [code, *cell.get("outputs", [])]
    return cell
