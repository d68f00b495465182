"""scripts/gpu_check.py (the GPU check of the TensorRT backend's memory code) as a dry run on this
machine: host memory, so the script's use of the backend, the fake and the goldens cannot rot
while no GPU is lent. The GPU parts themselves run only on a GPU."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from support import REPO


def test_dry_run_on_host_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)   # restored after the test
    module = runpy.run_path(str(REPO / "scripts" / "gpu_check.py"))
    code = module["main"](["--allocator", "host", "--runs", "3", "--cache", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "| host: golden labels | pass | agreement min 100.000 %" in out
    assert "| host: shape change | pass |" in out
