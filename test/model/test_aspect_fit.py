"""Frames of another aspect ratio than the model input are fitted, not stretched (issue 17):
resized keeping their aspect ratio, padded to the input size, and the padding cut off the
outputs, so labels come back at the frame's size and where its pixels are."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from crop_weed_seg.backends.base import InferenceOutput
from crop_weed_seg.model.preprocess import (
    InputSpec,
    Window,
    fit_to_input,
    fitted_size,
    resize_to_input,
)
from crop_weed_seg.perception.segmenter import Segmenter

from support import REPO

MODEL = REPO / "models" / "default"
SOIL, GREEN = (110, 80, 60), (50, 160, 40)


def _frame(h: int, w: int, cx: int, cy: int, r: int, noise: bool = True) -> np.ndarray:
    """Soil-coloured frame with one green plant disc of radius r at (cx, cy)."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = SOIL
    if noise:
        rng = np.random.default_rng(0)
        img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    cv2.circle(img, (cx, cy), r, GREEN, -1)
    return img


def _disc(h: int, w: int, cx: int, cy: int, r: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (cx, cy), r, 1, -1)
    return mask > 0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


class GreenerThanRed:
    """A per-pixel stand-in for a network: crop (1) where green > red in the input tensor.
    Records the tensors it is given."""

    name = "fake"
    detail = "per-pixel"

    def __init__(self) -> None:
        self.tensors: list[np.ndarray] = []

    def infer(self, tensor: np.ndarray) -> InferenceOutput:
        self.tensors.append(tensor.copy())
        labels = (tensor[0, 1] > tensor[0, 0]).astype(np.int32)
        return InferenceOutput(labels, np.ones(labels.shape, np.float32))

    def close(self) -> None:
        pass


@pytest.mark.parametrize("frame_hw,expected", [
    ((480, 640), (384, 512)), ((960, 1280), (384, 512)), ((1080, 1440), (384, 512)),
    ((360, 640), (288, 512)), ((1080, 1920), (288, 512)), ((600, 600), (384, 384)),
    ((640, 480), (384, 288)), ((479, 641), (383, 512)), ((2, 2000), (1, 512)),
    ((2000, 2), (384, 1))])
def test_fitted_size_keeps_the_aspect_ratio(frame_hw: tuple[int, int],
                                            expected: tuple[int, int]) -> None:
    assert fitted_size(frame_hw, (384, 512)) == expected


def test_a_4_3_frame_is_resized_exactly_as_before() -> None:
    rng = np.random.default_rng(1)
    for shape in [(480, 640, 3), (960, 1280, 3), (1944, 2592, 3), (480, 640)]:
        frame = rng.integers(0, 256, shape, dtype=np.uint8)
        small, window = fit_to_input(frame, InputSpec())
        assert window == Window(0, 0, 384, 512)
        assert np.array_equal(small, resize_to_input(frame, InputSpec()))


@pytest.mark.parametrize("h,w,cx,cy,r", [(720, 1280, 1000, 200, 40), (360, 640, 150, 260, 25),
                                         (600, 600, 450, 120, 40), (300, 800, 700, 60, 30),
                                         (800, 450, 100, 700, 30)])
def test_the_network_sees_the_frame_unstretched_and_labels_land_in_place(
        h: int, w: int, cx: int, cy: int, r: int) -> None:
    fake = GreenerThanRed()
    seg = Segmenter(MODEL, backend_instance=fake)
    result = seg.segment(_frame(h, w, cx, cy, r, noise=False), "RGB", want_confidence=True)
    # the tensor has the model's size; the plant in it is round (no stretching)
    tensor = fake.tensors[-1]
    assert tensor.shape == (1, 3, 384, 512)
    fh, fw = fitted_size((h, w), (384, 512))
    top, left = (384 - fh) // 2, (512 - fw) // 2
    inside = (tensor[0, 1] > tensor[0, 0])[top:top + fh, left:left + fw]
    ys, xs = np.nonzero(inside)
    height, width = np.ptp(ys) + 1, np.ptp(xs) + 1
    assert abs(height - width) <= 1, (height, width)
    scale = fh / h
    assert abs(height - 2 * r * scale) <= 2
    # labels: the frame's size, the plant where the frame has it; model maps without padding
    assert result.labels.shape == (h, w) and result.confidence.shape == (h, w)
    assert result.labels_model.shape == (fh, fw) == result.confidence_model.shape
    assert _iou(result.labels == 1, _disc(h, w, cx, cy, r)) > 0.93
    ys, xs = np.nonzero(result.labels == 1)
    assert abs(xs.mean() - cx) < 1.5 / scale and abs(ys.mean() - cy) < 1.5 / scale
    assert sum(result.coverage.values()) == pytest.approx(1.0)
    assert result.coverage["crop"] == pytest.approx(np.pi * r * r / (h * w), rel=0.15)


def test_padding_mirrors_the_frame_rather_than_a_black_border() -> None:
    fake = GreenerThanRed()
    seg = Segmenter(MODEL, backend_instance=fake)
    frame = _frame(360, 640, 320, 10, 8, noise=False)   # plant touching the top edge
    seg.segment(frame, "RGB", want_confidence=False)
    tensor = fake.tensors[-1][0]
    assert tensor[:, :48].min() > 0.1       # 48 padded rows above: soil colour, not black
    # the plant is mirrored into the padding above the frame's first row
    assert (tensor[1, 40:48] > tensor[0, 40:48]).any()


@pytest.mark.parametrize("channels,order", [(0, "MONO"), (4, "RGB"), (3, "BGR")])
def test_every_frame_layout_is_fitted(channels: int, order: str) -> None:
    fake = GreenerThanRed()
    seg = Segmenter(MODEL, backend_instance=fake)
    frame = _frame(360, 640, 100, 100, 20)
    if channels == 0:
        frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    elif channels == 4:
        frame = np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)])
    frame16 = frame.astype(np.uint16) * 257
    for f in (frame, frame16):
        result = seg.segment(f, order, want_confidence=False)
        assert result.labels.shape == (360, 640)
        assert result.labels_model.shape == (288, 512)
        assert fake.tensors[-1].shape == (1, 3, 384, 512)


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    pytest.importorskip("onnxruntime")
    return Segmenter(MODEL, "onnxruntime")


@pytest.mark.parametrize("h,w,cx,cy,r", [(720, 1280, 1000, 200, 40), (360, 640, 150, 260, 25),
                                         (600, 600, 450, 120, 40), (1000, 1000, 180, 800, 60)])
def test_the_shipped_model_finds_a_plant_where_it_is_in_16_9_and_1_1_frames(
        segmenter: Segmenter, h: int, w: int, cx: int, cy: int, r: int) -> None:
    labels = segmenter.predict(_frame(h, w, cx, cy, r))
    assert labels.shape == (h, w)
    vegetation = labels > 0
    assert _iou(vegetation, _disc(h, w, cx, cy, r)) > 0.9
    ys, xs = np.nonzero(vegetation)
    assert abs(xs.mean() - cx) < 3 and abs(ys.mean() - cy) < 3
