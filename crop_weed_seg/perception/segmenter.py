"""The Segmenter: a camera frame in any supported layout → labels at camera resolution,
confidence, per-class coverage and timings. Core code: no ROS; the runtime is a backend.

Pipeline (the same preprocessing as training, :mod:`crop_weed_seg.model.preprocess`):
resize the frame as it comes (1, 3 or 4 channels, 8 or 16 bit) to the model's input size,
convert channels and bit depth at that small size, normalise into a reused tensor, run the
backend, check the outputs, and upsample labels (nearest neighbour) to the frame's size.
A frame whose aspect ratio differs from the input's is fitted, not stretched: resized keeping
its aspect ratio and padded (:func:`~crop_weed_seg.model.preprocess.fit_to_input`); the padding is
cut off the outputs before they are upsampled, so labels land where the frame's pixels are.
The tensor keeps the model's input size for every frame (a TensorRT engine's fixed shape).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from crop_weed_seg.backends import Backend, BackendOptions, create_backend
from crop_weed_seg.classes import CLASS_NAMES
from crop_weed_seg.errors import InvalidFrameError
from crop_weed_seg.model.contract import ModelContract, load_model_contract
from crop_weed_seg.model.preprocess import (
    Window,
    fit_to_input,
    fitted_size,
    map_to_frame,
    resize_to_input,
    to_tensor,
)
from crop_weed_seg.perception.classical import ClassicalSegmenter, ExgOtsuVegetation
from crop_weed_seg.perception.image_conversion import normalize_layout
from crop_weed_seg.perception.predictor import Predictor

EXG_OTSU = "exg-otsu"
CLASSICAL = "classical"
CHANNEL_ORDERS = ("RGB", "BGR", "MONO")


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent per stage of one frame."""

    preprocess_ms: float
    infer_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.infer_ms + self.postprocess_ms


@dataclass(frozen=True)
class SegmentationResult:
    """labels (H, W) uint8 class ids at frame resolution; confidence (H, W) float32 in [0, 1]
    (None when not asked for); coverage: share of pixels per class name (computed on the
    model-resolution map, which nearest-neighbour upsampling preserves up to rounding)."""

    labels: np.ndarray
    confidence: np.ndarray | None
    coverage: dict[str, float]
    timings: Timings
    #: the same maps at the model's resolution (what the network saw, less any padding around
    #: a frame of another aspect ratio; labels at camera resolution are their
    #: nearest-neighbour upsampling): cheaper for per-blob work
    labels_model: np.ndarray | None = None
    confidence_model: np.ndarray | None = None


class Segmenter:
    """One model on one backend. Not thread-safe: use one Segmenter per thread."""

    def __init__(self, model: ModelContract | Path | str, backend: str = "auto",
                 options: BackendOptions = BackendOptions(),
                 backend_instance: Backend | None = None) -> None:
        self.contract = model if isinstance(model, ModelContract) else load_model_contract(model)
        self.backend = backend_instance or create_backend(backend, self.contract, options)
        self.name = self.contract.name
        h, w = self.contract.input.size
        self._tensor = np.empty((1, 3, h, w), np.float32)
        self._small: dict[tuple[int, str], np.ndarray] = {}
        self._labels_small = np.empty((h, w), np.uint8)
        self._window = Window(0, 0, h, w)

    def close(self) -> None:
        self.backend.close()

    def _resize(self, frame: np.ndarray) -> np.ndarray:
        """The frame at the model's input size; sets ``self._window`` (where the frame is in
        it). A frame of the input's aspect ratio is resized into a reused buffer; any other is
        fitted and padded."""
        h, w = self.contract.input.size
        if fitted_size(frame.shape[:2], (h, w)) != (h, w):
            small, self._window = fit_to_input(frame, self.contract.input)
            return small
        self._window = Window(0, 0, h, w)
        key = (frame.shape[2] if frame.ndim == 3 else 1, frame.dtype.str)
        buf = self._small.get(key)
        if buf is None:
            buf = np.empty((h, w) + ((key[0],) if frame.ndim == 3 else ()), frame.dtype)
            self._small[key] = buf
        return resize_to_input(frame, self.contract.input, dst=buf)

    def _preprocess(self, frame: np.ndarray, channel_order: str) -> np.ndarray:
        if channel_order not in CHANNEL_ORDERS:
            raise InvalidFrameError(f"channel_order must be one of {CHANNEL_ORDERS}, "
                                    f"got {channel_order!r}")
        if frame.dtype not in (np.uint8, np.uint16):
            raise InvalidFrameError(f"frame dtype {frame.dtype} is not supported "
                                    "(uint8 or uint16)")
        channels = frame.shape[2] if frame.ndim == 3 else 1
        if frame.ndim not in (2, 3) or channels not in (1, 3, 4) or min(frame.shape[:2]) < 2:
            raise InvalidFrameError(f"frame shape {frame.shape} is not (H, W), (H, W, 1|3|4)")
        if (channels == 1) != (channel_order == "MONO"):
            raise InvalidFrameError(f"a {channels}-channel frame cannot be {channel_order}")
        small = self._resize(frame if channels != 1 or frame.ndim == 2 else frame[:, :, 0])
        small, channel_order = normalize_layout(small, channel_order)  # at the small size
        return to_tensor(small, self.contract.input, out=self._tensor,
                         frame_order=channel_order)

    def segment(self, frame: np.ndarray, channel_order: str = "RGB",
                want_confidence: bool = True) -> SegmentationResult:
        """Segment one frame: (H, W) mono or (H, W, 3|4) colour, uint8 or uint16.

        Raises InvalidFrameError for a frame that cannot be used or when the model's outputs are
        not finite or not valid class ids; the caller skips that frame.
        """
        t0 = time.perf_counter()
        tensor = self._preprocess(frame, channel_order)
        t1 = time.perf_counter()
        out = self.backend.infer(tensor)
        t2 = time.perf_counter()
        conf_small = out.confidence
        if not np.isfinite(conf_small).all():
            raise InvalidFrameError("model output holds NaN or Inf (confidence); frame skipped")
        labels = out.labels
        n = self.contract.num_classes
        if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= n):
            raise InvalidFrameError(f"model output holds label ids outside 0..{n - 1}")
        np.copyto(self._labels_small, labels, casting="unsafe")
        window = self._window
        labels_small = window.crop(self._labels_small)
        conf_small = window.crop(conf_small)
        counts = cv2.calcHist([labels_small], [0], None, [n], [0, n]).reshape(-1)
        coverage = {name: float(c) / labels_small.size for name, c in zip(CLASS_NAMES, counts)}
        frame_hw = frame.shape[:2]
        full = map_to_frame(labels_small, frame_hw)
        conf = map_to_frame(conf_small, frame_hw) if want_confidence else None
        t3 = time.perf_counter()
        return SegmentationResult(full, conf, coverage, Timings(
            (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3),
            labels_small.copy(), conf_small.copy())

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Labels of an RGB frame (the :class:`Predictor` interface used by eval)."""
        return self.segment(rgb, "RGB", want_confidence=False).labels


def load_predictor(model: str | Path, backend: str = "auto",
                   options: BackendOptions = BackendOptions()) -> Predictor:
    """``classical`` → the ExG/row baseline; ``exg-otsu`` → plain ExG + Otsu vegetation (every
    plant pixel crop); anything else → a model folder on a backend."""
    if str(model) == CLASSICAL:
        return ClassicalSegmenter()
    if str(model) == EXG_OTSU:
        return ExgOtsuVegetation()
    return Segmenter(Path(model), backend, options)
