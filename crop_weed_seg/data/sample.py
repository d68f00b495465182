"""One labelled sample on disk, shared by every dataset reader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One image and its label file. ``stem`` is unique within a dataset."""

    stem: str
    image_path: Path
    label_path: Path


def visible_files(folder: Path) -> list[Path]:
    """Files of ``folder`` (not hidden), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
