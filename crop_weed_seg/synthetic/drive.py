"""A simulated drive along crop rows: overlapping frames of one long synthetic field strip.

A downward-looking camera on a robot driving forward sees the ground slide through the image:
new ground enters at the top, and consecutive frames share all but ``step_px`` rows. This module
renders ONE tall strip with :func:`~crop_weed_seg.synthetic.field.generate_sample` (rows running
along the direction of travel, a fixed ground sampling distance, no per-frame camera effects that
would look wrong when stretched over the whole strip) and cuts it into camera windows.

Frame ``k`` shows strip rows ``[total - height - k*step_px, total - height - k*step_px + height)``,
so frame 0 is the bottom of the strip and the window moves up by ``step_px`` per frame; the
ground slides down the image: rows ``[step_px, height)`` of frame ``k + 1`` equal rows
``[0, height - step_px)`` of frame ``k``.
The robot's ground speed is ``step_px * metres_per_pixel * frame_rate``.

Deterministic like ``generate_sample``: same (config, seed, sizes) → same frames. Illumination,
exposure and sensor noise are drawn once for the whole strip, so the overlapping parts of two
frames are identical pixel for pixel (a real camera would add fresh noise to every frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.synthetic.field import SynthConfig, generate_sample

#: Ground sampling distance used for drives unless the caller asks for another one [mm/px].
DEFAULT_DRIVE_GSD_MM = 1.0


def drive_config(config: SynthConfig, frames: int, height: int, width: int, step_px: int,
                 gsd_mm: float = DEFAULT_DRIVE_GSD_MM,
                 row_angle_jitter_deg: float = 3.0) -> SynthConfig:
    """The configuration of the tall strip a drive is cut from (validated).

    Rows run along the direction of travel (``across_rows_prob = 0``, small angle jitter); motion
    blur, JPEG round trips and cast shadows are off (one blur or shadow stretched over metres of
    strip looks wrong); the GSD is fixed so that pixels convert to metres exactly.
    """
    if frames < 1:
        raise ConfigError(f"a drive needs at least 1 frame, got {frames}")
    if step_px < 0 or step_px >= height:
        raise ConfigError(f"step_px {step_px} must be in [0, height={height}) so that "
                          "consecutive frames overlap")
    if gsd_mm <= 0:
        raise ConfigError(f"gsd_mm {gsd_mm} must be positive")
    return replace(
        config,
        height=height + step_px * (frames - 1),
        width=width,
        gsd_mm=(float(gsd_mm), float(gsd_mm)),
        across_rows_prob=0.0,
        row_angle_jitter_deg=float(row_angle_jitter_deg),
        motion_blur_prob=0.0,
        jpeg_prob=0.0,
        cast_shadow_prob=0.0,
    ).validate()


@dataclass(frozen=True)
class DriveStrip:
    """The rendered strip and how to cut it into frames."""

    rgb: np.ndarray  #: (total_height, width, 3) uint8
    labels: np.ndarray  #: (total_height, width) uint8, 0 soil 1 crop 2 weed
    height: int  #: frame height [px]
    step_px: int  #: ground advance between consecutive frames [px]
    frames: int  #: number of frames
    metres_per_pixel: float  #: ground sampling distance [m/px]
    meta: dict[str, Any] = field(default_factory=dict)  #: what generate_sample drew

    def __len__(self) -> int:
        return self.frames

    def top_row(self, k: int) -> int:
        """First strip row of frame ``k``."""
        if not 0 <= k < self.frames:
            raise IndexError(f"frame {k} out of range [0, {self.frames})")
        return self.rgb.shape[0] - self.height - k * self.step_px

    def frame(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``k`` as contiguous copies ``(rgb, labels)``."""
        top = self.top_row(k)
        return (np.ascontiguousarray(self.rgb[top:top + self.height]),
                np.ascontiguousarray(self.labels[top:top + self.height]))

    def speed_m_s(self, frame_rate_hz: float) -> float:
        """Ground speed of the robot when the frames are played at ``frame_rate_hz``."""
        return self.step_px * self.metres_per_pixel * frame_rate_hz


def render_drive_strip(config: SynthConfig, seed: int, frames: int, height: int, width: int,
                       step_px: int, *, gsd_mm: float = DEFAULT_DRIVE_GSD_MM,
                       row_angle_jitter_deg: float = 3.0) -> DriveStrip:
    """Render the strip of a drive of ``frames`` frames of ``height`` × ``width`` pixels."""
    cfg = drive_config(config, frames, height, width, step_px, gsd_mm, row_angle_jitter_deg)
    rgb, labels, meta = generate_sample(cfg, seed, 0)
    return DriveStrip(rgb=rgb, labels=labels, height=height, step_px=step_px, frames=frames,
                      metres_per_pixel=float(gsd_mm) / 1000.0, meta=meta)


def render_drive(config: SynthConfig, seed: int, frames: int, height: int, width: int,
                 step_px: int, *, gsd_mm: float = DEFAULT_DRIVE_GSD_MM,
                 row_angle_jitter_deg: float = 3.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Frames of a simulated drive: a list of ``(rgb uint8 HxWx3, labels uint8 HxW)``.

    The ground moves ``step_px`` pixels per frame (down the image; new ground enters at the top)
    and one pixel is ``gsd_mm / 1000`` metres, so the speed at a frame rate ``f`` is
    ``step_px * gsd_mm / 1000 * f`` m/s. Use :func:`render_drive_strip` to get the strip itself,
    its metres-per-pixel and what was drawn.
    """
    strip = render_drive_strip(config, seed, frames, height, width, step_px, gsd_mm=gsd_mm,
                               row_angle_jitter_deg=row_angle_jitter_deg)
    return [strip.frame(k) for k in range(frames)]
