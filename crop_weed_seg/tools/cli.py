"""``crop-weed-seg``: synth, train, eval, export, info, predict.

The entry point only: each subcommand is a module ``crop_weed_seg.tools.<name>_cmd`` with
``add_parser(subparsers)`` (its options) and ``run(args) -> int``, listed in :data:`COMMANDS`.
A run imports the one module it needs (``importlib``, in :func:`command_module`), so ``--help``
and the light subcommands never load torch, ONNX Runtime or matplotlib.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterable
from types import ModuleType

from crop_weed_seg.errors import CropWeedSegError

#: Subcommand -> (its module in crop_weed_seg.tools, its line in ``crop-weed-seg --help``), in
#: the order of that list. The line is the module's ``HELP`` (test/tools/test_cli.py checks),
#: kept here so the list needs no subcommand imported.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth_cmd", "write a synthetic field dataset (images + exact labels)"),
    "train": ("train_cmd", "train a model; writes a complete model folder"),
    "eval": ("eval_cmd", "per-class IoU, mIoU, confusion matrix"),
    "export": ("export_cmd", "ONNX export from the folder's weights, with parity check"),
    "info": ("info_cmd", "model contract, available runtimes, versions"),
    "predict": ("predict_cmd", "images/folders/globs -> label PNGs, overlays, stats"),
    "bench": ("bench_cmd", "latency/throughput per backend and input size"),
    "simulate": ("simulate_cmd",
                 "simulated drive: weed/crop hit rates, double sprays, sprayed area"),
    "gazebo-world": ("gazebo_world_cmd", "Gazebo Harmonic world of a simulated field, field.json"),
    "bag": ("bag_cmd", "process a rosbag2 offline: labels and spray targets into a new bag"),
    "build-engine": ("build_engine_cmd", "build a model's TensorRT engine into the engine cache"),
    "quantize": ("quantize_cmd",
                 "FP16 or INT8 (Q/DQ) ONNX for TensorRT, checked against FP32 on CPU"),
}


def command_module(name: str) -> ModuleType:
    """The module of subcommand ``name`` (imported now: the one place subcommands are)."""
    return importlib.import_module(f"crop_weed_seg.tools.{COMMANDS[name][0]}")


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``crop-weed-seg`` parser. The subcommands in ``commands`` (default: all) get their
    options from their module; the others only their name and help line, importing nothing."""
    wanted = set(COMMANDS if commands is None else commands)
    parser = argparse.ArgumentParser(prog="crop-weed-seg", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_line) in COMMANDS.items():
        if name in wanted:
            command_module(name).add_parser(sub)
        else:
            sub.add_parser(name, help=help_line)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The top level has no options but --help: the first other word names the subcommand.
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser([command] if command in COMMANDS else [])
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return int(command_module(args.command).run(args))
    except CropWeedSegError as exc:
        print(f"crop-weed-seg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crop-weed-seg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
