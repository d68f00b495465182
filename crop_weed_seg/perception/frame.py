"""The frame processor: one camera frame and the camera state → labels, confidence and spray
target records, with per-stage timings. Core code: no ROS.

DESIGN.md §2: the node (:mod:`crop_weed_seg.ros.segmenter_node`), offline bag processing
(:mod:`crop_weed_seg.bags.processing`) and the simulator (:mod:`crop_weed_seg.sim`) all call
:class:`FrameProcessor`; none of them re-implements a step of it. They only convert their
messages into a :class:`Frame` (:func:`decode_message` for ``sensor_msgs`` Image and
CompressedImage objects, rclpy's or rosbags') and the results back into messages.

One frame:

1. layout: the frame as it comes (1, 3 or 4 channels, 8 or 16 bit, RGB/BGR/MONO order) is
   normalised by :func:`~crop_weed_seg.perception.image_conversion.normalize_layout`, the one
   layout function (the Segmenter applies it at the model's input size; :func:`overlay_bgr8`
   and frame export at the camera's);
2. segmentation (:class:`~crop_weed_seg.perception.segmenter.Segmenter`): labels at camera
   resolution, confidence when asked for, and both maps at the model's resolution;
3. spray targets (:class:`~crop_weed_seg.spray.pipeline.TargetPipeline`) from the
   model-resolution maps, placed with the camera state (CameraInfo or the field-of-view
   fallback, odometry speed, the image stamp). With a clock (the node), a clock that jumped back
   resets tracking (``time_jumps``), and a frame stamped more than ``max_future_s`` ahead of the
   clock (``future_frames``) or older than ``max_frame_age_s`` (``frames_too_old``) gives no
   targets; offline (bags, simulator) there is no clock and only the stamps count.

Camera state comes in between frames: :meth:`FrameProcessor.set_camera_info` and
:meth:`FrameProcessor.update_odometry` may be called from another thread than
:meth:`FrameProcessor.process` (the node's executor and its worker).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from crop_weed_seg.classes import PALETTE_RGB
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.perception.image_conversion import compressed_to_array, image_to_array, to_bgr8
from crop_weed_seg.perception.segmenter import SegmentationResult
from crop_weed_seg.perception.visualize import colorize, overlay
from crop_weed_seg.spray.pipeline import MAX_FUTURE_S, MAX_SPEED_MPS, SpraySettings, TargetPipeline
from crop_weed_seg.spray.records import empty_targets
from crop_weed_seg.stamps import header_stamp_ns, stamp_seconds

#: The palette in BGR order, for overlays published as ``bgr8``.
PALETTE_BGR = np.ascontiguousarray(PALETTE_RGB[:, ::-1])
#: Why a frame gave no targets although it was segmented (:attr:`FrameResult.refused`).
FUTURE = "future"
TOO_OLD = "too_old"
#: Counters whose rise makes the spray part of ``/diagnostics`` WARN (:func:`spray_health`).
SPRAY_PROBLEMS = ("bad_camera_info", "camera_info_mismatch", "bad_odometry", "frames_too_old",
                  "time_jumps", "future_frames")


class FrameSegmenter(Protocol):
    """What the processor needs of a segmenter
    (:class:`~crop_weed_seg.perception.segmenter.Segmenter`)."""

    def segment(self, frame: np.ndarray, channel_order: str = "RGB",
                want_confidence: bool = True) -> SegmentationResult: ...


@dataclass(frozen=True)
class FrameSettings:
    """What the per-frame chain depends on besides the frame: the spray settings and the time
    bounds (node parameters of the same names). Build once when the parameters change."""

    spray: SpraySettings = SpraySettings()
    #: frames older than this (against the clock) give no targets; only with a clock
    max_frame_age_s: float = float("inf")
    #: frames stamped further ahead of the clock give no targets; only with a clock
    max_future_s: float = MAX_FUTURE_S
    #: odometry faster than this is refused
    max_speed_mps: float = MAX_SPEED_MPS

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> "FrameSettings":
        """From parameter values (extra keys ignored; missing ones keep their defaults)."""
        kwargs = {name: float(values[name]) for name in ("max_frame_age_s", "max_future_s",
                                                         "max_speed_mps") if name in values}
        return cls(spray=SpraySettings.from_values(values), **kwargs)


@dataclass(frozen=True)
class Frame:
    """One camera frame: the array in its own layout (:func:`image_to_array`), its channel
    order (``RGB``, ``BGR``, ``MONO``), the image stamp [ns] and what decoding it took [ms]."""

    array: np.ndarray
    order: str
    stamp_ns: int
    decode_ms: float = 0.0

    @property
    def stamp_s(self) -> float:
        return stamp_seconds(self.stamp_ns)


def decode_message(msg: Any, compressed: bool, started: float | None = None) -> Frame:
    """A ``sensor_msgs`` Image (``compressed`` False) or CompressedImage as a :class:`Frame`
    stamped with its header; ``decode_ms`` counts from ``started`` (a ``time.perf_counter()``
    value, e.g. before deserialising) or from now. InvalidFrameError when it cannot be used."""
    t0 = time.perf_counter() if started is None else started
    array, order = compressed_to_array(msg) if compressed else image_to_array(msg)
    return Frame(array, order, header_stamp_ns(msg.header), (time.perf_counter() - t0) * 1e3)


@dataclass(frozen=True)
class FrameTimings:
    """Milliseconds per stage of one frame."""

    decode_ms: float
    preprocess_ms: float
    infer_ms: float
    postprocess_ms: float
    targets_ms: float

    @property
    def total_ms(self) -> float:
        return (self.decode_ms + self.preprocess_ms + self.infer_ms + self.postprocess_ms
                + self.targets_ms)


@dataclass(frozen=True)
class FrameResult:
    """What one frame gave. ``labels`` (H, W) uint8 at camera resolution; ``confidence``
    (H, W) float32 or None when not asked for; ``labels_model``/``confidence_model`` the maps
    at the model's resolution (targets come from these); ``targets``: records of
    :data:`~crop_weed_seg.spray.records.TARGET_DTYPE` (empty when none); ``refused``: None, or
    :data:`FUTURE` / :data:`TOO_OLD` when the frame could not be sprayed from, with ``problem``
    saying why; ``time_jump``: the reason when tracking and travel started afresh at this
    frame; ``geometry``: where the ground geometry came from (``none`` when there is none)."""

    frame: Frame
    labels: np.ndarray
    confidence: np.ndarray | None
    labels_model: np.ndarray
    confidence_model: np.ndarray | None
    coverage: dict[str, float]
    targets: np.ndarray
    timings: FrameTimings
    geometry: str
    refused: str | None = None
    problem: str = ""
    time_jump: str | None = None
    age_s: float | None = None

    @property
    def stamp_ns(self) -> int:
        return self.frame.stamp_ns


@dataclass
class _Counts:
    targets_published: int = 0
    frames_too_old: int = 0
    targets_last_frame: int = 0


class FrameProcessor:
    """Segmenter + target pipeline for one camera. Not for two frames at once (one worker);
    camera state may come from another thread. ``segmenter`` None: only
    :meth:`process_segmented` (labels known, as in the simulator's truth mode)."""

    def __init__(self, segmenter: FrameSegmenter | None,
                 settings: FrameSettings | None = None) -> None:
        self.segmenter = segmenter
        self.settings = settings if settings is not None else FrameSettings()
        self.pipeline = TargetPipeline()
        self._lock = threading.Lock()
        self._counts = _Counts()

    # ----------------------------------------------------------------------- camera state
    def configure(self, settings: FrameSettings) -> None:
        """New settings from the next frame on (tracks start afresh when the spray settings
        differ; track ids go on counting)."""
        self.settings = settings

    def set_camera_info(self, k: Any, d: Any, width: int, height: int, model: str) -> None:
        """Take a CameraInfo; a bad one is counted (``bad_camera_info``), the last good one kept,
        and InvalidFrameError says why."""
        with self._lock:
            self.pipeline.set_camera_info(k, d, int(width), int(height), str(model))

    def update_odometry(self, stamp_s: float, vx: float, vy: float = 0.0) -> bool:
        """Ground speed from odometry; False (counted in ``bad_odometry``, the reason in
        :attr:`odometry_problem`) when refused."""
        with self._lock:
            return self.pipeline.speed.update(stamp_s, float(vx), float(vy),
                                              float(self.settings.max_speed_mps))

    @property
    def odometry_problem(self) -> str:
        return self.pipeline.speed.last_problem

    @property
    def geometry_problem(self) -> str:
        return self.pipeline.last_problem

    # ---------------------------------------------------------------------------- frames
    def process(self, frame: Frame, *, want_confidence: bool = True,
                clock_ns: Callable[[], int] | None = None) -> FrameResult:
        """Segment ``frame`` and make its targets. ``clock_ns``: the node's clock [ns] (read
        after segmentation, so the frame's age includes it); None offline. Raises
        InvalidFrameError for a frame that cannot be used; nothing is counted then."""
        if self.segmenter is None:
            raise ConfigError("this frame processor has no segmenter: use process_segmented")
        seg = self.segmenter.segment(frame.array, frame.order, want_confidence=want_confidence)
        return self.process_segmented(frame, seg, clock_ns=clock_ns)

    def process_segmented(self, frame: Frame, seg: SegmentationResult, *,
                          clock_ns: Callable[[], int] | None = None) -> FrameResult:
        """The rest of :meth:`process` for a frame already segmented (or with known labels:
        the simulator's truth mode)."""
        t0 = time.perf_counter()
        settings = self.settings
        labels_model = seg.labels_model if seg.labels_model is not None else seg.labels
        conf_model = seg.confidence_model if seg.labels_model is not None else seg.confidence
        stamp_s = frame.stamp_s
        refused, problem, age_s = None, "", None
        with self._lock:
            jumps = self.pipeline.counters["time_jumps"]
            if clock_ns is not None:
                now_ns = int(clock_ns())
                age_s = (now_ns - frame.stamp_ns) / 1e9
                future = self.pipeline.check_clock(stamp_s, now_ns * 1e-9, settings.max_future_s)
                if future is not None:
                    refused, problem = FUTURE, future
                elif age_s > settings.max_frame_age_s:
                    refused = TOO_OLD
                    problem = (f"frame {age_s:.3f} s old (max_frame_age_s "
                               f"{settings.max_frame_age_s:g})")
                    self._counts.frames_too_old += 1
            if refused is None:
                records = self.pipeline.targets(labels_model, conf_model, stamp_s,
                                                settings.spray, seg.labels.shape)
            else:
                records = empty_targets(0)
            jumped = self.pipeline.counters["time_jumps"] > jumps
            time_jump = self.pipeline.last_time_problem if jumped else None
            geometry = self.pipeline.geometry_source
            if refused is None and geometry == "none":
                problem = self.pipeline.last_problem
            self._counts.targets_published += len(records)
            self._counts.targets_last_frame = len(records)
        t1 = time.perf_counter()
        tm = seg.timings
        timings = FrameTimings(frame.decode_ms, tm.preprocess_ms, tm.infer_ms, tm.postprocess_ms,
                               (t1 - t0) * 1e3)
        return FrameResult(frame, seg.labels, seg.confidence, labels_model, conf_model,
                           seg.coverage, records, timings, geometry, refused, problem, time_jump,
                           age_s)

    # ------------------------------------------------------------------------ diagnostics
    def snapshot(self) -> dict[str, Any]:
        """Counters and state for ``/diagnostics`` (the node's key names)."""
        with self._lock:
            pipeline, speed = self.pipeline, self.pipeline.speed
            snap: dict[str, Any] = {
                "targets_published": self._counts.targets_published,
                "frames_too_old": self._counts.frames_too_old,
                "targets_last_frame": self._counts.targets_last_frame}
            snap.update(pipeline.counters)
            snap.update(bad_odometry=speed.bad, speed_mps=speed.speed,
                        geometry=pipeline.geometry_source,
                        last_odometry_problem=speed.last_problem,
                        last_camera_info_problem=pipeline.last_camera_info_problem,
                        last_time_problem=pipeline.last_time_problem)
        return snap


# ---------------------------------------------------------------------------- outputs
def confidence_mono8(confidence: np.ndarray) -> np.ndarray:
    """Confidence in [0, 1] as mono8 (× 255, rounded)."""
    return (confidence * 255.0 + 0.5).astype(np.uint8)


def palette_rgb8(palette: Any) -> np.ndarray:
    """A model card's ``palette`` (one RGB triple per class id, as
    :attr:`~crop_weed_seg.model.contract.ModelContract.palette` has it) as (N, 3) uint8.
    ConfigError when it is not triples of 0..255."""
    arr = np.asarray(palette)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] > 256 or \
            arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() > 255)):
        raise ConfigError(f"palette must be up to 256 RGB triples of integers 0..255, got "
                          f"{np.asarray(palette).tolist()!r}")
    return arr.astype(np.uint8)


def labels_color_rgb8(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """The label image coloured with ``palette`` ((N, 3) uint8, :func:`palette_rgb8`) as RGB
    uint8 (H, W, 3) for an ``rgb8`` image; ids without a colour (255 "ignore") are black."""
    return colorize(labels, palette)


def overlay_bgr8(frame: np.ndarray, order: str, labels: np.ndarray,
                 alpha: float = 0.45) -> np.ndarray:
    """The palette blended over the frame (any layout), as BGR uint8 for a ``bgr8`` image."""
    return overlay(to_bgr8(frame, order), labels, float(alpha), palette=PALETTE_BGR)


@dataclass
class SprayHealth:
    """The spray part of the node's health: WARN when a spray input problem counter rose since
    the last report, or while frames come out without ground geometry."""

    reported: dict[str, int] = field(default_factory=dict)

    def check(self, snap: dict[str, Any], geometry_problem: str) -> str | None:
        """A WARN message for ``snap`` (:meth:`FrameProcessor.snapshot` plus ``frames_out``),
        or None when the spray inputs are fine. Remembers the counters for the next call."""
        problems = {k: snap[k] for k in SPRAY_PROBLEMS}
        rose = [k for k, v in problems.items() if v > self.reported.get(k, 0)]
        self.reported = problems
        if not (rose or (snap["geometry"] == "none" and snap["frames_out"])):
            return None
        reasons = {"bad_camera_info": snap["last_camera_info_problem"],
                   "bad_odometry": snap["last_odometry_problem"],
                   "time_jumps": snap["last_time_problem"],
                   "future_frames": snap["last_time_problem"]}
        told = set()
        parts = []
        for k in rose:
            why = reasons.get(k, "")
            parts.append(f"{k} ({why})" if why and why not in told else k)
            told.add(why)
        return (("spray input problems: " + ", ".join(parts) + "; " if rose else "")
                + f"geometry: {snap['geometry']} ({geometry_problem or 'no camera_info'})")
