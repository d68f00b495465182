"""Reading and writing image files with clear errors and atomic writes.

Arrays in this package are RGB (H, W, 3) uint8 unless a name says otherwise; OpenCV's BGR order
stays inside this module.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .errors import DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_rgb(path: Path | str) -> np.ndarray:
    """Read a colour image as RGB (H, W, 3) uint8. Grey images are replicated to 3 channels.

    16-bit images are scaled to 8 bit by a fixed shift (>> 8), never by their own maximum.
    """
    path = Path(path)
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        reason = "file does not exist" if not path.exists() else "not a readable image"
        raise DatasetError(f"{path}: cannot read image ({reason})")
    if data.dtype == np.uint16:
        data = (data >> 8).astype(np.uint8)
    if data.dtype != np.uint8:
        raise DatasetError(f"{path}: unsupported image dtype {data.dtype} (expected 8 or 16 bit)")
    if data.ndim == 2:
        return np.ascontiguousarray(np.repeat(data[:, :, None], 3, axis=2))
    if data.shape[2] == 4:
        return cv2.cvtColor(data, cv2.COLOR_BGRA2RGB)
    if data.shape[2] == 3:
        return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
    raise DatasetError(f"{path}: unsupported channel count {data.shape[2]}")


def read_id_image(path: Path | str) -> np.ndarray:
    """Read a single-channel 8- or 16-bit id image as is: (H, W) uint8 or uint16."""
    path = Path(path)
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        reason = "file does not exist" if not path.exists() else "not a readable image"
        raise DatasetError(f"{path}: cannot read label image ({reason})")
    if data.ndim != 2:
        raise DatasetError(
            f"{path}: label image has {data.shape[2]} channels; expected one channel of class ids"
        )
    if data.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"{path}: unsupported label dtype {data.dtype} (expected 8 or 16 bit)")
    return data


def read_label_image(path: Path | str) -> np.ndarray:
    """Read a single-channel label PNG as (H, W) uint8; 16-bit files must hold values ≤ 255."""
    data = read_id_image(path)
    if data.dtype != np.uint8:
        if data.max(initial=0) > 255:
            raise DatasetError(f"{path}: label values exceed 255 (dtype {data.dtype})")
        data = data.astype(np.uint8)
    return data


def write_image_atomic(path: Path | str, array: np.ndarray, *, rgb: bool = True,
                       jpeg_quality: int = 95) -> None:
    """Write an image so that readers never see a half-written file (temp file + os.replace).

    ``array`` is RGB (H, W, 3) when ``rgb`` is true, else written as is (labels, BGR).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = array
    if rgb and array.ndim == 3:
        out = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    suffix = path.suffix.lower()
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    ok, encoded = cv2.imencode(suffix, out, params)
    if not ok:
        raise OSError(f"{path}: OpenCV could not encode the image as {suffix}")
    write_bytes_atomic(path, encoded.tobytes())


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    """Write bytes to ``path`` through a temporary file in the same folder and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
