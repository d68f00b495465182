"""The model card (README.md of a model folder), written from model.yaml's facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from crop_weed_seg.image_files import write_bytes_atomic


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = ["| set | mIoU | soil IoU | crop IoU | weed IoU | vegetation IoU | pixel acc. "
            "| images |",
            "|---|---|---|---|---|---|---|---|"]
    for key, m in metrics.items():
        if not m:
            continue
        iou = m.get("iou", {})
        rows.append(f"| {key} | {_fmt(m['miou'])} | {_fmt(iou.get('soil'))} | "
                    f"{_fmt(iou.get('crop'))} | {_fmt(iou.get('weed'))} | "
                    f"{_fmt(m['vegetation_iou'])} | {_fmt(m['pixel_accuracy'])} | {m['images']} |")
    return "\n".join(rows)


def _train_sources(tr: dict[str, Any]) -> list[dict[str, Any]]:
    """The training record's ``data``: one source or a list of them."""
    data = tr.get("data")
    return [d for d in (data if isinstance(data, list) else [data]) if d]


def _sources_section(tr: dict[str, Any]) -> list[str]:
    """Each training source with its split, licence and (for described datasets) file list."""
    sources = _train_sources(tr)
    lines = ["| role | source | split | repeat | images listed |", "|---|---|---|---|---|"]
    files: list[str] = []
    for role, d in [*(("train", x) for x in sources), ("val", tr.get("val_data")),
                    ("test", tr.get("test_data"))]:
        if not d:
            continue
        listed = len(d["files"]) if d.get("files") else ""
        lines.append(f"| {role} | `{d.get('path')}` | {d.get('split') or ''} | "
                     f"{d.get('repeat', 1)} | {listed} |")
        if d.get("files"):
            files += [f"<details><summary>{role}: {d.get('name', d.get('path'))} "
                      f"{d.get('split')} ({len(d['files'])} files)</summary>", "",
                      ", ".join(d["files"]), "", "</details>", ""]
    return lines + [""] + files


def _scope_section(tr: dict[str, Any], folder: Path) -> list[str]:
    """What the model learned from, what it never saw, and how to fine-tune it for that."""
    sources = _train_sources(tr)
    real = [f"{d.get('name', d.get('path'))} ({d.get('split') or 'all'})"
            for d in sources if not d.get("synthetic")]
    synthetic = [f"`{d.get('path')}` (preset {d.get('preset')})"
                 for d in sources if d.get("synthetic")]
    learned = "; ".join(
        ([f"real photographs: {', '.join(real)}"] if real else [])
        + ([f"synthetic frames: {', '.join(synthetic)}"] if synthetic else []))
    return [
        "## What it was not trained on, and fine-tuning for your field", "",
        f"It learned from {learned or 'the sources above'} and nothing else: every other crop, "
        "weed flora, soil, growth stage, camera and light is new to it.",
        *([tr["not_trained_on"]] if tr.get("not_trained_on") else []), "",
        "For a field it never saw, label 20–40 photographs (any format `train` reads; "
        "`vegetation` for plants not sorted into crop and weed) and fine-tune from this "
        "folder on a CPU:", "",
        "```sh",
        f"crop-weed-seg train --data my_field/ --init {folder} --max-minutes 20 "
        "--out runs/my_field --name my_field --crop 256 --batch-size 8 --loss ce+lovasz",
        "```", "",
        "Add this model's own sources as further `--data` (e.g. with `@N` repeats) to keep what "
        "it knows; `train --help` lists every option with its default.", "",
    ]


def _robustness_section(doc: dict[str, Any]) -> list[str]:
    rob = doc.get("robustness")
    if not rob:
        return []
    lines = ["## Robustness", "",
             f"`{rob.get('set')}` (`{rob.get('data')}`) with each image changed as a camera "
             "would change it (labels unchanged); drop = clean mIoU minus mIoU.", "",
             "| condition | mIoU | weed IoU | vegetation IoU | mIoU drop |",
             "|---|---|---|---|---|"]
    for r in rob.get("conditions", []):
        lines.append(f"| {r['condition']} | {_fmt(r['miou'])} | {_fmt(r['weed_iou'])} | "
                     f"{_fmt(r['vegetation_iou'])} | {_fmt(r['miou_drop'])} |")
    return lines + [""]


def _licence_section(doc: dict[str, Any]) -> list[str]:
    if not doc.get("licence"):
        return []
    return ["## Licence and attribution", "",
            f"Trained on data licensed {doc['licence']}; these weights are distributed under "
            "the same licence, with this attribution:", "",
            *[f"- {a}" for a in doc.get("attribution", [])], ""]


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
        f"nominal size {inp['size'][0]}×{inp['size'][1]} "
        "(H×W; frames are fitted into it without stretching).",
        f"- Outputs: `{doc['outputs']['labels']}` int32 class ids and "
        f"`{doc['outputs']['confidence']}` (max softmax), computed inside the graph.",
        f"- ONNX opset {doc['onnx']['opset']}, sha256 `{doc['onnx']['sha256']}`; "
        f"ONNX Runtime vs PyTorch argmax agreement {doc['onnx']['parity_argmax_agreement']}.",
        f"- Weights for fine-tuning: `{doc['weights']['file']}` (safetensors).",
        "",
        "## Training data",
        f"{tr.get('data_description', 'see training.data in model.yaml')}",
        "",
        *_sources_section(tr),
        "## How it was trained (reproduce)",
        "```sh",
        *tr.get("reproduce", [tr.get("command", "")]),
        "```",
        f"- Hardware: {tr.get('hardware', 'unknown')}; device `{tr.get('device')}`; "
        f"wall time {tr.get('minutes')} min; best epoch {tr.get('best_epoch')} of "
        f"{tr.get('epochs_run')}.",
        f"- Software: {tr.get('software', '')}",
        *([f"- Ground resolution trained on: {tr['ground_resolution']}."]
          if tr.get("ground_resolution") else []),
        "",
        "## Metrics",
        _metrics_table(doc.get("metrics", {})),
        "",
        *[f"- `{k}`: `{v}`" for k, v in doc.get("metrics_data", {}).items()],
        "",
        *_robustness_section(doc),
        *_scope_section(tr, folder),
        *_licence_section(doc),
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
