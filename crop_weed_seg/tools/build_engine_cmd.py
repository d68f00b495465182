"""``crop-weed-seg build-engine``: build a model's TensorRT engine into the engine cache.

Like ``trtexec --onnx ... --saveEngine ...``, but under the cache key the node computes
(DESIGN.md §7), so the node finds the plan on its next start. Run it on the target device
(a Jetson with JetPack): a plan only works with the TensorRT version and GPU that built it.
``--list`` shows what the cache holds and needs no TensorRT.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from crop_weed_seg.backends.engine_cache import (
    PRECISIONS,
    CacheEntry,
    EngineCache,
    EngineSettings,
    check_cache_dir,
    default_cache_dir,
    parse_shapes,
)
from crop_weed_seg.backends.tensorrt_backend import build_engine  # imports TensorRT lazily
from crop_weed_seg.errors import ConfigError, CropWeedSegError
from crop_weed_seg.model.contract import load_model_contract

HELP = "build a model's TensorRT engine into the engine cache"

NO_TENSORRT = ("TensorRT is not installed here: build engines on the target device (JetPack "
               "ships TensorRT for the system Python; use a venv with --system-site-packages), "
               "then run this command there")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "build-engine", help=HELP,
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--model", type=Path, default=None,
                   help="model folder (model.yaml + ONNX); required unless --list")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="engine precision (default fp32, as the node's default)")
    p.add_argument("--dla-core", type=int, default=None,
                   help="build for this DLA core (Orin AGX/NX; fp16/int8 and a fixed input "
                        "size only; layers the DLA cannot run fall back to the GPU)")
    p.add_argument("--shapes", default=None, metavar="MINHxMINW,OPTHxOPTW,MAXHxMAXW",
                   help="optimisation profile of a dynamic-size model (default: the contract's "
                        "input.size for all three)")
    p.add_argument("--workspace-mb", type=int, default=1024,
                   help="builder workspace limit [MiB] (default 1024)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help=f"engine cache folder (default {default_cache_dir()})")
    p.add_argument("--force", action="store_true",
                   help="rebuild even if the cache holds a usable plan")
    p.add_argument("--list", action="store_true",
                   help="list the plans in the cache (no TensorRT needed) and exit")
    return p


def _fail(message: str) -> int:
    print(f"crop-weed-seg build-engine: error: {message}", file=sys.stderr)
    return 2


def format_entry(entry: CacheEntry) -> str:
    """One line: model, key16, precision, TensorRT version, GPU, size, date."""
    info = entry.info
    if "error" in info:
        return f"{entry.model:<20} {entry.key[:16]:<16}  {info['error']} ({entry.sidecar_path})"
    settings = info.get("settings") or {}
    device = info.get("device") or {}
    extra = f" DLA{settings['dla_core']}" if settings.get("dla_core") is not None else ""
    size = f"{int(info.get('plan_bytes', 0)) / 1e6:.1f} MB" if entry.plan_present else "no plan"
    created = info.get("created_unix")
    date = (datetime.fromtimestamp(float(created)).strftime("%Y-%m-%d %H:%M")
            if created is not None else "?")
    gpu = f"{device.get('name', '?')} (sm {device.get('compute_capability', '?')})"
    return (f"{entry.model:<20} {entry.key[:16]:<16}  {settings.get('precision', '?') + extra:<9} "
            f"TensorRT {info.get('tensorrt_version', '?'):<10} {gpu:<24} {size:>10}  {date}")


def _list(cache_dir: Path) -> int:
    cache = EngineCache(cache_dir, read_only=True, allow_any=True)  # reading any folder is safe
    entries = cache.entries()
    if not entries:
        print(f"no engines in {cache.dir}")
        return 0
    print(f"{len(entries)} engine(s) in {cache.dir}:")
    for entry in entries:
        print("  " + format_entry(entry))
    return 0


def run(args: argparse.Namespace) -> int:
    cache_dir = args.cache_dir if args.cache_dir is not None else default_cache_dir()
    try:
        if args.list:
            return _list(cache_dir)
        if args.model is None:
            return _fail("--model is required (or --list to show the cache)")
        if args.workspace_mb < 1:
            raise ConfigError(f"--workspace-mb must be ≥ 1, got {args.workspace_mb}")
        contract = load_model_contract(args.model)
        shapes = parse_shapes(args.shapes) if args.shapes else None
        settings = EngineSettings.for_model(contract.input.size, contract.dynamic_size,
                                            shapes=shapes, precision=args.precision,
                                            dla_core=args.dla_core,
                                            workspace_bytes=args.workspace_mb << 20)
        check_cache_dir(cache_dir, create=False)  # refuse /tmp or the install tree before TRT
    except CropWeedSegError as exc:
        return _fail(str(exc))
    try:
        importlib.import_module("tensorrt")
    except ImportError as exc:
        print(f"{NO_TENSORRT} ({exc})", file=sys.stderr)
        return 2
    try:
        cache = EngineCache(cache_dir, force_rebuild=args.force)
        key, status = build_engine(contract, settings, cache, progress=print)
    except CropWeedSegError as exc:
        return _fail(str(exc))
    print(f"engine {status}: key {key}")
    print(f"  {cache.plan_path(contract.name, key)} ({settings.describe()})")
    return 0

