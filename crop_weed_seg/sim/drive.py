"""The robot's drive over a simulated field: odometry, the drive plan and its rendered frames.

Robot. Drives straight along y = 0 at a constant speed; the origin of ``base_link`` is at field
x = ``start_x + travel(t)``; ``base_link`` and field axes are parallel, so a point (dx, dy) in
``base_link`` is the field point (start_x + travel + dx, dy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.sim.camera import SimCamera
from crop_weed_seg.sim.world import SimField
from crop_weed_seg.spray.geometry import Boom


@dataclass(frozen=True)
class Odometry:
    """Constant true speed; the reported speed may carry relative noise (``speed_noise`` std)."""

    speed_mps: float
    speed_noise: float = 0.0
    seed: int = 0

    def travel(self, t: float | np.ndarray) -> np.ndarray | float:
        return self.speed_mps * np.asarray(t, np.float64) if np.ndim(t) else self.speed_mps * t

    def reported_speed(self, t: float) -> float:
        if self.speed_noise <= 0:
            return self.speed_mps
        rng = np.random.default_rng([int(self.seed), int(round(t * 1e6))])
        return float(self.speed_mps * (1.0 + rng.normal(0.0, self.speed_noise)))


@dataclass(frozen=True)
class Drive:
    """A drive over a field: base_link at field x = start_x + speed·t for t in [0, duration]."""

    start_x: float
    duration_s: float
    speed_mps: float
    frame_rate_hz: float
    scored_span: tuple[float, float]  #: field x range whose plants are scored

    @property
    def frame_count(self) -> int:
        return int(math.floor(self.duration_s * self.frame_rate_hz + 1e-9)) + 1

    def frame_time(self, k: int) -> float:
        return k / self.frame_rate_hz

    @property
    def end_x(self) -> float:
        """base_link's field x at the end of the drive."""
        return self.start_x + self.duration_s * self.speed_mps


#: How far inside the field ends a drive keeps the image [m] (plan_drive's default).
DRIVE_MARGIN_M = 0.02


def plan_drive(fld: SimField, camera: SimCamera, boom: Boom, speed_mps: float,
               frame_rate_hz: float, margin_m: float = DRIVE_MARGIN_M) -> Drive:
    """The longest drive over ``fld`` that keeps the image on the field: starts with the image's
    rear edge at x = margin and ends with its front edge at length − margin. Scored span: from
    the image's front edge at the start (every scored plant enters the view from the top) to the
    nozzle line at the end."""
    if not (speed_mps > 0 and frame_rate_hz > 0):
        raise ConfigError("speed and frame rate must be positive")
    dx_min, dx_max = camera.footprint_x()
    start = margin_m - dx_min
    end = fld.length_m - margin_m - dx_max
    if end <= start:
        raise ConfigError(f"field of {fld.length_m:.2f} m is shorter than the camera footprint")
    span = (start + dx_max, end + boom.nozzle_x)
    return Drive(start, (end - start) / speed_mps, speed_mps, frame_rate_hz, span)


@dataclass
class SimFrame:
    index: int
    stamp_s: float
    travel_m: float
    rgb: np.ndarray
    labels: np.ndarray


def frame_rng(seed: int, index: int) -> np.random.Generator:
    """Frame ``index``'s random stream (exposure gain, sensor noise): a frame rendered at the
    same place and speed with it is the same frame, whoever renders it (field_sim too)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 0xF4A3E, int(index)]))


def drive_frames(fld: SimField, camera: SimCamera, drive: Drive, seed: int = 0
                 ) -> Iterator[SimFrame]:
    """Rendered frames of ``drive`` (deterministic for the seed)."""
    for k in range(drive.frame_count):
        t = drive.frame_time(k)
        travel = drive.speed_mps * t
        rgb, lab = camera.render(fld, drive.start_x + travel, drive.speed_mps, frame_rng(seed, k))
        yield SimFrame(k, t, travel, rgb, lab)
