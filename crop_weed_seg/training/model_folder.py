"""Turn a trained network into a complete model folder (DESIGN.md §3): model.yaml, model.onnx,
model.safetensors, the model card README.md, training curves and confusion-matrix PNGs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from crop_weed_seg.classes import CLASS_NAMES, PALETTE_RGB
from crop_weed_seg.data.metrics import SegmentationScores
from crop_weed_seg.data.plots import plot_confusion, plot_training_curves
from crop_weed_seg.errors import ModelContractError
from crop_weed_seg.image_files import write_bytes_atomic
from crop_weed_seg.model.contract import (
    CONTRACT_FILE,
    SCHEMA_VERSION,
    sha256_file,
    write_model_yaml,
)
from crop_weed_seg.model.preprocess import InputSpec
from crop_weed_seg.nn.export import (
    CONFIDENCE_OUTPUT,
    INPUT_NAME,
    LABELS_OUTPUT,
    OPSET,
    export_onnx,
    onnx_parity,
)
from crop_weed_seg.nn.network import CWNet, NetworkConfig, parameter_count
from crop_weed_seg.nn.weights import save_weights

ONNX_FILE = "model.onnx"
WEIGHTS_FILE = "model.safetensors"
PARITY_SIZES = [(384, 512), (479, 641)]


def _scores_json(scores: SegmentationScores | None) -> dict[str, Any] | None:
    if scores is None:
        return None
    doc = scores.to_json()
    doc.pop("confusion")
    return {k: (round(v, 4) if isinstance(v, float) else
                {kk: round(vv, 4) for kk, vv in v.items()} if isinstance(v, dict) else v)
            for k, v in doc.items()}


def write_model_folder(folder: Path, name: str, net: CWNet, net_cfg: NetworkConfig,
                       spec: InputSpec, training: dict[str, Any],
                       metrics: dict[str, SegmentationScores | None],
                       history: list[dict[str, float]] | None = None) -> Path:
    """Export and describe ``net`` in ``folder``. Returns the path of model.yaml.

    ``metrics`` maps a set name (e.g. "val", "heldout", "heldout_classical") to its scores;
    the confusion matrix of each non-empty entry is drawn as ``confusion_<set>.png``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(net, folder / ONNX_FILE, spec.size, name)
    parity = onnx_parity(net, onnx_path, PARITY_SIZES)
    if parity < 0.999:
        raise ModelContractError(f"{onnx_path}: ONNX/PyTorch argmax agreement {parity:.5f} "
                                 "< 0.999 (the exported graph does not compute what the "
                                 "weights do)")
    save_weights(net, folder / WEIGHTS_FILE)
    _plot_confusions(folder, name, metrics)
    if history:
        plot_training_curves(history, folder / "training_curves.png")
        write_bytes_atomic(folder / "history.json", (json.dumps(history, indent=1) + "\n").encode())
    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "name": name,
        "version": str(training.get("version", "1")),
        "classes": {i: n for i, n in enumerate(CLASS_NAMES)},
        "palette": {n: [int(c) for c in PALETTE_RGB[i]] for i, n in enumerate(CLASS_NAMES)},
        "input": {
            "name": INPUT_NAME, "size": list(spec.size), "dynamic_size": True,
            "resize": ("frames are fitted into size (H, W) keeping their aspect ratio (mirror "
                       "padding); labels are returned at frame size"),
            "layout": "NCHW", "dtype": "float32", "channel_order": spec.channel_order,
            "scale": spec.scale, "mean": list(spec.mean), "std": list(spec.std),
        },
        "outputs": {"kind": "labels_and_confidence", "labels": LABELS_OUTPUT,
                    "labels_dtype": "int32", "confidence": CONFIDENCE_OUTPUT,
                    "confidence_dtype": "float32"},
        "onnx": {"file": ONNX_FILE, "sha256": sha256_file(onnx_path), "opset": OPSET,
                 "parity_argmax_agreement": round(parity, 6)},
        "weights": {"file": WEIGHTS_FILE, "format": "safetensors",
                    "sha256": sha256_file(folder / WEIGHTS_FILE)},
        "architecture": {**net_cfg.to_json(), "parameters": parameter_count(net)},
        "training": training,
        "metrics": {k: _scores_json(v) for k, v in metrics.items() if v is not None},
    }
    if training.get("licence"):  # weights trained on share-alike data carry its licence
        doc["licence"] = training["licence"]
        doc["attribution"] = training.get("attribution", [])
    return write_model_yaml(folder, doc)


def _plot_confusions(folder: Path, name: str,
                     metrics: Mapping[str, SegmentationScores | None]) -> None:
    for key, scores in metrics.items():
        if scores is not None:
            plot_confusion(scores.confusion, folder / f"confusion_{key}.png",
                           title=f"{name}: {key} ({scores.images} images)")


def add_metrics(folder: Path, metrics: Mapping[str, SegmentationScores | None]) -> Path:
    """Add scores (e.g. of a held-out set, measured through the exported ONNX) to an existing
    model folder: their confusion PNGs and ``metrics`` entries in model.yaml; nothing else
    changes (no re-export)."""
    path = folder / CONTRACT_FILE
    doc = yaml.safe_load(path.read_text())
    _plot_confusions(folder, str(doc["name"]), metrics)
    doc.setdefault("metrics", {}).update(
        {k: _scores_json(v) for k, v in metrics.items() if v is not None})
    return write_model_yaml(folder, doc)
