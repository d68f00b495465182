"""Supervisely projects: ``meta.json`` (classes) and one folder per dataset holding
``img/<name>`` and ``ann/<name>.json``. Objects are bitmaps (base64 of a zlib-compressed PNG
placed at ``origin`` [x, y]; its alpha channel, or its only channel, > 0 is the mask),
polygons (``points.exterior`` with optional ``interior`` holes) or rectangles; they are painted
in file order, later objects on top. Pixels no object covers take the class map's
``unlabelled`` target (soil unless said otherwise). The project's dataset folders are its splits
(EWS: ``train`` and ``validation``)."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from crop_weed_seg.data.class_map import ClassMap
from crop_weed_seg.data.sample import Sample, visible_files
from crop_weed_seg.errors import ConfigError, DatasetError

META_FILE = "meta.json"


def is_project(root: Path) -> bool:
    return (root / META_FILE).is_file() and any(
        (d / "ann").is_dir() for d in root.iterdir() if d.is_dir())


def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read {what} ({exc})") from exc


def class_titles(root: Path) -> list[str]:
    """Class titles declared in ``meta.json``."""
    meta = _load_json(root / META_FILE, "Supervisely meta.json")
    classes = meta.get("classes") if isinstance(meta, dict) else None
    if not isinstance(classes, list):
        raise DatasetError(f"{root / META_FILE}: no 'classes' list")
    return [str(c.get("title")) for c in classes if isinstance(c, dict)]


def datasets_of(root: Path) -> list[str]:
    return sorted(d.name for d in root.iterdir() if d.is_dir() and (d / "ann").is_dir())


def list_samples(root: Path, split: str | None) -> list[Sample]:
    if not (root / META_FILE).is_file():
        raise DatasetError(f"{root}: not a Supervisely project (no {META_FILE})")
    names = datasets_of(root)
    if not names:
        raise DatasetError(f"{root}: Supervisely project has no <dataset>/ann folders")
    if split is not None and split not in names:
        raise ConfigError(f"{root}: Supervisely project has datasets {', '.join(names)}; "
                          f"split {split!r} is not one of them")
    samples: list[Sample] = []
    for name in [split] if split is not None else names:
        img_dir, ann_dir = root / name / "img", root / name / "ann"
        if not img_dir.is_dir():
            raise DatasetError(f"{img_dir}: folder not found (Supervisely dataset {name!r})")
        for image in visible_files(img_dir):
            ann = ann_dir / f"{image.name}.json"
            if not ann.is_file():
                raise DatasetError(f"{image}: image has no annotation; expected {ann}")
            samples.append(Sample(f"{name}/{image.stem}", image, ann))
    if not samples:
        raise DatasetError(f"{root}: no images found; the dataset is empty")
    return samples


def _bitmap_mask(obj: dict[str, Any], path: Path) -> tuple[np.ndarray, int, int]:
    try:
        raw = zlib.decompress(base64.b64decode(obj["bitmap"]["data"]))
        x0, y0 = (int(v) for v in obj["bitmap"]["origin"])
    except (KeyError, TypeError, ValueError, zlib.error) as exc:
        raise DatasetError(f"{path}: bitmap object {obj.get('id')} cannot be decoded ({exc})") \
            from exc
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(f"{path}: bitmap object {obj.get('id')} is not a PNG")
    if image.ndim == 3:
        mask = image[:, :, 3] > 0 if image.shape[2] == 4 else image.max(axis=2) > 0
    else:
        mask = image > 0
    return mask, x0, y0


def _polygon_mask(obj: dict[str, Any], shape: tuple[int, int], path: Path) -> np.ndarray:
    points = obj.get("points") or {}
    try:
        exterior = np.asarray(points["exterior"], dtype=np.float64)
        interiors = [np.asarray(p, dtype=np.float64) for p in points.get("interior", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: object {obj.get('id')} has no valid points ({exc})") from exc
    mask = np.zeros(shape, np.uint8)
    if obj.get("geometryType") == "rectangle":
        (x0, y0), (x1, y1) = exterior[:2]
        mask[int(round(min(y0, y1))):int(round(max(y0, y1))) + 1,
             int(round(min(x0, x1))):int(round(max(x0, x1))) + 1] = 1
        return mask.astype(bool)
    if exterior.ndim != 2 or len(exterior) < 3:
        raise DatasetError(f"{path}: polygon object {obj.get('id')} has fewer than 3 points")
    cv2.fillPoly(mask, [np.round(exterior).astype(np.int32)], 1)
    for hole in interiors:
        if hole.ndim == 2 and len(hole) >= 3:
            cv2.fillPoly(mask, [np.round(hole).astype(np.int32)], 0)
    return mask.astype(bool)


def decode_annotation(path: Path, class_map: ClassMap) -> np.ndarray:
    """One Supervisely annotation JSON -> (H, W) uint8 label ids."""
    ann = _load_json(path, "Supervisely annotation")
    try:
        h, w = int(ann["size"]["height"]), int(ann["size"]["width"])
        objects = list(ann.get("objects", []))
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path}: annotation has no valid size ({exc})") from exc
    labels = np.full((h, w), class_map.unlabelled, np.uint8)
    for obj in objects:
        value = class_map.id_for_name(str(obj.get("classTitle")), path)
        kind = obj.get("geometryType")
        if kind == "bitmap":
            mask, x0, y0 = _bitmap_mask(obj, path)
            mh, mw = mask.shape
            if x0 < 0 or y0 < 0 or y0 + mh > h or x0 + mw > w:
                raise DatasetError(f"{path}: bitmap object {obj.get('id')} ({mw}x{mh} at "
                                   f"{x0},{y0}) lies outside the {w}x{h} image")
            region = labels[y0:y0 + mh, x0:x0 + mw]
            region[mask] = value
        elif kind in ("polygon", "rectangle"):
            labels[_polygon_mask(obj, (h, w), path)] = value
        else:
            raise DatasetError(f"{path}: object {obj.get('id')} has geometry {kind!r}; "
                               "supported: bitmap, polygon, rectangle")
    return labels


def decoder(class_map: ClassMap | None, root: Path) -> Callable[[Path], np.ndarray]:
    cmap = class_map or ClassMap()
    for title in class_titles(root):  # fail early, naming meta.json, not the 1st annotation
        cmap.id_for_name(title, root / META_FILE)
    return lambda path: decode_annotation(path, cmap)
