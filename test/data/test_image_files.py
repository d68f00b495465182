"""Image files are read upright by their EXIF orientation (issue 17); labels as stored.

Pillow (installed with matplotlib) is the reference viewer here: ``ImageOps.exif_transpose``
shows a file the way image viewers and labelling tools do. The package itself never uses it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from crop_weed_seg.errors import DatasetError
from crop_weed_seg.image_files import (
    apply_orientation,
    exif_orientation,
    read_id_image,
    read_label_image,
    read_rgb,
)

PIL = pytest.importorskip("PIL")
from PIL import Image, ImageOps  # noqa: E402

ORIENTATIONS = range(1, 9)
#: Stored = the inverse of what a viewer applies; 6 and 8 undo each other, the rest undo itself.
INVERSE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}
# Block colours of the upright scene, far apart so JPEG noise cannot confuse them.
RED, GREEN, BLUE, WHITE = (230, 20, 20), (20, 230, 20), (20, 20, 230), (235, 235, 235)


def _scene() -> np.ndarray:
    """An upright 48x80 (H x W) RGB scene, grey, with a 16x16 block in three corners:
    red top-left, green top-right, blue bottom-left; the bottom-right corner stays grey."""
    img = np.full((48, 80, 3), 128, np.uint8)
    img[:16, :16] = RED
    img[:16, -16:] = GREEN
    img[-16:, :16] = BLUE
    img[20:28, 36:44] = WHITE  # centre mark
    return img


def _stored(scene: np.ndarray, orientation: int) -> np.ndarray:
    """How a camera with that orientation tag stores the scene (plain numpy, independent of the
    OpenCV calls under test)."""
    undo = INVERSE[orientation]
    ops = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
           4: lambda a: a[::-1], 5: lambda a: a.transpose(1, 0, 2),
           6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
           8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(ops[undo](scene))


def _exif_blob(orientation: int, big_endian: bool, kind: int = 3) -> bytes:
    """A minimal TIFF structure (EXIF body) whose IFD0 holds the orientation tag (and one other
    tag before it, so the reader has to walk the entries)."""
    o = ">" if big_endian else "<"
    head = (b"MM" if big_endian else b"II") + struct.pack(o + "HI", 42, 8)
    entries = [struct.pack(o + "HHI", 0x010F, 2, 4) + b"cam\x00"]   # Make = "cam"
    value = struct.pack(o + "H", orientation) + b"\x00\x00" if kind == 3 else \
        struct.pack(o + "I", orientation)
    entries.append(struct.pack(o + "HHI", 0x0112, kind, 1) + value)
    return head + struct.pack(o + "H", len(entries)) + b"".join(entries) + struct.pack(o + "I", 0)


def _jpeg_with_app1(rgb: np.ndarray, app1_body: bytes) -> bytes:
    ok, enc = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    data = enc.tobytes()
    segment = b"\xff\xe1" + struct.pack(">H", len(app1_body) + 2) + app1_body
    return data[:2] + segment + data[2:]


def _blocks(img: np.ndarray) -> dict[str, tuple[int, int, int]]:
    """Mean colour of each 16x16 corner block (and the centre mark), rounded."""
    def mean(a: np.ndarray) -> tuple[int, int, int]:
        return tuple(int(round(v)) for v in a.reshape(-1, 3).mean(axis=0))
    h, w = img.shape[:2]
    return {"tl": mean(img[3:13, 3:13]), "tr": mean(img[3:13, -13:-3]),
            "bl": mean(img[-13:-3, 3:13]), "br": mean(img[-13:-3, -13:-3]),
            "centre": mean(img[h // 2 - 2:h // 2 + 2, w // 2 - 2:w // 2 + 2])}


def _close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def _assert_upright(img: np.ndarray) -> None:
    assert img.shape == (48, 80, 3)
    b = _blocks(img)
    assert _close(b["tl"], RED) and _close(b["tr"], GREEN) and _close(b["bl"], BLUE), b
    assert _close(b["br"], (128, 128, 128)) and _close(b["centre"], WHITE), b


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_pillow_written_jpeg_is_read_as_a_viewer_shows_it(tmp_path: Path,
                                                          orientation: int) -> None:
    stored = _stored(_scene(), orientation)
    path = tmp_path / f"o{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    assert exif_orientation(path) == orientation
    upright = read_rgb(path)
    _assert_upright(upright)
    # The reference viewer shows the same pixels (decoders may differ by a grey level or two).
    viewer = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert viewer.shape == upright.shape
    assert np.abs(viewer.astype(int) - upright.astype(int)).mean() < 2.0
    # As stored, when asked (colour label masks are read this way).
    raw = read_rgb(path, upright=False)
    assert raw.shape == stored.shape
    assert np.abs(raw.astype(int) - stored.astype(int)).mean() < 3.0


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_hand_made_exif_in_both_byte_orders(tmp_path: Path, orientation: int,
                                            big_endian: bool) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(_jpeg_with_app1(_stored(_scene(), orientation),
                                     b"Exif\x00\x00" + _exif_blob(orientation, big_endian)))
    assert exif_orientation(path) == orientation
    _assert_upright(read_rgb(path))


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_png_exif_chunk(tmp_path: Path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    png = tmp_path / "x.png"
    Image.fromarray(_stored(_scene(), orientation)).save(png, exif=exif)
    assert exif_orientation(png) == orientation
    assert np.array_equal(read_rgb(png), _scene())          # lossless: exact pixels


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_tiff_orientation(tmp_path: Path, orientation: int) -> None:
    """OpenCV's TIFF reader applies orientations 2-4 itself and cannot decode 5-8: the tag is
    found, 1-4 come out upright (not turned twice), 5-8 fail with a message that says why."""
    tif = tmp_path / "x.tif"
    Image.fromarray(_stored(_scene(), orientation)).save(tif, tiffinfo={0x0112: orientation})
    assert exif_orientation(tif) == orientation
    if orientation <= 4:
        assert np.array_equal(read_rgb(tif), _scene())
    else:
        with pytest.raises(DatasetError, match=f"TIFF with EXIF orientation {orientation}"):
            read_rgb(tif)


def test_apply_orientation_matches_pillow_on_every_value() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    methods = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
               6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_90}
    assert np.array_equal(apply_orientation(img, 1), img)
    for k, method in methods.items():
        expected = np.asarray(Image.fromarray(img).transpose(method))
        assert np.array_equal(apply_orientation(img, k), expected), k


MALFORMED = {
    "truncated TIFF header": b"Exif\x00\x00II*\x00",
    "IFD offset past the end": b"Exif\x00\x00II*\x00\xff\xff\x00\x00",
    "entry count past the end": b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\x7f",
    "bad byte order": b"Exif\x00\x00XX*\x00\x08\x00\x00\x00\x00\x00",
    "bad magic": b"Exif\x00\x00II\x00\x2b\x08\x00\x00\x00\x00\x00",
    "not Exif": b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>",
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_exif_reads_as_stored(tmp_path: Path, name: str) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(_jpeg_with_app1(_scene(), MALFORMED[name]))
    assert exif_orientation(path) == 1
    _assert_upright(read_rgb(path))


@pytest.mark.parametrize("value,kind", [(0, 3), (9, 3), (65535, 3), (6, 5), (6, 4)])
def test_out_of_range_or_odd_typed_orientation(tmp_path: Path, value: int, kind: int) -> None:
    path = tmp_path / "odd.jpg"
    stored = _stored(_scene(), value) if kind == 4 else _scene()
    path.write_bytes(_jpeg_with_app1(stored, b"Exif\x00\x00" +
                                     _exif_blob(value, big_endian=False,
                                                kind=4 if kind == 4 else kind)))
    # a LONG orientation (seen in the wild) is honoured; anything else reads as stored
    assert exif_orientation(path) == (value if kind == 4 else 1)
    _assert_upright(read_rgb(path))


def test_truncated_and_foreign_files_do_not_crash_the_header_reader(tmp_path: Path) -> None:
    good = tmp_path / "g.jpg"
    good.write_bytes(_jpeg_with_app1(_stored(_scene(), 6),
                                     b"Exif\x00\x00" + _exif_blob(6, False)))
    data = good.read_bytes()
    for n in (1, 2, 3, 5, 8, 20, 40):
        cut = tmp_path / f"cut{n}.jpg"
        cut.write_bytes(data[:n])
        assert exif_orientation(cut) == 1
    for name, blob in {"a.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 3,
                       "b.tif": b"MM\x00*\x7f\xff\xff\xff", "c.bmp": b"BM" + b"\x00" * 60,
                       "d.jpg": b"\xff\xd8\xff\xe1\x00\x01"}.items():
        (tmp_path / name).write_bytes(blob)
        assert exif_orientation(tmp_path / name) == 1
    assert exif_orientation(tmp_path / "missing.jpg") == 1


def test_label_files_are_read_as_stored(tmp_path: Path) -> None:
    """A label PNG carrying an orientation tag is not turned: labels are read as stored."""
    labels = np.zeros((6, 10), np.uint8)
    labels[0, 0] = 2
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "labels.png"
    Image.fromarray(labels).save(path, exif=exif)
    assert exif_orientation(path) == 6
    assert np.array_equal(read_label_image(path), labels)
    assert np.array_equal(read_id_image(path), labels)
