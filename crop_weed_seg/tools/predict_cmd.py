"""``crop-weed-seg predict``: images, folders or globs -> label PNGs, overlays and per-image
statistics (stats.json, stats.csv), through :mod:`crop_weed_seg.tools.predict_files`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crop_weed_seg.backends import BackendOptions
from crop_weed_seg.tools.cli_options import add_tile_options
from crop_weed_seg.tools.predict_files import predict_files

HELP = "images/folders/globs -> label PNGs, overlays, stats"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser("predict", help=HELP)
    p.add_argument("inputs", nargs="+")
    p.add_argument("--model", default="models/default", help="model folder, or 'classical'")
    p.add_argument("--out", type=Path, default=Path("out"))
    p.add_argument("--backend", default="auto", help="auto, onnxruntime or torch")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    add_tile_options(p)
    p.add_argument("--quiet", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    rows = predict_files(args.model, args.inputs, args.out, progress=not args.quiet,
                         backend=args.backend, options=BackendOptions(device=args.device),
                         tiles=args.tiles, tile_scale=args.tile_scale)
    for row in rows:
        cov = "  ".join(f"{k} {v * 100:5.1f}%" for k, v in row["coverage"].items())
        print(f"{row['image']}: {cov}  weeds {row['weed_count']}")
    print(f"wrote labels, overlays and stats.json/stats.csv for {len(rows)} images to {args.out}")
    return 0
