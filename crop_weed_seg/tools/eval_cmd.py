"""``crop-weed-seg eval``: per-class IoU, mIoU and the confusion matrix of a model folder or a
baseline on a dataset; optionally under the robustness conditions, and recorded in a model
folder's model.yaml and card."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from crop_weed_seg.data.datasets import open_source
from crop_weed_seg.data.evaluation import evaluate, robustness
from crop_weed_seg.data.plots import plot_confusion
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.image_files import write_bytes_atomic
from crop_weed_seg.model.contract import CONTRACT_FILE, write_model_yaml
from crop_weed_seg.perception.tiling import tiled_predictor
from crop_weed_seg.tools.cli_options import LAYOUT_CHOICES, add_tile_options
from crop_weed_seg.tools.model_card import write_model_card

HELP = "per-class IoU, mIoU, confusion matrix"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser("eval", help=HELP)
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
    add_tile_options(p)
    p.add_argument("--quiet", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    dataset = open_source(args.data, args.format, args.split, args.classes)
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
        write_bytes_atomic(args.json, (json.dumps(rows, indent=2) + "\n").encode())
    if args.add_to_card:
        _add_to_card(args, {}, {"data": str(args.data), "set": args.add_to_card,
                                "conditions": rows})
    return 0


def _add_to_card(args: argparse.Namespace, metrics: dict[str, Any],
                 robustness_doc: dict[str, Any] | None) -> None:
    """Record scores (or a robustness table) in the model folder's model.yaml and card."""
    # Here, not at module level: training.model_folder imports torch (through nn/), which eval
    # does not need otherwise and which an inference-only install (a Jetson) may lack.
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
