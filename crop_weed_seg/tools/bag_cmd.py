"""``crop-weed-seg bag IN OUT``: segment every frame of a rosbag2 offline and write a new bag with
the original messages plus ``<camera>/labels``, ``<camera>/spray_targets`` (and ``overlay``).

Core: :func:`crop_weed_seg.bags.processing.process_bag` (no ROS installation needed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crop_weed_seg.bags.processing import process_bag
from crop_weed_seg.image_files import write_bytes_atomic

HELP = "process a rosbag2 offline: labels and spray targets into a new bag"
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "default"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser("bag", help=HELP)
    p.add_argument("input", type=Path, metavar="IN", help="rosbag2 folder or .mcap/.db3 file")
    p.add_argument("output", type=Path, metavar="OUT", help="output bag folder (must not exist "
                   "unless --overwrite)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                   help="model folder (default: the shipped model)")
    p.add_argument("--backend", default="auto", help="inference backend (default auto)")
    p.add_argument("--image-topic", help="image topic (default: the bag's only camera; raw "
                   "Image preferred over its /compressed)")
    p.add_argument("--camera-info-topic", help="CameraInfo topic (default <camera>/camera_info, "
                   "else the only one)")
    p.add_argument("--odom-topic", help="nav_msgs/Odometry topic (default: the only one, else "
                   "/odom)")
    p.add_argument("--truth-topic", help="ground-truth labels for --export-frames (default "
                   "<camera>/labels_truth, else the only topic ending in labels_truth)")
    p.add_argument("--overlay", action="store_true", help="also write <camera>/overlay (bgr8)")
    p.add_argument("--target-frame", default="base_link", help="frame of spray_targets")
    p.add_argument("--export-frames", type=Path, metavar="DIR",
                   help="also write the frames (and ground truth) as images/ + labels/ PNGs")
    p.add_argument("--csv", type=Path, metavar="FILE", help="per-frame CSV: stamp, coverage, "
                   "weed targets, stage timings")
    p.add_argument("--json", type=Path, metavar="FILE", help="the report as JSON")
    p.add_argument("--storage", choices=("sqlite3", "mcap"),
                   help="output storage format (default: as the input)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (only "
                   "once the new bag is complete)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    bar = None
    progress = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(desc="bag", unit="msg", leave=False)

        def progress(done: int, total: int) -> None:
            if bar.total != total and total:
                bar.total = total
            bar.update(done - bar.n)

    try:
        report = process_bag(args.input, args.output, model_dir=args.model,
                             backend=args.backend, image_topic=args.image_topic,
                             camera_info_topic=args.camera_info_topic,
                             odom_topic=args.odom_topic, truth_topic=args.truth_topic,
                             overlay=args.overlay, target_frame=args.target_frame,
                             export_frames=args.export_frames, csv_path=args.csv,
                             storage=args.storage, overwrite=args.overwrite, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    print(report.summary())
    if args.json:
        write_bytes_atomic(args.json, (json.dumps(report.to_json(), indent=2) + "\n").encode())
    return 0 if report.processed or not report.frames else 1
