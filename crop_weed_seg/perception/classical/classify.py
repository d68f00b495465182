"""Crop or weed: the connected components of the vegetation mask judged against the rows.

Connected components (8-connected) of the vegetation mask; one smaller than
``min_component_area`` is speckle and becomes soil. A component with at least half of its
pixels within the crop band of a row centre-line is crop, any other is weed. The band's
half-width is ``band_fraction x spacing``, narrowed to the measured half-width of the rows when
the crop is still small (a wide band around small plants would call every weed near the row
crop); with a single row in view it is the measured half-width. Weeds inside the band, and
weeds touching a crop plant (they merge into one component), are labelled crop: known limits
of this baseline.

**Fallback without rows** (a documented choice). Calling all vegetation weed would tell a
weeding robot to destroy the crop; calling all of it crop would hide every weed. Without rows,
a component covering at least ``fallback_crop_area_fraction`` of the image is crop (crops are
sown before weeds emerge, so at weeding time they are the larger plants) and a smaller one is
weed.
"""

from __future__ import annotations

import cv2
import numpy as np

from crop_weed_seg.classes import CROP, SOIL, WEED
from crop_weed_seg.perception.classical.rows import RowModel


def label_components(mask: np.ndarray, rows: RowModel, *, band_fraction: float = 0.2,
                     min_component_area: int = 10,
                     fallback_crop_area_fraction: float = 0.005) -> np.ndarray:
    """uint8 (H, W) labels SOIL/CROP/WEED from a vegetation mask and a row model.

    A connected component (8-connected) smaller than ``min_component_area`` pixels is soil.
    With rows: a component with at least half of its pixels within the crop band of a row
    centre-line is crop, otherwise weed; the band's half-width is the smaller of
    ``band_fraction x spacing`` and ``rows.row_half_width_px`` (whichever is known). Without
    rows: a component of at least ``fallback_crop_area_fraction`` of the image area is crop,
    otherwise weed.
    """
    mask_u8 = np.asarray(mask).astype(np.uint8)
    height, width = mask_u8.shape
    count, components, stats, _ = cv2.connectedComponentsWithStats(mask_u8, connectivity=8)
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.int64)
    lut = np.full(count, SOIL, dtype=np.uint8)
    if count <= 1:
        return lut[components]
    widths = [w for w in (band_fraction * rows.spacing_px if rows.spacing_px else None,
                          rows.row_half_width_px) if w]
    half_band = min(widths) if widths else None
    if rows.found and half_band:
        ys, xs = np.nonzero(mask_u8)
        ids = components[ys, xs]
        inside = rows.distance_to_nearest_row(xs, ys, width, height) <= half_band
        in_band = np.bincount(ids, weights=inside, minlength=count)
        is_crop = in_band >= 0.5 * np.maximum(areas, 1)
    else:
        is_crop = areas >= fallback_crop_area_fraction * height * width
    lut[:] = np.where(is_crop, CROP, WEED)
    lut[0] = SOIL
    lut[areas < min_component_area] = SOIL
    return lut[components]


__all__ = ["label_components"]
