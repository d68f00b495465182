"""``crop-weed-seg``: synth, train, eval, export, info, predict.

Each subcommand is a small function over the core; heavy imports (torch, onnxruntime,
matplotlib) happen inside the subcommand that needs them, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, CropWeedSegError

LAYOUT_CHOICES = ("auto", "folder", "phenobench", "cwfid", "bag")


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like HxW (e.g. 512x512), got {text!r}") \
            from None
    return h, w


# --- synth -------------------------------------------------------------------------------------

def cmd_synth(args: argparse.Namespace) -> int:
    from ..synthetic import PRESETS
    from ..synthetic.dataset_writer import write_dataset
    from ..synthetic.field import config_with_size

    config = config_with_size(PRESETS[args.preset], *args.size)
    t0 = time.monotonic()
    write_dataset(args.out, config, args.seed, args.count, workers=args.workers,
                  preset=args.preset, progress=not args.quiet)
    dt = time.monotonic() - t0
    if args.sheet:
        _write_sheet(args.out, min(args.count, 8), args.sheet)
        print(f"wrote example sheet {args.sheet}")
    print(f"wrote {args.count} frames ({args.size[0]}x{args.size[1]}, preset {args.preset}, "
          f"seed {args.seed}) to {args.out} in {dt:.1f} s ({args.count / max(dt, 1e-9):.1f}/s)")
    return 0


def _write_sheet(dataset_root: Path, count: int, path: Path) -> None:
    """Frames on top, their label overlays below, ``count`` columns."""
    import numpy as np

    from ..datasets import open_dataset
    from ..image_files import write_image_atomic
    from ..visualize import contact_sheet, overlay

    import cv2

    data = open_dataset(dataset_root, "folder")
    frames = [data[i] for i in range(count)]
    tiles = [f[0] for f in frames] + [overlay(f[0], f[1], alpha=0.6, blend_soil=False)
                                      for f in frames]
    tiles = [cv2.resize(t, (256, 256 * t.shape[0] // t.shape[1]), interpolation=cv2.INTER_AREA)
             for t in tiles]
    sheet = contact_sheet(tiles, columns=count)
    write_image_atomic(path, np.ascontiguousarray(sheet))


# --- train -------------------------------------------------------------------------------------

def _describe_data(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    info = path / "synth.json"
    if info.is_file():
        meta = json.loads(info.read_text())
        return {"path": str(path), "synthetic": True, "preset": meta.get("preset"),
                "seed": meta.get("seed"), "count": meta.get("count")}
    return {"path": str(path), "synthetic": False}


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from ..datasets import open_dataset
    from ..evaluation import evaluate
    from ..segmenter import load_predictor
    from ..nn.model_folder import add_metrics, write_model_folder
    from ..nn.training import TrainConfig, train
    from .model_card import write_model_card

    cfg = TrainConfig(
        data=args.data, out=args.out, layout=args.format, split=args.split,
        val_data=args.val_data, val_split=args.val_split, val_fraction=args.val_fraction,
        epochs=args.epochs, max_minutes=args.max_minutes, batch_size=args.batch_size,
        crop=args.crop, lr=args.lr, loss=args.loss, class_weighting=args.class_weighting,
        width=args.width, init=args.init,
        resume=args.resume, seed=args.seed, device=args.device, workers=args.workers,
        progress=not args.quiet, input_size=args.input_size).validate()
    test_set = open_dataset(args.test_data, "auto", args.test_split) if args.test_data else None
    result = train(cfg)
    command = "crop-weed-seg " + " ".join(shlex.quote(a) for a in args.argv)
    from ..machine import cpu_model

    hardware = (f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, "
                f"{result.environment['cpu_threads']} torch threads, no GPU used"
                if result.device == "cpu" else f"{result.environment['gpu']}, CPU {cpu_model()}")
    training = {
        "version": "1",
        "command": command,
        "reproduce": args.reproduce or [command],
        "data": _describe_data(args.data), "val_data": _describe_data(args.val_data),
        "test_data": _describe_data(args.test_data),
        "data_description": args.data_description or f"{args.data}",
        "config": cfg.to_json(), "class_weights": [round(w, 4) for w in result.class_weights],
        "train_images": result.train_images, "val_images": result.val_images,
        "epochs_run": len(result.history), "best_epoch": result.best_epoch,
        "minutes": round(result.elapsed_s / 60.0, 1), "device": result.device,
        "hardware": hardware,
        "software": f"Python {result.environment['python']}, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        "limits": args.limits or "",
    }
    folder = args.out / "model"
    metrics: dict[str, Any] = {"val": result.val_scores}
    write_model_folder(folder, args.name, result.net, result.network_config, result.input_spec,
                       training, metrics, result.history)
    if test_set is not None:  # scored through the exported ONNX, the path a user runs
        test_metrics = {
            "test": evaluate(load_predictor(folder).predict, test_set,
                             progress=not args.quiet, description="test"),
            "test_classical": evaluate(load_predictor("classical").predict, test_set,
                                       progress=not args.quiet, description="test classical"),
        }
        add_metrics(folder, test_metrics)
        metrics.update(test_metrics)
    write_model_card(folder)
    for key, scores in metrics.items():
        if scores is not None:
            print(f"{key}: mIoU {scores.miou:.4f}  " + "  ".join(
                f"{k} {v:.4f}" for k, v in scores.iou.items()) +
                f"  vegetation {scores.vegetation_iou:.4f}")
    print(f"model folder: {folder}")
    return 0


# --- eval --------------------------------------------------------------------------------------

def cmd_eval(args: argparse.Namespace) -> int:
    from ..datasets import open_dataset
    from ..evaluation import evaluate
    from ..segmenter import load_predictor
    from ..plots import plot_confusion

    dataset = open_dataset(args.data, args.format, args.split)
    predictor = load_predictor(args.model)
    scores = evaluate(predictor.predict, dataset, limit=args.limit, progress=not args.quiet)
    doc = scores.to_json()
    doc["model"] = str(args.model)
    doc["data"] = str(args.data)
    text = json.dumps(doc, indent=2)
    if args.json:
        from ..image_files import write_bytes_atomic

        write_bytes_atomic(args.json, (text + "\n").encode())
    if args.png:
        plot_confusion(scores.confusion, args.png, title=f"{predictor.name} on {args.data.name}")
    print(f"mIoU {scores.miou:.4f}  " + "  ".join(f"{k} {v:.4f}" for k, v in scores.iou.items())
          + f"  vegetation {scores.vegetation_iou:.4f}  pixel acc. {scores.pixel_accuracy:.4f}"
          f"  ({scores.images} images)")
    return 0


# --- export ------------------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from ..model_contract import load_model_contract
    from ..nn.export import export_onnx, onnx_parity
    from ..nn.model_folder import PARITY_SIZES
    from ..nn.network import NetworkConfig, build_network
    from ..nn.weights import load_weights

    contract = load_model_contract(args.model, check_onnx=False)
    if contract.weights_path is None:
        raise ConfigError(f"{args.model}/model.yaml names no weights file to export from")
    net = build_network(NetworkConfig.from_json(contract.architecture))
    load_weights(net, contract.weights_path)
    out = args.out or contract.onnx_path
    export_onnx(net, out, contract.input.size, contract.name)
    parity = onnx_parity(net, out, PARITY_SIZES)
    print(f"wrote {out}; ONNX Runtime vs PyTorch argmax agreement {parity:.6f}")
    if out == contract.onnx_path:
        print("note: the ONNX bytes changed, update onnx.sha256 in model.yaml "
              "(crop-weed-seg info shows the new hash)")
    return 0 if parity >= 0.999 else 1


# --- info --------------------------------------------------------------------------------------

def cmd_info(args: argparse.Namespace) -> int:
    import importlib.util

    from .. import __version__

    from importlib import metadata

    from ..backends import available_backends

    print(f"crop_weed_seg {__version__} on Python {platform.python_version()}")
    dists = {"onnxruntime": "onnxruntime", "torch": "torch", "tensorrt": "tensorrt",
             "rclpy": "rclpy", "cv2": "opencv-python-headless", "numpy": "numpy"}
    for mod, dist in dists.items():
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
        from ..model_contract import load_model_contract, sha256_file

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


# --- bench -------------------------------------------------------------------------------------

def cmd_bench(args: argparse.Namespace) -> int:
    from ..backends import BackendOptions, available_backends
    from ..benchmark import run_benchmark
    from ..image_files import write_bytes_atomic

    backends = args.backend or available_backends()
    options = BackendOptions(device=args.device, precision=args.precision, threads=args.threads,
                             cuda_graphs=args.cuda_graphs)
    results = run_benchmark(args.model, backends, tuple(args.sizes), args.frames, args.warmup,
                            options)
    print(f"{'backend':12s} {'input':>10s} {'p50':>7s} {'p95':>7s} {'p99':>7s} {'fps':>7s} "
          f"{'pre':>6s} {'infer':>7s} {'post':>6s} {'RSS MiB':>8s}  detail")
    for r in results:
        print(f"{r.backend:12s} {r.input[1]:>5d}x{r.input[0]:<4d} {r.p50_ms:7.2f} {r.p95_ms:7.2f} "
              f"{r.p99_ms:7.2f} {r.fps:7.1f} {r.preprocess_ms:6.2f} {r.infer_ms:7.2f} "
              f"{r.postprocess_ms:6.2f} {r.peak_rss_mib:8.0f}  {r.detail}")
    if args.json:
        from ..machine import describe_machine

        doc = {"model": str(args.model),
               "machine": {**describe_machine(), "date": time.strftime("%Y-%m-%d")},
               "results": [r.to_json() for r in results]}
        write_bytes_atomic(args.json, (json.dumps(doc, indent=2) + "\n").encode())
    return 0


# --- predict -----------------------------------------------------------------------------------

def cmd_predict(args: argparse.Namespace) -> int:
    from ..predict_files import predict_files

    from ..backends import BackendOptions

    rows = predict_files(args.model, args.inputs, args.out, progress=not args.quiet,
                         backend=args.backend, options=BackendOptions(device=args.device))
    for row in rows:
        cov = "  ".join(f"{k} {v * 100:5.1f}%" for k, v in row["coverage"].items())
        print(f"{row['image']}: {cov}  weeds {row['weed_count']}")
    print(f"wrote labels, overlays and stats.json/stats.csv for {len(rows)} images to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crop-weed-seg", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write a synthetic field dataset (images + exact labels)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", choices=("train", "heldout"), default="train",
                   help="heldout adds a weed morphology and lighting the train preset never has")
    p.add_argument("--size", type=_size, default=(512, 512), help="HxW (default 512x512)")
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    p.add_argument("--sheet", type=Path, default=None,
                   help="also write a PNG of the first frames above their label overlays")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train a model; writes a complete model folder")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--format", choices=LAYOUT_CHOICES, default="auto")
    p.add_argument("--split", default=None, help="the dataset's own split (phenobench: train)")
    p.add_argument("--val-data", type=Path, default=None)
    p.add_argument("--val-split", default=None)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-data", type=Path, default=None,
                   help="held-out set scored (with the classical baseline) for the model card")
    p.add_argument("--test-split", default=None)
    p.add_argument("--out", type=Path, required=True, help="run folder; model lands in OUT/model")
    p.add_argument("--name", default="model")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--crop", type=int, default=192)
    p.add_argument("--input-size", type=_size, default=(384, 512))
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--loss", default="ce", help="ce, ce+dice or ce+lovasz")
    p.add_argument("--class-weighting", default="sqrt-enet",
                   help="loss weights per class: sqrt-enet (default), enet or none")
    p.add_argument("--width", type=float, default=1.0, help="network width multiplier")
    p.add_argument("--init", type=Path, default=None, help="model folder to fine-tune")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--workers", type=int, default=1, help="data loader processes")
    p.add_argument("--data-description", default=None, help=argparse.SUPPRESS)
    p.add_argument("--limits", default=None, help=argparse.SUPPRESS)
    p.add_argument("--reproduce", action="append", default=None, help=argparse.SUPPRESS)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="per-class IoU, mIoU, confusion matrix")
    p.add_argument("--model", required=True, help="model folder, or 'classical'")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--format", choices=LAYOUT_CHOICES, default="auto")
    p.add_argument("--split", default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--png", type=Path, default=None, help="confusion matrix plot")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export", help="ONNX export from the folder's weights, with parity check")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, default=None, help="ONNX path (default: the folder's)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("info", help="model contract, available runtimes, versions")
    p.add_argument("--model", type=Path, default=None)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("predict", help="images/folders/globs -> label PNGs, overlays, stats")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--model", default="models/default", help="model folder, or 'classical'")
    p.add_argument("--out", type=Path, default=Path("out"))
    p.add_argument("--backend", default="auto", help="auto, onnxruntime or torch")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="latency/throughput per backend and input size")
    p.add_argument("--model", default="models/default")
    p.add_argument("--backend", action="append", default=None,
                   help="repeatable; default: every backend available here")
    p.add_argument("--sizes", type=_size, nargs="+", default=[(480, 640), (720, 1280),
                                                               (1080, 1920)],
                   help="camera sizes HxW (default 480x640 720x1280 1080x1920)")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--cuda-graphs", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    p.set_defaults(func=cmd_bench)

    from . import bag_cmd, build_engine_cmd, precision_cmd, simulate_cmd
    simulate_cmd.add_parser(sub).set_defaults(func=simulate_cmd.run)
    bag_cmd.add_parser(sub).set_defaults(func=bag_cmd.run)
    build_engine_cmd.add_parser(sub).set_defaults(func=build_engine_cmd.run)
    precision_cmd.add_parser(sub).set_defaults(func=precision_cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CropWeedSegError as exc:
        print(f"crop-weed-seg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crop-weed-seg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
