"""The ``field_sim`` node's parameters: one table, read by the node and by tests and docs.

Pure Python (no rclpy, no simulator). Every parameter is read once at start-up (a simulated
drive is not reconfigured half-way). The scenario itself (field, seed, camera, boom, speed,
frame rate) comes from the field file, never from parameters, so that ``field_sim``, the scorer
and ``crop-weed-seg simulate`` drive the same field (crop_weed_seg/sim/scenario.py).
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

#: Node name and executable (docs/DESIGN.md §4).
NODE_NAME = "field_sim"
EXECUTABLE = "field_sim"
DRIVE_MODES = ("scripted", "cmd_vel")

PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("field_file", "",
              "Field file (field.json: a scenario, optionally with its drive and plants) to "
              "drive over; empty: the default scenario (a 20 m field at 1 m/s, 15 fps).",
              read_only=True),
    ParamSpec("drive_mode", "scripted",
              "scripted: the scenario's constant speed along its drive, frames exactly those of "
              "`crop-weed-seg simulate`; cmd_vel: the robot stands until 'cmd_vel' "
              "(geometry_msgs/Twist, linear.x along the row) moves it.",
              read_only=True, choices=DRIVE_MODES),
    ParamSpec("real_time_factor", 1.0,
              "Sim seconds per wall second (0.5: half speed, for a slow segmenter).",
              read_only=True, low=0.001, high=1000.0),
    ParamSpec("clock_rate_hz", 100.0, "Rate of '/clock' in sim time [Hz].",
              read_only=True, low=1.0, high=10000.0),
    ParamSpec("odom_rate_hz", 50.0,
              "Rate of '/odom' (and odom -> base_link on '/tf') in sim time [Hz].",
              read_only=True, low=1.0, high=1000.0),
    ParamSpec("start_delay_s", 1.0,
              "Sim seconds of '/clock' and '/odom' before the first frame (lets every node see "
              "the clock and the speed first) [s].", read_only=True, low=0.0, high=3600.0),
    ParamSpec("wait_for_subscribers", False,
              "Start '/clock' and the drive only once 'image' and 'labels_truth' each have a "
              "subscriber (a launch whose nodes come up after the simulator misses nothing).",
              read_only=True),
    ParamSpec("exit_when_done", False,
              "Exit with code 0 once base_link has reached the drive's end and tail_s more sim "
              "seconds passed; otherwise clock and odometry go on until stopped.",
              read_only=True),
    ParamSpec("tail_s", 1.0,
              "Sim seconds after the drive's end before the run is done [s].",
              read_only=True, low=0.0, high=3600.0),
)

BY_NAME: dict[str, ParamSpec] = by_name(PARAMETERS)


def validate(name: str, value: Any) -> str | None:
    """None when ``value`` is acceptable for parameter ``name``, else the reason it is not."""
    return validate_named(BY_NAME, name, value)


def check(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` when every one fits its parameter; else a ConfigError naming each bad one."""
    raise_problems(problems(BY_NAME, values))
    return values


def defaults() -> dict[str, Any]:
    return {p.name: p.default for p in PARAMETERS}
