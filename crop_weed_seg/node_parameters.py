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

Value = Union[bool, int, float, str]

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

    def constraint_text(self) -> str:
        """What the descriptor's ``additional_constraints`` says."""
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
)

BY_NAME: dict[str, ParamSpec] = {p.name: p for p in PARAMETERS}


def validate(name: str, value: Any) -> str | None:
    """None when ``value`` is acceptable for parameter ``name``, else the reason it is not."""
    spec = BY_NAME.get(name)
    if spec is None:
        return None  # not ours (use_sim_time and other node-wide parameters)
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


def check_all(values: dict[str, Any]) -> None:
    """Raise ConfigError naming every bad value (used at start-up)."""
    problems = [reason for name, value in values.items()
                if (reason := validate(name, value)) is not None]
    if problems:
        raise ConfigError("invalid parameters: " + "; ".join(problems))
