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

from crop_weed_seg.errors import ConfigError, CropWeedSegError

LAYOUT_CHOICES = ("auto", "folder", "phenobench", "cwfid", "colour-mask", "supervisely", "cvat",
                  "labelme", "bag")


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like HxW (e.g. 512x512), got {text!r}") \
            from None
    return h, w


# --- synth -------------------------------------------------------------------------------------

def cmd_synth(args: argparse.Namespace) -> int:
    from crop_weed_seg.synthetic import PRESETS
    from crop_weed_seg.synthetic.dataset_writer import write_dataset
    from crop_weed_seg.synthetic.field import config_with_size

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
    import cv2
    import numpy as np

    from crop_weed_seg.data.datasets import open_dataset
    from crop_weed_seg.image_files import write_image_atomic
    from crop_weed_seg.perception.visualize import contact_sheet, overlay

    data = open_dataset(dataset_root, "folder")
    frames = [data[i] for i in range(count)]
    tiles = [f[0] for f in frames] + [overlay(f[0], f[1], alpha=0.6, blend_soil=False)
                                      for f in frames]
    tiles = [cv2.resize(t, (256, 256 * t.shape[0] // t.shape[1]), interpolation=cv2.INTER_AREA)
             for t in tiles]
    sheet = contact_sheet(tiles, columns=count)
    write_image_atomic(path, np.ascontiguousarray(sheet))


# --- train -------------------------------------------------------------------------------------

def _describe_data(source: str | Path | None) -> dict[str, Any] | None:
    """What the card records of one ``PATH[:SPLIT][@REPEAT]`` source: path, split, whether it
    is synthetic (and how it was made), licence, attribution and, for a described dataset, its
    split's file list."""
    if source is None:
        return None
    from crop_weed_seg.data.datasets import parse_source
    from crop_weed_seg.data.description import is_description, load_description

    path, split, repeat = parse_source(source)
    doc: dict[str, Any] = {"path": str(path), "split": split, "repeat": repeat}
    info = path / "synth.json"
    if path.is_dir() and info.is_file():
        meta = json.loads(info.read_text())
        doc.update({"synthetic": True, "preset": meta.get("preset"), "seed": meta.get("seed"),
                    "count": meta.get("count")})
        return doc
    doc["synthetic"] = False
    if is_description(path):
        desc = load_description(path)
        doc.update({"name": desc.name, "format": desc.format, "licence": desc.licence,
                    "attribution": desc.attribution})
        if split is not None and desc.splits:
            doc["files"] = desc.stems(split)
    return doc


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from crop_weed_seg.data.datasets import open_source
    from crop_weed_seg.data.evaluation import evaluate
    from crop_weed_seg.perception.segmenter import load_predictor
    from crop_weed_seg.tools.model_card import write_model_card
    from crop_weed_seg.training.model_folder import add_metrics, write_model_folder
    from crop_weed_seg.training.trainer import TrainConfig, train

    cfg = TrainConfig(
        data=tuple(args.data), out=args.out, layout=args.format, split=args.split,
        val_data=args.val_data, val_split=args.val_split, val_fraction=args.val_fraction,
        epochs=args.epochs, max_minutes=args.max_minutes, batch_size=args.batch_size,
        crop=args.crop, lr=args.lr if args.lr is not None else (1e-3 if args.init else 3e-3),
        loss=args.loss, class_weighting=args.class_weighting,
        width=args.width, init=args.init, classes=args.classes, val_every=args.val_every,
        augment=args.augment, min_epoch_samples=args.min_epoch_samples,
        resume=args.resume, seed=args.seed, device=args.device, workers=args.workers,
        progress=not args.quiet, input_size=args.input_size).validate()
    test_set = (open_source(args.test_data, "auto", args.test_split, args.classes)
                if args.test_data else None)
    result = train(cfg)
    command = "crop-weed-seg " + " ".join(shlex.quote(a) for a in args.argv)
    from crop_weed_seg.tools.machine import cpu_model

    hardware = (f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, "
                f"{result.environment['cpu_threads']} torch threads, no GPU used"
                if result.device == "cpu" else f"{result.environment['gpu']}, CPU {cpu_model()}")
    training: dict[str, Any] = {
        "version": "1",
        "command": command,
        "reproduce": args.reproduce or [command],
        "data": [_describe_data(d) for d in args.data],
        "val_data": _describe_data(args.val_data),
        "test_data": _describe_data(args.test_data),
        "data_description": args.data_description or ", ".join(map(str, args.data)),
        "config": cfg.to_json(), "class_weights": [round(w, 4) for w in result.class_weights],
        "train_images": result.train_images, "val_images": result.val_images,
        "epochs_run": len(result.history), "best_epoch": result.best_epoch,
        "minutes": round(result.elapsed_s / 60.0, 1), "device": result.device,
        "hardware": hardware,
        "software": f"Python {result.environment['python']}, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        "limits": args.limits or "",
        "ground_resolution": (
            f"crops at 0.6-1.2x a photo's own resolution, and (half of them) at 0.6-1.2x the "
            f"resolution that fits the photo into the {cfg.input_size[1]}x{cfg.input_size[0]} "
            "input without stretching; predict/eval tile photos much larger than that "
            "(--tiles auto)"),
    }
    described = [d for d in [*training["data"], training["val_data"]] if d and d.get("licence")]
    if described:
        licences = sorted({str(d["licence"]) for d in described})
        training["licence"] = " AND ".join(licences)
        training["attribution"] = sorted({str(d["attribution"]) for d in described
                                          if d.get("attribution")})
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
    from crop_weed_seg.data.datasets import open_source
    from crop_weed_seg.data.evaluation import evaluate, robustness
    from crop_weed_seg.data.plots import plot_confusion

    dataset = open_source(args.data, args.format, args.split, args.classes)
    from crop_weed_seg.perception.tiling import tiled_predictor

    predictor = tiled_predictor(args.model, tiles=args.tiles, tile_scale=args.tile_scale)
    if args.robustness:
        return _eval_robustness(args, robustness(predictor.predict, dataset,
                                                 progress=not args.quiet))
    scores = evaluate(predictor.predict, dataset, limit=args.limit, progress=not args.quiet)
    doc = scores.to_json()
    doc["model"] = str(args.model)
    doc["data"] = str(args.data)
    text = json.dumps(doc, indent=2)
    if args.json:
        from crop_weed_seg.image_files import write_bytes_atomic

        write_bytes_atomic(args.json, (text + "\n").encode())
    if args.png:
        plot_confusion(scores.confusion, args.png, title=f"{predictor.name} on {args.data}")
    if args.add_to_card:
        _add_to_card(args, {args.add_to_card: scores}, None)
    print(f"mIoU {scores.miou:.4f}  " + "  ".join(f"{k} {v:.4f}" for k, v in scores.iou.items())
          + f"  vegetation {scores.vegetation_iou:.4f}  pixel acc. {scores.pixel_accuracy:.4f}"
          f"  ({scores.images} images)")
    return 0


def _eval_robustness(args: argparse.Namespace, results: dict[str, Any]) -> int:
    clean = results["clean"]
    rows = [{"condition": name, "miou": round(s.miou, 4),
             "weed_iou": round(s.iou["weed"], 4), "vegetation_iou": round(s.vegetation_iou, 4),
             "miou_drop": round(clean.miou - s.miou, 4)} for name, s in results.items()]
    print(f"{'condition':<18} {'mIoU':>7} {'weed':>7} {'veget.':>7} {'drop':>7}")
    for r in rows:
        print(f"{r['condition']:<18} {r['miou']:7.4f} {r['weed_iou']:7.4f} "
              f"{r['vegetation_iou']:7.4f} {r['miou_drop']:7.4f}")
    if args.json:
        from crop_weed_seg.image_files import write_bytes_atomic

        write_bytes_atomic(args.json, (json.dumps(rows, indent=2) + "\n").encode())
    if args.add_to_card:
        _add_to_card(args, {}, {"data": str(args.data), "set": args.add_to_card,
                                "conditions": rows})
    return 0


def _add_to_card(args: argparse.Namespace, metrics: dict[str, Any],
                 robustness_doc: dict[str, Any] | None) -> None:
    """Record scores (or a robustness table) in the model folder's model.yaml and card."""
    import yaml

    from crop_weed_seg.model.contract import CONTRACT_FILE, write_model_yaml
    from crop_weed_seg.tools.model_card import write_model_card
    from crop_weed_seg.training.model_folder import add_metrics

    folder = Path(args.card or args.model)
    if not (folder / CONTRACT_FILE).is_file():
        raise ConfigError(f"--add-to-card: {folder} is not a model folder (a baseline's scores "
                          "go to a model folder's card with --card FOLDER)")
    if metrics:
        add_metrics(folder, metrics)
        doc = yaml.safe_load((folder / CONTRACT_FILE).read_text())
        doc.setdefault("metrics_data", {}).update(
            {k: f"{args.data} ({args.model})" for k in metrics})
        write_model_yaml(folder, doc)
    if robustness_doc is not None:
        doc = yaml.safe_load((folder / CONTRACT_FILE).read_text())
        doc["robustness"] = robustness_doc
        write_model_yaml(folder, doc)
    write_model_card(folder)


# --- export ------------------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from crop_weed_seg.model.contract import load_model_contract
    from crop_weed_seg.nn.export import export_onnx, onnx_parity
    from crop_weed_seg.nn.network import NetworkConfig, build_network
    from crop_weed_seg.nn.weights import load_weights
    from crop_weed_seg.training.model_folder import PARITY_SIZES

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
    from importlib import metadata

    from crop_weed_seg import __version__
    from crop_weed_seg.backends import available_backends

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
        from crop_weed_seg.model.contract import load_model_contract, sha256_file

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
    from crop_weed_seg.backends import BackendOptions, available_backends
    from crop_weed_seg.image_files import write_bytes_atomic
    from crop_weed_seg.tools.benchmark import run_benchmark

    backends = args.backend or available_backends()
    options = BackendOptions(device=args.device, precision=args.precision, threads=args.threads,
                             cuda_graphs=args.cuda_graphs)
    models = args.model or ["models/default"]
    results = []  # sizes outer, models inner: several models are measured side by side
    for size in args.sizes:
        for model in models:
            results += [(model, r) for r in run_benchmark(model, backends, (size,), args.frames,
                                                          args.warmup, options)]
    width = max(len(str(m)) for m in models)
    print(f"{'model':{width}s} {'backend':12s} {'input':>10s} {'p50':>7s} {'p95':>7s} {'p99':>7s} "
          f"{'fps':>7s} {'pre':>6s} {'infer':>7s} {'post':>6s} {'RSS MiB':>8s}  detail")
    for model, r in results:
        print(f"{str(model):{width}s} {r.backend:12s} {r.input[1]:>5d}x{r.input[0]:<4d} "
              f"{r.p50_ms:7.2f} {r.p95_ms:7.2f} {r.p99_ms:7.2f} {r.fps:7.1f} "
              f"{r.preprocess_ms:6.2f} {r.infer_ms:7.2f} {r.postprocess_ms:6.2f} "
              f"{r.peak_rss_mib:8.0f}  {r.detail}")
    if args.json:
        from crop_weed_seg.tools.machine import describe_machine

        doc = {"model": str(models[0]) if len(models) == 1 else [str(m) for m in models],
               "machine": {**describe_machine(), "date": time.strftime("%Y-%m-%d")},
               "results": [{"model": str(m), **r.to_json()} for m, r in results]}
        write_bytes_atomic(args.json, (json.dumps(doc, indent=2) + "\n").encode())
    return 0


# --- predict -----------------------------------------------------------------------------------

def cmd_predict(args: argparse.Namespace) -> int:
    from crop_weed_seg.backends import BackendOptions
    from crop_weed_seg.tools.predict_files import predict_files

    rows = predict_files(args.model, args.inputs, args.out, progress=not args.quiet,
                         backend=args.backend, options=BackendOptions(device=args.device),
                         tiles=args.tiles, tile_scale=args.tile_scale)
    for row in rows:
        cov = "  ".join(f"{k} {v * 100:5.1f}%" for k, v in row["coverage"].items())
        print(f"{row['image']}: {cov}  weeds {row['weed_count']}")
    print(f"wrote labels, overlays and stats.json/stats.csv for {len(rows)} images to {args.out}")
    return 0


def _add_tile_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tiles", default="auto",
                   help="photos much larger than the model input as overlapping, blended tiles: "
                        "auto (default), off, or RxC (e.g. 3x3); docs/TILING.md")
    p.add_argument("--tile-scale", type=float, default=None,
                   help="--tiles auto: each tile covers this many model inputs per side "
                        "(default 3)")


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
    p.add_argument("--data", action="append", required=True, metavar="PATH[:SPLIT][@REPEAT]",
                   help="training data: a dataset folder, a bag, or a dataset description "
                        "(.yaml) with :SPLIT; repeat the option to mix sources, @N repeats a "
                        "source N times per epoch")
    p.add_argument("--format", choices=LAYOUT_CHOICES, default="auto")
    p.add_argument("--split", default=None, help="the dataset's own split (phenobench: train)")
    p.add_argument("--classes", type=Path, default=None,
                   help="class map YAML (source class or colour -> soil|crop|weed|vegetation|"
                        "ignore); default: classes.yaml beside the data")
    p.add_argument("--val-data", default=None, metavar="PATH[:SPLIT]")
    p.add_argument("--val-split", default=None)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-data", default=None, metavar="PATH[:SPLIT]",
                   help="held-out set scored (with the classical baseline) for the model card")
    p.add_argument("--test-split", default=None)
    p.add_argument("--out", type=Path, required=True, help="run folder; model lands in OUT/model")
    p.add_argument("--name", default="model")
    p.add_argument("--epochs", type=int, default=None,
                   help="default 20; with --max-minutes and no --epochs the whole time budget "
                        "is used (the schedule follows the time)")
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--val-every", type=int, default=None,
                   help="validate every N epochs (default: about 12 times per run)")
    p.add_argument("--min-epoch-samples", type=int, default=256,
                   help="crops per epoch at least (a few large photos give several crops each)")
    p.add_argument("--augment", choices=("camera", "basic"), default="camera",
                   help="camera: also colour temperature, +-1 EV, JPEG, motion blur")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--crop", type=int, default=192)
    p.add_argument("--input-size", type=_size, default=(384, 512))
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default 3e-3, or 1e-3 when fine-tuning with --init)")
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
    p.add_argument("--model", required=True,
                   help="model folder, 'classical' or 'exg-otsu' (vegetation only)")
    p.add_argument("--data", required=True, metavar="PATH[:SPLIT]")
    p.add_argument("--format", choices=LAYOUT_CHOICES, default="auto")
    p.add_argument("--split", default=None)
    p.add_argument("--classes", type=Path, default=None, help="class map YAML")
    p.add_argument("--robustness", action="store_true",
                   help="also score under 3000 K / 9000 K light, +-1 EV, JPEG q15, motion blur")
    p.add_argument("--add-to-card", default=None, metavar="KEY",
                   help="record the scores (or the robustness table) as KEY in the model "
                        "folder's model.yaml and card")
    p.add_argument("--card", type=Path, default=None, metavar="FOLDER",
                   help="with --add-to-card: the model folder whose card records the scores "
                        "(default: --model; needed for classical / exg-otsu)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--png", type=Path, default=None, help="confusion matrix plot")
    p.add_argument("--limit", type=int, default=None)
    _add_tile_options(p)
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
    _add_tile_options(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="latency/throughput per backend and input size")
    p.add_argument("--model", action="append", default=None,
                   help="model folder (default models/default); repeat to compare models side "
                        "by side in one run")
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

    from crop_weed_seg.tools import bag_cmd, build_engine_cmd, precision_cmd, simulate_cmd
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
