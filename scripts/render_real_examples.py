"""Render real field photographs next to their labels and a model's prediction, as one PNG for
the README: ``.venv/bin/python scripts/render_real_examples.py --model models/default
--out docs/real_examples.png``. Uses the excerpts in samples/real (CC BY-SA 4.0, see
samples/real/ATTRIBUTION.md), so the picture carries that licence too."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from crop_weed_seg.classes import SOIL, VEGETATION
from crop_weed_seg.data.datasets import open_dataset
from crop_weed_seg.image_files import write_image_atomic
from crop_weed_seg.perception.segmenter import load_predictor
from crop_weed_seg.perception.visualize import contact_sheet, overlay

REPO = Path(__file__).resolve().parents[1]


def _truth_view(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Truth overlay; vegetation-only labels (EWS) shown as crop colour with a white outline."""
    shown = np.where(labels == VEGETATION, 1, labels).astype(np.uint8)
    shown[shown > 2] = SOIL
    view = overlay(rgb, shown, alpha=0.6, blend_soil=False)
    if (labels == VEGETATION).any():
        edges = cv2.morphologyEx((labels == VEGETATION).astype(np.uint8), cv2.MORPH_GRADIENT,
                                 np.ones((3, 3), np.uint8)) > 0
        view[edges] = 255
    return view


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(REPO / "models/default"))
    parser.add_argument("--out", type=Path, default=REPO / "docs/real_examples.png")
    parser.add_argument("--width", type=int, default=320, help="width of each tile")
    args = parser.parse_args()
    predictor = load_predictor(args.model)
    tiles: list[np.ndarray] = []
    picks = [("peanut", i) for i in (0, 2, 4, 6)] + [("ews", i) for i in (0, 2)]
    datasets = {name: open_dataset(REPO / "samples/real" / name) for name in ("peanut", "ews")}
    for name, index in picks:
        rgb, labels = datasets[name][index]
        pred = predictor.predict(rgb)
        row = [rgb, _truth_view(rgb, labels), overlay(rgb, pred, alpha=0.6, blend_soil=False)]
        h = args.width * rgb.shape[0] // rgb.shape[1]
        if name == "ews":  # square patches: pad to the row height of the 4:3 photos
            h = args.width * 3 // 4
        for image in row:
            small = cv2.resize(image, (args.width * image.shape[1] // image.shape[0] * h //
                                       args.width if name == "ews" else args.width, h),
                               interpolation=cv2.INTER_AREA)
            canvas = np.full((h, args.width, 3), 255, np.uint8)
            canvas[:, :small.shape[1]] = small[:, :args.width]
            tiles.append(canvas)
    sheet = contact_sheet(tiles, columns=3)
    write_image_atomic(args.out, np.ascontiguousarray(sheet))
    print(f"wrote {args.out}: photo | truth | {Path(args.model).name} prediction "
          "(green crop, red weed; EWS truth: plant outline in white)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
