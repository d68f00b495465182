"""Writes ``config/crop_weed_seg.yaml``, ``config/spray_planner.yaml`` and the simulation
nodes' ``config/field_sim.yaml`` and ``config/sim_scorer.yaml`` from the nodes' parameter tables:
``python -m crop_weed_seg.parameters.config_files`` in the repository root
(:data:`~crop_weed_seg.parameters.table.GENERATOR`). A test keeps the files and the tables
equal."""

from __future__ import annotations

from pathlib import Path

from crop_weed_seg.parameters import field_sim, planner, scorer, segmenter
from crop_weed_seg.parameters.table import render_yaml


def rendered() -> dict[str, str]:
    """File name -> text of every generated parameter file."""
    return {f"{table.NODE_NAME}.yaml": render_yaml(table.NODE_NAME, table.EXECUTABLE,
                                                    table.PARAMETERS)
            for table in (segmenter, planner, field_sim, scorer)}


def write_config_files(config_dir: str = "config") -> None:
    """Write every node's parameter file (:func:`rendered`) into ``config_dir``."""
    for name, text in rendered().items():
        (Path(config_dir) / name).write_text(text)


if __name__ == "__main__":
    write_config_files()
