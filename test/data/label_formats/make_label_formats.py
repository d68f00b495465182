"""Write the tiny hand-made label exports under test/data/label_formats/ (a few KB in all).

* ``cvat/`` - a CVAT "Segmentation mask 1.1" export: two 40x30 images (one JPEG, one PNG),
  an RGB mask and a palette mask, ``labelmap.txt``, ``ImageSets/Segmentation/{train,val}.txt``.
* ``labelme/`` - two LabelMe JSON files (one image beside its JSON, one in ``pics/``) with
  polygons, rectangles, a circle, a line, a linestrip, a point and a hole cut by a later shape.

Both carry a ``classes.yaml`` (peanut: crop, grass: weed, plant: vegetation, stone: ignore).
test/test_label_formats.py asserts the geometry written here. Regenerate on purpose only:
``.venv/bin/python test/data/label_formats/make_label_formats.py``.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
H, W = 30, 40
CLASSES_YAML = """\
classes:
  peanut: crop
  grass: weed
  plant: vegetation
  stone: ignore
"""
#: CVAT classes and their mask colours (RGB).
LABELMAP = {"background": (0, 0, 0), "peanut": (0, 200, 0), "grass": (250, 50, 50),
            "plant": (50, 50, 250), "stone": (128, 128, 128)}
SOIL_RGB = (120, 90, 60)
LEAF_RGB = {"peanut": (40, 170, 40), "grass": (90, 200, 60), "plant": (60, 150, 50),
            "stone": (150, 150, 150)}


def _write_bgr(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if path.suffix == ".jpg" else \
        [cv2.IMWRITE_PNG_COMPRESSION, 9]
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)


def _write_palette_png(path: Path, index: np.ndarray, palette: list[tuple[int, int, int]]) -> None:
    """An 8-bit palette PNG (colour type 3), as CVAT and VOC tools write masks."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    h, w = index.shape
    raw = b"".join(b"\x00" + index[y].astype(np.uint8).tobytes() for y in range(h))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)) \
        + chunk(b"PLTE", b"".join(bytes(c) for c in palette)) \
        + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


def _image_from(names: np.ndarray) -> np.ndarray:
    """A field photo whose plants lie where the class-name grid says (soil elsewhere)."""
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[:] = SOIL_RGB
    for name, colour in LEAF_RGB.items():
        rgb[names == name] = colour
    return rgb


def make_cvat(root: Path) -> None:
    # field_a: peanut square rows 4-13 x cols 4-13, grass block rows 16-25 x cols 22-35,
    # plant rows 2-7 x cols 28-37, stone rows 24-27 x cols 2-5.
    a = np.full((H, W), "background", object)
    a[4:14, 4:14] = "peanut"
    a[16:26, 22:36] = "grass"
    a[2:8, 28:38] = "plant"
    a[24:28, 2:6] = "stone"
    # field_b: grass rows 0-9 x cols 0-19 with a peanut square rows 3-6 x cols 3-6 inside,
    # plant rows 20-29 x cols 30-39.
    b = np.full((H, W), "background", object)
    b[0:10, 0:20] = "grass"
    b[3:7, 3:7] = "peanut"
    b[20:30, 30:40] = "plant"
    _write_bgr(root / "JPEGImages/field_a.jpg", _image_from(a))
    _write_bgr(root / "JPEGImages/field_b.png", _image_from(b))
    mask_a = np.zeros((H, W, 3), np.uint8)
    for name, colour in LABELMAP.items():
        mask_a[a == name] = colour
    _write_bgr(root / "SegmentationClass/field_a.png", mask_a)
    order = list(LABELMAP)
    index_b = np.vectorize(order.index)(b).astype(np.uint8)
    _write_palette_png(root / "SegmentationClass/field_b.png", index_b,
                       [LABELMAP[n] for n in order])
    (root / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\n"
        + "".join(f"{n}:{r},{g},{bl}::\n" for n, (r, g, bl) in LABELMAP.items()))
    splits = root / "ImageSets/Segmentation"
    splits.mkdir(parents=True, exist_ok=True)
    (splits / "train.txt").write_text("field_a\n")
    (splits / "val.txt").write_text("field_b\n")
    (root / "classes.yaml").write_text(CLASSES_YAML)


def _shape(label: str, kind: str, points: list[list[float]]) -> dict[str, object]:
    return {"label": label, "points": points, "group_id": None, "description": "",
            "shape_type": kind, "flags": {}}


def make_labelme(root: Path) -> None:
    c_shapes = [
        # peanut triangle (2,2) (18,2) (2,18); a grass rectangle rows 4-12 x cols 24-36 with a
        # background rectangle rows 7-9 x cols 28-32 drawn after it (a hole); a plant circle
        # centred (10,23) radius 4; a grass line along row 28; a point that paints nothing.
        _shape("peanut", "polygon", [[2, 2], [18, 2], [2, 18]]),
        _shape("grass", "rectangle", [[36, 12], [24, 4]]),
        _shape("background", "rectangle", [[28, 7], [32, 9]]),
        _shape("plant", "circle", [[10, 23], [14, 23]]),
        _shape("grass", "line", [[20, 28], [38, 28]]),
        _shape("stone", "point", [[35, 20]]),
    ]
    d_shapes = [
        # peanut rectangle rows 5-20 x cols 5-20, then a grass polygon (square rows 15-25 x
        # cols 15-25) on top of its corner; a stone linestrip along column 35 then row 2.
        _shape("peanut", "rectangle", [[5, 5], [20, 20]]),
        _shape("grass", "polygon", [[15, 15], [25, 15], [25, 25], [15, 25]]),
        _shape("stone", "linestrip", [[35, 25], [35, 2], [30, 2]]),
    ]
    for stem, image_path, shapes in (("field_c", "field_c.jpg", c_shapes),
                                     ("field_d", "pics/field_d.png", d_shapes)):
        names = np.full((H, W), "soil", object)
        names[2:14, 2:14] = "peanut"
        names[16:26, 16:26] = "grass"
        _write_bgr(root / image_path, _image_from(names))
        doc: dict[str, object] = {"version": "5.4.1", "flags": {}, "shapes": shapes,
                                  "imagePath": image_path, "imageData": None,
                                  "imageHeight": H, "imageWidth": W}
        (root / f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (root / "classes.yaml").write_text(CLASSES_YAML)


def main() -> None:
    for name, make in (("cvat", make_cvat), ("labelme", make_labelme)):
        shutil.rmtree(HERE / name, ignore_errors=True)
        make(HERE / name)
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"wrote {HERE} ({total} bytes)")


if __name__ == "__main__":
    main()
