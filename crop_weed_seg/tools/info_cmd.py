"""``crop-weed-seg info``: versions of the runtimes installed here, the backends available, and
(with ``--model``) a model folder's contract and ONNX hash."""

from __future__ import annotations

import argparse
import importlib.util
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from crop_weed_seg import __version__
from crop_weed_seg.backends import available_backends
from crop_weed_seg.model.contract import load_model_contract, sha256_file

HELP = "model contract, available runtimes, versions"

#: Module -> the distribution whose version ``info`` prints.
DISTRIBUTIONS = {"onnxruntime": "onnxruntime", "torch": "torch", "tensorrt": "tensorrt",
                 "rclpy": "rclpy", "cv2": "opencv-python-headless", "numpy": "numpy"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser("info", help=HELP)
    p.add_argument("--model", type=Path, default=None)
    return p


def run(args: argparse.Namespace) -> int:
    print(f"crop_weed_seg {__version__} on Python {platform.python_version()}")
    for mod, dist in DISTRIBUTIONS.items():
        if importlib.util.find_spec(mod) is None:
            print(f"  {mod:12s} not installed")
            continue
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "installed (version unknown)"
        print(f"  {mod:12s} {version}")
    print(f"  backends available here, in auto order: {', '.join(available_backends())}")
    if args.model:
        c = load_model_contract(args.model, check_onnx=True)
        print(f"model {c.name} v{c.version} at {c.folder}")
        print(f"  classes {dict(enumerate(c.classes))}")
        print(f"  input '{c.input_name}' {c.input.size[0]}x{c.input.size[1]} "
              f"{c.input.channel_order} scale {c.input.scale:.6g} (dynamic size: {c.dynamic_size})")
        print(f"  outputs labels='{c.labels_output}' confidence='{c.confidence_output}'")
        print(f"  onnx {c.onnx_path.name} sha256 {sha256_file(c.onnx_path)}")
        for key, m in c.metrics.items():
            print(f"  metrics[{key}] mIoU {m['miou']} IoU {m['iou']}")
    return 0
