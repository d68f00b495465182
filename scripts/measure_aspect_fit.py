#!/usr/bin/env python3
"""Frames of another aspect ratio than the model input: stretched (the old behaviour) versus
fitted and padded (mirrored, black or edge-replicated padding), and what fitting costs per
frame (docs/TILING.md).

    .venv/bin/python scripts/measure_aspect_fit.py --model models/default \\
        --data /work/shared/datasets/peanut --count 40

IoU: the first ``--count`` photos of a colour-mask labelled folder (Peanut layout, see
scripts/measure_tiling.py), centre-cropped to 16:9, 1:1 and 2:1. Timing: ``Segmenter.segment``
(what segmenter_node calls per frame) on a 640x480 and a 640x360 frame, with a stand-in
backend (preprocessing and output mapping only) and with the real one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from measure_tiling import colour_labels  # noqa: E402

import crop_weed_seg.model.preprocess as preprocess  # noqa: E402
import crop_weed_seg.perception.segmenter as segmenter_module  # noqa: E402
from crop_weed_seg.backends.base import InferenceOutput  # noqa: E402
from crop_weed_seg.data.metrics import ConfusionAccumulator  # noqa: E402
from crop_weed_seg.image_files import read_rgb  # noqa: E402
from crop_weed_seg.perception.segmenter import Segmenter  # noqa: E402

FITTED = segmenter_module.fitted_size
MODES = {"stretch": None, "mirror": cv2.BORDER_REFLECT_101, "black": cv2.BORDER_CONSTANT,
         "replicate": cv2.BORDER_REPLICATE}


def set_mode(mode: str) -> None:
    """stretch: the Segmenter as before issue 17 (every frame resized to the input size)."""
    if MODES[mode] is None:
        segmenter_module.fitted_size = lambda frame_hw, input_hw: input_hw  # type: ignore
    else:
        segmenter_module.fitted_size = FITTED
        preprocess.PAD_MODE = MODES[mode]


def centre_crop(a: np.ndarray, ratio: float) -> np.ndarray:
    """The largest centred part of ``a`` with width / height = ratio."""
    h, w = a.shape[:2]
    if w / h > ratio:
        cw = round(h * ratio)
        return a[:, (w - cw) // 2:(w - cw) // 2 + cw]
    ch = round(w / ratio)
    return a[(h - ch) // 2:(h - ch) // 2 + ch]


class Stand_in:  # noqa: N801
    name = "stand-in"
    detail = "no network"

    def __init__(self, hw: tuple[int, int]) -> None:
        self.out = InferenceOutput(np.zeros(hw, np.int32), np.ones(hw, np.float32))

    def infer(self, tensor: np.ndarray) -> InferenceOutput:
        return self.out

    def close(self) -> None:
        pass


def timing(model: Path, backend: str, repeats: int) -> None:
    real = Segmenter(model, backend)
    fake = Segmenter(model, backend_instance=Stand_in(real.contract.input.size))
    rgb = read_rgb(REPO / "samples/field/images/field_000001.png")
    frames = {"640x480": rgb, "640x360": np.ascontiguousarray(rgb[60:420])}
    for label, seg, n in (("pre+post only", fake, repeats * 10), ("full segment", real,
                                                                   repeats)):
        for name, frame in frames.items():
            best: dict[str, float] = {}
            for _ in range(3):                       # interleaved rounds, best of each
                for mode in ("stretch", "mirror"):
                    set_mode(mode)
                    seg.segment(frame, "RGB", want_confidence=True)
                    t0 = time.perf_counter()
                    for _ in range(n):
                        seg.segment(frame, "RGB", want_confidence=True)
                    ms = (time.perf_counter() - t0) / n * 1e3
                    best[mode] = min(best.get(mode, ms), ms)
            print(f"{label:14s} {name}: stretch {best['stretch']:.3f} ms, "
                  f"fit+mirror {best['mirror']:.3f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=REPO / "models" / "default")
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/peanut"))
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--skip-iou", action="store_true")
    ap.add_argument("--skip-timing", action="store_true")
    args = ap.parse_args(argv)
    if not args.skip_iou:
        stems = sorted(p.stem for p in (args.data / "images").glob("*.jpg"))[: args.count]
        data = [(read_rgb(args.data / "images" / f"{s}.jpg"),
                 colour_labels(args.data / "labels" / f"{s}.png")) for s in stems]
        seg = Segmenter(args.model, args.backend)
        print(f"{len(data)} images of {args.data}, model {args.model}")
        print(f"{'crop':6s} {'mode':10s} {'veg IoU':>8s} {'crop IoU':>9s} {'weed IoU':>9s} "
              f"{'mIoU':>7s}")
        for name, ratio in (("4:3", 4 / 3), ("16:9", 16 / 9), ("1:1", 1.0), ("2:1", 2.0)):
            for mode in MODES:
                set_mode(mode)
                acc = ConfusionAccumulator()
                for rgb, truth in data:
                    acc.add(centre_crop(truth, ratio),
                            seg.predict(np.ascontiguousarray(centre_crop(rgb, ratio))))
                s = acc.scores()
                print(f"{name:6s} {mode:10s} {s.vegetation_iou:8.4f} {s.iou['crop']:9.4f} "
                      f"{s.iou['weed']:9.4f} {s.miou:7.4f}", flush=True)
                if name == "4:3":
                    break                          # every mode is the same frame there
        set_mode("mirror")
    if not args.skip_timing:
        timing(args.model, args.backend, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
