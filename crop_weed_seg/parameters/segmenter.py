"""The segmenter node's parameters: one table, read by the node, the launch-file test and docs.

Pure Python (no rclpy) so that the YAML and launch-file checks run without ROS. The ROS layer
turns each :class:`ParamSpec` into a declared parameter with a ``ParameterDescriptor``
(description, range or choices, read-only flag) and calls :func:`validate` from its
set-parameters callback, so a rejected change always comes back with a reason.

``config/crop_weed_seg.yaml`` holds every parameter with its default; a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from crop_weed_seg.errors import ConfigError

Value = Union[bool, int, float, str, list]

#: Node name and executable (DESIGN.md §4).
NODE_NAME = "crop_weed_seg"
EXECUTABLE = "segmenter_node"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter. ``low``/``high`` bound numbers (inclusive); ``choices`` bound strings.
    ``read_only`` parameters are fixed at start-up (changing them needs a restart)."""

    name: str
    default: Value
    description: str
    read_only: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def kind(self) -> type:
        return type(self.default)

    @property
    def is_int_list(self) -> bool:
        return isinstance(self.default, list)

    def constraint_text(self) -> str:
        """What the descriptor's ``additional_constraints`` says."""
        if self.is_int_list:
            return f"integers, each {self.low} <= value <= {self.high}"
        if self.choices:
            return "one of: " + ", ".join(self.choices)
        if self.low is not None and self.high is not None:
            return f"{self.low} <= value <= {self.high}"
        return ""


PARAMETERS: tuple[ParamSpec, ...] = (
    # --- start-up only -------------------------------------------------------------------------
    ParamSpec("model_dir", "",
              "Model folder (model.yaml + model.onnx). Empty: the package's shipped default "
              "model (share/crop_weed_seg/models/default).", read_only=True),
    ParamSpec("backend", "auto",
              "Inference backend. auto tries tensorrt, onnxruntime, torch in that order.",
              read_only=True, choices=("auto", "tensorrt", "onnxruntime", "torch")),
    ParamSpec("precision", "fp32", "Inference precision where the backend supports it.",
              read_only=True, choices=("fp32", "fp16", "int8")),
    ParamSpec("device", "auto", "Inference device: auto, cpu, cuda or cuda:N.", read_only=True),
    ParamSpec("threads", 0, "CPU inference threads; 0 lets the runtime choose (at most 4).",
              read_only=True, low=0, high=64),
    ParamSpec("cuda_graphs", False,
              "Replay a captured CUDA graph per frame (torch and tensorrt on CUDA; fixed input "
              "size).", read_only=True),
    ParamSpec("engine_cache_dir", "",
              "TensorRT engine cache folder; empty: $CROP_WEED_SEG_ENGINE_CACHE or "
              "~/.cache/crop_weed_seg/engines (never the install tree or /tmp).", read_only=True),
    ParamSpec("allow_engine_build", True,
              "Build a missing or stale TensorRT engine at start-up (minutes). false in "
              "production: start fails fast and says which build-engine command to run.",
              read_only=True),
    ParamSpec("force_engine_rebuild", False,
              "Rebuild the TensorRT engine even when the cache holds a usable one.",
              read_only=True),
    ParamSpec("input_transport", "raw",
              "raw subscribes to sensor_msgs/Image on 'image'; compressed subscribes to "
              "sensor_msgs/CompressedImage on '<image>/compressed' (as image_transport names "
              "it, so a remap of 'image' moves both).",
              read_only=True, choices=("raw", "compressed")),
    ParamSpec("input_qos_reliability", "best_effort",
              "Reliability of the image subscription. best_effort (sensor data) also accepts "
              "reliable publishers.", read_only=True, choices=("best_effort", "reliable")),
    ParamSpec("input_qos_depth", 1,
              "History depth of the image subscription. The node always processes the newest "
              "frame and drops older ones (counted).", read_only=True, low=1, high=100),
    ParamSpec("output_qos_depth", 2, "History depth of the output publishers (reliable).",
              read_only=True, low=1, high=100),
    # --- changeable at run time ----------------------------------------------------------------
    ParamSpec("overlay_alpha", 0.45, "Opacity of the class colours in 'overlay'.",
              low=0.0, high=1.0),
    ParamSpec("overlay_max_rate_hz", 5.0,
              "At most this many 'overlay' images per second of image time (stamps), and only "
              "while 'overlay' has a subscriber.", low=0.1, high=120.0),
    ParamSpec("latency_budget_ms", 100.0,
              "Diagnostics turn WARN when the latency p95 (publish time minus image stamp) "
              "exceeds this.", low=1.0, high=60000.0),
    ParamSpec("stale_timeout_s", 2.0,
              "Diagnostics turn STALE when no image has arrived for this long.",
              low=0.1, high=3600.0),
    ParamSpec("max_frame_age_s", 0.5,
              "A frame older than this (node clock minus image stamp) when its labels are "
              "ready is not used for spraying: its spray_targets are published empty.",
              low=0.01, high=60.0),
    ParamSpec("max_future_s", 0.2,
              "A frame stamped more than this ahead of the node clock (a broken camera clock, "
              "/clock behind) gives labels but empty spray_targets, and tracking starts afresh "
              "(future_frames) [s].", low=0.0, high=60.0),
    # --- spray targets (changeable at run time) -------------------------------------------------
    ParamSpec("target_frame", "base_link",
              "Frame of spray_targets: x forward (direction of travel), y left, ground at z=0.",
              read_only=True),
    ParamSpec("spray_classes", [2], "Class ids that become spray targets.", low=0, high=254),
    ParamSpec("protect_classes", [1],
              "Class ids never to spray: targets within crop_buffer_m of them are trimmed or "
              "suppressed.", low=0, high=254),
    ParamSpec("min_confidence", 0.5,
              "Targets whose mean class probability is below this are dropped.",
              low=0.0, high=1.0),
    ParamSpec("min_area_m2", 4e-5, "Targets smaller than this on the ground are dropped.",
              low=0.0, high=1.0),
    ParamSpec("min_area_px", 30,
              "Targets smaller than this many pixels are dropped when the geometry is unknown.",
              low=0, high=1000000),
    ParamSpec("crop_buffer_m", 0.005,
              "Distance on the ground around protected classes that is never sprayed.",
              low=0.0, high=1.0),
    ParamSpec("crop_protection", "trim",
              "trim: cut the weed pixels inside the crop buffer; suppress: drop every target "
              "that touches it.", choices=("trim", "suppress")),
    ParamSpec("camera_x_m", 0.0, "Camera optical centre along target_frame x [m].",
              low=-20.0, high=20.0),
    ParamSpec("camera_y_m", 0.0, "Camera optical centre along target_frame y [m].",
              low=-20.0, high=20.0),
    ParamSpec("camera_height_m", 0.8, "Camera optical centre above the ground [m].",
              low=0.05, high=20.0),
    ParamSpec("camera_pitch_deg", 0.0,
              "Camera tilt from straight down; positive looks forward [deg].",
              low=-80.0, high=80.0),
    ParamSpec("hfov_deg", 0.0,
              "Horizontal field of view used when no camera_info has arrived; 0: no fallback "
              "(targets then have no ground position and no lane).", low=0.0, high=170.0),
    ParamSpec("nozzle_count", 12, "Number of nozzles on the spray boom.", low=1, high=256),
    ParamSpec("nozzle_spacing_m", 0.05, "Distance between neighbouring nozzles [m].",
              low=0.005, high=5.0),
    ParamSpec("boom_center_y_m", 0.0, "Lateral position of the boom's centre [m].",
              low=-20.0, high=20.0),
    ParamSpec("nozzle_offset_m", 0.5,
              "Distance of the nozzle line behind the camera's optical centre [m].",
              low=-20.0, high=20.0),
    ParamSpec("default_speed_mps", -1.0,
              "Ground speed used for time_to_nozzle when no recent odometry is known; "
              "negative: none (time_to_nozzle is NaN).", low=-1.0, high=20.0),
    ParamSpec("odom_timeout_s", 1.0,
              "Odometry further than this from an image's stamp is not used for it.",
              low=0.01, high=60.0),
    ParamSpec("max_speed_mps", 10.0,
              "Odometry faster than this is implausible: counted in bad_odometry with the "
              "reason, and the speed is unknown until a plausible message comes [m/s].",
              low=0.1, high=100.0),
)

BY_NAME: dict[str, ParamSpec] = {p.name: p for p in PARAMETERS}


def validate_value(spec: ParamSpec, value: Any) -> str | None:
    """None when ``value`` fits ``spec`` (type, choices, range; integer lists: non-empty, each
    in range), else the reason it does not. rclpy hands integer arrays over as ``array``."""
    name = spec.name
    if spec.is_int_list:
        items = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "typecode") \
            else None
        if items is None or not items or \
                not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            return f"{name} must be a non-empty list of integers, got {value!r}"
        bad = [v for v in items if not spec.low <= v <= spec.high]
        if bad:
            return f"{name} values {bad} are outside {spec.low:g}..{spec.high:g}"
        return None
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, spec.kind) or (spec.kind is not bool and isinstance(value, bool)):
        return f"{name} must be a {spec.kind.__name__}, got {type(value).__name__} {value!r}"
    if spec.choices and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}; got {value!r}"
    if spec.low is not None and value < spec.low:
        return f"{name} must be >= {spec.low}; got {value!r}"
    if spec.high is not None and value > spec.high:
        return f"{name} must be <= {spec.high}; got {value!r}"
    return None


def validate(name: str, value: Any) -> str | None:
    """None when ``value`` is acceptable for parameter ``name``, else the reason it is not."""
    spec = BY_NAME.get(name)
    if spec is None:
        return None  # not ours (use_sim_time and other node-wide parameters)
    return validate_value(spec, value)


def check_all(values: dict[str, Any]) -> None:
    """Raise ConfigError naming every bad value (used at start-up)."""
    problems = [reason for name, value in values.items()
                if (reason := validate(name, value)) is not None]
    if problems:
        raise ConfigError("invalid parameters: " + "; ".join(problems))


def render_yaml(node_name: str = NODE_NAME,
                parameters: tuple[ParamSpec, ...] = PARAMETERS) -> str:
    """The parameter YAML of a node: every parameter with its default and description
    (``config/<node>.yaml``)."""
    import textwrap

    import yaml
    executable = "segmenter_node" if node_name == NODE_NAME else node_name
    lines = [
        f"# Parameters of the {node_name} node (executable {executable}) with their defaults.",
        "# Generated by `python -m crop_weed_seg.parameters.segmenter` (see there); a test keeps",
        "# this file and the node's table equal. Start-up parameters (marked [restart]) are",
        "# read once; the others can be changed at run time with",
        f"# `ros2 param set /{node_name} NAME VALUE` and are validated (a rejection says why).",
        f"/**/{node_name}:", "  ros__parameters:"]
    for p in parameters:
        note = (" [restart]" if p.read_only else "") + \
            (f" ({p.constraint_text()})" if p.constraint_text() else "")
        lines += ["    # " + line for line in textwrap.wrap(p.description + note, 92)]
        value = yaml.safe_dump(p.default, default_flow_style=True).splitlines()[0]
        if value == "''":
            value = '""'
        lines.append(f"    {p.name}: {value}")
    return "\n".join(lines) + "\n"


def write_config_files(config_dir: str = "config") -> None:
    """Write ``crop_weed_seg.yaml`` and ``spray_planner.yaml`` from the parameter tables."""
    from pathlib import Path

    from crop_weed_seg.parameters import planner as planner_parameters
    folder = Path(config_dir)
    (folder / f"{NODE_NAME}.yaml").write_text(render_yaml())
    (folder / f"{planner_parameters.NODE_NAME}.yaml").write_text(
        render_yaml(planner_parameters.NODE_NAME, planner_parameters.PARAMETERS))


if __name__ == "__main__":
    write_config_files()
