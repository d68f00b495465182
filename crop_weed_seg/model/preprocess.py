"""Preprocessing shared by training, evaluation, prediction and the robot.

Pure functions with explicit inverses: no data-dependent behaviour (never "if max > 1 then
divide by 255"). Training, evaluation and inference all call these, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from crop_weed_seg.errors import InvalidFrameError


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


def resize_to_input(frame: np.ndarray, spec: InputSpec, dst: np.ndarray | None = None
                    ) -> np.ndarray:
    """Resize a frame (H, W[, C], uint8 or uint16) to ``spec.size`` (stretching it if its
    aspect ratio differs; :func:`fit_to_input` keeps the aspect ratio).

    Shrinking by up to 2x per axis and enlarging use bilinear interpolation; shrinking by more
    goes bilinear to twice the target size, then an exact 2x2 box average (OpenCV's fast
    INTER_AREA path), which anti-aliases like a direct INTER_AREA resize (mean difference
    0.4 grey levels at 1920x1080) in a third of the time. Training and inference both call
    this function. ``dst`` (the target shape and dtype) is filled and returned when given.
    """
    return resize_to(frame, spec.size, dst)


def resize_to(frame: np.ndarray, size: tuple[int, int], dst: np.ndarray | None = None
              ) -> np.ndarray:
    """Resize a frame (H, W[, C]) to ``size`` (h, w) the way :func:`resize_to_input` does."""
    if frame.ndim not in (2, 3):
        raise InvalidFrameError(f"expected an (H, W) or (H, W, C) image, got shape {frame.shape}")
    h, w = size
    if frame.shape[:2] == (h, w):
        if dst is None:
            return frame
        np.copyto(dst, frame)
        return dst
    if frame.shape[0] > 2 * h or frame.shape[1] > 2 * w:
        mid = cv2.resize(frame, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(mid, (w, h), dst=dst, interpolation=cv2.INTER_AREA)
    return cv2.resize(frame, (w, h), dst=dst, interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class Window:
    """Where a frame sits inside the model input after :func:`fit_to_input`: rows
    ``top:top + height``, columns ``left:left + width``; the rest is padding."""

    top: int
    left: int
    height: int
    width: int

    def crop(self, values: np.ndarray) -> np.ndarray:
        """The frame's part of a model-resolution map (a view)."""
        return values[self.top:self.top + self.height, self.left:self.left + self.width]


def fitted_size(frame_hw: tuple[int, int], input_hw: tuple[int, int]) -> tuple[int, int]:
    """The largest (h, w) with the frame's aspect ratio that fits in the model input (one side
    equal to the input's, the other rounded); the input size itself for a frame of the
    input's aspect ratio (e.g. 640x480 for a 384x512 input)."""
    fh, fw = frame_hw
    h, w = input_hw
    if fh * w > fw * h:                    # taller than the input: full height
        return h, max(1, min(w, round(fw * h / fh)))
    return max(1, min(h, round(fh * w / fw))), w


#: What fills the input around a frame of another aspect ratio: the frame mirrored at its
#: edges (no hard black border for the network's convolutions and its global-context pooling;
#: docs/TILING.md compares it with black padding and with stretching).
PAD_MODE = cv2.BORDER_REFLECT_101


def fit_to_input(frame: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Window]:
    """Resize a frame (H, W[, C]) keeping its aspect ratio to fit ``spec.size`` and pad it to
    that size, centred (no stretching). Returns the padded image and the frame's window in it.

    A frame of the input's aspect ratio comes back exactly as :func:`resize_to_input` gives
    it (window = the whole input). Labels of the window, resized to the frame's size, land
    where the frame's pixels are.
    """
    h, w = spec.size
    fh, fw = fitted_size(frame.shape[:2], (h, w))
    if (fh, fw) == (h, w):
        return resize_to(frame, (h, w)), Window(0, 0, h, w)
    small = resize_to(frame, (fh, fw))
    top, left = (h - fh) // 2, (w - fw) // 2
    padded = cv2.copyMakeBorder(small, top, h - fh - top, left, w - fw - left, PAD_MODE)
    return padded, Window(top, left, fh, fw)


def to_tensor(rgb: np.ndarray, spec: InputSpec, out: np.ndarray | None = None,
              frame_order: str = "RGB") -> np.ndarray:
    """(H, W, 3) uint8 frame → (1, 3, H, W) float32 normalised; writes into ``out`` if given.

    ``frame_order`` says whether the frame is RGB or BGR; channels are arranged in the
    model's ``spec.channel_order`` while normalising (no separate conversion pass).
    """
    _check_rgb(rgb)
    h, w = rgb.shape[:2]
    if out is None:
        out = np.empty((1, 3, h, w), np.float32)
    order = (0, 1, 2) if spec.channel_order == frame_order else (2, 1, 0)
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
    planes: list[Any] = [None, None, None]
    for dst, src in enumerate(order):
        planes[src] = (t[dst] * spec.std[dst] + spec.mean[dst]) / spec.scale
    return np.clip(np.rint(np.stack(planes, axis=-1)), 0, 255).astype(np.uint8)


def map_to_frame(values: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """A model-resolution (h, w) map (labels, confidence) → frame resolution (H, W), nearest
    neighbour; always a new array (callers may keep it while the model's buffers are reused)."""
    h, w = frame_hw
    if values.shape == (h, w):
        return values.copy()
    return cv2.resize(values, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)


def labels_to_frame(labels: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """Model-resolution (h, w) labels of any integer dtype → frame resolution (H, W) uint8."""
    return map_to_frame(labels.astype(np.uint8, copy=False), frame_hw)


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InvalidFrameError(
            f"expected an (H, W, 3) uint8 RGB image, got shape {rgb.shape} dtype {rgb.dtype}"
        )
