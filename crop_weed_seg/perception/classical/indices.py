"""Vegetation indices and their thresholds: which pixels are plants.

``"exg"``: Excess Green ``2g - r - b`` on chromatic coordinates (``r = R / (R + G + B)`` ...),
thresholded by Otsu on a fixed uint8 scaling of the index. ``"exhsv"``: the HSV saturation of
pixels whose hue is green and which are not too dark, thresholded by Otsu the same way. Otsu
always splits an image in two, even a soil-only one, so its threshold is clamped to a fixed,
physically plausible range (:data:`EXG_THRESHOLD_BOUNDS`, :data:`EXHSV_SATURATION_BOUNDS`). A
small morphological opening removes speckle.
"""

from __future__ import annotations

import cv2
import numpy as np

from crop_weed_seg.errors import ConfigError, InvalidFrameError

#: Accepted values of ``index``.
VEGETATION_INDICES: tuple[str, ...] = ("exg", "exhsv")

#: ExG values (chromatic units) between which Otsu's threshold is clamped. Soil lies around
#: -0.1..0.05, living plants around 0.2..1.0.
EXG_THRESHOLD_BOUNDS: tuple[float, float] = (0.10, 0.25)
#: Fixed linear map of ExG onto uint8 for Otsu (values outside are clipped).
EXG_SCALE_RANGE: tuple[float, float] = (-0.5, 1.5)
#: Pixels with R + G + B below this have no meaningful chromaticity (deep shadow): not plants.
EXG_MIN_BRIGHTNESS = 30
#: Green hues in OpenCV units (degrees / 2): 70..180 degrees.
EXHSV_HUE_RANGE: tuple[int, int] = (35, 90)
#: Minimum HSV value (0..255) of a vegetation pixel for ``"exhsv"``.
EXHSV_MIN_VALUE = 30
#: Saturation (0..255) between which Otsu's threshold is clamped for ``"exhsv"``.
EXHSV_SATURATION_BOUNDS: tuple[int, int] = (40, 110)


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise InvalidFrameError(f"expected a numpy array, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InvalidFrameError(f"expected an RGB image of shape (H, W, 3), got {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise InvalidFrameError(f"expected dtype uint8, got {rgb.dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InvalidFrameError(f"empty image of shape {rgb.shape}")
    return rgb


def _check_index(index: str) -> None:
    if index not in VEGETATION_INDICES:
        raise ConfigError(
            f"unknown vegetation index {index!r}; choose one of {', '.join(VEGETATION_INDICES)}"
        )


def excess_green(rgb: np.ndarray) -> np.ndarray:
    """Excess Green ``2g - r - b`` on chromatic coordinates, float32 (H, W) in [-1, 2].

    Pixels darker than :data:`EXG_MIN_BRIGHTNESS` (sum of channels) get -1.
    """
    rgb = _check_rgb(rgb)
    f = rgb.astype(np.float32)
    total = f.sum(axis=2)
    numerator = 2.0 * f[:, :, 1] - f[:, :, 0] - f[:, :, 2]
    exg = numerator / np.maximum(total, 1.0)
    exg[total < EXG_MIN_BRIGHTNESS] = -1.0
    return exg


def _index_u8(rgb: np.ndarray, index: str) -> tuple[np.ndarray, float, float]:
    """The index scaled to uint8 plus Otsu's clamp bounds on the same scale."""
    if index == "exg":
        lo, hi = EXG_SCALE_RANGE
        scale = 255.0 / (hi - lo)
        u8 = np.clip((excess_green(rgb) - lo) * scale, 0.0, 255.0).astype(np.uint8)
        t_lo, t_hi = ((t - lo) * scale for t in EXG_THRESHOLD_BOUNDS)
        return u8, t_lo, t_hi
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hue, sat, val = hsv[:, :, 0], hsv[:, :, 1], hsv[:, :, 2]
    green = (hue >= EXHSV_HUE_RANGE[0]) & (hue <= EXHSV_HUE_RANGE[1]) & (val >= EXHSV_MIN_VALUE)
    u8 = np.where(green, sat, 0).astype(np.uint8)
    return u8, float(EXHSV_SATURATION_BOUNDS[0]), float(EXHSV_SATURATION_BOUNDS[1])


def vegetation_mask(rgb: np.ndarray, index: str = "exg", *, open_px: int = 3) -> np.ndarray:
    """Boolean (H, W) mask of vegetation pixels.

    ``index``: ``"exg"`` (Excess Green) or ``"exhsv"`` (green-hue-gated HSV saturation). The
    threshold is Otsu's on the uint8-scaled index, clamped to a fixed range so that a soil-only
    (or plant-only) image is not split in two. ``open_px``: size of the elliptical structuring
    element of the speckle-removing opening; below 2 disables it.
    """
    rgb = _check_rgb(rgb)
    _check_index(index)
    u8, t_lo, t_hi = _index_u8(rgb, index)
    otsu, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    threshold = min(max(float(otsu), t_lo), t_hi)
    mask: np.ndarray = (u8 > threshold).astype(np.uint8)
    if open_px >= 2:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(open_px), int(open_px)))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    return mask.astype(bool)


__all__ = [
    "EXG_MIN_BRIGHTNESS",
    "EXG_SCALE_RANGE",
    "EXG_THRESHOLD_BOUNDS",
    "EXHSV_HUE_RANGE",
    "EXHSV_MIN_VALUE",
    "EXHSV_SATURATION_BOUNDS",
    "VEGETATION_INDICES",
    "excess_green",
    "vegetation_mask",
]
