"""Write a file so that a reader sees its old content or its new content, never half of the new.

Everything the project persists (run histories, tables, arrays, weights, checkpoints) goes through here, so an
interrupted run never leaves a truncated file that looks finished.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, flush it to disk, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".partial")
    try:
        # mkstemp makes the file 0600; results are shared (a store, a clone), so others may read them.
        os.chmod(partial, 0o644)
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
