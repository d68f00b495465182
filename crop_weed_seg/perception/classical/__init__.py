"""Classical crop/weed segmentation: the baseline a learned model has to beat.

No training, no weights: a vegetation index separates plants from soil, a row model explains
the plants that grow in the planted rows, and everything green that the rows do not explain is
a weed. One module per step, each explaining its step in its docstring:

1. **Vegetation mask**, :mod:`.indices` (:func:`vegetation_mask`): Excess Green (``"exg"``) or
   green-gated HSV saturation (``"exhsv"``), thresholded by Otsu clamped to a plausible range,
   then a small opening against speckle.
2. **Row model**, :mod:`.rows` (:class:`RowModel`, :func:`detect_rows`): straight, parallel,
   regularly spaced rows found by an angle search on the projection of the vegetation, then a
   periodic comb (several rows in view) or the distinct peaks of the profile (one or two); the
   module docstring also gives the geometry of :class:`RowModel`.
3. **Classification**, :mod:`.classify` (:func:`label_components`): a connected component
   mostly within the crop band of a row is crop, any other weed; without rows, large
   components are crop (a documented fallback).

The predictors, :mod:`.baseline`: :class:`ClassicalSegmenter` (the three steps, model name
``classical``) and :class:`ExgOtsuVegetation` (plain ExG + Otsu, soil/plant only, model name
``exg-otsu``).

Everything is deterministic; the only data-dependent normalisation is Otsu's threshold.
"""

from __future__ import annotations

from crop_weed_seg.perception.classical.baseline import (
    ClassicalConfig,
    ClassicalSegmenter,
    ExgOtsuVegetation,
)
from crop_weed_seg.perception.classical.classify import label_components
from crop_weed_seg.perception.classical.indices import (
    EXG_MIN_BRIGHTNESS,
    EXG_SCALE_RANGE,
    EXG_THRESHOLD_BOUNDS,
    EXHSV_HUE_RANGE,
    EXHSV_MIN_VALUE,
    EXHSV_SATURATION_BOUNDS,
    VEGETATION_INDICES,
    excess_green,
    vegetation_mask,
)
from crop_weed_seg.perception.classical.rows import RowModel, detect_rows

__all__ = [
    "ClassicalConfig",
    "ExgOtsuVegetation",
    "ClassicalSegmenter",
    "EXG_MIN_BRIGHTNESS",
    "EXG_SCALE_RANGE",
    "EXG_THRESHOLD_BOUNDS",
    "EXHSV_HUE_RANGE",
    "EXHSV_MIN_VALUE",
    "EXHSV_SATURATION_BOUNDS",
    "RowModel",
    "VEGETATION_INDICES",
    "detect_rows",
    "excess_green",
    "label_components",
    "vegetation_mask",
]
