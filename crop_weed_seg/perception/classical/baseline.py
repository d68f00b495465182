"""The classical predictors: :class:`ClassicalSegmenter` (soil / crop / weed) and
:class:`ExgOtsuVegetation` (soil / plant only).

:class:`ClassicalSegmenter` chains the three steps of the baseline: the vegetation mask
(:func:`~crop_weed_seg.perception.classical.indices.vegetation_mask`), the row model
(:func:`~crop_weed_seg.perception.classical.rows.detect_rows`) and the crop/weed decision per
connected component (:func:`~crop_weed_seg.perception.classical.classify.label_components`);
each module's docstring explains its step.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from crop_weed_seg.classes import CROP
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.perception.classical.classify import label_components
from crop_weed_seg.perception.classical.indices import (
    _check_index,
    _check_rgb,
    vegetation_mask,
)
from crop_weed_seg.perception.classical.rows import RowModel, detect_rows


@dataclass(frozen=True)
class ClassicalConfig:
    """Parameters of :class:`ClassicalSegmenter`.

    ``index``: ``"exg"`` or ``"exhsv"``. ``band_fraction``: half-width of the crop band around
    a row centre-line, as a fraction of the row spacing (narrowed to the measured row
    half-width when that is smaller). ``min_component_area``: components
    smaller than this (pixels of the input) are speckle and become soil.
    ``fallback_crop_area_fraction``: without rows, components at least this fraction of the
    image are crop, smaller ones weed. ``open_px``: speckle-removing opening (< 2: none).
    ``angle_step_deg``, ``search_max_side``, ``min_periodicity``, ``min_anisotropy``,
    ``min_contrast``, ``min_spacing_px``: see :func:`detect_rows`.
    """

    index: str = "exg"
    band_fraction: float = 0.2
    min_component_area: int = 10
    fallback_crop_area_fraction: float = 0.005
    open_px: int = 3
    angle_step_deg: float = 2.0
    search_max_side: int = 128
    min_anisotropy: float = 3.0
    min_contrast: float = 0.25
    min_periodicity: float = 0.35
    min_spacing_px: float = 10.0

    def __post_init__(self) -> None:
        _check_index(self.index)
        if not 0.0 < self.band_fraction < 0.5:
            raise ConfigError(f"band_fraction must be in (0, 0.5), got {self.band_fraction}")
        if self.min_component_area < 0:
            raise ConfigError(f"min_component_area must be >= 0, got {self.min_component_area}")
        if not 0.0 <= self.fallback_crop_area_fraction <= 1.0:
            raise ConfigError("fallback_crop_area_fraction must be in [0, 1], got "
                              f"{self.fallback_crop_area_fraction}")
        if self.open_px < 0:
            raise ConfigError(f"open_px must be >= 0, got {self.open_px}")
        if not 0.0 < self.angle_step_deg <= 45.0:
            raise ConfigError(f"angle_step_deg must be in (0, 45], got {self.angle_step_deg}")
        if self.search_max_side < 16:
            raise ConfigError(f"search_max_side must be >= 16, got {self.search_max_side}")
        if not 0.0 < self.min_periodicity < 1.0:
            raise ConfigError(f"min_periodicity must be in (0, 1), got {self.min_periodicity}")
        if self.min_anisotropy < 1.0:
            raise ConfigError(f"min_anisotropy must be >= 1, got {self.min_anisotropy}")
        if self.min_contrast < 0:
            raise ConfigError(f"min_contrast must be >= 0, got {self.min_contrast}")
        if self.min_spacing_px <= 0:
            raise ConfigError(f"min_spacing_px must be > 0, got {self.min_spacing_px}")


class ClassicalSegmenter:
    """Vegetation index + row model + connected components; see the module docstring."""

    name = "classical"

    def __init__(self, config: ClassicalConfig | None = None) -> None:
        self.config = config if config is not None else ClassicalConfig()

    def predict_with_rows(self, rgb: np.ndarray) -> tuple[np.ndarray, RowModel]:
        """Labels (uint8 (H, W), 0 soil / 1 crop / 2 weed) and the row model behind them."""
        cfg = self.config
        mask = vegetation_mask(rgb, cfg.index, open_px=cfg.open_px)
        rows = detect_rows(mask, angle_step_deg=cfg.angle_step_deg,
                           search_max_side=cfg.search_max_side,
                           min_periodicity=cfg.min_periodicity,
                           min_anisotropy=cfg.min_anisotropy,
                           min_contrast=cfg.min_contrast,
                           min_spacing_px=cfg.min_spacing_px)
        labels = label_components(mask, rows, band_fraction=cfg.band_fraction,
                                  min_component_area=cfg.min_component_area,
                                  fallback_crop_area_fraction=cfg.fallback_crop_area_fraction)
        return labels, rows

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W) labels of an RGB uint8 (H, W, 3) image."""
        return self.predict_with_rows(rgb)[0]


class ExgOtsuVegetation:
    """The plainest baseline for the soil/plant boundary, as a user writes it in three lines:
    Excess Green ``2G - R - B`` on the 0..255 values (clipped at 0), Otsu's threshold per image
    (not clamped), no opening, no rows. Every plant pixel is labelled crop, so only its
    vegetation IoU means anything."""

    name = "exg-otsu"

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        f = _check_rgb(rgb).astype(np.int16)
        u8 = np.clip(2 * f[:, :, 1] - f[:, :, 0] - f[:, :, 2], 0, 255).astype(np.uint8)
        _, mask = cv2.threshold(u8, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        return (mask.astype(np.uint8) * np.uint8(CROP)).astype(np.uint8)


__all__ = ["ClassicalConfig", "ClassicalSegmenter", "ExgOtsuVegetation"]
