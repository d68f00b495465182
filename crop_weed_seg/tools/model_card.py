"""The model card (README.md of a model folder), written from model.yaml's facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..image_files import write_bytes_atomic


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = ["| set | mIoU | soil IoU | crop IoU | weed IoU | vegetation IoU | pixel acc. | images |",
            "|---|---|---|---|---|---|---|---|"]
    for key, m in metrics.items():
        if not m:
            continue
        iou = m.get("iou", {})
        rows.append(f"| {key} | {_fmt(m['miou'])} | {_fmt(iou.get('soil'))} | "
                    f"{_fmt(iou.get('crop'))} | {_fmt(iou.get('weed'))} | "
                    f"{_fmt(m['vegetation_iou'])} | {_fmt(m['pixel_accuracy'])} | {m['images']} |")
    return "\n".join(rows)


def write_model_card(folder: Path, notes: str = "") -> Path:
    """Write ``folder/README.md`` from ``folder/model.yaml``."""
    doc = yaml.safe_load((folder / "model.yaml").read_text())
    tr = doc.get("training", {})
    arch = doc.get("architecture", {})
    inp = doc["input"]
    lines = [
        f"# Model card: `{doc['name']}` (version {doc['version']})",
        "",
        "Per-pixel soil / crop / weed segmentation for top-down field images.",
        "",
        "## What it is",
        f"- Architecture: `{arch.get('name')}` width {arch.get('width')}, "
        f"{arch.get('parameters'):,} parameters; vegetation indices (ExG, ExR, ExG−ExR) "
        "computed inside the graph from RGB.",
        f"- Input: `{inp['name']}` float32 NCHW {inp['channel_order']} × {inp['scale']:.6g}, "
        f"nominal size {inp['size'][0]}×{inp['size'][1]} (H×W; frames are resized to it).",
        f"- Outputs: `{doc['outputs']['labels']}` int32 class ids and "
        f"`{doc['outputs']['confidence']}` (max softmax), computed inside the graph.",
        f"- ONNX opset {doc['onnx']['opset']}, sha256 `{doc['onnx']['sha256']}`; "
        f"ONNX Runtime vs PyTorch argmax agreement {doc['onnx']['parity_argmax_agreement']}.",
        f"- Weights for fine-tuning: `{doc['weights']['file']}` (safetensors).",
        "",
        "## Training data",
        f"{tr.get('data_description', 'see training.data in model.yaml')}",
        "",
        "## How it was trained (reproduce)",
        "```sh",
        *tr.get("reproduce", [tr.get("command", "")]),
        "```",
        f"- Hardware: {tr.get('hardware', 'unknown')}; device `{tr.get('device')}`; "
        f"wall time {tr.get('minutes')} min; best epoch {tr.get('best_epoch')} of "
        f"{tr.get('epochs_run')}.",
        f"- Software: {tr.get('software', '')}",
        "",
        "## Metrics",
        _metrics_table(doc.get("metrics", {})),
        "",
        "![training curves](training_curves.png)",
        "",
    ]
    for key in doc.get("metrics", {}):
        if (folder / f"confusion_{key}.png").is_file():
            lines += [f"![confusion {key}](confusion_{key}.png)", ""]
    lines += ["## Limits", tr.get("limits", ""), ""]
    if notes:
        lines += [notes, ""]
    path = folder / "README.md"
    write_bytes_atomic(path, "\n".join(lines).encode())
    return path
