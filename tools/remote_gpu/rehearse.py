"""The GPU slot rehearsed on this CPU: `bash tools/remote_gpu/gpu_report.sh rehearse` (or
`python tools/remote_gpu/rehearse.py`).

It runs the procedure of `slot_plan.py` (the one `tools/remote_gpu/README.md` states), call by call, under the
device's constraints, and reports each that is broken:

* the device's packages only: torch, torchvision, numpy, pandas, matplotlib, seaborn, tqdm, pytest, what they
  depend on, the standard library, and what the calls carry (`.device-wheels`); an import of anything else by the
  project's code (papermill, nbformat, Jupyter, ray, ...) fails the rehearsal, and so does a connection off this
  machine (the device has no network);
* what a call sends: the working tree (tracked files and untracked ones git does not ignore) plus the carried
  paths, at most 64 MiB; each command at most 2,000 characters; at most 8 files back from `$OUT`, at most two
  folders deep and 16 MiB each;
* the staged parts (the checkout's `.stage/part-*` if the stage tool made them, else the same tar packed here at a
  fast xz preset) unpack on the device to the exact data set;
* a tiny profile (smoke, the zoo's three models at one seed, two workers) instead of `quick`, on the CPU;
* the self-test's checks a CPU can run, one made to fail (`SELFTEST_BREAK=compiled`): the sweep must keep that
  model eager and say so;
* the results archive merges back into a scratch store;
* the slot's ledger (tools/remote_gpu/ledger.py) is printed, and its phases must add up to the rehearsal's device time
  (from the first call's start to the last call's end) within a few percent.

The device is a folder that keeps what calls leave in it (a warm machine keeps ignored build outputs between
calls); each call gets a fresh `$OUT`, and what comes back goes to `.slot/call-N/` of a scratch copy of the checkout.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ledger  # noqa: E402
import slot_plan  # noqa: E402
from stage_parts import path_bytes, travelling_files  # noqa: E402

MIB = 1024 * 1024
CALL_BYTES = 64 * MIB
COMMAND_CHARS = 2000
FILES_BACK, FILE_BYTES, FOLDERS_DEEP = 8, 16 * MIB, 2
DEVICE_PACKAGES = ("torch", "torchvision", "numpy", "pandas", "matplotlib", "seaborn", "tqdm", "pytest")
# The tiny profile: environment set before each device call's command (the command itself is the plan's).
TINY = {"PROFILE": "smoke", "SECTIONS": "model_zoo", "SEEDS": "5", "DEVICE": "cpu",
        "PROBE_ARGS": "--cpu --decide", "SELFTEST_CPU": "1", "SELFTEST_BREAK": "compiled"}
# What the sweep's log must say of the check made to fail: the model it covered runs eagerly.
FALLBACK_LINE = "lenet5 at batch 16: eager (the self-test's compiled check failed on this card"
SWEEP_DEVICE_SECONDS = 240  # the rehearsal's <T>: the sweep call's timeout
LEDGER_TOLERANCE = 0.05  # the slot's phases against the rehearsal's device time

GUARD = r'''
# Written by tools/remote_gpu/rehearse.py: the device's packages only, and no network. The interpreter's own
# site-packages leave the path; a view of it holding only the device's packages takes their place, so anything
# else is absent as it is there (an import raises, a find_spec probe finds nothing). Project code that looks for
# such a package anyway is logged.
import importlib.abc, importlib.machinery, os, socket, sys, sysconfig

_ROOT = os.environ["REHEARSAL_ROOT"]
_LOG = os.environ["REHEARSAL_VIOLATIONS"]
_INSTALLED = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
sys.path[:] = [path for path in sys.path if path not in _INSTALLED] + [os.environ["REHEARSAL_SITE"]]
sys.meta_path[:] = [finder for finder in sys.meta_path if "__editable__" not in str(getattr(finder, "__module__", ""))]


def _note(what):
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen") or "importlib" in frame.f_code.co_filename):
        frame = frame.f_back
    where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "?"
    if where.startswith(_ROOT):  # the project's own code, not a library probing for an optional extra
        with open(_LOG, "a") as log:
            log.write(f"{what} ({where.removeprefix(_ROOT + os.sep)})\n")


class _Absent(importlib.abc.MetaPathFinder):
    # Last on the path: asked only for what no one found; logs the project's imports of what this machine has.
    def find_spec(self, name, path=None, target=None):
        if path is None and importlib.machinery.PathFinder.find_spec(name, sorted(_INSTALLED)) is not None:
            _note(f"import of {name}, which the device does not have")
        return None


sys.meta_path.append(_Absent())
_connect = socket.socket.connect


def _local_only(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
        _note(f"a connection to {address[0]}")
        raise OSError("rehearsal: the device has no network")
    return _connect(self, address)


socket.socket.connect = _local_only
'''


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def allowed_modules(carried: list[str]) -> set[str]:
    """Top-level module names of the device's packages, their dependencies and the carried distributions."""
    from importlib import metadata

    seen, todo = set(), [*DEVICE_PACKAGES, *carried]
    while todo:
        name = todo.pop()
        if _normal(name) in seen:
            continue
        seen.add(_normal(name))
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        todo += [re.match(r"[A-Za-z0-9_.\-]+", r).group() for r in requires if "extra ==" not in r]
    modules = {module for module, dists in metadata.packages_distributions().items()
               if any(_normal(dist) in seen for dist in dists)}
    return modules | seen  # module names, and the distributions' own (their metadata folders)


def site_view(folder: Path, allowed: set[str]) -> Path:
    """A folder of links to this interpreter's installed packages that the device has (their modules, metadata and
    bundled libraries), to stand in for site-packages in a device call."""
    import sysconfig

    folder.mkdir(parents=True, exist_ok=True)
    names = {_normal(name) for name in allowed}
    for installed in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        for entry in Path(installed).iterdir():
            stem = re.split(r"[.-]", entry.name, maxsplit=1)[0]
            if entry.name.endswith(".pth") or stem.startswith("__editable__"):
                continue
            if _normal(stem) in names and not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder


class Rehearsal:
    def __init__(self, checkout: Path, work: Path, data: Path):
        self.checkout, self.work, self.data = checkout, work, data
        self.here, self.device = work / "here", work / "device"
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.calls: list[dict] = []  # each: step, start, end, status, ledger (or None)
        self.violations = work / "violations.log"

    # --- here ------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Step 'here' before the slot: a copy of the checkout as it is (uncommitted changes too), the wheels, the
        staged data."""
        subprocess.run(["git", "clone", "-q", str(self.checkout), str(self.here)], check=True)
        for name in travelling_files(self.checkout):  # the working tree as it is, not only as committed
            target = self.here / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.checkout / name, target)
        wheels = self.here / slot_plan.WHEELS
        if (self.checkout / slot_plan.WHEELS).is_dir():
            shutil.copytree(self.checkout / slot_plan.WHEELS, wheels)
        elif subprocess.run(["bash", "tools/remote_gpu/device_packages.sh"], cwd=self.here,
                            capture_output=True).returncode:
            wheels.mkdir()
            self.notes.append("no package index here to download the device's wheels: pydantic counts as carried")
        stage = self.here / ".stage"
        stage.mkdir()
        made = sorted((self.checkout / ".stage").glob("part-*"))
        if made:
            for path in made:
                shutil.copy2(path, stage / path.name)
        else:  # the stage tool's format (an xz'd tar of cifar-10-batches-py) at a fast preset: seconds, not minutes
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                tar.add(self.data / "cifar-10-batches-py", arcname="cifar-10-batches-py")
            (stage / "part-1").write_bytes(lzma.compress(buffer.getvalue(), preset=0))
            self.notes.append("packed the data here at xz preset 0 (the stage tool packs at 9: fewer, smaller parts)")
        # The stage tool: the checkout's copy, else shared/tools beside the checkout or beside the data it stages.
        tool = next((p for p in (self.checkout / ".stage/stage-cifar10",
                                 self.checkout.parent / "shared/tools/stage-cifar10",
                                 self.data.parent / "tools/stage-cifar10") if p.exists()), None)
        if tool is None:
            raise SystemExit("rehearse: no stage-cifar10 tool (../shared/tools/stage-cifar10) to unpack the data with")
        shutil.copy2(tool, stage / "stage-cifar10")
        self._here(["python", "tools/remote_gpu/stage_parts.py", ".stage"])  # parts that fit a call beside the tree
        self.device.mkdir()
        (self.work / "guard").mkdir()
        (self.work / "guard" / "sitecustomize.py").write_text(GUARD)

    def parts(self) -> int:
        return len(list((self.here / ".stage").glob("part-*")))

    def after_call(self, number: int) -> None:
        """Step 'here' after a call before the last: the probe (and the self-test's record) it brought back become
        files of the checkout, so the next calls carry them."""
        back = self.here / f".slot/call-{number}"
        probe = back / "probe.json"
        if probe.exists():  # where the probe says to commit it: benchmarks/probe-<card>-<date>.json
            shutil.copy2(probe, self.here / json.loads(probe.read_text())["commit_as"])
        elif number == 1:
            self.problems.append("call 1 brought back no probe.json")
        if (back / "selftest.json").exists():
            shutil.copy2(back / "selftest.json", self.here / "benchmarks/selftest.json")

    def merge(self, last: int) -> None:
        """Step 'here' after the last call: the archive into a scratch store."""
        archive = self.here / f".slot/call-{last}/results.tar.gz"
        if not archive.exists():
            self.problems.append(f"call {last} brought back no results.tar.gz")
            return
        merged = self._here([sys.executable, "-m", "cifarnb.cli", "merge", str(archive), "--results",
                             str(self.work / "scratch-store")])
        if merged is not None and not list((self.work / "scratch-store").glob("*/run.json")):
            self.problems.append("the archive merged, but brought no run into the scratch store")

    def _here(self, command: list[str]) -> str | None:
        result = subprocess.run(command, cwd=self.here, capture_output=True, text=True)
        if result.returncode:
            self.problems.append(f"here: {' '.join(command)} failed: {(result.stderr or result.stdout).strip()[-300:]}")
            return None
        return result.stdout

    # --- a device call ---------------------------------------------------------------------------------------
    def call(self, step: slot_plan.Step, number: int, allowed: set[str]) -> None:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=self.here, capture_output=True,
                                text=True).stdout.strip() or "unknown"
        command = (step.command.replace("<COMMIT>", commit).replace("<T - 20>", str(SWEEP_DEVICE_SECONDS - 20))
                   .replace("<T>", str(SWEEP_DEVICE_SECONDS)))
        timeout = int(step.timeout_s.replace("<T>", str(SWEEP_DEVICE_SECONDS)))
        if len(command) > COMMAND_CHARS:
            self.problems.append(f"{step.where}: the command has {len(command)} characters, over {COMMAND_CHARS}")
        files = travelling_files(self.here)
        sent = sum((self.here / name).stat().st_size for name in files)
        for name in files:  # the working tree travels with every call
            target = self.device / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.here / name, target)
        for path in step.carry:  # carried paths replace theirs there; one missing here is removed there
            source, target = self.here / path, self.device / path
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            if source.exists():
                sent += path_bytes(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
        if sent > CALL_BYTES:
            self.problems.append(f"{step.where}: sends {sent / MIB:.1f} MiB, over {CALL_BYTES // MIB} MiB")
        out = self.work / f"out-{number}"
        out.mkdir()
        environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "OUT": str(out),
                       "TMPDIR": str(self.work), "MPLBACKEND": "Agg", "LANG": "C.UTF-8",
                       "PYTHONPATH": f"{self.work / 'guard'}:{self.device}", "REHEARSAL_ROOT": str(self.device),
                       "REHEARSAL_SITE": str(site_view(self.work / "site-packages", allowed)),
                       "REHEARSAL_VIOLATIONS": str(self.violations),
                       **TINY}
        started = time.time()
        try:
            result = subprocess.run(["bash", "-c", command], cwd=self.device, env=environment, capture_output=True,
                                    text=True, timeout=timeout)
            status, output = result.returncode, result.stdout + result.stderr
        except subprocess.TimeoutExpired as stop:
            status, output = 124, (stop.stdout or b"").decode(errors="replace")
        ended = time.time()
        (self.work / f"call-{number}.log").write_text(output)
        if status:
            self.problems.append(f"{step.where}: `{command}` ended with status {status}: {output.strip()[-400:]}")
        back = [path for path in out.rglob("*") if path.is_file()]
        if len(back) > FILES_BACK:
            self.problems.append(f"{step.where}: {len(back)} files in $OUT, over {FILES_BACK}")
        for path in back:
            relative = path.relative_to(out)
            if len(relative.parts) - 1 > FOLDERS_DEEP:
                self.problems.append(f"{step.where}: $OUT/{relative} is more than {FOLDERS_DEEP} folders deep")
            if path.stat().st_size > FILE_BYTES:
                self.problems.append(f"{step.where}: $OUT/{relative} is over {FILE_BYTES // MIB} MiB")
        target = self.here / f".slot/call-{number}"
        shutil.copytree(out, target, dirs_exist_ok=True)
        found = target / "ledger.json"
        self.calls.append({"step": step, "start": started, "end": ended, "sent": sent, "back": len(back),
                           "ledger": json.loads(found.read_text()) if found.exists() else None})
        covered = ""
        if found.exists():
            mine = self.calls[-1]["ledger"]
            covered = (f", its ledger {mine['wall_seconds']:.1f} s (from {mine['started'] - started:.1f} s after the "
                       f"call's start to {ended - mine['ended']:.1f} s before its end)")
        print(f"{step.where}: {ended - started:5.1f} s{covered}, sent {sent / MIB:.1f} MiB, {len(back)} file(s) "
              f"back, status {status}: {command}", flush=True)

    # --- checks ----------------------------------------------------------------------------------------------
    def check_data(self) -> None:
        unpacked = self.device / "data" / "cifar-10-batches-py"
        source = self.data / "cifar-10-batches-py"
        if not unpacked.is_dir():
            self.problems.append("the staged parts were not unpacked on the device (no data/cifar-10-batches-py)")
            return
        for path in sorted(source.iterdir()):
            other = unpacked / path.name
            if not other.exists() or _digest(other) != _digest(path):
                self.problems.append(f"the unpacked {path.name} differs from the data set's")

    def check_fallbacks(self) -> None:
        """The self-test's check made to fail (SELFTEST_BREAK) is recorded, and the sweep takes its fallback."""
        record = self.here / "benchmarks" / "selftest.json"
        failed = [c["name"] for c in json.loads(record.read_text())["checks"] if c.get("ok") is False] \
            if record.exists() else []
        if not failed:
            self.problems.append("call 1's self-test recorded no failed check, though one was made to fail")
        sweep_log = self.work / f"call-{len(self.calls)}.log"
        if FALLBACK_LINE not in sweep_log.read_text():
            self.problems.append(f"the sweep's log does not say the fallback ('{FALLBACK_LINE}...')")
        else:
            print(f"fallback: the self-test's failed {', '.join(failed)} kept it off in the sweep: {FALLBACK_LINE}...")

    def check_imports(self) -> None:
        if self.violations.exists():
            for line in sorted(set(self.violations.read_text().splitlines())):
                self.problems.append(f"not on the device: {line}")

    def slot_ledger(self) -> dict:
        gaps = sum(later["start"] - earlier["end"] for earlier, later in zip(self.calls, self.calls[1:]))
        # A call without its ledger leaves its seconds out: the check below then names the gap.
        slot = ledger.slot_ledger([call["ledger"] for call in self.calls if call["ledger"]], gaps)
        device_time = self.calls[-1]["end"] - self.calls[0]["start"]
        counted = sum(slot["phases"].values())
        print(ledger.table(slot))
        print("ledger: " + ledger.summary(slot))
        print(f"rehearsal: {device_time:.1f} s of device time from the first call's start to the last call's end; "
              f"the ledger's phases add up to {counted:.1f} s ({100 * (counted / device_time - 1):+.1f}%)")
        if abs(counted - device_time) > LEDGER_TOLERANCE * device_time:
            self.problems.append(f"the ledger's phases add up to {counted:.1f} s, not the {device_time:.1f} s of "
                                 f"device time (more than {100 * LEDGER_TOLERANCE:.0f}% apart)")
        return slot


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rehearse(checkout: Path, work: Path, data: Path) -> int:
    run = Rehearsal(checkout, work, data)
    run.prepare()
    carried = [wheel.name.split("-")[0] for wheel in (run.here / slot_plan.WHEELS).glob("*.whl")]
    allowed = allowed_modules(carried or ["pydantic"])  # no wheels made here: pydantic counts as carried
    calls = [step for step in slot_plan.slot_plan(run.parts()) if step.is_call]  # the plan for the parts there are
    for number, step in enumerate(calls, start=1):
        run.call(step, number, allowed)
        if number < len(calls):
            run.after_call(number)
    run.merge(len(calls))
    run.check_data()
    run.check_fallbacks()
    run.check_imports()
    run.slot_ledger()
    for note in run.notes:
        print(f"note: {note}")
    for problem in run.problems:
        print(f"BROKEN: {problem}")
    print(f"rehearse: {len(calls)} calls, {'no problem' if not run.problems else f'{len(run.problems)} problem(s)'}; "
          f"logs in {work}")
    return 1 if run.problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("CIFARNB_DATA", "data")),
                        help="the folder holding cifar-10-batches-py/ to stage (default: $CIFARNB_DATA, else data)")
    args = parser.parse_args(argv)
    if not (args.data / "cifar-10-batches-py").is_dir():
        parser.error(f"no CIFAR-10 at {args.data}/cifar-10-batches-py: give --data or set CIFARNB_DATA")
    work = args.work or Path(tempfile.mkdtemp(prefix="rehearse-"))
    work.mkdir(parents=True, exist_ok=True)
    checkout = Path(__file__).resolve().parents[2]
    return rehearse(checkout, work.resolve(), args.data.resolve())


if __name__ == "__main__":
    sys.exit(main())
