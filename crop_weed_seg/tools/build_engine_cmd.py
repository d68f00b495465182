"""``crop-weed-seg build-engine``: build a model's TensorRT engine into the engine cache.

Like ``trtexec --onnx ... --saveEngine ...``, but under the cache key the node computes
(DESIGN.md §7), so the node finds the plan on its next start. Run it on the target device
(a Jetson with JetPack): a plan only works with the TensorRT version and GPU that built it.
After a build it prints the node parameters that select this engine (a params-file snippet,
``--ros-args -p`` and the launch arguments). ``--list`` shows what the cache holds and needs
no TensorRT.

The engine options and the node's parameters are one object
(:class:`~crop_weed_seg.backends.engine_options.EngineOptions`), so every engine built here
can be selected by the node.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from crop_weed_seg.backends.engine_cache import (
    CacheEntry,
    EngineCache,
    check_cache_dir,
    default_cache_dir,
)
from crop_weed_seg.backends.engine_options import (
    P_SETTINGS,
    EngineOptions,
    add_cli_arguments,
    from_cli,
)
from crop_weed_seg.backends.tensorrt_backend import build_engine  # imports TensorRT lazily
from crop_weed_seg.errors import CropWeedSegError
from crop_weed_seg.model.contract import ModelContract, load_model_contract

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
    add_cli_arguments(p)
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
    onnx = f"  from {info['onnx_file']}" if info.get("onnx_file") else ""
    typed = " strongly typed" if settings.get("strongly_typed") else ""
    return (f"{entry.model:<20} {entry.key[:16]:<16}  {settings.get('precision', '?') + extra:<9} "
            f"TensorRT {info.get('tensorrt_version', '?'):<10} {gpu:<24} {size:>10}  {date}"
            f"{typed}{onnx}  ({entry.sidecar_path.name})")


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
        options = from_cli(args)
        contract = load_model_contract(args.model)
        settings = options.settings(contract)
        options.onnx_path(contract)  # a missing --onnx is said before TensorRT is looked for
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
        key, status = build_engine(contract, settings, cache, progress=print, engine=options)
    except CropWeedSegError as exc:
        return _fail(str(exc))
    print(f"engine {status}: key {key}")
    print(f"  {cache.plan_path(contract.name, key)} ({settings.describe()})")
    print(node_parameters_text(options, contract, cache, key))
    return 0


def node_parameters(options: EngineOptions, contract: ModelContract,
                    cache: EngineCache) -> dict[str, object]:
    """The segmenter node's parameters that select the engine of ``options``: the model, the
    TensorRT backend, the cache folder (when not the default) and every engine parameter."""
    params: dict[str, object] = {"model_dir": str(contract.folder), "backend": "tensorrt"}
    if cache.dir != default_cache_dir().expanduser().resolve():
        params["engine_cache_dir"] = str(cache.dir)
    params.update(options.node_parameters(contract.folder))
    return params


def _ros_value(value: object) -> str:
    """A value as ``-p name:=value`` needs it (YAML, quoted where the shell would eat it)."""
    text = yaml.safe_dump(value, default_flow_style=True).splitlines()[0]
    return shlex.quote(text)


def node_parameters_text(options: EngineOptions, contract: ModelContract, cache: EngineCache,
                         key: str) -> str:
    """What to tell the node, three ways: a params-file snippet (every engine parameter), the
    ``--ros-args`` of ``ros2 run`` (those not at their defaults) and the launch arguments that
    name this engine's sidecar (``engine_settings``)."""
    params = node_parameters(options, contract, cache)
    defaults = EngineOptions().node_parameters()
    snippet = yaml.safe_dump({"/**/crop_weed_seg": {"ros__parameters": params}},
                             default_flow_style=False, sort_keys=False)
    changed = {name: value for name, value in params.items()
               if name not in defaults or value != defaults[name] or name == "precision"}
    ros_args = " ".join(f"-p {name}:={_ros_value(value)}" for name, value in changed.items())
    sidecar = cache.sidecar_path(contract.name, key)
    launch = (f"ros2 launch crop_weed_seg crop_weed_seg.launch.py model_dir:="
              f"{shlex.quote(str(contract.folder))} backend:=tensorrt "
              f"{P_SETTINGS}:={shlex.quote(str(sidecar))}")
    return "\n".join([
        "node parameters for this engine (the node computes the same key from them):",
        "  params file (e.g. config/crop_weed_seg.yaml):",
        *("    " + line for line in snippet.rstrip().splitlines()),
        "  ros2 run crop_weed_seg segmenter_node --ros-args " + ros_args,
        f"  or name this engine's sidecar ({P_SETTINGS}: it decides every engine setting, and "
        "its folder is the engine cache unless engine_cache_dir is set):",
        "    " + launch,
    ])

