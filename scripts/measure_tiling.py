#!/usr/bin/env python3
"""Vegetation and weed IoU of a model on large photos, whole versus tiled (docs/TILING.md).

Large real photos with labels are not in the repository; this uses a folder of colour-mask
labelled photos (the Peanut dataset layout: ``images/NNNN.jpg`` and ``labels/NNNN.png``, black
(0,0,0) soil, green (0,255,0) crop, red (255,0,0) weed; other colours are ignored) and, with
``--upsample``, enlarges each photo (bicubic) and its labels (nearest) to stand in for a
high-resolution camera. Every configuration sees the same images.

    .venv/bin/python scripts/measure_tiling.py --model models/default \\
        --data datasets/peanut.yaml:test --count 40 --upsample 3 --json /tmp/tiling.json

Configurations (``--configs``, comma-separated): ``off``; ``auto`` (the package default);
``RxC`` (a fixed grid); ``scale=S`` (auto tiling with --tile-scale S); any of them followed by
``/centre``: hard seams (each pixel from the tile it lies deepest in) instead of the weighted
cross-fade.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crop_weed_seg.backends import BackendOptions  # noqa: E402
from crop_weed_seg.data.metrics import ConfusionAccumulator  # noqa: E402
from crop_weed_seg.perception.segmenter import Segmenter  # noqa: E402
from crop_weed_seg.perception.tiling import DEFAULT_TILE_SCALE, TiledSegmenter  # noqa: E402
from crop_weed_seg.tools.machine import cpu_model  # noqa: E402

COLOURS = {(0, 0, 0): 0, (0, 255, 0): 1, (255, 0, 0): 2}


def make_tiler(segmenter: Segmenter, config: str) -> TiledSegmenter:
    """``off``, ``auto``, ``RxC`` or ``scale=S``, optionally followed by ``/centre`` (the hard
    seam blending instead of the weighted cross-fade)."""
    config, _, blend = config.partition("/")
    blend = blend or "weighted"
    if config.startswith("scale="):
        return TiledSegmenter(segmenter, "auto", float(config.split("=", 1)[1]), blend=blend)
    return TiledSegmenter(segmenter, config, blend=blend)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "default")
    ap.add_argument("--data", default=str(REPO / "datasets/peanut.yaml:test"),
                    help="PATH[:SPLIT] any dataset the package opens (default: the Peanut test "
                         "split, which no shipped model trained on)")
    ap.add_argument("--count", type=int, default=40, help="first N images (sorted by name)")
    ap.add_argument("--upsample", type=float, default=3.0)
    ap.add_argument("--configs", default="off,auto,2x2,3x3,4x4,scale=1,scale=1.5,scale=3")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from crop_weed_seg.data.datasets import open_source

    dataset = open_source(args.data)
    stems = [s.stem for s in dataset.samples][: args.count]
    if not stems:
        raise SystemExit(f"{args.data}: no images")
    segmenter = Segmenter(args.model, args.backend, BackendOptions(threads=args.threads))
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    tilers = {c: make_tiler(segmenter, c) for c in configs}
    acc = {c: ConfusionAccumulator() for c in configs}
    seconds = {c: 0.0 for c in configs}
    grids: dict[str, set[str]] = {c: set() for c in configs}
    size = None
    for i in range(len(stems)):
        rgb, truth = dataset[i]
        if args.upsample != 1.0:
            h, w = (round(v * args.upsample) for v in rgb.shape[:2])
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_CUBIC)
            truth = cv2.resize(truth, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
        size = rgb.shape[:2]
        for c in configs:
            t0 = time.perf_counter()
            pred = tilers[c].predict(rgb)
            seconds[c] += time.perf_counter() - t0
            grids[c].add(tilers[c].last_plan.grid if tilers[c].last_plan else "?")
            acc[c].add(truth, pred)
        print(f"\r{i + 1}/{len(stems)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    rows = []
    print(f"model {args.model}, {len(stems)} images of {args.data} at {size[1]}x{size[0]} "
          f"(upsampled {args.upsample}x), default tile scale {DEFAULT_TILE_SCALE}")
    print(f"{'config':10s} {'grid':>6s} {'veg IoU':>8s} {'crop IoU':>9s} {'weed IoU':>9s} "
          f"{'mIoU':>7s} {'s/img':>6s}")
    for c in configs:
        s = acc[c].scores()
        row = {"config": c, "grid": ",".join(sorted(grids[c])),
               "vegetation_iou": round(s.vegetation_iou, 4), "iou": {k: round(v, 4) for k, v
                                                                      in s.iou.items()},
               "miou": round(s.miou, 4), "seconds_per_image": round(seconds[c] / len(stems), 3)}
        rows.append(row)
        print(f"{c:10s} {row['grid']:>6s} {s.vegetation_iou:8.4f} {s.iou['crop']:9.4f} "
              f"{s.iou['weed']:9.4f} {s.miou:7.4f} {row['seconds_per_image']:6.2f}")
    if args.json:
        doc = {"date": time.strftime("%Y-%m-%d"), "model": str(args.model),
               "data": str(args.data), "images": stems, "upsample": args.upsample,
               "size_hw": list(size), "backend": segmenter.backend.detail,
               "machine": f"{cpu_model()} ({platform.machine()})", "results": rows}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
