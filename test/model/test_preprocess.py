"""Preprocessing cases whose expected values can be computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from crop_weed_seg.errors import InvalidFrameError
from crop_weed_seg.model.preprocess import (
    InputSpec,
    from_tensor,
    labels_to_frame,
    resize_to_input,
    to_tensor,
)


def test_white_image_with_known_mean_and_std_gives_a_known_constant() -> None:
    spec = InputSpec(size=(4, 6), scale=1 / 255, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0))
    x = to_tensor(np.full((4, 6, 3), 255, np.uint8), spec)
    assert x.shape == (1, 3, 4, 6) and x.dtype == np.float32
    assert np.allclose(x[0, 0], 1.0) and np.allclose(x[0, 1], 3.0) and np.allclose(x[0, 2], 0.5)


def test_bgr_channel_order_swaps_red_and_blue() -> None:
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 255
    x = to_tensor(rgb, InputSpec(size=(2, 2), channel_order="BGR"))
    assert np.allclose(x[0, 2], 1.0) and np.allclose(x[0, 0], 0.0)


def test_from_tensor_inverts_to_tensor() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    spec = InputSpec(size=(5, 7), mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25))
    assert np.array_equal(from_tensor(to_tensor(rgb, spec), spec), rgb)


def test_labels_come_back_at_odd_frame_resolution_with_nearest_neighbour() -> None:
    labels = np.zeros((384, 512), np.int32)
    labels[:, 256:] = 2
    full = labels_to_frame(labels, (479, 641))
    assert full.shape == (479, 641) and full.dtype == np.uint8
    assert set(np.unique(full)) == {0, 2}


def test_resize_to_input_gives_the_contract_size() -> None:
    frame = np.zeros((479, 641, 3), np.uint8)
    assert resize_to_input(frame, InputSpec(size=(384, 512))).shape == (384, 512, 3)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32),
                                 np.zeros((4, 4, 4), np.uint8)])
def test_wrong_frame_layout_is_an_invalid_frame_error(bad: np.ndarray) -> None:
    with pytest.raises(InvalidFrameError, match="expected an \\(H, W, 3\\) uint8 RGB image"):
        to_tensor(bad, InputSpec(size=(4, 4)))
