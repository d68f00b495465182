"""Conversion between ``sensor_msgs`` images and numpy arrays: our own cv_bridge.

cv_bridge for ROS 2 is not pip-installable, so this module mirrors its semantics for the
encodings we accept: the same encoding names, the same ``step`` (row padding) handling, the same
``is_bigendian`` handling and the same OpenCV Bayer codes. Every problem with one message is an
:class:`~crop_weed_seg.errors.InvalidFrameError` naming the encoding and the numbers, so the node
can log it and skip the frame; nothing here crashes on a malformed message or returns a skewed
image.

``image_to_array`` returns a view on the message's buffer whenever it can (8-bit data, 16-bit
data already in the machine's byte order), also when rows are padded: the view then has a row
stride of ``step`` and simply does not include the padding. It copies only to byteswap 16-bit
data, to demosaic Bayer data or to convert YUV data (:data:`YUV_ENCODINGS`) to RGB.

YUV (the names of ``sensor_msgs/image_encodings.hpp``; the layouts of V4L2, which camera drivers
copy into ``data`` as they are, with ``step`` the row stride of the first plane):

- ``uyvy`` = ``yuv422`` (U Y0 V Y1) and ``yuyv`` = ``yuv422_yuy2`` (Y0 U Y1 V): packed 4:2:2,
  two bytes per pixel, ``height`` rows of ``step`` bytes; the width must be even. cv_bridge
  converts these two with the same OpenCV codes as here.
- ``nv12`` (Y plane, then interleaved U V) and ``nv21`` (Y plane, then V U): 4:2:0, the chroma
  plane has ``height / 2`` rows of ``step`` bytes right after the ``height`` rows of the Y plane;
  width and height must be even.
- ``nv24`` (Y plane, then interleaved U V at full resolution, V4L2 ``NV24``): 4:4:4, the chroma
  plane has ``height`` rows of ``2 × step`` bytes ("twice as many pad bytes"). OpenCV has no
  4:4:4 converter; each pixel is given to its 4:2:2 converter as a pair of equal pixels, so all
  YUV encodings share OpenCV's one BT.601 (video range) integer arithmetic.
"""

from __future__ import annotations

import array
import sys
from typing import Any

import cv2
import numpy as np

from crop_weed_seg.errors import InvalidFrameError

_U8 = np.dtype(np.uint8)
_U16 = np.dtype(np.uint16)

#: encoding -> (channels in the message, dtype of one channel, channel order for the Segmenter).
#: For Bayer encodings the message has one channel; ``image_to_array`` demosaics it to 3-channel
#: RGB uint8, hence the order "RGB".
ENCODINGS: dict[str, tuple[int, np.dtype, str]] = {
    "rgb8": (3, _U8, "RGB"),
    "bgr8": (3, _U8, "BGR"),
    "rgba8": (4, _U8, "RGB"),
    "bgra8": (4, _U8, "BGR"),
    "mono8": (1, _U8, "MONO"),
    "mono16": (1, _U16, "MONO"),
    "rgb16": (3, _U16, "RGB"),
    "bgr16": (3, _U16, "BGR"),
    "rgba16": (4, _U16, "RGB"),
    "bgra16": (4, _U16, "BGR"),
    "bayer_rggb8": (1, _U8, "RGB"),
    "bayer_bggr8": (1, _U8, "RGB"),
    "bayer_gbrg8": (1, _U8, "RGB"),
    "bayer_grbg8": (1, _U8, "RGB"),
}

#: ROS Bayer encoding -> OpenCV demosaic code, exactly as cv_bridge maps them. OpenCV names a
#: Bayer pattern by the 2x2 block starting at the second row and second column, so the ROS
#: pattern (named from the top-left pixel) is the OpenCV name with both letters swapped:
#: ROS ``rggb`` (R at (0, 0)) is OpenCV ``BayerBG``.
BAYER_CODES: dict[str, int] = {
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
}

#: ROS YUV encoding -> (chroma subsampling, OpenCV code to RGB): cv_bridge's codes for
#: ``yuv422``/``yuv422_yuy2`` and their newer names ``uyvy``/``yuyv``; ``nv24`` goes through the
#: 4:2:2 code (see the module documentation). The result is RGB uint8 (H, W, 3).
YUV_ENCODINGS: dict[str, tuple[str, int]] = {
    "yuv422": ("4:2:2", cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": ("4:2:2", cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": ("4:2:2", cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": ("4:2:2", cv2.COLOR_YUV2RGB_YUY2),
    "nv12": ("4:2:0", cv2.COLOR_YUV2RGB_NV12),
    "nv21": ("4:2:0", cv2.COLOR_YUV2RGB_NV21),
    "nv24": ("4:4:4", cv2.COLOR_YUV2RGB_YUY2),
}

_SUPPORTED = ", ".join([*ENCODINGS, *YUV_ENCODINGS])
_MACHINE_IS_BIG_ENDIAN = sys.byteorder == "big"


def _payload(data: Any) -> np.ndarray:
    """The message's ``data`` as a flat uint8 array, without copying when it is a buffer."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def _spec(encoding: str) -> tuple[int, np.dtype, str]:
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise InvalidFrameError(
            f"image encoding {encoding!r} is not supported; supported encodings: {_SUPPORTED}"
        ) from None


def image_to_array(msg: Any) -> tuple[np.ndarray, str]:
    """Convert a ``sensor_msgs/Image`` to ``(array, channel_order)``.

    The array is (H, W) for one channel and (H, W, C) otherwise, with the message's own channel
    layout and dtype (uint8 or native-endian uint16); the order is "RGB", "BGR" or "MONO"
    (rgba/bgra keep their 4 channels and report "RGB"/"BGR"). Bayer encodings are demosaiced
    and YUV encodings converted to RGB uint8. Raises InvalidFrameError for an unknown encoding
    or inconsistent sizes.
    """
    encoding = str(msg.encoding)
    yuv = YUV_ENCODINGS.get(encoding)
    if yuv is None:
        channels, dtype, order = _spec(encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise InvalidFrameError(f"{encoding} image has height {height} and width {width}; "
                                "both must be at least 1")
    if yuv is not None:
        return _yuv_to_rgb(encoding, yuv[0], yuv[1], height, width, step, msg.data), "RGB"
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise InvalidFrameError(
            f"{encoding} image step {step} is smaller than width {width} × {channels} "
            f"channel(s) × {dtype.itemsize} byte(s) = {row_bytes}")
    if step % dtype.itemsize:
        raise InvalidFrameError(
            f"{encoding} image step {step} is not a multiple of the element size "
            f"{dtype.itemsize} bytes")
    flat = _payload(msg.data)
    if flat.size < step * height:
        raise InvalidFrameError(
            f"{encoding} image data holds {flat.size} bytes, fewer than step {step} × "
            f"height {height} = {step * height}")

    rows = flat[:step * height].reshape(height, step)[:, :row_bytes]
    big_endian_data = bool(msg.is_bigendian)
    if dtype.itemsize > 1 and big_endian_data != _MACHINE_IS_BIG_ENDIAN:
        wire = dtype.newbyteorder(">" if big_endian_data else "<")
        pixels = rows.view(wire).astype(dtype)  # one pass: byteswap into a native copy
    else:
        pixels = rows.view(dtype)
    pixels = pixels.reshape((height, width) if channels == 1 else (height, width, channels))

    code = BAYER_CODES.get(encoding)
    if code is not None:
        if height < 2 or width < 2:
            raise InvalidFrameError(f"{encoding} image of {height}×{width} is too small to "
                                    "demosaic (at least 2×2)")
        try:
            return cv2.cvtColor(pixels, code), order
        except cv2.error as exc:
            raise InvalidFrameError(f"{encoding} image of {height}×{width} could not be "
                                    f"demosaiced: {exc}") from None
    return pixels, order


def _yuv_to_rgb(encoding: str, subsampling: str, code: int, height: int, width: int,
                step: int, data: Any) -> np.ndarray:
    """One YUV image (layouts in the module documentation) as RGB uint8 (H, W, 3)."""
    size = f"{height}×{width}"
    if subsampling == "4:2:2" and width % 2:
        raise InvalidFrameError(
            f"{encoding} image of {size} has an odd width; YUV 4:2:2 stores two pixels in one "
            "U and V pair, so the width must be even")
    if subsampling == "4:2:0" and (width % 2 or height % 2):
        raise InvalidFrameError(
            f"{encoding} image of {size} has an odd width or height; YUV 4:2:0 has one U and V "
            "pair per 2×2 pixels, so both must be even")
    luma_bytes = 2 * width if subsampling == "4:2:2" else width
    if step < luma_bytes:
        what = "2 bytes per pixel" if subsampling == "4:2:2" else "1 byte of Y per pixel"
        raise InvalidFrameError(f"{encoding} image step {step} is smaller than width {width} × "
                                f"{what} = {luma_bytes}")
    if subsampling == "4:2:2":
        needed, layout = step * height, f"step {step} × height {height}"
    elif subsampling == "4:2:0":
        needed = step * (height + height // 2)
        layout = f"step {step} × (height {height} + {height // 2} chroma rows)"
    else:
        needed = 3 * step * height
        layout = f"step {step} × height {height} (Y) + 2 × step × height (UV)"
    flat = _payload(data)
    if flat.size < needed:
        raise InvalidFrameError(f"{encoding} image of {size} holds {flat.size} bytes of data, "
                                f"fewer than {layout} = {needed}")
    if subsampling == "4:2:2":
        pixels = flat[:needed].reshape(height, step)[:, :2 * width].reshape(height, width, 2)
    elif subsampling == "4:2:0":   # Y rows, then chroma rows: one (H·3/2, W) image for OpenCV
        pixels = flat[:needed].reshape(height + height // 2, step)[:, :width]
    else:   # 4:4:4 as 4:2:2 of twice the width, every pixel twice: Y U Y V
        y = flat[:step * height].reshape(height, step)[:, :width]
        uv = flat[step * height:needed].reshape(height, 2 * step)[:, :2 * width]
        pairs = np.empty((height, width, 4), np.uint8)
        pairs[:, :, 0] = y
        pairs[:, :, 1] = uv[:, 0::2]
        pairs[:, :, 2] = y
        pairs[:, :, 3] = uv[:, 1::2]
        pixels = pairs.reshape(height, 2 * width, 2)
    try:
        rgb = cv2.cvtColor(pixels, code)
    except cv2.error as exc:
        raise InvalidFrameError(f"{encoding} image of {size} could not be converted: "
                                f"{exc}") from None
    if subsampling == "4:4:4":  # both pixels of a pair are equal: keep one (OpenCV: 3 ms at
        # 1080p, a numpy copy of every second column: 20 ms)
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_NEAREST)
    return rgb


def compressed_to_array(msg: Any) -> tuple[np.ndarray, str]:
    """Decode a JPEG/PNG ``sensor_msgs/CompressedImage`` to ``(array, channel_order)``.

    Colour images come back as BGR uint8 (H, W, 3) and report "BGR"; grey images as (H, W)
    uint8 and report "MONO". An empty, corrupt or undecodable payload is an InvalidFrameError.
    """
    fmt = str(getattr(msg, "format", ""))
    if "compresseddepth" in fmt.lower():
        raise InvalidFrameError(f"compressed image format {fmt!r} (compressedDepth) is not "
                                "supported; use JPEG or PNG")
    buf = _payload(msg.data)
    if buf.size == 0:
        raise InvalidFrameError(f"compressed image (format {fmt!r}) has an empty payload")
    try:
        decoded = cv2.imdecode(buf, cv2.IMREAD_ANYCOLOR)
    except cv2.error as exc:
        raise InvalidFrameError(f"compressed image (format {fmt!r}, {buf.size} bytes) could not "
                                f"be decoded: {exc}") from None
    if decoded is None or decoded.size == 0:
        raise InvalidFrameError(f"compressed image (format {fmt!r}, {buf.size} bytes) could not "
                                "be decoded as JPEG or PNG")
    if decoded.dtype != np.uint8:  # defensive: IMREAD_ANYCOLOR without ANYDEPTH gives 8-bit
        decoded = np.right_shift(decoded, 8).astype(np.uint8) if decoded.dtype == np.uint16 else \
            cv2.convertScaleAbs(decoded)
    if decoded.ndim == 3 and decoded.shape[2] == 1:
        decoded = decoded[:, :, 0]
    if decoded.ndim == 2:
        return decoded, "MONO"
    if decoded.shape[2] == 4:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGRA2BGR)
    return decoded, "BGR"


def normalize_layout(array_: np.ndarray, order: str) -> tuple[np.ndarray, str]:
    """A frame in any layout of :func:`image_to_array` / :func:`compressed_to_array` as 8-bit
    three-channel ``(array, "RGB" | "BGR")``: 16-bit data by a fixed shift (never the frame's
    own maximum), one channel (``MONO``) repeated into three (RGB), alpha dropped. The colour
    order is kept (no copy for 8-bit colour data). The one layout normalisation of the package:
    the Segmenter applies it at the model's input size, the overlay and frame export at the
    camera's. InvalidFrameError for a dtype or shape it cannot take."""
    a = array_
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise InvalidFrameError(f"frame dtype {a.dtype} is not supported (uint8 or uint16)")
    if a.ndim == 3 and (a.shape[2] == 1 or order == "MONO"):
        a = a[:, :, 0]
    if a.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_GRAY2RGB), "RGB"
    if a.ndim != 3 or a.shape[2] not in (3, 4) or order not in ("RGB", "BGR"):
        raise InvalidFrameError(f"frame shape {a.shape} with channel order {order!r} is not "
                                "(H, W) MONO or (H, W, 3|4) RGB/BGR")
    return (a[:, :, :3] if a.shape[2] == 4 else a), order


def to_rgb8(array_: np.ndarray, order: str) -> np.ndarray:
    """The frame as contiguous RGB (H, W, 3) uint8 (:func:`normalize_layout`)."""
    a, got = normalize_layout(array_, order)
    return np.ascontiguousarray(a[:, :, ::-1] if got == "BGR" else a)


def to_bgr8(array_: np.ndarray, order: str) -> np.ndarray:
    """The frame as contiguous BGR (H, W, 3) uint8 (:func:`normalize_layout`)."""
    a, got = normalize_layout(array_, order)
    return np.ascontiguousarray(a[:, :, ::-1] if got == "RGB" else a)


def _copy_header(header: Any) -> Any:
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header
    return Header(stamp=Time(sec=header.stamp.sec, nanosec=header.stamp.nanosec),
                  frame_id=header.frame_id)


def array_to_image(array_: np.ndarray, encoding: str, header: Any = None) -> Any:
    """Build a ``sensor_msgs/Image`` from an array (the inverse of :func:`image_to_array`).

    Supports every encoding of :data:`ENCODINGS` except Bayer (and no YUV). The data is written
    little-endian with ``is_bigendian = 0`` and no row padding (``step = width × channels ×
    bytes``); the header (stamp and frame_id) is copied when given. Raises InvalidFrameError
    when the array's shape or dtype does not fit the encoding.
    """
    from sensor_msgs.msg import Image

    if encoding in BAYER_CODES or encoding in YUV_ENCODINGS:
        publishable = ", ".join(e for e in ENCODINGS if e not in BAYER_CODES)
        raise InvalidFrameError(f"publishing {encoding} is not supported; supported "
                                f"encodings: {publishable}")
    channels, dtype, _ = _spec(encoding)
    arr = np.asarray(array_)
    if arr.dtype.kind != dtype.kind or arr.dtype.itemsize != dtype.itemsize:
        raise InvalidFrameError(f"{encoding} needs a {dtype} array, got {arr.dtype}")
    if channels == 1 and arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    expected = "(H, W)" if channels == 1 else f"(H, W, {channels})"
    if (arr.ndim != (2 if channels == 1 else 3)
            or (channels > 1 and arr.shape[2] != channels)):
        raise InvalidFrameError(f"{encoding} needs an array of shape {expected}, "
                                f"got {arr.shape}")
    height, width = int(arr.shape[0]), int(arr.shape[1])
    if height == 0 or width == 0:
        raise InvalidFrameError(f"{encoding} array of shape {arr.shape} is empty")
    # Little-endian, C-contiguous; a no-op for a contiguous uint8 / native uint16 array on a
    # little-endian machine.
    arr = np.ascontiguousarray(arr, dtype=dtype.newbyteorder("<"))

    msg = Image()
    if header is not None:
        msg.header = _copy_header(header)
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = width * channels * dtype.itemsize
    # An array.array('B') is taken as is by the generated setter; bytes or lists would be
    # checked element by element in Python (seconds for a 1080p frame).
    data = array.array("B")
    data.frombytes(arr.reshape(-1).view(np.uint8).data)
    msg.data = data
    return msg
