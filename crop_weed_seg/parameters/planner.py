"""The ``spray_planner`` node's parameters: one table, read by the node and by tests and docs.

Pure Python (no rclpy), in the style of :mod:`crop_weed_seg.parameters.segmenter` (same
:class:`ParamSpec`). The geometry names (``nozzle_count``, ``nozzle_spacing_m``,
``boom_center_y_m``, ``nozzle_offset_m``, ``camera_x_m``) are the segmenter node's too, so one
YAML block can configure both. Besides each value's own range, :func:`build` checks the whole
set (it constructs the :class:`Boom` and :class:`PlannerConfig`), so the set-parameters callback
rejects a change with the reason before anything is applied.
"""

from __future__ import annotations

from typing import Any

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.parameters.segmenter import ParamSpec, validate_value
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
    # --- boom geometry (the segmenter node uses the same names) ---------------------------------
    ParamSpec("nozzle_count", 12, "Number of nozzles on the boom (joints nozzle_00 ..).",
              low=1, high=256),
    ParamSpec("nozzle_spacing_m", 0.05, "Distance between neighbouring nozzles [m].",
              low=0.005, high=5.0),
    ParamSpec("boom_center_y_m", 0.0, "Lateral position of the boom centre in target_frame "
              "(y left) [m]. Lane 0 is the right-most nozzle.", low=-10.0, high=10.0),
    ParamSpec("nozzle_offset_m", 0.5, "Distance of the nozzle line behind the camera's optical "
              "centre along the direction of travel [m].", low=0.0, high=20.0),
    ParamSpec("camera_x_m", 0.0, "x of the camera's optical centre in target_frame [m]; the "
              "nozzle line is at x = camera_x_m - nozzle_offset_m.", low=-20.0, high=20.0),
    ParamSpec("target_frame", "base_link", "Frame of the incoming targets (x forward, y left) "
              "and frame_id of 'nozzle_states'. Targets in another frame are rejected."),
    # --- planning --------------------------------------------------------------------------------
    ParamSpec("mode", "spot", "spot: open a nozzle over planned targets; off: all shut; "
              "blanket: all open.", choices=MODES),
    ParamSpec("failure_policy", "off", "In spot mode, what the nozzles do while 'spray_targets' "
              "is stale: off (all shut) or blanket (all open).", choices=FAILURE_POLICIES),
    ParamSpec("stale_timeout_s", 0.5, "'spray_targets' (empty clouds count) is stale after this "
              "long without a usable message, on the node clock or on the steady clock.",
              low=0.01, high=3600.0),
    ParamSpec("valve_latency_s", 0.03, "Delay from a valve command to spray on the ground [s]; "
              "commands lead the target by it.", low=0.0, high=10.0),
    ParamSpec("margin_m", 0.02, "Spray added before and after each target along track [m].",
              low=0.0, high=10.0),
    ParamSpec("min_open_s", 0.0, "Once open, a nozzle stays open at least this long [s]; "
              "0 disables.", low=0.0, high=60.0),
    ParamSpec("bridge_gap_m", 0.02, "A nozzle stays open across a gap shorter than this "
              "between two of its windows [m] (no valve chatter, no second dose of one weed).",
              low=0.0, high=10.0),
    ParamSpec("spray_classes", [2], "Class ids (model.yaml) whose targets are sprayed.",
              low=0, high=254),
    ParamSpec("max_target_age_s", 5.0, "Targets whose image stamp is older than this (node "
              "clock) are rejected and counted.", low=0.01, high=3600.0),
    ParamSpec("max_future_s", 0.2, "Targets whose image stamp is more than this ahead of the "
              "node clock are rejected, counted (future_frames) and the stored windows "
              "forgotten [s].", low=0.0, high=60.0),
    ParamSpec("odom_timeout_s", 1.0, "Odometry that had started and then stays silent this "
              "long is lost: failure_policy applies until it is back [s]; 0 disables.",
              low=0.0, high=3600.0),
    ParamSpec("min_speed_mps", 0.05, "In spot mode every nozzle is shut below this ground speed "
              "(a standing robot does not keep dosing one spot) [m/s]; 0 disables.",
              low=0.0, high=100.0),
    ParamSpec("default_speed_mps", -1.0, "Ground speed assumed until the first 'odom' message "
              "[m/s]; <= 0 means none: in spot mode the nozzles stay shut without odometry.",
              low=-1.0, high=100.0),
    ParamSpec("max_speed_mps", 10.0, "Odometry faster than this is implausible: counted in "
              "bad_odometry with the reason and ignored, so failure_policy applies once no "
              "plausible update came for odom_timeout_s [m/s].", low=0.1, high=100.0),
)

BY_NAME: dict[str, ParamSpec] = {p.name: p for p in PARAMETERS}
GEOMETRY = ("nozzle_count", "nozzle_spacing_m", "boom_center_y_m", "nozzle_offset_m",
            "camera_x_m")


def validate(name: str, value: Any) -> str | None:
    """None when ``value`` is acceptable for parameter ``name``, else the reason it is not."""
    spec = BY_NAME.get(name)
    if spec is None:
        return None  # not ours (use_sim_time and other node-wide parameters)
    reason = validate_value(spec, value)
    if reason is None and name == "target_frame" and not value.strip():
        return "target_frame must not be empty"
    return reason


def build(values: dict[str, Any]) -> tuple[Boom, PlannerConfig]:
    """The boom and planner settings of a complete parameter set; ConfigError naming every bad
    value (start-up, and the set-parameters callback with the proposed values)."""
    problems = [reason for name, value in values.items()
                if (reason := validate(name, value)) is not None]
    if problems:
        raise ConfigError("invalid parameters: " + "; ".join(problems))
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
                           max_speed_mps=float(v["max_speed_mps"]))
    return boom, config


def defaults() -> dict[str, Any]:
    return {p.name: (list(p.default) if isinstance(p.default, tuple) else p.default)
            for p in PARAMETERS}
