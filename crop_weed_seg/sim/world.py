"""The simulated field strip: ground truth that the drive simulator renders and scores against.

World (:class:`SimField`). A straight strip along x, ``length_m`` long and ``width_m`` wide,
rendered once as a top-down orthomosaic at ``gsd_mm`` mm/px with the synthetic generator's own
soil and plant drawers (:mod:`crop_weed_seg.synthetic`), crop rows along x. Every plant is drawn
on its own small canvas first, so the field knows each plant's exact full footprint (a boolean
mask in orthomosaic pixels, including the parts that a later plant covers), its class, centre,
area and bounding box in metres. Field coordinates: x along the strip (0 … length), y to the left
(−width/2 … +width/2), z up; orthomosaic row ``r`` is x = length − (r + 0.5)·gsd (top of the
mosaic = far end, as the camera sees it), column ``c`` is y = width/2 − (c + 0.5)·gsd.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np

from crop_weed_seg.classes import CROP, WEED
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.synthetic.camera import illumination_gains
from crop_weed_seg.synthetic.field import PRESETS, SynthConfig
from crop_weed_seg.synthetic.plants import (
    CROP_MORPHOLOGIES,
    WEED_MORPHOLOGIES,
    Canvas,
    PlantStyle,
    plant_style,
)
from crop_weed_seg.synthetic.soil import render_soil


@dataclass(frozen=True)
class FieldConfig:
    """What a simulated field strip is drawn from. Plant looks (morphologies, stages, light
    colour) come from the synthetic preset ``preset``; layout from the fields here."""

    length_m: float = 30.0
    width_m: float = 1.0
    gsd_mm: float = 1.0
    preset: str = "train"
    row_spacing_m: tuple[float, float] = (0.40, 0.50)
    in_row_spacing_m: tuple[float, float] = (0.15, 0.25)
    crop_gap_prob: float = 0.1
    weeds_per_m2: float = 20.0
    weed_touching_crop_prob: float = 0.15
    weed_in_row_prob: float = 0.25
    plant_shadows: bool = True

    def validate(self) -> "FieldConfig":
        if not (self.length_m > 0 and self.width_m > 0 and self.gsd_mm > 0):
            raise ConfigError("field length, width and gsd must be positive")
        if self.length_m * self.width_m / (self.gsd_mm / 1000.0) ** 2 > 2e8:
            raise ConfigError("field mosaic over 200 Mpx: raise gsd_mm or shorten the field")
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown preset {self.preset!r}; valid: {', '.join(PRESETS)}")
        if self.weeds_per_m2 < 0:
            raise ConfigError("weeds_per_m2 must not be negative")
        p_touch, p_row = self.weed_touching_crop_prob, self.weed_in_row_prob
        if not (0.0 <= p_touch <= 1.0 and 0.0 <= p_row <= 1.0 and p_touch + p_row <= 1.0):
            raise ConfigError("weed placement shares must lie in [0, 1] and sum to at most 1, "
                              f"got touching {p_touch}, in row {p_row}")
        return self


@dataclass
class Plant:
    """One plant's ground truth. ``mask`` is its full footprint in mosaic pixels starting at
    (row0, col0); x, y, area and bbox are in field metres."""

    id: int
    class_id: int
    kind: str
    x: float
    y: float
    area_m2: float
    x_min: float
    x_max: float
    y_min: float
    y_max: float
    row0: int
    col0: int
    mask: np.ndarray = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "class": "weed" if self.class_id == WEED else "crop",
                "class_id": self.class_id, "kind": self.kind, "x": round(self.x, 5),
                "y": round(self.y, 5), "area_m2": round(self.area_m2, 7),
                "bbox_m": [round(v, 5) for v in (self.x_min, self.y_min, self.x_max, self.y_max)]}


@dataclass
class SimField:
    """A field strip: mosaic ``rgb`` (H, W, 3) uint8 and ``labels`` (H, W) uint8 (0 soil, 1 crop,
    2 weed; the visible top plant), the ground-truth ``plants`` and the crop ``rows_y``."""

    rgb: np.ndarray
    labels: np.ndarray
    gsd_m: float
    plants: list[Plant] = field(default_factory=list)
    rows_y: list[float] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def length_m(self) -> float:
        return self.rgb.shape[0] * self.gsd_m

    @property
    def width_m(self) -> float:
        return self.rgb.shape[1] * self.gsd_m

    def row_of_x(self, x: np.ndarray | float) -> np.ndarray:
        """Fractional mosaic row of field x (pixel centres at integers)."""
        return (self.length_m - np.asarray(x, np.float64)) / self.gsd_m - 0.5

    def col_of_y(self, y: np.ndarray | float) -> np.ndarray:
        return (self.width_m / 2.0 - np.asarray(y, np.float64)) / self.gsd_m - 0.5

    def x_of_row(self, r: np.ndarray | float) -> np.ndarray:
        return self.length_m - (np.asarray(r, np.float64) + 0.5) * self.gsd_m

    def y_of_col(self, c: np.ndarray | float) -> np.ndarray:
        return self.width_m / 2.0 - (np.asarray(c, np.float64) + 0.5) * self.gsd_m

    @classmethod
    def blank(cls, length_m: float, width_m: float, gsd_mm: float = 1.0,
              soil_rgb: tuple[int, int, int] = (110, 80, 60)) -> "SimField":
        """A plain soil field without plants (tests, markers)."""
        g = gsd_mm / 1000.0
        h, w = int(round(length_m / g)), int(round(width_m / g))
        rgb = np.empty((h, w, 3), np.uint8)
        rgb[:] = soil_rgb
        return cls(rgb, np.zeros((h, w), np.uint8), g)

    def add_plant(self, class_id: int, x: float, y: float, mask: np.ndarray,
                  color: tuple[int, int, int] | None = None, kind: str = "manual") -> Plant:
        """Paint a plant whose mask (odd-sized, centred on (x, y)) is given in mosaic pixels."""
        mh, mw = mask.shape
        r0 = int(round(float(self.row_of_x(x)))) - mh // 2
        c0 = int(round(float(self.col_of_y(y)))) - mw // 2
        plant = _make_plant(self, len(self.plants) + 1, class_id, kind, r0, c0, mask.astype(bool))
        win = (slice(r0, r0 + mh), slice(c0, c0 + mw))
        self.labels[win][mask] = class_id
        if color is None:
            color = (40, 200, 40) if class_id == CROP else (230, 30, 30)
        self.rgb[win][mask] = color
        self.plants.append(plant)
        return plant

    def ground_truth_json(self) -> dict[str, Any]:
        return {"frame": "field: x along the strip from its start, y left, z up; metres",
                "length_m": self.length_m, "width_m": self.width_m, "gsd_m": self.gsd_m,
                "rows_y": [round(v, 5) for v in self.rows_y], "meta": self.meta,
                "plants": [p.to_json() for p in self.plants]}


def _make_plant(fld: SimField, pid: int, class_id: int, kind: str, r0: int, c0: int,
                mask: np.ndarray) -> Plant:
    rows, cols = np.nonzero(mask)
    g = fld.gsd_m
    xs = fld.x_of_row(rows + r0)
    ys = fld.y_of_col(cols + c0)
    return Plant(pid, int(class_id), kind, float(xs.mean()), float(ys.mean()),
                 float(rows.size * g * g), float(xs.min() - g / 2), float(xs.max() + g / 2),
                 float(ys.min() - g / 2), float(ys.max() + g / 2), int(r0), int(c0), mask)


def _draw_isolated(drawer: Callable, style: PlantStyle, seed_seq: np.random.SeedSequence,
                   ppc: float, half_px: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Draw one plant centred on its own canvas; grow the canvas until nothing touches the edge.
    Returns (colour float32, mask bool, half size)."""
    while True:
        size = 2 * half_px + 1
        canvas = Canvas(np.zeros((size, size, 3), np.float32), np.zeros((size, size), np.uint8),
                        ppc)
        drawer(canvas, style, np.random.default_rng(seed_seq), float(half_px), float(half_px))
        m = canvas.label > 0
        edge = m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()
        if not edge or half_px > 4000:
            return canvas.color, m, half_px
        half_px *= 2


def generate_field(config: FieldConfig = FieldConfig(), seed: int = 0) -> SimField:
    """Render a field strip (deterministic for (config, seed))."""
    cfg = config.validate()
    synth: SynthConfig = PRESETS[cfg.preset]
    root = np.random.SeedSequence([int(seed), 0x51F1E1D])
    rng = np.random.default_rng(root.spawn(1)[0])
    g = cfg.gsd_mm / 1000.0
    ppc = 10.0 / cfg.gsd_mm
    h, w = int(round(cfg.length_m / g)), int(round(cfg.width_m / g))
    fld = SimField(np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8), g)

    # Crop rows along x at lateral offsets; plants on them at a jittered in-row spacing.
    spacing = rng.uniform(*cfg.row_spacing_m)
    offset = rng.uniform(-spacing / 2, spacing / 2)
    k_max = int(cfg.width_m / spacing) + 2
    rows_y = [offset + k * spacing for k in range(-k_max, k_max + 1)
              if abs(offset + k * spacing) < cfg.width_m / 2 + 0.1]
    crop_kind = synth.crop_morphologies[int(rng.integers(len(synth.crop_morphologies)))]
    crop_stage = rng.uniform(*synth.crop_stage)
    _, hue, sat, val = CROP_MORPHOLOGIES[crop_kind]
    crop_colour = plant_style(rng, CROP, hue, sat, val, 0.0).color
    specs: list[tuple[int, str, float, float, float]] = []  # class, kind, x, y, stage
    for ry in rows_y:
        x = rng.uniform(0, cfg.in_row_spacing_m[1])
        while x < cfg.length_m + 0.2:
            if rng.random() >= cfg.crop_gap_prob:
                specs.append((CROP, crop_kind, x + rng.normal(0, 0.01), ry + rng.normal(0, 0.006),
                              crop_stage + rng.normal(0, 0.08)))
            x += rng.uniform(*cfg.in_row_spacing_m)
    crops = list(specs)
    n_weeds = int(rng.poisson(cfg.weeds_per_m2 * cfg.length_m * cfg.width_m))
    for _ in range(n_weeds if synth.weed_morphologies else 0):
        kind = synth.weed_morphologies[int(rng.integers(len(synth.weed_morphologies)))]
        u = rng.random()
        if crops and u < cfg.weed_touching_crop_prob:
            c = crops[int(rng.integers(len(crops)))]
            a, r = rng.uniform(0, 2 * np.pi), (0.01 + 0.08 * c[4]) * rng.uniform(0.3, 1.2)
            x, y = c[2] + np.cos(a) * r, c[3] + np.sin(a) * r
        elif rows_y and u < cfg.weed_touching_crop_prob + cfg.weed_in_row_prob:
            x = rng.uniform(0, cfg.length_m)
            y = rows_y[int(rng.integers(len(rows_y)))] + rng.normal(0, 0.02)
        else:
            x, y = rng.uniform(0, cfg.length_m), rng.uniform(-cfg.width_m / 2, cfg.width_m / 2)
        specs.append((WEED, kind, float(x), float(y), float(rng.uniform(*synth.weed_stage))))

    order = rng.random(len(specs))  # painter's order, as generate_sample
    plant_seeds = root.spawn(len(specs))
    soil = render_soil(rng, h, w, ppc)
    colour = np.zeros((h, w, 3), np.float32)
    veg = np.zeros((h, w), bool)
    for i in np.argsort(order, kind="stable"):
        class_id, kind, x, y, stage = specs[i]
        prng = np.random.default_rng(plant_seeds[i])
        if class_id == CROP:
            drawer = CROP_MORPHOLOGIES[kind][0]
            col = np.clip(crop_colour * prng.uniform(0.95, 1.05, 3), 0.0, 1.0).astype(np.float32)
            style = PlantStyle(CROP, col, float(np.clip(stage, 0, 1)))
        else:
            drawer, hue, sat, val = WEED_MORPHOLOGIES[kind]
            style = plant_style(prng, WEED, hue, sat, val, stage)
        seq = plant_seeds[i].spawn(1)[0]
        pc, pm, half = _draw_isolated(drawer, style, seq, ppc, int(0.2 * 100 * ppc))
        r0 = int(round(float(fld.row_of_x(x)))) - half
        c0 = int(round(float(fld.col_of_y(y)))) - half
        # Clip to the mosaic.
        a0, b0 = max(r0, 0), max(c0, 0)
        a1, b1 = min(r0 + pm.shape[0], h), min(c0 + pm.shape[1], w)
        if a1 <= a0 or b1 <= b0:
            continue
        m = pm[a0 - r0:a1 - r0, b0 - c0:b1 - c0]
        if not m.any():
            continue
        rr, cc = np.nonzero(m)
        m = m[rr.min():rr.max() + 1, cc.min():cc.max() + 1]
        pcc = pc[a0 - r0:a1 - r0, b0 - c0:b1 - c0][rr.min():rr.max() + 1, cc.min():cc.max() + 1]
        a0, b0 = a0 + int(rr.min()), b0 + int(cc.min())
        win = (slice(a0, a0 + m.shape[0]), slice(b0, b0 + m.shape[1]))
        colour[win][m] = pcc[m]
        fld.labels[win][m] = class_id
        veg[win] |= m
        fld.plants.append(_make_plant(fld, 0, class_id, kind, a0, b0, m))

    img = soil
    if cfg.plant_shadows:
        sun = rng.uniform(0, 2 * np.pi)
        shift = rng.uniform(0.2, 1.2) * ppc
        mat = np.array([[1, 0, np.cos(sun) * shift], [0, 1, np.sin(sun) * shift]], np.float32)
        shadow = cv2.warpAffine(veg.astype(np.float32), mat, (w, h))
        k = max(3, int(0.6 * ppc) | 1)
        shadow = cv2.GaussianBlur(shadow, (k, k), 0)
        img *= 1.0 - rng.uniform(*synth.plant_shadow_strength) * shadow[:, :, None]
    img[veg] = colour[veg]
    lo, hi = synth.color_temperature_k[int(rng.integers(len(synth.color_temperature_k)))]
    kelvin = float(rng.uniform(lo, hi))
    img *= illumination_gains(kelvin)[None, None, :]
    fld.rgb[:] = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    fld.plants.sort(key=lambda p: (p.x, p.y))
    for j, p in enumerate(fld.plants):
        p.id = j + 1
    fld.rows_y = [float(v) for v in rows_y]
    fld.meta = {"seed": int(seed), "config": {k: v for k, v in vars(cfg).items()},
                "crop_morphology": crop_kind, "crop_stage": float(crop_stage),
                "row_spacing_m": float(spacing), "color_temperature_k": kelvin,
                "crops": sum(p.class_id == CROP for p in fld.plants),
                "weeds": sum(p.class_id == WEED for p in fld.plants)}
    return fld
