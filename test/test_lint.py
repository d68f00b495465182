"""Lint: ``ruff check`` over the package, the tests and the developer tools (rules in ruff.toml;
ruff is pinned in requirements-dev.txt). It stands in for ament_flake8 / ament_pep257."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO

pytest.importorskip("ruff", reason="ruff is in requirements-dev.txt: run make test")


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                             "--output-format", "concise", "crop_weed_seg", "test", "scripts"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_uses_the_repository_rules(tmp_path: Path) -> None:
    """A made-up file with a relative import, an unused one and unsorted imports fails."""
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nimport os\n\nfrom .x import y\n\nprint(y)\n")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                             "--config", str(REPO / "ruff.toml"), "--output-format", "concise",
                             str(bad)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    for code in ("I001", "F401", "TID252"):
        assert code in result.stdout, result.stdout
