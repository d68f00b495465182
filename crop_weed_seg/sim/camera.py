"""What the simulated camera sees of a :class:`~crop_weed_seg.sim.world.SimField`.

Camera (:class:`SimCamera`). A :class:`~crop_weed_seg.spray.geometry.GroundProjector`: every image
pixel's ground point relative to the robot is computed once; a frame is a ``cv2.remap`` of the
orthomosaic at those points shifted by the travel (bilinear for colour, nearest for labels).
Motion blur is exact for any pitch: the mosaic window is averaged along x over the distance driven
during the exposure before it is sampled. Each frame draws an exposure gain and sensor noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.sim.world import SimField
from crop_weed_seg.spray.geometry import CameraIntrinsics, CameraMount, GroundProjector


@dataclass
class SimCamera:
    """A camera on the robot: projector (intrinsics + mount), exposure time [s] (motion blur),
    per-frame exposure gain jitter (std of a factor around 1) and sensor noise (std in [0, 1]).
    """

    projector: GroundProjector
    exposure_s: float = 0.002
    gain_jitter: float = 0.05
    read_noise: float = 0.01
    shot_noise: float = 0.0005
    _ground: np.ndarray | None = field(default=None, init=False, repr=False)

    @classmethod
    def default(cls, width: int = 640, height: int = 480, hfov_deg: float = 60.0,
                camera_height_m: float = 0.8, pitch_deg: float = 0.0, **kw: Any) -> "SimCamera":
        return cls(GroundProjector(CameraIntrinsics.from_fov(width, height, hfov_deg),
                                   CameraMount(0.0, 0.0, camera_height_m, pitch_deg)), **kw)

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self.projector.intrinsics

    def ground_offsets(self) -> np.ndarray:
        """(H, W, 2) ground point (dx, dy) in base_link of every pixel centre; NaN above the
        horizon. Computed once."""
        if self._ground is None:
            i = self.intrinsics
            u, v = np.meshgrid(np.arange(i.width, dtype=np.float64),
                               np.arange(i.height, dtype=np.float64))
            pts = self.projector.pixels_to_ground(np.column_stack((u.ravel(), v.ravel())))
            self._ground = pts.reshape(i.height, i.width, 2)
        return self._ground

    def footprint_x(self) -> tuple[float, float]:
        """Along-track extent (min dx, max dx) of the image on the ground [m]."""
        dx = self.ground_offsets()[:, :, 0]
        if not np.isfinite(dx).all():
            raise ConfigError("part of the image looks above the horizon; lower the pitch")
        return float(dx.min()), float(dx.max())

    def render(self, fld: SimField, base_x: float, speed_mps: float = 0.0,
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The frame (rgb uint8, truth labels uint8) with the robot's base_link at field x =
        ``base_x``. Pixels outside the field are black / label 0."""
        gnd = self.ground_offsets()
        map_r = fld.row_of_x(base_x + gnd[:, :, 0])
        map_c = fld.col_of_y(gnd[:, :, 1])
        finite = np.isfinite(map_r) & np.isfinite(map_c)
        blur_px = abs(speed_mps) * self.exposure_s / fld.gsd_m
        pad = int(math.ceil(blur_px / 2)) + 3
        if finite.any():
            r0 = max(int(math.floor(np.nanmin(map_r))) - pad, 0)
            r1 = min(int(math.ceil(np.nanmax(map_r))) + pad + 1, fld.rgb.shape[0])
        else:
            r0 = r1 = 0
        h, w = self.intrinsics.height, self.intrinsics.width
        if r1 <= r0:
            return np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)
        map_r = np.where(finite, map_r - r0, -10.0).astype(np.float32)
        map_c = np.where(finite, map_c, -10.0).astype(np.float32)
        win: np.ndarray = fld.rgb[r0:r1].astype(np.float32) * (1.0 / 255.0)
        if blur_px >= 0.5:  # box along x (mosaic rows) over the distance driven while exposed
            n = int(math.ceil(blur_px))
            if n % 2 == 0:
                n += 1
            k = np.zeros((n, 1), np.float32)
            half = blur_px / 2.0
            for j in range(n):
                d = j - n // 2
                k[j] = max(0.0, min(d + 0.5, half) - max(d - 0.5, -half))
            k /= k.sum()
            win = cv2.filter2D(win, -1, k, borderType=cv2.BORDER_REPLICATE)
        img: np.ndarray = cv2.remap(
            win, map_c, map_r, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0))
        lab = cv2.remap(fld.labels[r0:r1], map_c, map_r, cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if rng is not None:
            img *= float(max(0.2, rng.normal(1.0, self.gain_jitter)))
            if self.read_noise > 0 or self.shot_noise > 0:
                std = np.sqrt(self.read_noise ** 2 + self.shot_noise * np.clip(img, 0, 1))
                img += rng.standard_normal(img.shape, dtype=np.float32) * std
        rgb = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return rgb, lab
