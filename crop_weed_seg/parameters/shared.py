"""The parameters both nodes have: boom and camera geometry, the target frame and classes, and
the timing and odometry bounds, each defined once (one default, one range, one meaning).

``crop_weed_seg`` (the segmenter) and ``spray_planner`` put these very specs in their tables
(:mod:`crop_weed_seg.parameters.segmenter`, :mod:`crop_weed_seg.parameters.planner`), so one
YAML block with these names configures both nodes alike, and a test checks that the two tables
agree on every name they share. The YAML files mark them [both nodes].

Where the two tables had drifted apart (issue 13), one meaning was kept:

- ``stale_timeout_s``: the perception stream (images in the segmenter, ``spray_targets`` in the
  planner) is stale after this long; one value, so the segmenter's diagnostics say STALE when
  the planner applies its failure policy. Default 0.5 s (the segmenter had 2.0 s).
- ``odom_timeout_s``: odometry older than this is not used; 0 means no limit in both nodes.
- ``default_speed_mps``: the speed assumed while no odometry is known; <= 0 means none in both
  nodes (the segmenter took 0 as a speed), and it must not exceed ``max_speed_mps``.
- ``nozzle_offset_m``: the nozzles are behind the camera (0..20 m); ``boom_center_y_m`` is a
  position in ``target_frame`` like ``camera_x_m`` (±20 m).
- ``target_frame``: fixed at start-up in both nodes, and never empty.
"""

from __future__ import annotations

from typing import Any

from crop_weed_seg.parameters.table import ParamSpec, by_name

NOZZLE_COUNT = ParamSpec(
    "nozzle_count", 12,
    "Number of nozzles on the spray boom; the planner's joints are nozzle_00 .. (lane 0 is the "
    "right-most nozzle).", low=1, high=256, shared=True)
NOZZLE_SPACING_M = ParamSpec(
    "nozzle_spacing_m", 0.05, "Distance between neighbouring nozzles [m].",
    low=0.005, high=5.0, shared=True)
BOOM_CENTER_Y_M = ParamSpec(
    "boom_center_y_m", 0.0,
    "Lateral position of the boom's centre in target_frame (y left) [m]. Lane 0 is the "
    "right-most nozzle.", low=-20.0, high=20.0, shared=True)
NOZZLE_OFFSET_M = ParamSpec(
    "nozzle_offset_m", 0.5,
    "Distance of the nozzle line behind the camera's optical centre along the direction of "
    "travel [m]: the nozzles are at x = camera_x_m - nozzle_offset_m.",
    low=0.0, high=20.0, shared=True)
CAMERA_X_M = ParamSpec(
    "camera_x_m", 0.0,
    "Camera optical centre along target_frame x (forward) [m]; the nozzle line is at "
    "x = camera_x_m - nozzle_offset_m.", low=-20.0, high=20.0, shared=True)
TARGET_FRAME = ParamSpec(
    "target_frame", "base_link",
    "Frame of spray_targets and of the geometry parameters: x forward (direction of travel), "
    "y left, ground at z=0. The segmenter publishes spray_targets in it; the planner rejects "
    "targets in another frame and stamps 'nozzle_states' with it.",
    read_only=True, non_empty=True, shared=True)
SPRAY_CLASSES = ParamSpec(
    "spray_classes", [2],
    "Class ids (model.yaml) to spray: the segmenter makes targets of them, the planner opens "
    "nozzles only for targets of these classes.", low=0, high=254, shared=True)
STALE_TIMEOUT_S = ParamSpec(
    "stale_timeout_s", 0.5,
    "The perception stream is stale after this long without input [s]: the segmenter's "
    "diagnostics turn STALE when no image has arrived for this long; the planner applies "
    "failure_policy when no usable 'spray_targets' (empty clouds count) arrived for this long "
    "on the node clock or on the steady clock.", low=0.01, high=3600.0, shared=True)
MAX_FUTURE_S = ParamSpec(
    "max_future_s", 0.2,
    "A frame stamped more than this ahead of the node clock (a broken camera clock, /clock "
    "behind) is not sprayed from [s]: the segmenter publishes its labels but empty "
    "spray_targets and starts tracking afresh; the planner rejects its targets and forgets the "
    "stored windows. Both count it in future_frames.", low=0.0, high=60.0, shared=True)
ODOM_TIMEOUT_S = ParamSpec(
    "odom_timeout_s", 1.0,
    "Odometry older than this is not used [s]: the segmenter takes default_speed_mps for a "
    "frame whose newest odometry is further than this from its stamp; the planner treats "
    "odometry that had started and then stays silent this long as lost (failure_policy "
    "applies until it is back). 0: no limit.", low=0.0, high=3600.0, shared=True)
DEFAULT_SPEED_MPS = ParamSpec(
    "default_speed_mps", -1.0,
    "Ground speed assumed while no odometry is known [m/s] (segmenter: none within "
    "odom_timeout_s of the frame; planner: none received yet, odometry lost later brings "
    "failure_policy instead); <= 0: none, so time_to_nozzle is NaN and in spot mode the "
    "nozzles stay shut. Must not exceed max_speed_mps.", low=-1.0, high=100.0, shared=True)
MAX_SPEED_MPS = ParamSpec(
    "max_speed_mps", 10.0,
    "Odometry faster than this is implausible [m/s]: counted in bad_odometry with the reason "
    "and ignored; the segmenter's speed is unknown until a plausible message comes, the "
    "planner applies failure_policy once no plausible update came for odom_timeout_s.",
    low=0.1, high=100.0, shared=True)

#: Every shared parameter, in no particular node's order.
SHARED: tuple[ParamSpec, ...] = (
    NOZZLE_COUNT, NOZZLE_SPACING_M, BOOM_CENTER_Y_M, NOZZLE_OFFSET_M, CAMERA_X_M, TARGET_FRAME,
    SPRAY_CLASSES, STALE_TIMEOUT_S, MAX_FUTURE_S, ODOM_TIMEOUT_S, DEFAULT_SPEED_MPS,
    MAX_SPEED_MPS)
BY_NAME: dict[str, ParamSpec] = by_name(SHARED)
#: The boom geometry (both nodes compute lanes and the nozzle line from it).
GEOMETRY = ("nozzle_count", "nozzle_spacing_m", "boom_center_y_m", "nozzle_offset_m",
            "camera_x_m")


def consistency_problems(values: dict[str, Any]) -> list[str]:
    """What is wrong with the shared parameters taken together (each value on its own fits):
    a ``default_speed_mps`` above ``max_speed_mps`` would be an implausible speed."""
    found = []
    default, limit = values.get("default_speed_mps"), values.get("max_speed_mps")
    if isinstance(default, (int, float)) and isinstance(limit, (int, float)) \
            and default > 0 and default > limit:
        found.append(f"default_speed_mps={default!r} must not exceed max_speed_mps={limit!r}")
    return found
