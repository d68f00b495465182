"""``predict``: image files, folders or globs → label PNGs, overlays and per-image statistics."""

from __future__ import annotations

import csv
import glob
import io
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crop_weed_seg.backends import BackendOptions
from crop_weed_seg.classes import CLASS_NAMES, WEED
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.image_files import (
    IMAGE_SUFFIXES,
    read_rgb,
    write_bytes_atomic,
    write_image_atomic,
)
from crop_weed_seg.perception.segmenter import Segmenter
from crop_weed_seg.perception.tiling import TiledSegmenter, tiled_predictor
from crop_weed_seg.perception.visualize import overlay

#: Weed blobs smaller than this share of the frame are not counted as plants (noise).
MIN_WEED_FRACTION = 2e-5


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns → image paths, in order."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            paths.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matches:
                raise ConfigError(f"{item}: no such file or folder, and no file matches it")
            paths += [m for m in matches if m.suffix.lower() in IMAGE_SUFFIXES]
    if not paths:
        raise ConfigError(f"no images found in {inputs}")
    return paths


def count_weeds(labels: np.ndarray) -> int:
    """Connected weed regions larger than MIN_WEED_FRACTION of the frame."""
    mask = (labels == WEED).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    min_area = max(4, int(MIN_WEED_FRACTION * labels.size))
    return int((stats[1:, cv2.CC_STAT_AREA] >= min_area).sum()) if n > 1 else 0


def coverage(labels: np.ndarray) -> dict[str, float]:
    counts = np.bincount(labels.reshape(-1), minlength=len(CLASS_NAMES))[: len(CLASS_NAMES)]
    return {name: float(c) / labels.size for name, c in zip(CLASS_NAMES, counts)}


def predict_files(model: str | Path, inputs: list[str], out: Path, progress: bool = False,
                  backend: str = "auto", options: BackendOptions = BackendOptions(),
                  tiles: str = "auto", tile_scale: float | None = None
                  ) -> list[dict[str, Any]]:
    """Segment every input image (read upright by its EXIF orientation); write ``labels/``,
    ``overlays/``, ``stats.json``, ``stats.csv`` under ``out`` and return the per-image rows.

    ``tiles`` (auto, off or RxC) and ``tile_scale``: photos much larger than the model input
    are segmented as blended tiles (:mod:`crop_weed_seg.perception.tiling`); each row says the
    grid."""
    predictor = tiled_predictor(model, backend, options, tiles, tile_scale)
    paths = expand_inputs(inputs)
    rows: list[dict[str, Any]] = []
    iterator: Any = paths
    if progress and len(paths) > 1:
        from tqdm import tqdm

        iterator = tqdm(paths, desc="predict", unit="img", leave=False)
    for path in iterator:
        rgb = read_rgb(path)
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        grid = "1x1"
        if isinstance(predictor, (Segmenter, TiledSegmenter)):
            result = predictor.segment(rgb, "RGB", want_confidence=False)
            if isinstance(predictor, TiledSegmenter) and predictor.last_plan is not None:
                grid = predictor.last_plan.grid
            labels, shares = result.labels, result.coverage
            timings = {"preprocess_ms": result.timings.preprocess_ms,
                       "infer_ms": result.timings.infer_ms,
                       "postprocess_ms": result.timings.postprocess_ms}
        else:
            labels = predictor.predict(rgb)
            shares = coverage(labels)
        timings["total_ms"] = (time.perf_counter() - t0) * 1000.0
        write_image_atomic(out / "labels" / f"{path.stem}.png", labels, rgb=False)
        write_image_atomic(out / "overlays" / f"{path.stem}.png", overlay(rgb, labels))
        rows.append({"image": str(path), "height": rgb.shape[0], "width": rgb.shape[1],
                     "tiles": grid, "coverage": shares, "weed_count": count_weeds(labels),
                     **{k: round(v, 3) for k, v in timings.items()}})
    write_bytes_atomic(out / "stats.json", (json.dumps(
        {"model": str(model), "images": rows}, indent=2) + "\n").encode())
    buf = io.StringIO()
    writer = csv.writer(buf)
    timing_keys = ["preprocess_ms", "infer_ms", "postprocess_ms", "total_ms"]
    writer.writerow(["image", "height", "width"] + [f"{n}_coverage" for n in CLASS_NAMES] +
                    ["weed_count"] + timing_keys)
    for r in rows:
        writer.writerow([r["image"], r["height"], r["width"]] +
                        [f"{r['coverage'][n]:.6f}" for n in CLASS_NAMES] +
                        [r["weed_count"]] + [r.get(k, "") for k in timing_keys])
    write_bytes_atomic(out / "stats.csv", buf.getvalue().encode())
    return rows
