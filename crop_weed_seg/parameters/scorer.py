"""The ``sim_scorer`` node's parameters: one table, read by the node and by tests and docs.

Pure Python (no rclpy). The field, camera, boom, drive and valve latency come from the field
file (:mod:`crop_weed_seg.sim.scenario`), never from parameters, so the scorer scores the drive
the simulator drove. All parameters are fixed at start-up.
"""

from __future__ import annotations

from typing import Any

from crop_weed_seg.parameters.table import (
    ParamSpec,
    by_name,
    problems,
    raise_problems,
    validate_named,
)

#: Node name and executable (issue 16: the simulation's scorer).
NODE_NAME = "sim_scorer"
EXECUTABLE = "sim_scorer"

PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("field_file", "",
              "Field file (field.json: scenario, optionally drive and plants) of the simulated "
              "drive; required. The field is regenerated from its scenario.", read_only=True),
    ParamSpec("out_dir", "",
              "Folder for score.json (and score.png when matplotlib is installed) at the end of "
              "the drive; empty: write nothing.", read_only=True),
    ParamSpec("exit_when_done", False,
              "Exit (code 0) once the drive has ended and the score is written.",
              read_only=True),
    ParamSpec("tail_s", 1.0,
              "The drive has ended this long (node clock, sim time) plus the valve latency "
              "after odometry showed base_link at the drive's end [s].",
              read_only=True, low=0.0, high=600.0),
    ParamSpec("stall_timeout_s", 5.0,
              "After the drive's end, also end when the node clock has not advanced for this "
              "many wall seconds (a simulator that stopped its clock) [s].",
              read_only=True, low=0.1, high=3600.0),
    ParamSpec("dt_s", 0.002,
              "Step of the physical nozzle timeline the score is computed on [s] (the "
              "simulator's; commands are held between samples).",
              read_only=True, low=1e-4, high=0.1),
    ParamSpec("match_horizon_s", 2.0,
              "A labels or labels_truth image waits this long (stamps, behind the newest one "
              "seen) for its partner before it counts as missing [s].",
              read_only=True, low=0.01, high=60.0),
    ParamSpec("max_pending_frames", 32,
              "At most this many images wait for their partner, per topic (memory bound).",
              read_only=True, low=1, high=1000),
    ParamSpec("max_nozzle_samples", 200000,
              "At most this many nozzle_states and odometry samples are kept for the drive "
              "(memory bound; later ones are refused, counted and the score marked incomplete).",
              read_only=True, low=100, high=50000000),
    ParamSpec("image_qos_depth", 30,
              "Queue depth of the labels and labels_truth subscriptions (reliable).",
              read_only=True, low=1, high=1000),
)

BY_NAME: dict[str, ParamSpec] = by_name(PARAMETERS)


def validate(name: str, value: Any) -> str | None:
    """None when ``value`` is acceptable for parameter ``name``, else the reason it is not."""
    return validate_named(BY_NAME, name, value)


def check(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` when every one fits its parameter and ``field_file`` is given; ConfigError
    naming every problem otherwise."""
    found = problems(BY_NAME, values)
    if not str(values.get("field_file", "")).strip():
        found.append("field_file is required: the field file (field.json) of the simulated "
                     "drive, e.g. config/sim_field.json or the one gazebo-world wrote")
    raise_problems(found)
    return values


def defaults() -> dict[str, Any]:
    return {p.name: p.default for p in PARAMETERS}
