"""YUV camera images for tests, built independently of the package's conversion.

The samples come from OpenCV's own forward conversion ``COLOR_RGB2YUV_I420`` (BT.601 video
range, present in every OpenCV the package supports; the packed 4:2:2 forward codes are 4.7+),
and the same Y, U, V samples are laid out as each ROS encoding: its 4:2:0 chroma repeated down
the rows for 4:2:2 and over 2×2 pixels for 4:4:4. So every encoding of one RGB image decodes to
the same RGB: :func:`i420_reference`, OpenCV's I420 converter on the I420 buffer.

Layouts (V4L2's, ``step`` the row stride of the first plane): ``uyvy``/``yuv422`` U Y0 V Y1,
``yuyv``/``yuv422_yuy2`` Y0 U Y1 V (``height`` rows of ``step`` bytes); ``nv12``/``nv21`` Y rows
then U V / V U rows, ``height / 2`` of them, all ``step`` bytes apart; ``nv24`` Y rows, then
``height`` U V rows of ``2 × step`` bytes.
"""

from __future__ import annotations

import array

import cv2
import numpy as np
from sensor_msgs.msg import Image

PACKED_422 = {"yuv422": "uyvy", "uyvy": "uyvy", "yuv422_yuy2": "yuyv", "yuyv": "yuyv"}


def yuv420_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y (H, W), U and V (H/2, W/2) of an RGB image of even size, by OpenCV's I420 encoder."""
    h, w = rgb.shape[:2]
    flat = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420).reshape(-1)
    q = (h // 2) * (w // 2)
    return (flat[:h * w].reshape(h, w), flat[h * w:h * w + q].reshape(h // 2, w // 2),
            flat[h * w + q:].reshape(h // 2, w // 2))


def i420_reference(rgb: np.ndarray) -> np.ndarray:
    """What every YUV encoding of ``rgb`` (as built here) must decode to: OpenCV's converter."""
    return cv2.cvtColor(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420),
                        cv2.COLOR_YUV2RGB_I420)


def _padded(rows: np.ndarray, stride: int, pad_byte: int) -> bytes:
    out = np.full((rows.shape[0], stride), pad_byte, np.uint8)
    out[:, :rows.shape[1]] = rows
    return out.tobytes()


def yuv_payload(rgb: np.ndarray, encoding: str, pad: int = 0,
                pad_byte: int = 0xEE) -> tuple[bytes, int, np.ndarray]:
    """``(data, step, unpadded)`` of ``rgb`` (even size) in ``encoding`` with ``pad`` bytes
    after each Y (or packed) row (twice that after nv24's chroma rows). ``unpadded``: the
    buffer as OpenCV's converter takes it, (H, W, 2) for 4:2:2 and (H·3/2, W) for 4:2:0; for
    nv24 (no OpenCV converter) the Y, U, V planes at full resolution, (3, H, W)."""
    h, w = rgb.shape[:2]
    y, u, v = yuv420_planes(rgb)
    if encoding in PACKED_422:
        packed = np.empty((h, w, 2), np.uint8)      # YUYV: (Y0, U) (Y1, V)
        packed[:, :, 0] = y
        packed[:, 0::2, 1] = np.repeat(u, 2, axis=0)
        packed[:, 1::2, 1] = np.repeat(v, 2, axis=0)
        if PACKED_422[encoding] == "uyvy":          # UYVY: (U, Y0) (V, Y1)
            packed = np.ascontiguousarray(packed[:, :, ::-1])
        step = 2 * w + pad
        return _padded(packed.reshape(h, 2 * w), step, pad_byte), step, packed
    if encoding in ("nv12", "nv21"):
        first, second = (u, v) if encoding == "nv12" else (v, u)
        chroma = np.stack([first, second], axis=-1).reshape(h // 2, w)
        stacked = np.concatenate([y, chroma])
        step = w + pad
        return _padded(stacked, step, pad_byte), step, stacked
    if encoding == "nv24":
        u4 = np.repeat(np.repeat(u, 2, axis=0), 2, axis=1)
        v4 = np.repeat(np.repeat(v, 2, axis=0), 2, axis=1)
        chroma = np.stack([u4, v4], axis=-1).reshape(h, 2 * w)
        step = w + pad
        data = _padded(y, step, pad_byte) + _padded(chroma, 2 * step, pad_byte)
        return data, step, np.stack([y, u4, v4])
    raise ValueError(f"not a YUV encoding: {encoding}")


def yuv_message(rgb: np.ndarray, encoding: str, pad: int = 0, pad_byte: int = 0xEE) -> Image:
    """A ``sensor_msgs/Image`` of ``rgb`` (even size) in a YUV ``encoding``
    (:func:`yuv_payload`)."""
    data, step, _ = yuv_payload(rgb, encoding, pad, pad_byte)
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, step=step)
    msg.data = array.array("B", data)
    return msg
