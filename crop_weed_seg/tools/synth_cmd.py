"""``crop-weed-seg synth``: a synthetic field dataset (images + exact labels) in the folder
layout, optionally with a PNG sheet of the first frames above their label overlays."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crop_weed_seg.data.datasets import open_dataset
from crop_weed_seg.image_files import write_image_atomic
from crop_weed_seg.perception.visualize import contact_sheet, overlay
from crop_weed_seg.synthetic import PRESETS
from crop_weed_seg.synthetic.dataset_writer import write_dataset
from crop_weed_seg.synthetic.field import config_with_size
from crop_weed_seg.tools.cli_options import parse_size

HELP = "write a synthetic field dataset (images + exact labels)"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser("synth", help=HELP)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", choices=("train", "heldout"), default="train",
                   help="heldout adds a weed morphology and lighting the train preset never has")
    p.add_argument("--size", type=parse_size, default=(512, 512), help="HxW (default 512x512)")
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    p.add_argument("--sheet", type=Path, default=None,
                   help="also write a PNG of the first frames above their label overlays")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    config = config_with_size(PRESETS[args.preset], *args.size)
    t0 = time.monotonic()
    write_dataset(args.out, config, args.seed, args.count, workers=args.workers,
                  preset=args.preset, progress=not args.quiet)
    dt = time.monotonic() - t0
    if args.sheet:
        write_sheet(args.out, min(args.count, 8), args.sheet)
        print(f"wrote example sheet {args.sheet}")
    print(f"wrote {args.count} frames ({args.size[0]}x{args.size[1]}, preset {args.preset}, "
          f"seed {args.seed}) to {args.out} in {dt:.1f} s ({args.count / max(dt, 1e-9):.1f}/s)")
    return 0


def write_sheet(dataset_root: Path, count: int, path: Path) -> None:
    """Frames on top, their label overlays below, ``count`` columns."""
    data = open_dataset(dataset_root, "folder")
    frames = [data[i] for i in range(count)]
    tiles = [f[0] for f in frames] + [overlay(f[0], f[1], alpha=0.6, blend_soil=False)
                                      for f in frames]
    tiles = [cv2.resize(t, (256, 256 * t.shape[0] // t.shape[1]), interpolation=cv2.INTER_AREA)
             for t in tiles]
    sheet = contact_sheet(tiles, columns=count)
    write_image_atomic(path, np.ascontiguousarray(sheet))
