"""What real cameras do to a field photo, as deterministic functions of an RGB uint8 image:
light of another colour temperature under a fixed white balance, over- or under-exposure,
strong JPEG compression, motion blur. Training augmentation draws their parameters at random;
the robustness table of a model card applies them at fixed strengths."""

from __future__ import annotations

import cv2
import numpy as np

from crop_weed_seg.synthetic.camera import illumination_gains

_GAMMA = 2.2


def _linear_lut(gain: float) -> np.ndarray:
    """uint8 LUT: sRGB-ish code -> linear light x gain -> code (saturating)."""
    x = np.arange(256, dtype=np.float64) / 255.0
    y = np.clip((x ** _GAMMA) * gain, 0.0, 1.0) ** (1.0 / _GAMMA)
    return np.round(y * 255.0).astype(np.uint8)


def colour_temperature(rgb: np.ndarray, kelvin: float) -> np.ndarray:
    """The scene lit by ``kelvin`` light while the camera stays white-balanced for 6500 K.

    Per-channel gains in linear light, normalised to keep luminance (3000 K: orange, 9000 K:
    blue)."""
    gains = illumination_gains(float(kelvin)).astype(np.float64)
    gains = gains / float(gains @ np.array([0.2126, 0.7152, 0.0722]))
    out = np.empty_like(rgb)
    for c in range(3):
        out[:, :, c] = cv2.LUT(rgb[:, :, c], _linear_lut(float(gains[c])))
    return out


def exposure(rgb: np.ndarray, ev: float) -> np.ndarray:
    """``ev`` stops more (positive) or less light, in linear light, saturating."""
    return cv2.LUT(rgb, _linear_lut(2.0 ** float(ev)))


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as JPEG at ``quality`` (1-100)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("OpenCV could not encode a JPEG")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert decoded is not None  # what imencode has just written
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def motion_blur(rgb: np.ndarray, length_px: float, angle_deg: float = 0.0) -> np.ndarray:
    """Linear motion blur over ``length_px`` pixels along ``angle_deg`` (0: along x)."""
    n = max(1, int(round(length_px)))
    if n == 1:
        return rgb.copy()
    size = n if n % 2 else n + 1
    kernel: np.ndarray = np.zeros((size, size), np.float32)
    kernel[size // 2, (size - n) // 2:(size - n) // 2 + n] = 1.0
    rot = cv2.getRotationMatrix2D(((size - 1) / 2.0, (size - 1) / 2.0), float(angle_deg), 1.0)
    kernel = np.asarray(cv2.warpAffine(kernel, rot, (size, size)), np.float32)
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.filter2D(rgb, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


#: The robustness table's conditions: name -> function of an RGB image.
ROBUSTNESS_CONDITIONS = {
    "3000 K light": lambda im: colour_temperature(im, 3000.0),
    "9000 K light": lambda im: colour_temperature(im, 9000.0),
    "+1 EV": lambda im: exposure(im, 1.0),
    "-1 EV": lambda im: exposure(im, -1.0),
    "JPEG q15": lambda im: jpeg(im, 15),
    "motion blur 9 px": lambda im: motion_blur(im, 9.0, 0.0),
}
