"""Types: ``mypy crop_weed_seg`` with the repository's mypy.ini (Python 3.10, torch seen as Any,
third-party modules without type information ignored). The TensorRT backend is also checked
with ``--strict`` against patched tensorrt-stubs: test/backends/test_trt_typecheck.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from support import REPO

pytest.importorskip("mypy", reason="mypy is in requirements-dev.txt: run make test")


def test_mypy_finds_nothing_in_the_package() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(REPO / "mypy.ini"),
                             "crop_weed_seg"], capture_output=True, text=True, cwd=REPO,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
