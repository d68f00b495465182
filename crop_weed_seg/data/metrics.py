"""Segmentation metrics from a confusion matrix (rows: ground truth, columns: prediction)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crop_weed_seg.classes import (
    CLASS_NAMES,
    CROP,
    IGNORE_INDEX,
    NUM_CLASSES,
    SOIL,
    VEGETATION,
    WEED,
)
from crop_weed_seg.errors import DatasetError


def confusion_matrix(truth: np.ndarray, pred: np.ndarray,
                     num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Count (truth, prediction) pairs; pixels whose truth is ``IGNORE_INDEX`` are left out.

    ``truth`` and ``pred`` are integer arrays of the same shape. Returns (C, C) int64.
    """
    if truth.shape != pred.shape:
        raise ValueError(f"truth shape {truth.shape} differs from prediction shape {pred.shape}")
    t = truth.reshape(-1).astype(np.int64)
    p = pred.reshape(-1).astype(np.int64)
    keep = t != IGNORE_INDEX
    t, p = t[keep], p[keep]
    if t.size and (t.max() >= num_classes or t.min() < 0):
        raise DatasetError(f"truth labels hold class ids outside 0..{num_classes - 1} "
                           "(besides 255)")
    if p.size and (p.max() >= num_classes or p.min() < 0):
        raise ValueError(f"prediction holds class ids outside 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


@dataclass(frozen=True)
class SegmentationScores:
    """Scores derived from one confusion matrix. IoU of a class absent from both is NaN."""

    confusion: np.ndarray
    iou: dict[str, float]
    miou: float
    vegetation_iou: float
    pixel_accuracy: float
    images: int = 0
    #: Pixels labelled vegetation (plant, crop or weed unknown) predicted [soil, crop or weed].
    vegetation_only: tuple[int, int] = (0, 0)

    def to_json(self) -> dict[str, object]:
        """The ``eval --json`` document: keys miou, iou, vegetation_iou, pixel_accuracy,
        confusion, images."""
        return {
            "miou": self.miou,
            "iou": dict(self.iou),
            "vegetation_iou": self.vegetation_iou,
            "pixel_accuracy": self.pixel_accuracy,
            "confusion": self.confusion.astype(int).tolist(),
            "images": self.images,
            "vegetation_only": list(self.vegetation_only),
        }


def _iou(intersection: float, union: float) -> float:
    return float(intersection / union) if union > 0 else float("nan")


def scores_from_confusion(confusion: np.ndarray, images: int = 0,
                          vegetation_only: tuple[int, int] = (0, 0)) -> SegmentationScores:
    """Per-class IoU, mIoU (mean over classes present), vegetation IoU and pixel accuracy.

    Vegetation IoU treats crop ∪ weed as one class against soil. ``vegetation_only`` counts
    pixels labelled vegetation (partial labels) predicted soil and predicted a plant: they
    enter vegetation IoU and soil IoU (as soil false positives), not crop or weed IoU, and
    not pixel accuracy.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    vo_soil, vo_plant = (float(v) for v in vegetation_only)
    tp = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    if cm.shape[0] > SOIL:
        union[SOIL] += vo_soil
    iou = {name: _iou(tp[i], union[i]) for i, name in enumerate(CLASS_NAMES[: cm.shape[0]])}
    present = [v for v in iou.values() if not np.isnan(v)]
    miou = float(np.mean(present)) if present else float("nan")
    veg = [CROP, WEED]
    veg_tp = cm[np.ix_(veg, veg)].sum()
    veg_union = cm[veg, :].sum() + cm[:, veg].sum() - veg_tp + vo_soil + vo_plant
    veg_tp += vo_plant
    total = cm.sum()
    return SegmentationScores(
        confusion=confusion.astype(np.int64),
        iou=iou,
        miou=miou,
        vegetation_iou=_iou(veg_tp, veg_union),
        pixel_accuracy=float(tp.sum() / total) if total > 0 else float("nan"),
        images=images,
        vegetation_only=(int(vo_soil), int(vo_plant)),
    )


class ConfusionAccumulator:
    """Adds up confusion matrices over many images without keeping the images."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.vegetation_only = np.zeros(2, dtype=np.int64)
        self.images = 0

    def add(self, truth: np.ndarray, pred: np.ndarray) -> None:
        """Count one image; truth may hold 3 (vegetation: partial labels)."""
        veg = truth == VEGETATION
        if veg.any():
            if truth.shape != pred.shape:
                raise ValueError(f"truth shape {truth.shape} differs from prediction shape "
                                 f"{pred.shape}")
            plant = int(np.count_nonzero(pred[veg] != SOIL))
            self.vegetation_only += (int(veg.sum()) - plant, plant)
            truth = np.where(veg, np.uint8(IGNORE_INDEX), truth)
        self.matrix += confusion_matrix(truth, pred, self.num_classes)
        self.images += 1

    def scores(self) -> SegmentationScores:
        return scores_from_confusion(self.matrix, self.images,
                                     (int(self.vegetation_only[0]), int(self.vegetation_only[1])))


__all__ = [
    "ConfusionAccumulator",
    "SegmentationScores",
    "confusion_matrix",
    "scores_from_confusion",
]
