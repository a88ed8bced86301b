"""Re-split the staged data (``.stage/part-*`` from ``../shared/tools/stage-cifar10 pack``) into the fewest parts that
each fit one device call beside the working tree.

    python tools/remote_gpu/stage_parts.py .stage            # then carry .stage/part-N in call N (the plan it prints)

A device call carries at most 64 MiB in all: the working tree that travels (tracked files and untracked ones git
does not ignore) plus the carried paths. The stage tool cuts ~140 MB into 40 MiB parts, one per call (four calls);
re-cut to what the tree leaves free, the same bytes take three. The tool's ``unpack`` joins every ``part-N`` in
number order, so it reads these parts unchanged. Only the standard library: it runs wherever python3 does.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

MIB = 1024 * 1024


def travelling_files(repository: Path) -> list[Path]:
    """The working tree's files a device call sends (relative): tracked ones and untracked ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repository,
                            capture_output=True, check=True).stdout.split(b"\0")
    return [Path(name.decode()) for name in listed if name and (repository / name.decode()).is_file()]


def travelling_bytes(repository: Path) -> int:
    """Bytes of the working tree a device call sends."""
    return sum((repository / name).stat().st_size for name in travelling_files(repository))


def path_bytes(path: Path) -> int:
    """Bytes of a carried path: a file's size, a folder's files' together, 0 for none."""
    if path.is_dir():
        return sum(inner.stat().st_size for inner in path.rglob("*") if inner.is_file())
    return path.stat().st_size if path.exists() else 0


def parts(stage: Path) -> list[Path]:
    found = sorted(stage.glob("part-*"), key=lambda path: int(path.name.rsplit("-", 1)[1]))
    if not found:
        raise FileNotFoundError(f"no part-* files in {stage}: run ../shared/tools/stage-cifar10 pack first")
    return found


def resplit(stage: Path, room: int) -> list[Path]:
    """Cut the bytes of ``stage``'s parts (in number order) into the fewest equal parts of at most ``room`` bytes,
    replacing them; returns the new parts."""
    blob = b"".join(path.read_bytes() for path in parts(stage))
    if room <= 0:
        raise ValueError("the working tree alone fills a call: nothing is left for the data")
    count = math.ceil(len(blob) / room)
    size = math.ceil(len(blob) / count)
    for path in parts(stage):
        path.unlink()
    written = []
    for number, start in enumerate(range(0, len(blob), size), start=1):
        path = stage / f"part-{number}"
        path.write_bytes(blob[start:start + size])
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", type=Path, help="the folder holding part-* (e.g. .stage)")
    parser.add_argument("--limit-mib", type=float, default=64.0, help="what one call carries in all")
    parser.add_argument("--margin-mib", type=float, default=2.0, help="left free for files that change meanwhile")
    args = parser.parse_args(argv)
    tree = travelling_bytes(Path.cwd())
    tool = args.stage / "stage-cifar10"
    packages = Path(".device-wheels")  # what the device lacks (tools/remote_gpu/device_packages.sh): carried every call
    room = (int((args.limit_mib - args.margin_mib) * MIB) - tree - path_bytes(packages)
            - (tool.stat().st_size if tool.exists() else 0))
    try:
        written = resplit(args.stage, room)
    except (FileNotFoundError, ValueError) as error:
        print(f"stage_parts: {error}", file=sys.stderr)
        return 2
    print(f"stage_parts: the working tree sends {tree / MIB:.1f} MiB a call; {len(written)} part(s) of at most "
          f"{max(p.stat().st_size for p in written) / MIB:.1f} MiB")
    for number, path in enumerate(written, start=1):
        extra = f', "{tool}"' if number == 1 and tool.exists() else ""
        extra += f', "{packages}"' if packages.is_dir() else ""
        print(f"  data call {number}: carry \"{path}\"{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
