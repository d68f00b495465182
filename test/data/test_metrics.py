"""Metrics on hand-made cases whose answers can be worked out on paper."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crop_weed_seg.data.metrics import ConfusionAccumulator, confusion_matrix, scores_from_confusion
from crop_weed_seg.errors import DatasetError


def test_confusion_matrix_counts_pairs_and_skips_ignore() -> None:
    truth = np.array([[0, 0, 1, 2], [255, 2, 1, 0]], np.uint8)
    pred = np.array([[0, 1, 1, 2], [2, 2, 0, 0]], np.uint8)
    cm = confusion_matrix(truth, pred)
    assert cm.tolist() == [[2, 1, 0], [1, 1, 0], [0, 0, 2]]


def test_scores_on_a_hand_made_case() -> None:
    cm = np.array([[2, 1, 0], [1, 1, 0], [0, 0, 2]])
    s = scores_from_confusion(cm)
    assert s.iou["soil"] == pytest.approx(2 / 4)
    assert s.iou["crop"] == pytest.approx(1 / 3)
    assert s.iou["weed"] == pytest.approx(1.0)
    assert s.miou == pytest.approx((0.5 + 1 / 3 + 1.0) / 3)
    assert s.pixel_accuracy == pytest.approx(5 / 7)
    # vegetation = crop ∪ weed: true veg 4 px, predicted veg 4 px, both on 3 px
    assert s.vegetation_iou == pytest.approx(3 / 5)


def test_absent_class_has_nan_iou_and_is_left_out_of_miou() -> None:
    s = scores_from_confusion(np.array([[3, 0, 0], [0, 1, 0], [0, 0, 0]]))
    assert math.isnan(s.iou["weed"]) and s.miou == pytest.approx(1.0)


def test_accumulator_adds_images_and_json_has_the_documented_keys() -> None:
    acc = ConfusionAccumulator()
    acc.add(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    acc.add(np.ones((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    doc = acc.scores().to_json()
    assert set(doc) == {"miou", "iou", "vegetation_iou", "pixel_accuracy", "confusion", "images",
                        "vegetation_only"}
    assert doc["images"] == 2 and doc["confusion"][1][0] == 4


def test_out_of_range_prediction_is_an_error() -> None:
    with pytest.raises(ValueError, match="prediction holds class ids outside"):
        confusion_matrix(np.zeros(3, np.uint8), np.array([0, 1, 7], np.uint8))


def test_out_of_range_truth_is_a_dataset_error() -> None:
    with pytest.raises(DatasetError, match=r"truth labels hold class ids outside 0\.\.2"):
        confusion_matrix(np.array([0, 1, 7], np.uint8), np.zeros(3, np.uint8))


def test_evaluate_adds_up_a_hand_made_dataset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from crop_weed_seg.data.datasets import open_dataset
    from crop_weed_seg.data.evaluation import evaluate
    from crop_weed_seg.image_files import write_image_atomic

    (tmp_path / "images").mkdir()
    truth = {"a": np.array([[0, 0], [1, 2]], np.uint8), "b": np.array([[2, 2], [255, 1]], np.uint8)}
    for stem, lab in truth.items():
        write_image_atomic(tmp_path / "images" / f"{stem}.png", np.zeros((2, 2, 3), np.uint8))
        write_image_atomic(tmp_path / "labels" / f"{stem}.png", lab, rgb=False)
    # The predictor calls everything weed: soil 0/2, crop 0/2, weed 3/(3+4) IoU.
    scores = evaluate(lambda rgb: np.full(rgb.shape[:2], 2, np.uint8), open_dataset(tmp_path))
    assert scores.images == 2
    assert scores.iou["weed"] == pytest.approx(3 / 7)
    assert scores.iou["soil"] == 0.0 and scores.iou["crop"] == 0.0
    assert scores.pixel_accuracy == pytest.approx(3 / 7)
    assert scores.vegetation_iou == pytest.approx(5 / 7)
