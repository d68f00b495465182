"""``crop-weed-seg train``: train a model and write a complete model folder (weights, ONNX,
model.yaml with the training record, model card), optionally scored on a held-out set."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import time
from pathlib import Path
from typing import Any

import torch

from crop_weed_seg.data.datasets import open_source, parse_source
from crop_weed_seg.data.description import is_description, load_description
from crop_weed_seg.data.evaluation import evaluate
from crop_weed_seg.perception.segmenter import load_predictor
from crop_weed_seg.tools.cli_options import LAYOUT_CHOICES, parse_size
from crop_weed_seg.tools.machine import cpu_model
from crop_weed_seg.tools.model_card import write_model_card
from crop_weed_seg.training.model_folder import add_metrics, write_model_folder
from crop_weed_seg.training.trainer import TrainConfig, train

HELP = "train a model; writes a complete model folder"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser("train", help=HELP)
    p.add_argument("--data", action="append", required=True, metavar="PATH[:SPLIT][@REPEAT]",
                   help="training data: a dataset folder, a bag, or a dataset description "
                        "(.yaml) with :SPLIT; repeat the option to mix sources, @N repeats a "
                        "source N times per epoch (required)")
    p.add_argument("--format", choices=LAYOUT_CHOICES, default="auto",
                   help="layout of the --data folder when there is one source (default: auto, "
                        "detected from the files; with several sources each is detected)")
    p.add_argument("--split", default=None,
                   help="the dataset's own split for sources without :SPLIT (phenobench: "
                        "train; default: none, the whole source)")
    p.add_argument("--classes", type=Path, default=None,
                   help="class map YAML (source class or colour -> soil|crop|weed|vegetation|"
                        "ignore); default: classes.yaml beside the data")
    p.add_argument("--val-data", default=None, metavar="PATH[:SPLIT]",
                   help="validation set that picks the best epoch (default: --val-fraction of "
                        "the first --data source, held out of training)")
    p.add_argument("--val-split", default=None,
                   help="split of --val-data when it has no :SPLIT (default: none)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="without --val-data: this fraction of the first source's images is "
                        "held out for validation, drawn with --seed (default 0.1)")
    p.add_argument("--test-data", default=None, metavar="PATH[:SPLIT]",
                   help="held-out set scored (with the classical baseline) for the model card; "
                        "never used to choose an epoch (default: none)")
    p.add_argument("--test-split", default=None,
                   help="split of --test-data when it has no :SPLIT (default: none)")
    p.add_argument("--out", type=Path, required=True,
                   help="run folder (checkpoints, history; keep it out of the repository); "
                        "the model folder lands in OUT/model (required)")
    p.add_argument("--name", default="model",
                   help="model name written to model.yaml and the card (default: model)")
    p.add_argument("--epochs", type=int, default=None,
                   help="default 20; with --max-minutes and no --epochs the whole time budget "
                        "is used (the schedule follows the time); 0 with --init: no training "
                        "steps, the init model is validated (after --precise-bn) and written")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="wall-clock budget in minutes, validation included; the learning-rate "
                        "schedule and the progress bar's time left follow it (default: none, "
                        "--epochs decides)")
    p.add_argument("--val-every", type=int, default=None,
                   help="validate every N epochs on at most 200 validation images (default: "
                        "about 12 times per run, by epochs or by time)")
    p.add_argument("--min-epoch-samples", type=int, default=256,
                   help="crops per epoch at least, sources cycled: a few large photos give "
                        "several crops each (default 256)")
    p.add_argument("--precise-bn", type=int, default=0, metavar="FRAMES",
                   help="before each validation, re-estimate BatchNorm statistics on this many "
                        "training frames seen whole, as inference sees them (drawn in "
                        "proportion to each source's share of an epoch); the kept model "
                        "carries them. Small mixed batches make the running statistics "
                        "noisy (default 0: off)")
    p.add_argument("--augment", choices=("camera", "basic"), default="camera",
                   help="camera (default): flips, scale, colour jitter and also colour "
                        "temperature 2800-10000 K, +-1.5 EV, JPEG, motion blur; basic: without "
                        "the camera effects")
    p.add_argument("--batch-size", type=int, default=16, help="crops per step (default 16)")
    p.add_argument("--crop", type=int, default=192,
                   help="side of the square training crops in pixels, taken at 0.6-1.2x of "
                        "the image's own scale or of the scale that fits it into --input-size "
                        "(default 192)")
    p.add_argument("--input-size", type=parse_size, default=(384, 512),
                   help="network input HxW recorded in the model folder; frames are fitted "
                        "into it at run time (default 384x512; ignored with --init, which "
                        "keeps the model's)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default 3e-3, or 1e-3 when fine-tuning with --init)")
    p.add_argument("--loss", default="ce", help="ce (default), ce+dice or ce+lovasz")
    p.add_argument("--class-weighting", default="sqrt-enet",
                   help="loss weights per class: sqrt-enet (default), enet or none")
    p.add_argument("--width", type=float, default=1.0,
                   help="network width multiplier (default 1.0; ignored with --init)")
    p.add_argument("--init", type=Path, default=None,
                   help="model folder to fine-tune, e.g. models/default (default: none, train "
                        "from random weights)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from OUT/checkpoints/last.pt with the "
                        "same options (default: off)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of crops, augmentation and the --val-fraction split (default 0)")
    p.add_argument("--device", default="auto",
                   help="auto (default: CUDA when available, else CPU), cpu, cuda, cuda:N")
    p.add_argument("--workers", type=int, default=1,
                   help="data loader processes; 0 loads in the training process (default 1)")
    p.add_argument("--data-description", default=None,
                   help="one line describing the training data for the model card (default: "
                        "the --data sources)")
    p.add_argument("--limits", default=None,
                   help="the card's Limits paragraph: what the numbers miss and why "
                        "(default: none)")
    p.add_argument("--not-trained-on", default=None, metavar="TEXT",
                   help="what the model never saw (crops, soils, cameras), for the card's "
                        "fine-tuning section (default: only the list of its sources)")
    p.add_argument("--reproduce", action="append", default=None,
                   help="a command the card lists under 'reproduce'; repeat for several "
                        "(default: this train command)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar, only the summary (default: off)")
    return p


def describe_data(source: str | Path | None) -> dict[str, Any] | None:
    """What the card records of one ``PATH[:SPLIT][@REPEAT]`` source: path, split, whether it
    is synthetic (and how it was made), licence, attribution and, for a described dataset, its
    split's file list."""
    if source is None:
        return None
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


def run(args: argparse.Namespace) -> int:
    cfg = TrainConfig(
        data=tuple(args.data), out=args.out, layout=args.format, split=args.split,
        val_data=args.val_data, val_split=args.val_split, val_fraction=args.val_fraction,
        epochs=args.epochs, max_minutes=args.max_minutes, batch_size=args.batch_size,
        crop=args.crop, lr=args.lr if args.lr is not None else (1e-3 if args.init else 3e-3),
        loss=args.loss, class_weighting=args.class_weighting,
        width=args.width, init=args.init, classes=args.classes, val_every=args.val_every,
        augment=args.augment, min_epoch_samples=args.min_epoch_samples,
        precise_bn=args.precise_bn, resume=args.resume, seed=args.seed, device=args.device,
        workers=args.workers, progress=not args.quiet, input_size=args.input_size).validate()
    test_set = (open_source(args.test_data, "auto", args.test_split, args.classes)
                if args.test_data else None)
    result = train(cfg)
    command = "crop-weed-seg " + " ".join(shlex.quote(a) for a in args.argv)
    hardware = (f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, "
                f"{result.environment['cpu_threads']} torch threads, no GPU used"
                if result.device == "cpu" else f"{result.environment['gpu']}, CPU {cpu_model()}")
    training: dict[str, Any] = {
        "version": "1",
        "command": command,
        "reproduce": args.reproduce or [command],
        "data": [describe_data(d) for d in args.data],
        "val_data": describe_data(args.val_data),
        "test_data": describe_data(args.test_data),
        "data_description": args.data_description or ", ".join(map(str, args.data)),
        "config": cfg.to_json(), "class_weights": [round(w, 4) for w in result.class_weights],
        "train_images": result.train_images, "val_images": result.val_images,
        "epochs_run": len(result.history), "best_epoch": result.best_epoch,
        "minutes": round(result.elapsed_s / 60.0, 1), "device": result.device,
        "hardware": hardware,
        "software": f"Python {result.environment['python']}, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        "limits": args.limits or "",
        "not_trained_on": args.not_trained_on or "",
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
