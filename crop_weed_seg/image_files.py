"""Reading and writing image files with clear errors and atomic writes.

Arrays in this package are RGB (H, W, 3) uint8 unless a name says otherwise; OpenCV's BGR order
stays inside this module.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from crop_weed_seg.errors import DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_rgb(path: Path | str, upright: bool = True) -> np.ndarray:
    """Read a colour image as RGB (H, W, 3) uint8. Grey images are replicated to 3 channels.

    16-bit images are scaled to 8 bit by a fixed shift (>> 8), never by their own maximum.
    With ``upright`` (the default) the image is turned by its EXIF orientation (all eight
    values; JPEG APP1 Exif, PNG eXIf), as image viewers and labelling tools show it;
    OpenCV's IMREAD_UNCHANGED ignores that tag. (TIFF: OpenCV's reader applies orientations
    2-4 itself, with or without ``upright``, and cannot decode 5-8.) Label masks are read as
    stored: a colour mask read through this function must pass ``upright=False``.
    """
    path = Path(path)
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        reason = "file does not exist" if not path.exists() else "not a readable image"
        kind, orientation = _header_orientation(path)
        if kind == "tiff" and orientation >= 5:
            reason = (f"a TIFF with EXIF orientation {orientation} (turned 90 degrees), which "
                      "OpenCV's TIFF reader cannot decode; save it upright or as PNG/JPEG")
        raise DatasetError(f"{path}: cannot read image ({reason})")
    if data.dtype == np.uint16:
        data = np.right_shift(data, 8).astype(np.uint8)
    if data.dtype != np.uint8:
        raise DatasetError(f"{path}: unsupported image dtype {data.dtype} (expected 8 or 16 bit)")
    if data.ndim == 2:
        rgb = np.repeat(data[:, :, None], 3, axis=2)
    elif data.shape[2] == 4:
        rgb = cv2.cvtColor(data, cv2.COLOR_BGRA2RGB)
    elif data.shape[2] == 3:
        rgb = cv2.cvtColor(data, cv2.COLOR_BGR2RGB)
    else:
        raise DatasetError(f"{path}: unsupported channel count {data.shape[2]}")
    if upright:
        kind, orientation = _header_orientation(path)
        if kind != "tiff":  # OpenCV's TIFF reader applies orientations 2-4 itself
            rgb = apply_orientation(rgb, orientation)
    return np.ascontiguousarray(rgb)


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an image stored with EXIF ``orientation`` (1-8) upright, as a viewer shows it.

    1 as stored, 2 mirrored left-right, 3 rotated 180°, 4 mirrored top-bottom, 5 transposed
    (mirrored about the main diagonal), 6 rotated 90° clockwise, 7 transversed (mirrored about
    the other diagonal), 8 rotated 90° counter-clockwise. Any other value: as stored.
    """
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


_ORIENTATION_TAG = 0x0112
_JPEG_MAX_SEGMENTS = 64           # markers scanned before giving up (EXIF sits in the first few)
_PNG_MAX_CHUNKS = 256
_PNG_MAX_EXIF_BYTES = 1 << 20


def exif_orientation(path: Path | str) -> int:
    """The EXIF orientation (1-8) of an image file, read from its header only; 1 when the file
    has none, is not JPEG/PNG/TIFF, or its EXIF is malformed (never raises for a bad tag).

    Looks where viewers look: a JPEG's APP1 ``Exif`` segment (before the scan data), a PNG's
    ``eXIf`` chunk (before the first IDAT), a TIFF's first IFD; big- and little-endian.
    """
    return _header_orientation(path)[1]


def _header_orientation(path: Path | str) -> tuple[str, int]:
    """(file kind: jpeg, png, tiff or other; orientation 1-8)."""
    kind = "other"
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            value = None
            if head[:2] == b"\xff\xd8":
                kind = "jpeg"
                value = _jpeg_orientation(handle)
            elif head == b"\x89PNG\r\n\x1a\n":
                kind = "png"
                value = _png_orientation(handle)
            elif head[:4] in (b"II*\x00", b"MM\x00*"):
                kind = "tiff"
                value = _tiff_file_orientation(handle)
    except (OSError, ValueError, struct.error):
        return kind, 1
    return kind, (value if value is not None and 1 <= value <= 8 else 1)


def _jpeg_orientation(handle: BinaryIO) -> int | None:
    handle.seek(2)
    for _ in range(_JPEG_MAX_SEGMENTS):
        byte = handle.read(1)
        if byte != b"\xff":
            return None                      # not at a marker: malformed
        marker = handle.read(1)
        while marker == b"\xff":             # fill bytes
            marker = handle.read(1)
        if not marker:
            return None
        code = marker[0]
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
            continue                         # markers without a length
        if code in (0xD9, 0xDA):             # end of image, start of scan: no EXIF before
            return None
        raw = handle.read(2)
        if len(raw) < 2:
            return None
        length = struct.unpack(">H", raw)[0]
        if length < 2:
            return None
        if code == 0xE1:
            body = handle.read(length - 2)
            if body[:6] == b"Exif\x00\x00":
                return _tiff_orientation(body[6:])
        else:
            handle.seek(length - 2, os.SEEK_CUR)
    return None


def _png_orientation(handle: BinaryIO) -> int | None:
    for _ in range(_PNG_MAX_CHUNKS):
        raw = handle.read(8)
        if len(raw) < 8:
            return None
        length, kind = struct.unpack(">I4s", raw)
        if kind in (b"IDAT", b"IEND"):
            return None
        if kind == b"eXIf":
            if length > _PNG_MAX_EXIF_BYTES:
                return None
            return _tiff_orientation(handle.read(length))
        handle.seek(length + 4, os.SEEK_CUR)  # data and CRC
    return None


def _tiff_orientation(blob: bytes) -> int | None:
    """Orientation from a TIFF structure in memory (the body of EXIF)."""
    if len(blob) < 8 or blob[:2] not in (b"II", b"MM"):
        return None
    order = "<" if blob[:2] == b"II" else ">"
    if struct.unpack(order + "H", blob[2:4])[0] != 42:
        return None
    ifd = struct.unpack(order + "I", blob[4:8])[0]
    if ifd + 2 > len(blob):
        return None
    count = struct.unpack(order + "H", blob[ifd:ifd + 2])[0]
    return _orientation_in_entries(blob[ifd + 2:ifd + 2 + 12 * count], order)


def _tiff_file_orientation(handle: BinaryIO) -> int | None:
    """Orientation from a TIFF file's first IFD (read by seeking; the IFD may be anywhere)."""
    handle.seek(0)
    head = handle.read(8)
    order = "<" if head[:2] == b"II" else ">"
    ifd = struct.unpack(order + "I", head[4:8])[0]
    handle.seek(ifd)
    raw = handle.read(2)
    if len(raw) < 2:
        return None
    count = struct.unpack(order + "H", raw)[0]
    return _orientation_in_entries(handle.read(12 * count), order)


def _orientation_in_entries(entries: bytes, order: str) -> int | None:
    for start in range(0, len(entries) - 11, 12):
        tag, kind, count = struct.unpack(order + "HHI", entries[start:start + 8])
        if tag != _ORIENTATION_TAG:
            continue
        value = entries[start + 8:start + 12]
        if kind == 3 and count >= 1:         # SHORT, stored in the first two bytes
            return int(struct.unpack(order + "H", value[:2])[0])
        if kind == 4 and count >= 1:         # LONG (non-standard, seen in the wild)
            return int(struct.unpack(order + "I", value)[0])
        return None
    return None


def read_id_image(path: Path | str) -> np.ndarray:
    """Read a single-channel 8- or 16-bit id image as is: (H, W) uint8 or uint16.

    Labels are read as stored: an EXIF orientation tag is never applied to them."""
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
