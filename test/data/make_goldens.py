"""Regenerate the golden outputs in this folder from the shipped default model.

Run after retraining the default model (and say so in the commit):
    .venv/bin/python test/data/make_goldens.py
Goldens are ONNX Runtime (CPU) outputs on the bundled sample frames; every backend must
reproduce them (test_backends.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crop_weed_seg.image_files import read_rgb, write_image_atomic
from crop_weed_seg.perception.segmenter import Segmenter

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FRAMES = ("field_000000", "field_000003")


def main() -> None:
    seg = Segmenter(REPO / "models/default", "onnxruntime")
    doc = {"model_sha256": seg.contract.onnx_sha256, "frames": {}}
    for stem in FRAMES:
        rgb = read_rgb(REPO / "samples/field/images" / f"{stem}.png")
        result = seg.segment(rgb)
        assert result.confidence is not None
        write_image_atomic(HERE / f"golden_{stem}_labels.png", result.labels, rgb=False)
        np.save(HERE / f"golden_{stem}_confidence.npy", result.confidence.astype(np.float16))
        doc["frames"][stem] = {"coverage": result.coverage}
    (HERE / "goldens.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote goldens for {FRAMES} from model {seg.contract.onnx_sha256[:12]}")


if __name__ == "__main__":
    main()
