"""Weed spray targets from a label image and its confidence map (no ROS).

Steps, per frame:

1. mask of the ``spray_classes`` pixels, cleaned by a morphological opening (drops specks) and
   closing (joins the leaves of one plant);
2. crop protection: pixels of ``protect_classes`` grown by ``crop_buffer_m`` on the ground;
   ``trim`` removes the weed pixels inside that buffer, ``suppress`` drops every weed blob that
   touches it;
3. connected components (8-connected); a blob is cut along the boom's lane boundaries, so no
   target is wider than one nozzle's footprint (without a boom: into strips of
   ``max_target_width_m``);
4. per piece: ground centroid and extent (every pixel projected through the camera model),
   area in m² (each pixel's ground footprint), mean confidence, pixel centroid, lane, and the
   time until its centroid reaches the nozzle line at the given speed;
5. pieces below ``min_confidence`` or ``min_area_m2`` (``min_area_px`` without geometry) are
   dropped.

Without geometry (no camera model) targets keep their pixel fields; x, y, sizes are NaN, area is
NaN, lane −1: nothing can be sprayed from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from crop_weed_seg.errors import ConfigError, InvalidFrameError
from crop_weed_seg.spray.geometry import Boom, GroundProjector
from crop_weed_seg.spray.records import empty_targets

PROTECTION_MODES = ("trim", "suppress")


@dataclass(frozen=True)
class TargetConfig:
    spray_classes: tuple[int, ...] = (2,)
    protect_classes: tuple[int, ...] = (1,)
    min_confidence: float = 0.5
    min_area_m2: float = 4e-5        # 40 mm², a seedling of about 7 mm across
    min_area_px: int = 30            # used when the geometry is unknown
    crop_buffer_m: float = 0.005
    crop_protection: str = "trim"
    opening_px: int = 1
    closing_px: int = 2
    max_target_width_m: float = 0.05  # without a boom

    def __post_init__(self) -> None:
        if self.crop_protection not in PROTECTION_MODES:
            raise ConfigError(f"crop_protection must be one of {PROTECTION_MODES}, got "
                              f"{self.crop_protection!r}")
        if set(self.spray_classes) & set(self.protect_classes):
            both = sorted(set(self.spray_classes) & set(self.protect_classes))
            raise ConfigError(f"classes {both} are both sprayed and protected")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"min_confidence {self.min_confidence} must be in [0, 1]")
        if self.crop_buffer_m < 0 or self.min_area_m2 < 0 or self.min_area_px < 0:
            raise ConfigError("crop_buffer_m, min_area_m2 and min_area_px must be >= 0")
        if not self.max_target_width_m > 0:
            raise ConfigError(f"max_target_width_m {self.max_target_width_m} must be > 0")


def _class_mask(labels: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """uint8 mask (0/1) of the pixels whose label is one of ``classes`` (one class: a plain
    comparison, several times faster than ``np.isin``)."""
    if len(classes) == 1:
        return (labels == classes[0]).view(np.uint8)
    return np.isin(labels, classes).astype(np.uint8)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


@dataclass
class _GroundMaps:
    """Per-pixel ground position (H, W, 2) and footprint area (H, W) for one image size."""

    xy: np.ndarray
    area: np.ndarray
    mpp_center: float


@dataclass
class TargetExtractor:
    """Extracts targets for one camera model; caches the per-pixel ground maps per image size
    (a few MB at 1280x720), so a frame costs only the weed pixels' lookups."""

    projector: GroundProjector | None
    boom: Boom | None
    config: TargetConfig = field(default_factory=TargetConfig)
    _maps: dict[tuple[int, int], _GroundMaps] = field(default_factory=dict, repr=False)

    def _ground_maps(self, h: int, w: int) -> _GroundMaps:
        key = (h, w)
        if key not in self._maps:
            assert self.projector is not None
            proj = self.projector
            if (proj.intrinsics.width, proj.intrinsics.height) != (w, h):
                raise InvalidFrameError(
                    f"label image {w}x{h} does not match the camera model "
                    f"{proj.intrinsics.width}x{proj.intrinsics.height}")
            # ground positions of pixel corners, so each pixel's footprint area is exact for a
            # plane: the quadrilateral of its four corners
            uu, vv = np.meshgrid(np.arange(w + 1, dtype=np.float64) - 0.5,
                                 np.arange(h + 1, dtype=np.float64) - 0.5)
            corners = proj.pixels_to_ground(np.column_stack((uu.ravel(), vv.ravel())))
            corners = corners.reshape(h + 1, w + 1, 2)
            a, b = corners[:-1, :-1], corners[:-1, 1:]
            c, d = corners[1:, 1:], corners[1:, :-1]
            area = 0.5 * np.abs((c[..., 0] - a[..., 0]) * (d[..., 1] - b[..., 1])
                                - (d[..., 0] - b[..., 0]) * (c[..., 1] - a[..., 1]))
            centers = 0.25 * (a + b + c + d)
            mpp = float(np.sqrt(np.nanmedian(area)))
            self._maps.clear()  # one size at a time: bounded
            self._maps[key] = _GroundMaps(centers.astype(np.float32), area.astype(np.float32),
                                          mpp)
        return self._maps[key]

    def extract(self, labels: np.ndarray, confidence: np.ndarray | None,
                speed_mps: float | None = None,
                pixel_scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
        """Target records (``records.TARGET_DTYPE``) for one frame. ``confidence`` (H, W) is the
        max class probability in [0, 1] (uint8 x 255 is accepted); None counts as 1.
        ``pixel_scale`` (rows, cols): camera pixels per label pixel, when the labels are at a
        lower resolution than the camera image (u, v and ``min_area_px`` are camera pixels)."""
        cfg = self.config
        if labels.ndim != 2:
            raise InvalidFrameError(f"labels must be (H, W), got {labels.shape}")
        h, w = labels.shape
        if confidence is not None and confidence.shape != labels.shape:
            raise InvalidFrameError(f"confidence {confidence.shape} and labels {labels.shape} "
                                    "differ in size")
        maps = self._ground_maps(h, w) if self.projector is not None else None

        mask = _class_mask(labels, cfg.spray_classes)
        if cfg.opening_px > 0:
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _disk(cfg.opening_px))
        if cfg.closing_px > 0:
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _disk(cfg.closing_px))
        if cfg.protect_classes and cfg.crop_buffer_m >= 0 and maps is not None:
            protect = _class_mask(labels, cfg.protect_classes)
            radius = int(round(cfg.crop_buffer_m / maps.mpp_center))
            if radius > 0:
                protect = cv2.dilate(protect, _disk(radius))
            if cfg.crop_protection == "trim":
                mask[protect > 0] = 0
            else:
                n, comp = cv2.connectedComponents(mask, connectivity=8)
                touching = np.unique(comp[(protect > 0) & (mask > 0)])
                mask[np.isin(comp, touching[touching > 0])] = 0

        n, comp = cv2.connectedComponents(mask, connectivity=8)
        if n <= 1:
            return empty_targets(0)
        conf = None
        if confidence is not None:
            conf = confidence.astype(np.float32) / (255.0 if confidence.dtype == np.uint8
                                                    else 1.0)
        points = cv2.findNonZero(mask).reshape(-1, 2)  # x, y; faster than np.nonzero
        cols, rows = points[:, 0].astype(np.intp), points[:, 1].astype(np.intp)
        ids = comp[rows, cols]
        pieces = ids.astype(np.int64) - 1           # components 1..n-1 -> pieces 0..n-2
        if maps is not None:
            gx = maps.xy[rows, cols, 0].astype(np.float64)
            gy = maps.xy[rows, cols, 1].astype(np.float64)
            parea = maps.area[rows, cols].astype(np.float64)
            if self.boom is not None:
                strip = self.boom.lane_of(gy).astype(np.int64)    # -1 outside the boom
            else:
                strip = np.floor(gy / cfg.max_target_width_m).astype(np.int64)
            # one piece per (blob, lane/strip)
            key = ids.astype(np.int64) * 100_003 + (strip - strip.min())
            _, pieces = np.unique(key, return_inverse=True)
        count = int(pieces.max()) + 1
        npx = np.bincount(pieces, minlength=count).astype(np.float64)

        def mean(values: np.ndarray) -> np.ndarray:
            return np.bincount(pieces, weights=values, minlength=count) / npx

        out = empty_targets(count)
        sy, sx = pixel_scale
        out["u"] = (mean(cols.astype(np.float64)) + 0.5) * sx - 0.5
        out["v"] = (mean(rows.astype(np.float64)) + 0.5) * sy - 0.5
        out["confidence"] = mean(conf[rows, cols]) if conf is not None else 1.0
        # the class of a piece: that of one of its pixels that is really a sprayed class (the
        # closing adds soil pixels between leaves); a piece made only of such gap pixels goes
        sprayed = np.flatnonzero(np.isin(labels[rows, cols], cfg.spray_classes))
        first = np.full(count, -1, np.int64)
        first[pieces[sprayed][::-1]] = sprayed[::-1]
        has_class = first >= 0
        out["class_id"] = np.where(has_class, labels[rows[first], cols[first]], 0)
        if maps is not None:
            area = np.bincount(pieces, weights=parea, minlength=count)
            out["x"] = np.bincount(pieces, weights=gx * parea, minlength=count) / area
            out["y"] = np.bincount(pieces, weights=gy * parea, minlength=count) / area
            out["area"] = area
            pad = maps.mpp_center
            for name, values in (("size_x", gx), ("size_y", gy)):
                hi = np.full(count, -np.inf)
                lo = np.full(count, np.inf)
                np.maximum.at(hi, pieces, values)
                np.minimum.at(lo, pieces, values)
                out[name] = hi - lo + pad
            if self.boom is not None:
                out["lane"] = self.boom.lane_of(out["y"])
                if speed_mps is not None and np.isfinite(speed_mps) and speed_mps > 0:
                    out["time_to_nozzle"] = (out["x"] - self.boom.nozzle_x) / speed_mps
            keep = (out["area"] >= cfg.min_area_m2) & np.isfinite(out["x"])
        else:
            for name in ("x", "y", "size_x", "size_y", "area"):
                out[name] = np.nan
            keep = npx * sy * sx >= cfg.min_area_px
        keep &= (out["confidence"] >= cfg.min_confidence) & has_class
        return out[keep]


def extract_targets(labels: np.ndarray, confidence: np.ndarray | None,
                    projector: GroundProjector | None, boom: Boom | None,
                    config: TargetConfig = TargetConfig(),
                    speed_mps: float | None = None) -> np.ndarray:
    """One-off :meth:`TargetExtractor.extract` (keep a TargetExtractor for a stream of frames)."""
    return TargetExtractor(projector, boom, config).extract(labels, confidence, speed_mps)
