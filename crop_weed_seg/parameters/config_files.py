"""Writes ``config/crop_weed_seg.yaml`` and ``config/spray_planner.yaml`` from the two nodes'
parameter tables: ``python -m crop_weed_seg.parameters.config_files`` in the repository root
(:data:`~crop_weed_seg.parameters.table.GENERATOR`). A test keeps the files and the tables
equal."""

from __future__ import annotations

from pathlib import Path

from crop_weed_seg.parameters import planner, segmenter
from crop_weed_seg.parameters.table import render_yaml


def rendered() -> dict[str, str]:
    """File name -> text of every generated parameter file."""
    return {f"{segmenter.NODE_NAME}.yaml": render_yaml(segmenter.NODE_NAME, segmenter.EXECUTABLE,
                                                        segmenter.PARAMETERS),
            f"{planner.NODE_NAME}.yaml": render_yaml(planner.NODE_NAME, planner.EXECUTABLE,
                                                      planner.PARAMETERS)}


def write_config_files(config_dir: str = "config") -> None:
    """Write ``crop_weed_seg.yaml`` and ``spray_planner.yaml`` from the parameter tables."""
    for name, text in rendered().items():
        (Path(config_dir) / name).write_text(text)


if __name__ == "__main__":
    write_config_files()
