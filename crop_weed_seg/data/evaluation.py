"""Scoring a predictor on a dataset: any callable from an RGB frame to a label map."""

from __future__ import annotations

from typing import Callable

import numpy as np

from crop_weed_seg.data.corruptions import ROBUSTNESS_CONDITIONS
from crop_weed_seg.data.datasets import SegmentationDataset
from crop_weed_seg.data.metrics import ConfusionAccumulator, SegmentationScores
from crop_weed_seg.perception.predictor import Predictor  # noqa: F401  (re-exported)


def evaluate(predict: Callable[[np.ndarray], np.ndarray], dataset: SegmentationDataset,
             limit: int | None = None, progress: bool = False,
             description: str = "eval",
             transform: Callable[[np.ndarray], np.ndarray] | None = None) -> SegmentationScores:
    """Confusion-matrix scores of ``predict`` over (the first ``limit``) samples of ``dataset``.

    Predictions must come back at the image's own resolution. ``transform`` changes each
    image before prediction (never the labels): the robustness conditions.
    """
    acc = ConfusionAccumulator()
    n = len(dataset) if limit is None else min(limit, len(dataset))
    indices = range(n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=description, unit="img", leave=False)
    for i in indices:
        image, truth = dataset[i]
        pred = predict(image if transform is None else transform(image))
        if pred.shape != truth.shape:
            raise ValueError(f"{dataset.samples[i].image_path}: prediction {pred.shape} is not "
                             f"at image resolution {truth.shape}")
        acc.add(truth, pred)
    return acc.scores()


def robustness(predict: Callable[[np.ndarray], np.ndarray], dataset: SegmentationDataset,
               progress: bool = False) -> dict[str, SegmentationScores]:
    """Scores on the clean images and under each of
    :data:`~crop_weed_seg.data.corruptions.ROBUSTNESS_CONDITIONS` (colour temperature,
    exposure, JPEG, motion blur), keyed ``clean`` then by condition name."""
    results = {"clean": evaluate(predict, dataset, progress=progress, description="clean")}
    for name, transform in ROBUSTNESS_CONDITIONS.items():
        results[name] = evaluate(predict, dataset, progress=progress, description=name,
                                 transform=transform)
    return results
