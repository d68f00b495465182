"""Per-frame spray targets as the segmenter node makes them, without ROS: which camera model
holds for this frame (CameraInfo, a field-of-view fallback, or none), how fast the robot drives,
and the extractor and tracker that turn labels into target records.

Every doubtful input falls back to *no geometry*: targets then keep their pixel fields but have
no ground position and lane −1, so nothing downstream can spray outside the known geometry.
Each fallback is counted (:attr:`TargetPipeline.counters`) for ``/diagnostics``.

Time. Tracking places each target on the ground with the distance driven up to its image's
stamp. When the stamps jump back by more than :data:`TIME_JUMP_BACK_S` (a bag that loops, a
simulator reset), or the node's clock does (:meth:`TargetPipeline.check_clock`), or a frame is
stamped more than ``max_future_s`` ahead of the clock, tracking and travel start afresh
(``time_jumps``, ``future_frames``); a frame from the future gives no targets. Without this, the
travel froze at the newest stamp and track ids stuck to image positions instead of weeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from crop_weed_seg.errors import InvalidFrameError
from crop_weed_seg.spray.geometry import Boom, CameraIntrinsics, CameraMount, GroundProjector
from crop_weed_seg.spray.records import empty_targets
from crop_weed_seg.spray.targets import TargetConfig, TargetExtractor
from crop_weed_seg.spray.tracking import TargetTracker

#: Stamps or a clock going back by more than this [s] is a time jump: tracking starts afresh.
#: Smaller steps back (frames out of order) are placed by extrapolating the travel.
TIME_JUMP_BACK_S = 1.0
#: Default bound of a plausible ground speed [m/s] (parameter ``max_speed_mps``).
MAX_SPEED_MPS = 10.0
#: Default of how far a frame may be stamped ahead of the node clock [s] (``max_future_s``).
MAX_FUTURE_S = 0.2


@dataclass(frozen=True)
class SpraySettings:
    """The node parameters the targets depend on (names and defaults as in
    :mod:`crop_weed_seg.parameters.segmenter`)."""

    spray_classes: tuple[int, ...] = (2,)
    protect_classes: tuple[int, ...] = (1,)
    min_confidence: float = 0.5
    min_area_m2: float = 4e-5
    min_area_px: int = 30
    crop_buffer_m: float = 0.005
    crop_protection: str = "trim"
    camera_x_m: float = 0.0
    camera_y_m: float = 0.0
    camera_height_m: float = 0.8
    camera_pitch_deg: float = 0.0
    camera_roll_deg: float = 0.0
    camera_yaw_deg: float = 0.0
    hfov_deg: float = 0.0
    nozzle_count: int = 12
    nozzle_spacing_m: float = 0.05
    boom_center_y_m: float = 0.0
    nozzle_offset_m: float = 0.5
    default_speed_mps: float = -1.0
    odom_timeout_s: float = 1.0
    track_gate_m: float = 0.03

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> "SpraySettings":
        """From parameter values (extra keys are ignored; lists become tuples)."""
        kwargs: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name in values:
                value = values[name]
                kwargs[name] = tuple(int(v) for v in value) if isinstance(value, (list, tuple)) \
                    else value
        return cls(**kwargs)

    def target_config(self) -> TargetConfig:
        return TargetConfig(spray_classes=self.spray_classes,
                            protect_classes=self.protect_classes,
                            min_confidence=self.min_confidence, min_area_m2=self.min_area_m2,
                            min_area_px=self.min_area_px, crop_buffer_m=self.crop_buffer_m,
                            crop_protection=self.crop_protection)

    def mount(self) -> CameraMount:
        return CameraMount(self.camera_x_m, self.camera_y_m, self.camera_height_m,
                           self.camera_pitch_deg, self.camera_roll_deg, self.camera_yaw_deg)

    def boom(self) -> Boom:
        return Boom(self.nozzle_count, self.nozzle_spacing_m, self.boom_center_y_m,
                    self.camera_x_m - self.nozzle_offset_m)


class SpeedEstimate:
    """Ground speed from odometry, with its age; NaN, infinite, negative (reversing) and
    implausible speeds (above ``max_speed_mps``) are rejected and counted with the reason
    (:attr:`last_problem`), and then the speed is unknown until a good message comes."""

    def __init__(self) -> None:
        self.speed: float | None = None
        self.stamp_s: float | None = None
        self.bad = 0
        self.last_problem = ""

    def update(self, stamp_s: float, vx: float, vy: float = 0.0,
               max_speed_mps: float = MAX_SPEED_MPS) -> bool:
        if not (math.isfinite(vx) and math.isfinite(vy) and math.isfinite(stamp_s)):
            return self._reject(f"odometry is not finite (speed {vx}, {vy}; stamp {stamp_s})")
        if vx < 0:
            return self._reject(f"odometry says the robot reverses ({vx:.3f} m/s)")
        speed = math.hypot(vx, vy)
        if speed > max_speed_mps:
            return self._reject(f"odometry speed {speed:.4g} m/s is above max_speed_mps "
                                f"{max_speed_mps:g}: implausible")
        self.speed = speed
        self.stamp_s = stamp_s
        return True

    def _reject(self, reason: str) -> bool:
        self.bad += 1
        self.last_problem = reason
        self.speed = None
        return False

    def at(self, stamp_s: float, timeout_s: float, default: float) -> tuple[float | None, str]:
        """(speed or None, source) for an image stamped ``stamp_s``: odometry when it is at
        most ``timeout_s`` apart from the image (``timeout_s`` <= 0: however far), else
        ``default`` when > 0, else None (parameters ``odom_timeout_s``, ``default_speed_mps``:
        the same meaning in the spray planner)."""
        if self.speed is not None and self.stamp_s is not None \
                and (timeout_s <= 0 or abs(stamp_s - self.stamp_s) <= timeout_s):
            return self.speed, "odom"
        if default > 0:
            return default, "default_speed_mps"
        return None, "unknown"


class TargetPipeline:
    """CameraInfo + settings + speed → target records for one frame at a time."""

    def __init__(self) -> None:
        self.camera_info: CameraIntrinsics | None = None
        self.speed = SpeedEstimate()
        self.counters = {"bad_camera_info": 0, "camera_info_mismatch": 0,
                         "frames_without_geometry": 0, "time_jumps": 0, "future_frames": 0}
        self.last_problem = ""
        self.last_camera_info_problem = ""
        self.last_time_problem = ""
        self._newest_now: float | None = None
        self.geometry_source = "none"
        self._key: tuple | None = None
        self._extractor: TargetExtractor | None = None
        self._tracker: TargetTracker | None = None
        self._travel = 0.0
        self._travel_stamp: float | None = None

    def set_camera_info(self, k: Any, d: Any, width: int, height: int, model: str) -> None:
        """Take a CameraInfo; a bad one is counted and the previous one is kept."""
        try:
            self.camera_info = CameraIntrinsics.from_camera_info(list(k), list(d), width,
                                                                 height, model)
        except InvalidFrameError as exc:
            self.counters["bad_camera_info"] += 1
            self.last_problem = self.last_camera_info_problem = str(exc)
            raise

    # ------------------------------------------------------------------------------- time
    def reset_motion(self) -> None:
        """Forget tracks and travel (time jumped). Track ids keep counting up, so a consumer
        never joins a new weed with an old one under the same id."""
        if self._tracker is not None:
            self._tracker.clear()
        self._travel = 0.0
        self._travel_stamp = None
        self._newest_now = None

    def _time_jump(self, reason: str) -> None:
        self.counters["time_jumps"] += 1
        self.last_time_problem = reason
        self.reset_motion()

    def check_clock(self, stamp_s: float, now_s: float, max_future_s: float = MAX_FUTURE_S
                    ) -> str | None:
        """Before a frame's targets: the node clock against the newest clock seen (a jump back
        resets tracking) and the frame's stamp against the clock. Returns None when the frame
        may be used, else why not (a frame stamped more than ``max_future_s`` ahead: counted in
        ``future_frames``, tracking reset, no targets)."""
        if self._newest_now is not None and now_s < self._newest_now - TIME_JUMP_BACK_S:
            self._time_jump(f"the node clock jumped back {self._newest_now - now_s:.3f} s")
        self._newest_now = now_s if self._newest_now is None else max(self._newest_now, now_s)
        if stamp_s > now_s + max_future_s:
            self.counters["future_frames"] += 1
            self.last_time_problem = (f"frame stamped {stamp_s - now_s:.3f} s ahead of the node "
                                      f"clock (max_future_s {max_future_s:g})")
            newest_now = self._newest_now
            self.reset_motion()
            self._newest_now = newest_now
            return self.last_time_problem
        return None

    def _intrinsics(self, h: int, w: int, settings: SpraySettings) -> CameraIntrinsics | None:
        cam = self.camera_info
        if cam is not None:
            if (cam.width, cam.height) == (w, h):
                self.geometry_source = "camera_info"
                return cam
            if abs(cam.width / cam.height - w / h) < 1e-3:       # binned or resized image
                self.geometry_source = "camera_info (scaled)"
                return cam.scaled_to(w, h)
            self.counters["camera_info_mismatch"] += 1
            self.last_problem = (f"label image {w}x{h} does not match camera_info "
                                 f"{cam.width}x{cam.height}; no ground geometry")
            self.geometry_source = "none"
            return None
        if settings.hfov_deg > 0:
            self.geometry_source = "hfov_deg"
            return CameraIntrinsics.from_fov(w, h, settings.hfov_deg)
        self.geometry_source = "none"
        return None

    def _advance(self, stamp_s: float, speed: float | None) -> float:
        """Distance driven up to ``stamp_s`` (integrated from the speeds of the frames). A stamp
        older than the newest (a frame out of order) is placed by extrapolating back; one older
        by more than :data:`TIME_JUMP_BACK_S` is a time jump: tracking starts afresh."""
        if self._travel_stamp is not None and stamp_s < self._travel_stamp - TIME_JUMP_BACK_S:
            self._time_jump(f"image stamps jumped back {self._travel_stamp - stamp_s:.3f} s")
        if self._travel_stamp is not None and stamp_s < self._travel_stamp:
            back = speed * (self._travel_stamp - stamp_s) if speed is not None else 0.0
            return self._travel - back
        if self._travel_stamp is not None and speed is not None:
            self._travel += speed * min(stamp_s - self._travel_stamp, 1.0)
        self._travel_stamp = stamp_s
        return self._travel

    def targets(self, labels: np.ndarray, confidence: np.ndarray | None, stamp_s: float,
                settings: SpraySettings, frame_size: tuple[int, int] | None = None
                ) -> np.ndarray:
        """Targets of one frame. ``labels``/``confidence`` may be at a lower resolution than
        the camera image (the model's: the camera-resolution labels are only their upsampling,
        and blobs, buffers and ground maps cost a fraction there); ``frame_size`` (H, W) is then
        the camera image's size: the camera model is scaled to the maps, and the pixel fields
        and pixel-area threshold of the targets are given in camera pixels."""
        h, w = labels.shape
        fh, fw = frame_size or (h, w)
        speed, _ = self.speed.at(stamp_s, settings.odom_timeout_s, settings.default_speed_mps)
        intr = self._intrinsics(fh, fw, settings)
        if intr is not None and (fh, fw) != (h, w):
            intr = intr.scaled_to(w, h)
        key = (settings, intr)
        if key != self._key:
            projector = GroundProjector(intr, settings.mount()) if intr is not None else None
            boom = settings.boom() if intr is not None else None
            self._extractor = TargetExtractor(projector, boom, settings.target_config())
            if self._tracker is None or self._key is None or self._key[0] != settings:
                # new settings: new tracks, but ids go on counting (never reused for a new weed)
                first = self._tracker.next_id if self._tracker is not None else 1
                self._tracker = TargetTracker(gate_m=settings.track_gate_m, first_id=first)
            self._key = key
        assert self._extractor is not None and self._tracker is not None
        if intr is None:
            self.counters["frames_without_geometry"] += 1
        records = self._extractor.extract(labels, confidence, speed,
                                          pixel_scale=(fh / h, fw / w))
        if intr is None or len(records) == 0:
            self._advance(stamp_s, speed)
            return records if len(records) else empty_targets(0)
        return self._tracker.update(records, self._advance(stamp_s, speed))
