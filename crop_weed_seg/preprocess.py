"""Preprocessing shared by training, evaluation, prediction and the robot.

Pure functions with explicit inverses: no data-dependent behaviour (never "if max > 1 then
divide by 255"). Training, evaluation and inference all call these, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .errors import InvalidFrameError


@dataclass(frozen=True)
class InputSpec:
    """How a frame becomes the model's input tensor (from model.yaml ``input``).

    ``size`` is (H, W) of the network input; frames are resized to it. The tensor is
    ``(pixel * scale - mean) / std`` per channel in ``channel_order``, NCHW float32.
    """

    size: tuple[int, int] = (384, 512)
    channel_order: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


def resize_to_input(rgb: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Resize an (H, W, 3) uint8 RGB frame to ``spec.size`` with area/linear interpolation."""
    _check_rgb(rgb)
    h, w = spec.size
    if rgb.shape[:2] == (h, w):
        return rgb
    shrinking = rgb.shape[0] > h and rgb.shape[1] > w
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(rgb, (w, h), interpolation=interp)


def to_tensor(rgb: np.ndarray, spec: InputSpec, out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (1, 3, H, W) float32 normalised; writes into ``out`` if given."""
    _check_rgb(rgb)
    h, w = rgb.shape[:2]
    if out is None:
        out = np.empty((1, 3, h, w), np.float32)
    order = (0, 1, 2) if spec.channel_order == "RGB" else (2, 1, 0)
    for dst, src in enumerate(order):
        ch = out[0, dst]
        np.multiply(rgb[:, :, src], np.float32(spec.scale / spec.std[dst]), out=ch,
                    casting="unsafe")
        if spec.mean[dst] != 0.0:
            ch -= np.float32(spec.mean[dst] / spec.std[dst])
    return out


def from_tensor(tensor: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Inverse of :func:`to_tensor` for one image: (1|none, 3, H, W) → (H, W, 3) uint8 RGB."""
    t = tensor[0] if tensor.ndim == 4 else tensor
    order = (0, 1, 2) if spec.channel_order == "RGB" else (2, 1, 0)
    planes = [None, None, None]
    for dst, src in enumerate(order):
        planes[src] = (t[dst] * spec.std[dst] + spec.mean[dst]) / spec.scale
    return np.clip(np.rint(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def labels_to_frame(labels: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """Model-resolution (h, w) labels → frame resolution (H, W) uint8, nearest neighbour."""
    h, w = frame_hw
    lab = labels.astype(np.uint8, copy=False)
    if lab.shape == (h, w):
        return lab
    return cv2.resize(lab, (w, h), interpolation=cv2.INTER_NEAREST)


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InvalidFrameError(
            f"expected an (H, W, 3) uint8 RGB image, got shape {rgb.shape} dtype {rgb.dtype}"
        )
