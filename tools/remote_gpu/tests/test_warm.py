"""tools/remote_gpu/warm.py: the compile ahead compiles what the sweep will, from the card's probe and self-test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/remote_gpu

import warm  # noqa: E402


def test_the_compile_ahead_compiles_what_the_sweep_will(tmp_path, monkeypatch):
    records = [{"section": "modes", "model": "lenet5", "batch_size": 16, "fast_path": "eager", "ms_per_step": 50.0},
               {"section": "modes", "model": "lenet5", "batch_size": 16, "fast_path": "compiled", "ms_per_step": 1.0,
                "compile_seconds": 0.1}]
    (tmp_path / "probe-cpu-2026-12-03.json").write_text(json.dumps({"device": "cpu", "records": records}))
    (tmp_path / "selftest.json").write_text(json.dumps({"device": "cpu", "checks": [
        {"name": "compiled lenet5@2", "fast_path": "compiled", "model": "lenet5", "ok": True}]}))
    monkeypatch.setattr(warm, "PROBES", tmp_path)
    lines = []
    chosen = warm.graphs("model_zoo", "smoke", "cpu", workers=1, log=lines.append)
    assert [(c.model, c.compile, c.compile_mode) for c in chosen] == [("lenet5", True, "default")]
    assert "  alexnet at batch 16: eager (the self-test did not check compiled for it on this card)" in lines
