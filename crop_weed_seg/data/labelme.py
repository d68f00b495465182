"""LabelMe annotations: a folder of ``<stem>.json`` files, each naming its image by
``imagePath`` (relative to the JSON; Windows backslashes are accepted) and giving
``imageHeight``, ``imageWidth`` and a list of ``shapes`` (``label``, ``points``,
``shape_type``).

Shapes are painted in file order, later shapes on top (so a ``background`` polygon drawn after
a plant cuts a hole in it):

* ``polygon`` (also a missing or null ``shape_type``, as old LabelMe writes) - filled, 3+ points;
* ``rectangle`` - two opposite corners, filled, both corner pixels included;
* ``circle`` - the centre and a point on the rim, filled;
* ``line`` and ``linestrip`` - :data:`LINE_THICKNESS` (3) pixels wide: the 1-pixel
  8-connected line through the points, grown by a 3x3 square (a horizontal line covers
  3 rows; the ends stick out 1 pixel);
* ``point`` - ignored: a click marks a place, not an area, and painting a disc around it would
  invent label pixels (its label is not checked against the class map either).

Any other shape type (LabelMe's ``mask``, ``ai_polygon``...) is an error naming the file.
Coordinates are rounded to the nearest pixel. Pixels no shape covers take the class map's
``unlabelled`` target (soil unless said otherwise). Embedded ``imageData`` is not used: the image
file must exist. The folder has no splits of its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from crop_weed_seg.data.class_map import ClassMap
from crop_weed_seg.data.sample import Sample, visible_files
from crop_weed_seg.errors import ConfigError, DatasetError

#: Width in pixels of ``line`` and ``linestrip`` shapes.
LINE_THICKNESS = 3
FILLED_SHAPES: tuple[str, ...] = ("polygon", "rectangle", "circle")
LINE_SHAPES: tuple[str, ...] = ("line", "linestrip")
SHAPE_TYPES: tuple[str, ...] = (*FILLED_SHAPES, *LINE_SHAPES, "point")


def _json_files(root: Path) -> list[Path]:
    return [p for p in visible_files(root) if p.suffix.lower() == ".json"]


def is_folder(root: Path) -> bool:
    """``root`` holds ``*.json`` files, the first of which has a ``shapes`` key (only that one
    is read), and no ``images/`` folder."""
    if (root / "images").is_dir():
        return False
    files = _json_files(root)
    if not files:
        return False
    try:
        doc = json.loads(files[0].read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(doc, dict) and "shapes" in doc


def load_annotation(path: Path) -> dict[str, Any]:
    """A LabelMe JSON as a dict; a ``DatasetError`` naming ``path`` when it is unreadable, not
    JSON, or not LabelMe (no ``shapes`` list or no ``imagePath``)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read LabelMe annotation ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list) \
            or not isinstance(doc.get("imagePath"), str) or not doc["imagePath"].strip():
        raise DatasetError(f"{path}: not a LabelMe annotation (expected an object with a "
                           "'shapes' list and an 'imagePath')")
    return doc


def image_of(path: Path, doc: dict[str, Any]) -> Path:
    """The image file a LabelMe JSON names, relative to the JSON's folder."""
    return path.parent / doc["imagePath"].strip().replace("\\", "/")


def list_samples(root: Path, split: str | None) -> list[Sample]:
    if split is not None:
        raise ConfigError(f"{root}: a LabelMe folder has no splits of its own; a dataset "
                          f"description (YAML with splits:) gives one, got split {split!r}")
    files = _json_files(root)
    if not files:
        raise DatasetError(f"{root}: no LabelMe *.json files found; the dataset is empty")
    samples: list[Sample] = []
    for path in files:
        image = image_of(path, load_annotation(path))
        if not image.is_file():
            raise DatasetError(f"{path}: its imagePath {image} does not exist")
        samples.append(Sample(path.stem, image, path))
    return samples


def _points(shape: dict[str, Any], where: str) -> np.ndarray:
    try:
        points = np.asarray(shape["points"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: has no valid points ({exc})") from exc
    if points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise DatasetError(f"{where}: points must be a list of [x, y] pairs")
    return points


def _shape_mask(shape: dict[str, Any], kind: str, size: tuple[int, int],
                where: str) -> np.ndarray:
    points = _points(shape, where)
    need = {"polygon": 3, "rectangle": 2, "circle": 2, "line": 2, "linestrip": 2}[kind]
    if len(points) < need:
        raise DatasetError(f"{where}: a {kind} needs at least {need} points, got {len(points)}")
    mask = np.zeros(size, np.uint8)
    pixels = np.round(points).astype(np.int32)
    if kind == "polygon":
        cv2.fillPoly(mask, [pixels], 1)
    elif kind == "rectangle":
        (x0, y0), (x1, y1) = pixels[:2]
        mask[max(min(y0, y1), 0):max(y0, y1) + 1, max(min(x0, x1), 0):max(x0, x1) + 1] = 1
    elif kind == "circle":
        radius = int(round(float(np.hypot(*(points[1] - points[0])))))
        cv2.circle(mask, (int(pixels[0][0]), int(pixels[0][1])), radius, 1, thickness=-1)
    else:
        cv2.polylines(mask, [pixels if kind == "linestrip" else pixels[:2]], False, 1,
                      thickness=1, lineType=cv2.LINE_8)
        return cv2.dilate(mask, np.ones((LINE_THICKNESS, LINE_THICKNESS), np.uint8)) > 0
    return mask.astype(bool)


def decode_annotation(path: Path, class_map: ClassMap) -> np.ndarray:
    """One LabelMe JSON -> (H, W) uint8 label ids."""
    doc = load_annotation(path)
    try:
        h, w = int(doc["imageHeight"]), int(doc["imageWidth"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: no valid imageHeight/imageWidth ({exc})") from exc
    if h < 1 or w < 1:
        raise DatasetError(f"{path}: image size {w}x{h} (imageWidth x imageHeight) is empty")
    labels = np.full((h, w), class_map.unlabelled, np.uint8)
    for index, shape in enumerate(doc["shapes"]):
        where = f"{path}: shape {index}"
        if not isinstance(shape, dict):
            raise DatasetError(f"{where}: is not an object")
        kind = shape.get("shape_type") or "polygon"
        if kind == "point":
            continue
        if kind not in SHAPE_TYPES:
            raise DatasetError(f"{where}: shape_type {kind!r} is not supported; supported: "
                               f"{', '.join(SHAPE_TYPES)}")
        value = class_map.id_for_name(str(shape.get("label", "")), where)
        labels[_shape_mask(shape, kind, (h, w), where)] = value
    return labels


def decoder(class_map: ClassMap | None, root: Path) -> Callable[[Path], np.ndarray]:
    cmap = class_map or ClassMap()
    return lambda path: decode_annotation(path, cmap)
