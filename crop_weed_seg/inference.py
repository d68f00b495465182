"""Frame → labels with a model folder through ONNX Runtime (CPU), and predictor loading.

The full backend registry (TensorRT, CUDA, torch) arrives with the runtime issue; this module
is the one path shared by ``eval``, ``predict`` and the training report today.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BackendError, InvalidFrameError
from .evaluation import Predictor
from .model_contract import ModelContract, load_model_contract
from .preprocess import labels_to_frame, resize_to_input, to_tensor

CLASSICAL = "classical"


@dataclass(frozen=True)
class Segmentation:
    """Labels (H, W) uint8 and confidence (H, W) float32 in [0, 1], at frame resolution."""

    labels: np.ndarray
    confidence: np.ndarray


class OnnxSegmenter:
    """Runs a model folder's ONNX with ONNX Runtime on the CPU, threads set on purpose."""

    def __init__(self, contract: ModelContract, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(f"onnxruntime is not importable ({exc}); install the pinned "
                               "requirements (make venv)") from None
        self.contract = contract
        self.name = contract.name
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(contract.onnx_path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise BackendError(f"{contract.onnx_path}: ONNX Runtime could not load it ({exc})") \
                from None
        self._outputs = [contract.labels_output] + (
            [contract.confidence_output] if contract.confidence_output else [])
        self._input: np.ndarray | None = None

    def segment(self, rgb: np.ndarray) -> Segmentation:
        """Labels and confidence of one (H, W, 3) uint8 RGB frame at its own resolution."""
        spec = self.contract.input
        small = resize_to_input(rgb, spec)
        if self._input is None:
            self._input = np.empty((1, 3, *spec.size), np.float32)
        x = to_tensor(small, spec, out=self._input)
        results: list[Any] = self.session.run(self._outputs, {self.contract.input_name: x})
        labels = results[0][0]
        conf = results[1][0] if len(results) > 1 else np.ones(labels.shape, np.float32)
        if not np.isfinite(conf).all():
            raise InvalidFrameError("model produced NaN or Inf confidence for this frame")
        if labels.min() < 0 or labels.max() >= self.contract.num_classes:
            raise InvalidFrameError(f"model produced label ids outside 0..{self.contract.num_classes - 1}")
        h, w = rgb.shape[:2]
        full_labels = labels_to_frame(labels, (h, w))
        full_conf = conf if conf.shape == (h, w) else _resize_nearest(conf, (h, w))
        return Segmentation(full_labels, full_conf)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        return self.segment(rgb).labels


def _resize_nearest(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(a, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)


def load_predictor(model: str | Path, threads: int | None = None) -> Predictor:
    """``classical`` → the ExG/row baseline; anything else → a model folder on ONNX Runtime."""
    if str(model) == CLASSICAL:
        from .classical import ClassicalSegmenter

        return ClassicalSegmenter()
    return OnnxSegmenter(load_model_contract(Path(model)), threads=threads)
