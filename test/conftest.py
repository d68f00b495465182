"""Shared fixtures: tiny synthetic datasets written once per test session."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from crop_weed_seg.synthetic import PRESETS
from crop_weed_seg.synthetic.dataset_writer import write_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_field(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 synthetic 128×160 frames in the folder layout."""
    out = tmp_path_factory.mktemp("tiny_field")
    write_dataset(out, replace(PRESETS["train"], height=128, width=160), seed=21, count=12,
                  workers=1)
    return out
