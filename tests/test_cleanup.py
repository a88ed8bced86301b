"""The test suite cleans up after itself: a passing session leaves nothing in the system's temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WRITES_TEMPORARY_FILES = """
import pytest


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("store")


def test_writes_a_store(store, tmp_path):
    (store / "weights.pt").write_bytes(bytes(1000))
    (tmp_path / "run.json").write_text("{}")
"""


def test_a_passing_session_leaves_no_temporary_files(tmp_path):
    (tmp_path / "test_writes.py").write_text(WRITES_TEMPORARY_FILES)
    temporary = tmp_path / "temporary"  # where that session's pytest puts its temporary folders
    temporary.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), str(tmp_path / "test_writes.py")],
        env={**os.environ, "PYTEST_DEBUG_TEMPROOT": str(temporary)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [path for path in temporary.rglob("*") if path.is_file()] == []
