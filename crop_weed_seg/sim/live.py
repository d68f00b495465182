"""What the ``field_sim`` node publishes, as a function of sim time (ROS-free).

:class:`LiveDrive` steps a scenario's robot over its generated field in simulated time and yields,
in time order, what a robot's drivers would publish: clock ticks (``/clock``), odometry samples
(``/odom`` and ``odom -> base_link`` on ``/tf``) and camera frames (``image``, ``camera_info``,
``labels_truth``). The node only turns these into messages and paces them with the wall clock.

Time. Sim time starts at 0. Clock ticks come at ``j / clock_rate_hz``, odometry at
``i / odom_rate_hz``, frame ``k`` at ``T0 + k / frame_rate_hz`` with ``T0 = start_delay_s``.
Events at the same time come clock first, then odometry, then the frame (a consumer has the
clock and the speed when the image arrives). Stamps are integer nanoseconds of sim time.

Drive modes.

``scripted``  The scenario's drive (``Scenario.plan``: what ``crop-weed-seg simulate`` drives):
              the robot moves at the scenario's constant speed all along, base_link at field
              x = ``start_x + speed · (t − T0)`` (already at speed when the first frame is taken,
              as in ``simulate``; before ``T0`` it approaches the start, after the drive end it
              drives on). Frames are exactly ``drive_frames(fld, camera, drive, seed)``: the same
              count, rgb and labels, frame ``k`` stamped ``T0 + k / frame_rate_hz``.
``cmd_vel``   The robot stands at the drive's start x until commanded (:meth:`LiveDrive.command`:
              speed along the row, from the current sim time on) and integrates its position
              from the last commanded speed. Frames come at the frame rate whatever the speed
              (a standing robot still sees), rendered with ``SimCamera.render`` at the current
              base x with the current speed (motion blur) and frame ``k``'s random stream of
              ``drive_frames``; they stop once base x reaches the drive's end.

In both modes the drive ends when base_link reaches the end of the scenario's drive
(``start_x + duration · speed``), and the run is done ``tail_s`` sim seconds later
(:attr:`LiveDrive.done`); clock and odometry go on as long as the caller keeps stepping.

Also here: the camera's ``CameraInfo`` numbers (:func:`camera_info_numbers`) and the
``base_link -> camera_optical_frame`` transform of the mount (:func:`mount_transform`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.sim.camera import SimCamera
from crop_weed_seg.sim.drive import Drive, SimFrame, drive_frames, frame_rng
from crop_weed_seg.sim.scenario import CameraSpec, Scenario, load_field
from crop_weed_seg.sim.world import SimField
from crop_weed_seg.spray.geometry import DISTORTION_MODELS, CameraMount
from crop_weed_seg.spray.mount_tf import transform_from_mount

DRIVE_MODES = ("scripted", "cmd_vel")
#: Frame ids of the topics (docs/DESIGN.md §4; the Gazebo bridge uses the same).
ODOM_FRAME = "odom"
BASE_FRAME = "base_link"
CAMERA_FRAME = "camera_optical_frame"
#: Two event times closer than this [s] are the same instant (frame at the drive end).
_EPS_S = 1e-9


@dataclass(frozen=True)
class LiveSettings:
    """How the simulator runs (the node's parameters, besides the field file)."""

    drive_mode: str = "scripted"
    real_time_factor: float = 1.0
    clock_rate_hz: float = 100.0
    odom_rate_hz: float = 50.0
    start_delay_s: float = 1.0
    tail_s: float = 1.0

    def validate(self) -> "LiveSettings":
        """ConfigError naming the setting that cannot be used."""
        if self.drive_mode not in DRIVE_MODES:
            raise ConfigError(f"drive_mode {self.drive_mode!r} is not one of "
                              f"{', '.join(DRIVE_MODES)}")
        if not (math.isfinite(self.real_time_factor) and self.real_time_factor > 0):
            raise ConfigError(f"real_time_factor {self.real_time_factor} must be positive (sim "
                              "seconds per wall second): at 0 sim time never advances")
        for name in ("clock_rate_hz", "odom_rate_hz"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} {value} must be positive")
        for name in ("start_delay_s", "tail_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} {value} must not be negative")
        return self


# -- events ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClockTick:
    """``/clock`` at this sim time."""

    stamp_ns: int


@dataclass(frozen=True)
class OdomSample:
    """``/odom`` (and ``odom -> base_link`` on ``/tf``): base_link at field x, ground speed."""

    stamp_ns: int
    x: float
    speed_mps: float


@dataclass(frozen=True)
class LiveFrame:
    """One camera frame: ``image`` (rgb), ``labels_truth`` (class id per pixel) and
    ``camera_info``, all stamped ``stamp_ns``, taken with base_link at field x ``base_x``."""

    index: int
    stamp_ns: int
    base_x: float
    speed_mps: float
    rgb: np.ndarray
    labels: np.ndarray


Event = Union[ClockTick, OdomSample, LiveFrame]


def stamp_ns(t_s: float) -> int:
    """Sim time [s] as integer nanoseconds."""
    return int(round(t_s * 1e9))


# -- the drive ---------------------------------------------------------------------------------
class LiveDrive:
    """The stepper (module docstring). Raises ConfigError for a scenario or settings that cannot
    be driven (zero speed, a camera that does not see the ground, a field shorter than the
    camera footprint, bad rates)."""

    def __init__(self, scenario: Scenario, fld: SimField, settings: LiveSettings | None = None
                 ) -> None:
        settings = (settings or LiveSettings()).validate()
        self.scenario = scenario.validate()
        self.settings = settings
        self.field = fld
        self.camera: SimCamera = scenario.build_camera()
        self.drive: Drive = scenario.plan(fld)
        self.t0_s = float(settings.start_delay_s)
        self.start_x = self.drive.start_x
        self.end_x = self.drive.end_x
        self.scripted = settings.drive_mode == "scripted"
        self._now_s = 0.0
        self._next_clock = 0
        self._next_odom = 0
        self._next_frame = 0
        # motion: x(t) = anchor_x + speed · (t − anchor_t)
        if self.scripted:
            self._speed = self.drive.speed_mps
            self._anchor_t, self._anchor_x = self.t0_s, self.start_x
            self._end_s: float | None = self.t0_s + self.drive.duration_s
            self._frames: Iterator[SimFrame] | None = drive_frames(
                fld, self.camera, self.drive, scenario.seed)
        else:
            self._speed = 0.0
            self._anchor_t, self._anchor_x = 0.0, self.start_x
            self._end_s = None
            self._frames = None

    # ---------------------------------------------------------------------------- state
    @property
    def now_s(self) -> float:
        """Sim time up to which events have been emitted."""
        return self._now_s

    @property
    def speed_mps(self) -> float:
        return self._speed

    def position(self, t_s: float | None = None) -> float:
        """Field x of base_link at sim time ``t_s`` (default: now), with the current speed."""
        t = self._now_s if t_s is None else t_s
        return self._anchor_x + self._speed * (t - self._anchor_t)

    @property
    def drive_end_s(self) -> float | None:
        """Sim time at which base_link reached the drive's end (None: not yet, in cmd_vel mode
        with the robot not there)."""
        return self._end_s

    @property
    def done_s(self) -> float | None:
        """Sim time at which the run is done (drive end + tail), once known."""
        return None if self._end_s is None else self._end_s + self.settings.tail_s

    @property
    def done(self) -> bool:
        done_s = self.done_s
        return done_s is not None and self._now_s >= done_s - _EPS_S

    @property
    def frame_count(self) -> int | None:
        """Frames of the whole drive: known in scripted mode (``drive_frames``' count)."""
        return self.drive.frame_count if self.scripted else None

    # --------------------------------------------------------------------------- commands
    def command(self, speed_mps: float) -> None:
        """cmd_vel mode: drive at ``speed_mps`` (along the row; negative reverses) from the
        current sim time on. ConfigError in scripted mode or for a non-finite speed."""
        if self.scripted:
            raise ConfigError("cmd_vel commands need drive_mode cmd_vel; this drive is scripted "
                              f"(constant {self.drive.speed_mps:g} m/s)")
        speed = float(speed_mps)
        if not math.isfinite(speed):
            raise ConfigError(f"commanded speed {speed_mps!r} is not a finite number")
        self._anchor_x = self.position()
        self._anchor_t = self._now_s
        self._speed = speed

    # ------------------------------------------------------------------------------ steps
    def _reach_end_s(self) -> float | None:
        """cmd_vel: when the current motion brings base_link to the drive's end."""
        if self._end_s is not None:
            return self._end_s
        x = self.position(self._anchor_t)
        if x >= self.end_x:
            return self._anchor_t
        if self._speed <= 0:
            return None
        return self._anchor_t + (self.end_x - x) / self._speed

    def _frame_time(self, k: int) -> float:
        return self.t0_s + k / self.scenario.frame_rate_hz

    def _frames_left(self, t_frame: float) -> bool:
        if self.scripted:
            return self._next_frame < self.drive.frame_count
        reach = self._reach_end_s()
        return reach is None or t_frame <= reach + _EPS_S

    def advance(self, until_s: float) -> Iterator[Event]:
        """Every event with sim time in (now, until_s] (the first call: [0, until_s]), in time
        order; the state follows each event as it is yielded. Consume the iterator before the
        next :meth:`command` or :meth:`advance`."""
        if not math.isfinite(until_s):
            raise ConfigError(f"sim time {until_s!r} is not finite")
        clock_rate = self.settings.clock_rate_hz
        odom_rate = self.settings.odom_rate_hz
        while True:
            t_clock = self._next_clock / clock_rate
            t_odom = self._next_odom / odom_rate
            t_frame = self._frame_time(self._next_frame)
            frame_due = self._frames_left(t_frame)
            t = min(t_clock, t_odom, t_frame if frame_due else math.inf)
            if t > until_s:
                break
            self._step_to(t)
            if t == t_clock:
                self._next_clock += 1
                yield ClockTick(stamp_ns(t))
            elif t == t_odom:
                self._next_odom += 1
                yield OdomSample(stamp_ns(t), self.position(t), self._speed)
            else:
                yield self._render(t)
        self._step_to(max(until_s, self._now_s))

    def _step_to(self, t: float) -> None:
        if not self.scripted and self._end_s is None:
            reach = self._reach_end_s()
            if reach is not None and reach <= t + _EPS_S:
                self._end_s = reach
        self._now_s = max(self._now_s, t)

    def _render(self, t: float) -> LiveFrame:
        k = self._next_frame
        self._next_frame += 1
        if self._frames is not None:
            fr = next(self._frames)
            return LiveFrame(fr.index, stamp_ns(self.t0_s + fr.stamp_s),
                             self.drive.start_x + fr.travel_m, self.drive.speed_mps, fr.rgb,
                             fr.labels)
        x = self.position(t)
        rgb, labels = self.camera.render(self.field, x, self._speed, frame_rng(
            self.scenario.seed, k))
        return LiveFrame(k, stamp_ns(t), x, self._speed, rgb, labels)


# -- camera_info and the mount transform ------------------------------------------------------
@dataclass(frozen=True)
class CameraInfoNumbers:
    """What ``sensor_msgs/CameraInfo`` carries for the simulated camera (row-major K, R, P)."""

    width: int
    height: int
    distortion_model: str
    d: tuple[float, ...]
    k: tuple[float, ...]
    r: tuple[float, ...]
    p: tuple[float, ...]


def camera_info_numbers(camera: SimCamera) -> CameraInfoNumbers:
    """K, D, R, P and size of ``camera`` (D: the model's zeros when it has no distortion, so a
    consumer sees plumb_bob with 5 coefficients)."""
    i = camera.intrinsics
    n = DISTORTION_MODELS.get(i.model, 5)
    d = tuple(float(v) for v in i.distortion) or (0.0,) * n
    return CameraInfoNumbers(
        width=int(i.width), height=int(i.height), distortion_model=i.model, d=d,
        k=(i.fx, 0.0, i.cx, 0.0, i.fy, i.cy, 0.0, 0.0, 1.0),
        r=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        p=(i.fx, 0.0, i.cx, 0.0, 0.0, i.fy, i.cy, 0.0, 0.0, 0.0, 1.0, 0.0))


@dataclass(frozen=True)
class MountTransform:
    """The static transform ``parent -> child``: the child's origin in the parent [m] and its
    orientation as a unit quaternion (x, y, z, w) whose matrix has the child's axes as columns."""

    parent: str
    child: str
    translation: tuple[float, float, float]
    rotation_xyzw: tuple[float, float, float, float]


def mount_transform(camera: CameraSpec | CameraMount) -> MountTransform:
    """``base_link -> camera_optical_frame`` of a camera mount: translation (x, y, height),
    rotation of ``CameraMount.rotation()`` (its columns are the optical axes in base_link)."""
    rigid = transform_from_mount(camera if isinstance(camera, CameraMount) else camera.mount())
    return MountTransform(BASE_FRAME, CAMERA_FRAME, rigid.translation, rigid.rotation)


# -- the field -------------------------------------------------------------------------------
def open_field(path: str | Path | None) -> tuple[Scenario, SimField]:
    """The scenario and generated field of a field file; an empty path: the default
    ``Scenario()``. A ConfigError always names the file."""
    if path is None or not str(path).strip():
        scenario = Scenario().validate()
        return scenario, scenario.build_field()
    try:
        return load_field(Path(path))
    except ConfigError as exc:
        if str(path) in str(exc):
            raise
        raise ConfigError(f"field file {path}: {exc}") from None
