"""The segmenter node's parameters: one table, read by the node, the launch-file test and docs.

Pure Python (no rclpy). The parameters the spray planner has too (boom and camera geometry,
target frame and classes, timing and odometry bounds) are the specs of
:mod:`crop_weed_seg.parameters.shared`, defined once for both nodes; the rest are this node's
own. The ROS layer declares each :class:`~crop_weed_seg.parameters.table.ParamSpec` with a
``ParameterDescriptor`` and calls :func:`validate` from its set-parameters callback, so a
rejected change always comes back with a reason.

``config/crop_weed_seg.yaml`` holds every parameter with its default
(:mod:`crop_weed_seg.parameters.config_files` writes it); a test keeps the two equal.
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

#: Node name and executable (DESIGN.md §4).
NODE_NAME = "crop_weed_seg"
EXECUTABLE = "segmenter_node"

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
    # TensorRT engine selection: the options of `crop-weed-seg build-engine`, which prints
    # these for each engine it builds (crop_weed_seg/backends/engine_options.py).
    ParamSpec("engine_settings", "",
              "TensorRT: the JSON sidecar next to an engine in the cache (<model>-<key>.json, "
              "printed by build-engine). Not empty: it decides precision and every engine_* "
              "setting (leave those at their defaults or equal to it), and its folder is the "
              "engine cache unless engine_cache_dir is set.", read_only=True),
    ParamSpec("engine_onnx", "",
              "TensorRT: build the engine from this ONNX instead of the model's (relative: to "
              "the model folder), e.g. model_fp16.onnx from `crop-weed-seg quantize "
              "--precision fp16` for TensorRT >= 10.12 (with engine_strongly_typed). build-engine "
              "--onnx.", read_only=True),
    ParamSpec("engine_dla_core", -1,
              "TensorRT: build for this DLA core (Orin AGX/NX; precision fp16 or int8, fixed "
              "input size; unsupported layers fall back to the GPU); -1: GPU only. "
              "build-engine --dla-core.", read_only=True, low=-1, high=7),
    ParamSpec("engine_shapes", "",
              "TensorRT optimisation profile MINHxMINW,OPTHxOPTW,MAXHxMAXW of a dynamic-size "
              "model; empty: the model's input size for all three. build-engine --shapes.",
              read_only=True),
    ParamSpec("engine_workspace_mb", 1024,
              "TensorRT builder workspace limit [MiB]. build-engine --workspace-mb.",
              read_only=True, low=1, high=65536),
    ParamSpec("engine_strongly_typed", False,
              "TensorRT strongly typed network: the precision comes from the ONNX's own types "
              "(TensorRT >= 10.12 needs it for fp16/int8, from an FP16 or Q/DQ engine_onnx). "
              "build-engine --strongly-typed.", read_only=True),
    ParamSpec("engine_tf32", False,
              "TensorRT: allow TF32 (off: strict FP32 parity with ONNX Runtime). "
              "build-engine --tf32.", read_only=True),
    ParamSpec("engine_optimization_level", -1,
              "TensorRT builder optimisation level 0..5 (TensorRT >= 8.6); -1: TensorRT's "
              "default. build-engine --optimization-level.", read_only=True, low=-1, high=5),
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
    shared.STALE_TIMEOUT_S,
    ParamSpec("max_frame_age_s", 0.5,
              "A frame older than this (node clock minus image stamp) when its labels are "
              "ready is not used for spraying: its spray_targets are published empty.",
              low=0.01, high=60.0),
    shared.MAX_FUTURE_S,
    shared.TARGET_FRAME,   # start-up only
    # --- spray targets (changeable at run time) -------------------------------------------------
    shared.SPRAY_CLASSES,
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
    shared.CAMERA_X_M,
    ParamSpec("camera_y_m", 0.0, "Camera optical centre along target_frame y [m].",
              low=-20.0, high=20.0),
    ParamSpec("camera_height_m", 0.8, "Camera optical centre above the ground [m].",
              low=0.05, high=20.0),
    ParamSpec("camera_pitch_deg", 0.0,
              "Camera tilt from straight down about target_frame y; positive tilts the optical "
              "axis forward (+x before the yaw; towards the top of the image) [deg]. The "
              "mount's rotation is the straight-down camera (image top forward, image right = "
              "-y) turned by camera_roll_deg about x, then camera_pitch_deg about y, then "
              "camera_yaw_deg about z, all axes of target_frame.",
              low=-80.0, high=80.0),
    ParamSpec("camera_roll_deg", 0.0,
              "Camera tilt from straight down about target_frame x (applied before the pitch); "
              "positive tilts the optical axis to the left (+y before the yaw; towards the "
              "image's left side; right-handed about x) [deg].",
              low=-80.0, high=80.0),
    ParamSpec("camera_yaw_deg", 0.0,
              "Camera turn about target_frame z (up), applied after roll and pitch; positive is "
              "counter-clockwise seen from above (right-handed about z): 90 puts the top of the "
              "image to the left (+y) and image right forward (+x) [deg].",
              low=-180.0, high=180.0),
    ParamSpec("use_tf", False,
              "Take the camera mount from TF instead of camera_y_m, camera_height_m and "
              "camera_roll/pitch/yaw_deg: the transform target_frame -> camera_frame (the "
              "optical centre and axes; target_frame must have the ground at z = 0). Needs "
              "tf2_ros (a system ROS 2 install, not the pip wheels): without it the node does "
              "not start and says so. The mount is static: looked up every 0.5 s until found "
              "(spray_targets stay empty until then), then re-checked every 5 s; a change is "
              "applied from the next frame and logged, a failed look-up keeps the last mount. "
              "camera_x_m still places the nozzle line (camera_x_m - nozzle_offset_m, as in "
              "spray_planner, which has no TF); diagnostics WARN when TF's camera x differs "
              "from camera_x_m by more than 1 cm. While true, changes of the five mount "
              "parameters are refused.", read_only=True),
    ParamSpec("camera_frame", "",
              "The camera's optical frame for use_tf (REP 103: z forward out of the lens, x "
              "right, y down; e.g. left_camera_color_optical_frame). Empty: the frame_id of "
              "the images and camera_info as they arrive.", read_only=True),
    ParamSpec("hfov_deg", 0.0,
              "Horizontal field of view used when no camera_info has arrived; 0: no fallback "
              "(targets then have no ground position and no lane).", low=0.0, high=170.0),
    shared.NOZZLE_COUNT,
    shared.NOZZLE_SPACING_M,
    shared.BOOM_CENTER_Y_M,
    shared.NOZZLE_OFFSET_M,
    shared.DEFAULT_SPEED_MPS,
    shared.ODOM_TIMEOUT_S,
    shared.MAX_SPEED_MPS,
)

BY_NAME: dict[str, ParamSpec] = by_name(PARAMETERS)


def validate(name: str, value: Any) -> str | None:
    """None when ``value`` is acceptable for parameter ``name``, else the reason it is not."""
    return validate_named(BY_NAME, name, value)


def check_all(values: dict[str, Any]) -> None:
    """Raise ConfigError naming every bad value, and every bad combination of the shared
    parameters (``default_speed_mps`` above ``max_speed_mps``), at start-up."""
    raise_problems(problems(BY_NAME, values) or shared.consistency_problems(values))
