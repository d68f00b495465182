"""What the camera does to the scene: illumination colour, exposure, cast shadows, blur, noise,
JPEG compression. None of it changes the labels."""

from __future__ import annotations

import cv2
import numpy as np


def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """Approximate RGB of a black body at ``kelvin`` (Tanner Helland's fit), float32 in [0, 1]."""
    t = kelvin / 100.0
    if t <= 66:
        r = 255.0
        g = 99.4708025861 * np.log(t) - 161.1195681661
        b = 0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307
    else:
        r = 329.698727446 * (t - 60) ** -0.1332047592
        g = 288.1221695283 * (t - 60) ** -0.0755148492
        b = 255.0
    return np.clip(np.array([r, g, b], np.float32), 1.0, 255.0) / 255.0


def illumination_gains(kelvin: float) -> np.ndarray:
    """Per-channel gains of light at ``kelvin`` relative to 6500 K daylight (grey-world white)."""
    return kelvin_to_rgb(kelvin) / kelvin_to_rgb(6500.0)


def cast_shadow(rng: np.random.Generator, img: np.ndarray, strength: float) -> None:
    """A large soft-edged shadow (robot body, boom, tree) over part of the frame, in place.

    Shadowed areas are lit by the sky only, so they are darker and bluer.
    """
    h, w = img.shape[:2]
    mask: np.ndarray = np.zeros((h, w), np.float32)
    n = int(rng.integers(3, 7))
    cx, cy = rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.3, 0.9, n) * max(h, w)
    pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1.0)
    k = int(rng.uniform(0.01, 0.06) * max(h, w)) * 2 + 1
    mask = cv2.GaussianBlur(mask, (k, k), 0)
    tint = np.array([1.0 - strength, 1.0 - strength * 0.92, 1.0 - strength * 0.75], np.float32)
    img *= 1.0 - mask[:, :, None] * (1.0 - tint[None, None, :])


def motion_blur(img: np.ndarray, length_px: float, angle_rad: float) -> np.ndarray:
    """Linear motion blur along ``angle_rad`` over ``length_px`` pixels."""
    if length_px < 1.5:
        return img
    size = int(np.ceil(length_px)) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = np.cos(angle_rad) * length_px / 2, np.sin(angle_rad) * length_px / 2
    cv2.line(kernel, (int(round(c - dx)), int(round(c - dy))),
             (int(round(c + dx)), int(round(c + dy))), 1.0, 1, lineType=cv2.LINE_AA)
    kernel /= kernel.sum()
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)


def sensor_noise(rng: np.random.Generator, img: np.ndarray, read_std: float,
                 shot_scale: float) -> np.ndarray:
    """Signal-dependent (shot) plus constant (read) Gaussian noise."""
    std = np.sqrt(read_std ** 2 + shot_scale * np.clip(img, 0, 1))
    return img + rng.standard_normal(img.shape, dtype=np.float32) * std


def jpeg_roundtrip(rgb_u8: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as JPEG at ``quality`` to add blocking and ringing artefacts."""
    ok, buf = cv2.imencode(".jpg", rgb_u8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        return rgb_u8
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert decoded is not None  # what imencode has just written
    return np.ascontiguousarray(decoded[:, :, ::-1])
