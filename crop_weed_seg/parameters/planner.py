"""The ``spray_planner`` node's parameters: one table, read by the node and by tests and docs.

Pure Python (no rclpy). The parameters the segmenter node has too (boom geometry, target frame
and classes, timing and odometry bounds) are the specs of
:mod:`crop_weed_seg.parameters.shared`, defined once for both nodes, so one YAML block
configures both alike. Besides each value's own range, :func:`build` checks the whole set (it
constructs the :class:`Boom` and :class:`PlannerConfig`), so the set-parameters callback
rejects a change with the reason before anything is applied.
"""

from __future__ import annotations

from typing import Any

from crop_weed_seg.parameters import shared
from crop_weed_seg.parameters.table import (
    ParamSpec,
    by_name,
    problems,
    raise_problems,
    validate_named,
)
from crop_weed_seg.spray.geometry import Boom
from crop_weed_seg.spray.planner import FAILURE_POLICIES, MODES, PlannerConfig

#: Node name and executable (DESIGN.md §4).
NODE_NAME = "spray_planner"
EXECUTABLE = "spray_planner"

PARAMETERS: tuple[ParamSpec, ...] = (
    # --- start-up only -------------------------------------------------------------------------
    ParamSpec("rate_hz", 50.0,
              "Rate of 'nozzle_states' (JointState) on the node clock (sim time when "
              "use_sim_time is set).", read_only=True, low=1.0, high=1000.0),
    shared.TARGET_FRAME,
    # --- boom geometry (shared with the segmenter node) -----------------------------------------
    shared.NOZZLE_COUNT,
    shared.NOZZLE_SPACING_M,
    shared.BOOM_CENTER_Y_M,
    shared.NOZZLE_OFFSET_M,
    shared.CAMERA_X_M,
    # --- planning --------------------------------------------------------------------------------
    ParamSpec("mode", "spot", "spot: open a nozzle over planned targets; off: all shut; "
              "blanket: all open.", choices=MODES),
    ParamSpec("failure_policy", "off", "In spot mode, what the nozzles do while 'spray_targets' "
              "is stale: off (all shut) or blanket (all open).", choices=FAILURE_POLICIES),
    shared.STALE_TIMEOUT_S,
    ParamSpec("valve_latency_s", 0.03, "Delay from a valve command to spray on the ground [s]; "
              "commands lead the target by it.", low=0.0, high=10.0),
    ParamSpec("margin_m", 0.02, "Spray added before and after each target along track [m].",
              low=0.0, high=10.0),
    ParamSpec("min_open_s", 0.0, "Once open, a nozzle stays open at least this long [s]; "
              "0 disables.", low=0.0, high=60.0),
    ParamSpec("bridge_gap_m", 0.02, "A nozzle stays open across a gap shorter than this "
              "between two of its windows [m] (no valve chatter, no second dose of one weed).",
              low=0.0, high=10.0),
    shared.SPRAY_CLASSES,
    ParamSpec("max_target_age_s", 5.0, "Targets whose image stamp is older than this (node "
              "clock) are rejected and counted.", low=0.01, high=3600.0),
    shared.MAX_FUTURE_S,
    shared.ODOM_TIMEOUT_S,
    ParamSpec("min_speed_mps", 0.05, "In spot mode every nozzle is shut below this ground speed "
              "(a standing robot does not keep dosing one spot) [m/s]; 0 disables.",
              low=0.0, high=100.0),
    shared.DEFAULT_SPEED_MPS,
    shared.MAX_SPEED_MPS,
)

BY_NAME: dict[str, ParamSpec] = by_name(PARAMETERS)


def validate(name: str, value: Any) -> str | None:
    """None when ``value`` is acceptable for parameter ``name``, else the reason it is not."""
    return validate_named(BY_NAME, name, value)


def build(values: dict[str, Any]) -> tuple[Boom, PlannerConfig]:
    """The boom and planner settings of a complete parameter set; ConfigError naming every bad
    value (start-up, and the set-parameters callback with the proposed values)."""
    raise_problems(problems(BY_NAME, values) or shared.consistency_problems(values))
    v = values
    boom = Boom(int(v["nozzle_count"]), float(v["nozzle_spacing_m"]),
                float(v["boom_center_y_m"]),
                float(v["camera_x_m"]) - float(v["nozzle_offset_m"]))
    default_speed = float(v["default_speed_mps"])
    config = PlannerConfig(valve_latency_s=float(v["valve_latency_s"]),
                           margin_m=float(v["margin_m"]), mode=v["mode"],
                           failure_policy=v["failure_policy"],
                           stale_timeout_s=float(v["stale_timeout_s"]),
                           spray_classes=tuple(int(c) for c in v["spray_classes"]),
                           max_target_age_s=float(v["max_target_age_s"]),
                           min_open_s=float(v["min_open_s"]),
                           bridge_gap_m=float(v["bridge_gap_m"]),
                           odom_timeout_s=float(v["odom_timeout_s"]),
                           min_speed_mps=float(v["min_speed_mps"]),
                           default_speed_mps=default_speed if default_speed > 0 else None,
                           max_future_s=float(v["max_future_s"]),
                           max_speed_mps=float(v["max_speed_mps"]),
                           command_period_s=1.0 / float(v["rate_hz"]))
    return boom, config


def defaults() -> dict[str, Any]:
    return {p.name: (list(p.default) if isinstance(p.default, tuple) else p.default)
            for p in PARAMETERS}
