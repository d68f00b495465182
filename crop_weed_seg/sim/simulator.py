"""Drive simulator: a ground-truth field strip, a camera driving over it, the spray chain, and a
score of what the nozzles actually hit.

World (:class:`SimField`). A straight strip along x, ``length_m`` long and ``width_m`` wide,
rendered once as a top-down orthomosaic at ``gsd_mm`` mm/px with the synthetic generator's own
soil and plant drawers (:mod:`crop_weed_seg.synthetic`), crop rows along x. Every plant is drawn
on its own small canvas first, so the field knows each plant's exact full footprint (a boolean
mask in orthomosaic pixels, including the parts that a later plant covers), its class, centre,
area and bounding box in metres. Field coordinates: x along the strip (0 … length), y to the left
(−width/2 … +width/2), z up; orthomosaic row ``r`` is x = length − (r + 0.5)·gsd (top of the
mosaic = far end, as the camera sees it), column ``c`` is y = width/2 − (c + 0.5)·gsd.

Robot. Drives straight along y = 0 at a constant speed; the origin of ``base_link`` is at field
x = ``start_x + travel(t)``; ``base_link`` and field axes are parallel, so a point (dx, dy) in
``base_link`` is the field point (start_x + travel + dx, dy).

Camera (:class:`SimCamera`). A :class:`~crop_weed_seg.spray.geometry.GroundProjector`: every image
pixel's ground point relative to the robot is computed once; a frame is a ``cv2.remap`` of the
orthomosaic at those points shifted by the travel (bilinear for colour, nearest for labels).
Motion blur is exact for any pitch: the mosaic window is averaged along x over the distance driven
during the exposure before it is sampled. Each frame draws an exposure gain and sensor noise.

Chain. :func:`perceive` renders frames and runs segment → ``extract_targets`` → tracker;
:func:`plan` feeds the targets to the ``SprayPlanner`` when they would arrive (image stamp +
processing latency), steps time in ``dt_s`` and records the commanded nozzle states; the valves
open ``valve_delay_s`` after the command (the physical delay the planner must compensate).

Scoring (:func:`score`), on the plants whose bounding box lies fully inside the scored span along
x, and across: weeds whose bounding box lies inside the boom, crops whose centre does (a crop row
near the boom edge would otherwise drop out; parts outside the boom count as unsprayed): the
physical spray footprint of lane ``i`` is, for every time step
the valve was open, the ground interval its nozzle line swept (x from ``start_x + travel(t) +
boom.nozzle_x``) times the lane's lateral band [right_edge + i·spacing, + spacing). A weed is
HIT when at least ``weed_hit_fraction`` (0.9) of its full mask area lies inside the footprint;
weeds below ``min_weed_area_m2`` are not scored. A crop plant is HIT when more than
``crop_hit_fraction`` (0.1) of its mask area was sprayed. A DOUBLE SPRAY is a scored weed that two
or more separate open windows (maximal runs of "open") of the same lane touch. Sprayed area is the
footprint area inside the scored span; blanket area is boom width × span length.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np

from crop_weed_seg.classes import CROP, WEED
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.synthetic.camera import illumination_gains
from crop_weed_seg.synthetic.field import PRESETS, SynthConfig
from crop_weed_seg.synthetic.plants import CROP_MORPHOLOGIES, WEED_MORPHOLOGIES, Canvas, PlantStyle, plant_style
from crop_weed_seg.synthetic.soil import render_soil
from crop_weed_seg.spray.geometry import Boom, CameraIntrinsics, CameraMount, GroundProjector

# --------------------------------------------------------------------------------------------
# World


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
        mat = np.float32([[1, 0, np.cos(sun) * shift], [0, 1, np.sin(sun) * shift]])
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


# --------------------------------------------------------------------------------------------
# Camera


@dataclass
class SimCamera:
    """A camera on the robot: projector (intrinsics + mount), exposure time [s] (motion blur),
    per-frame exposure gain jitter (std of a factor around 1) and sensor noise (std in [0, 1]).
    """

    projector: GroundProjector
    exposure_s: float = 0.002
    gain_jitter: float = 0.05
    read_noise: float = 0.01
    shot_noise: float = 0.0005
    _ground: np.ndarray | None = field(default=None, init=False, repr=False)

    @classmethod
    def default(cls, width: int = 640, height: int = 480, hfov_deg: float = 60.0,
                camera_height_m: float = 0.8, pitch_deg: float = 0.0, **kw: Any) -> "SimCamera":
        return cls(GroundProjector(CameraIntrinsics.from_fov(width, height, hfov_deg),
                                   CameraMount(0.0, 0.0, camera_height_m, pitch_deg)), **kw)

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self.projector.intrinsics

    def ground_offsets(self) -> np.ndarray:
        """(H, W, 2) ground point (dx, dy) in base_link of every pixel centre; NaN above the
        horizon. Computed once."""
        if self._ground is None:
            i = self.intrinsics
            u, v = np.meshgrid(np.arange(i.width, dtype=np.float64),
                               np.arange(i.height, dtype=np.float64))
            pts = self.projector.pixels_to_ground(np.column_stack((u.ravel(), v.ravel())))
            self._ground = pts.reshape(i.height, i.width, 2)
        return self._ground

    def footprint_x(self) -> tuple[float, float]:
        """Along-track extent (min dx, max dx) of the image on the ground [m]."""
        dx = self.ground_offsets()[:, :, 0]
        if not np.isfinite(dx).all():
            raise ConfigError("part of the image looks above the horizon; lower the pitch")
        return float(dx.min()), float(dx.max())

    def render(self, fld: SimField, base_x: float, speed_mps: float = 0.0,
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The frame (rgb uint8, truth labels uint8) with the robot's base_link at field x =
        ``base_x``. Pixels outside the field are black / label 0."""
        gnd = self.ground_offsets()
        map_r = fld.row_of_x(base_x + gnd[:, :, 0])
        map_c = fld.col_of_y(gnd[:, :, 1])
        finite = np.isfinite(map_r) & np.isfinite(map_c)
        blur_px = abs(speed_mps) * self.exposure_s / fld.gsd_m
        pad = int(math.ceil(blur_px / 2)) + 3
        if finite.any():
            r0 = max(int(math.floor(np.nanmin(map_r))) - pad, 0)
            r1 = min(int(math.ceil(np.nanmax(map_r))) + pad + 1, fld.rgb.shape[0])
        else:
            r0 = r1 = 0
        h, w = self.intrinsics.height, self.intrinsics.width
        if r1 <= r0:
            return np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)
        map_r = np.where(finite, map_r - r0, -10.0).astype(np.float32)
        map_c = np.where(finite, map_c, -10.0).astype(np.float32)
        win = fld.rgb[r0:r1].astype(np.float32) * (1.0 / 255.0)
        if blur_px >= 0.5:  # box along x (mosaic rows) over the distance driven while exposed
            n = int(math.ceil(blur_px))
            if n % 2 == 0:
                n += 1
            k = np.zeros((n, 1), np.float32)
            half = blur_px / 2.0
            for j in range(n):
                d = j - n // 2
                k[j] = max(0.0, min(d + 0.5, half) - max(d - 0.5, -half))
            k /= k.sum()
            win = cv2.filter2D(win, -1, k, borderType=cv2.BORDER_REPLICATE)
        img = cv2.remap(win, map_c, map_r, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=(0, 0, 0))
        lab = cv2.remap(fld.labels[r0:r1], map_c, map_r, cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if rng is not None:
            img *= float(max(0.2, rng.normal(1.0, self.gain_jitter)))
            if self.read_noise > 0 or self.shot_noise > 0:
                std = np.sqrt(self.read_noise ** 2 + self.shot_noise * np.clip(img, 0, 1))
                img += rng.standard_normal(img.shape, dtype=np.float32) * std
        rgb = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return rgb, lab


# --------------------------------------------------------------------------------------------
# Drive and odometry


@dataclass(frozen=True)
class Odometry:
    """Constant true speed; the reported speed may carry relative noise (``speed_noise`` std)."""

    speed_mps: float
    speed_noise: float = 0.0
    seed: int = 0

    def travel(self, t: float | np.ndarray) -> np.ndarray | float:
        return self.speed_mps * np.asarray(t, np.float64) if np.ndim(t) else self.speed_mps * t

    def reported_speed(self, t: float) -> float:
        if self.speed_noise <= 0:
            return self.speed_mps
        rng = np.random.default_rng([int(self.seed), int(round(t * 1e6))])
        return float(self.speed_mps * (1.0 + rng.normal(0.0, self.speed_noise)))


@dataclass(frozen=True)
class Drive:
    """A drive over a field: base_link at field x = start_x + speed·t for t in [0, duration]."""

    start_x: float
    duration_s: float
    speed_mps: float
    frame_rate_hz: float
    scored_span: tuple[float, float]  #: field x range whose plants are scored

    @property
    def frame_count(self) -> int:
        return int(math.floor(self.duration_s * self.frame_rate_hz + 1e-9)) + 1

    def frame_time(self, k: int) -> float:
        return k / self.frame_rate_hz


def plan_drive(fld: SimField, camera: SimCamera, boom: Boom, speed_mps: float,
               frame_rate_hz: float, margin_m: float = 0.02) -> Drive:
    """The longest drive over ``fld`` that keeps the image on the field: starts with the image's
    rear edge at x = margin and ends with its front edge at length − margin. Scored span: from
    the image's front edge at the start (every scored plant enters the view from the top) to the
    nozzle line at the end."""
    if not (speed_mps > 0 and frame_rate_hz > 0):
        raise ConfigError("speed and frame rate must be positive")
    dx_min, dx_max = camera.footprint_x()
    start = margin_m - dx_min
    end = fld.length_m - margin_m - dx_max
    if end <= start:
        raise ConfigError(f"field of {fld.length_m:.2f} m is shorter than the camera footprint")
    span = (start + dx_max, end + boom.nozzle_x)
    return Drive(start, (end - start) / speed_mps, speed_mps, frame_rate_hz, span)


@dataclass
class SimFrame:
    index: int
    stamp_s: float
    travel_m: float
    rgb: np.ndarray
    labels: np.ndarray


def drive_frames(fld: SimField, camera: SimCamera, drive: Drive, seed: int = 0
                 ) -> Iterator[SimFrame]:
    """Rendered frames of ``drive`` (deterministic for the seed)."""
    for k in range(drive.frame_count):
        t = drive.frame_time(k)
        travel = drive.speed_mps * t
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xF4A3E, k]))
        rgb, lab = camera.render(fld, drive.start_x + travel, drive.speed_mps, rng)
        yield SimFrame(k, t, travel, rgb, lab)


# --------------------------------------------------------------------------------------------
# Chain


@dataclass
class Timeline:
    """Physical nozzle states: ``open[i, lane]`` during [t[i], t[i] + dt) with base_link at
    field x = start_x + travel[i]; travel is linear in t at ``speed_mps``."""

    t: np.ndarray
    open: np.ndarray
    dt: float
    start_x: float
    speed_mps: float

    @property
    def travel(self) -> np.ndarray:
        return self.speed_mps * self.t


def timeline_from_ground_windows(boom: Boom, speed_mps: float, start_x: float, duration_s: float,
                                 windows: Sequence[tuple[int, float, float]],
                                 dt: float = 0.002) -> Timeline:
    """A timeline whose lane ``lane`` is open while its nozzle line is over field x in
    [x0, x1) for each (lane, x0, x1) window (hand-made timelines for tests and what-ifs)."""
    t = np.arange(0.0, duration_s, dt)
    nozzle = start_x + speed_mps * t + boom.nozzle_x
    states = np.zeros((len(t), boom.nozzle_count), bool)
    for lane, x0, x1 in windows:
        states[:, lane] |= (nozzle + speed_mps * dt > x0 + 1e-12) & (nozzle < x1 - 1e-12)
    return Timeline(t, states, dt, start_x, speed_mps)


def oracle_timeline(fld: SimField, boom: Boom, drive: Drive, margin_m: float = 0.0,
                    dt: float = 0.002) -> Timeline:
    """The timeline of a planner with perfect knowledge: every lane is open exactly while its
    nozzle line is over the weed pixels in that lane (± ``margin_m``). The upper bound for a
    chain, and a check of the scoring."""
    g = fld.gsd_m
    col_lane = boom.lane_of(fld.y_of_col(np.arange(fld.labels.shape[1])))
    windows = []
    for p in fld.plants:
        if p.class_id != WEED:
            continue
        lanes = col_lane[p.col0:p.col0 + p.mask.shape[1]]
        rows = np.arange(p.mask.shape[0]) + p.row0
        for lane in np.unique(lanes[lanes >= 0]):
            hit = p.mask[:, lanes == lane].any(axis=1)
            if hit.any():
                xs = fld.x_of_row(rows[hit])
                windows.append((int(lane), float(xs.min() - g / 2 - margin_m),
                                float(xs.max() + g / 2 + margin_m)))
    return timeline_from_ground_windows(boom, drive.speed_mps, drive.start_x, drive.duration_s,
                                        windows, dt)


@dataclass
class Perception:
    """Per frame: (stamp [s], travel [m], target records) and timings."""

    frames: list[tuple[float, float, np.ndarray]]
    render_s: float
    segment_s: float
    chain_s: float
    mode: str


def _default_extract() -> Callable:
    """``extract_targets`` with one cached TargetExtractor (its ground maps) per geometry."""
    from crop_weed_seg.spray.targets import TargetConfig, TargetExtractor

    cache: dict[tuple[int, int, int], Any] = {}

    def extract(labels, confidence, projector, boom, config, speed):
        key = (id(projector), id(boom), id(config))
        if key not in cache:
            cache[key] = TargetExtractor(projector, boom, config or TargetConfig())
        return cache[key].extract(labels, confidence, speed)
    return extract


def _default_tracker(gate_m: float | None) -> Any:
    from crop_weed_seg.spray.tracking import TargetTracker

    return TargetTracker() if gate_m is None else TargetTracker(gate_m=gate_m)


def perceive(fld: SimField, camera: SimCamera, boom: Boom, drive: Drive, segmenter: Any = None,
             *, target_config: Any = None, odometry: Odometry | None = None, seed: int = 0,
             extract_fn: Callable | None = None, tracker: Any = None,
             tracker_gate_m: float | None = None,
             on_frame: Callable[[SimFrame, np.ndarray, np.ndarray], None] | None = None
             ) -> Perception:
    """Render the drive and turn each frame into tracked targets. ``segmenter`` None = truth
    mode (the ground-truth labels, confidence 1)."""
    extract = extract_fn or _default_extract()
    trk = tracker if tracker is not None else _default_tracker(tracker_gate_m)
    odo = odometry or Odometry(drive.speed_mps)
    out = []
    scaled: dict[tuple[int, ...], GroundProjector] = {}
    t_render = t_seg = t_chain = 0.0
    frames = drive_frames(fld, camera, drive, seed)
    while True:
        t0 = time.perf_counter()
        fr = next(frames, None)
        t1 = time.perf_counter()
        t_render += t1 - t0
        if fr is None:
            break
        projector = camera.projector
        if segmenter is None:
            labels, conf = fr.labels, np.ones(fr.labels.shape, np.float32)
        else:
            res = segmenter.segment(fr.rgb, "RGB")
            labels, conf = res.labels, res.confidence
            if getattr(res, "labels_model", None) is not None:
                # as the node does: targets from the model-resolution maps, camera scaled
                labels, conf = res.labels_model, res.confidence_model
                key = labels.shape
                if key not in scaled:
                    scaled[key] = GroundProjector(
                        camera.intrinsics.scaled_to(key[1], key[0]), projector.mount)
                projector = scaled[key]
        t2 = time.perf_counter()
        speed = odo.reported_speed(fr.stamp_s)
        recs = extract(labels, conf, projector, boom, target_config, speed)
        recs = trk.update(recs, fr.travel_m)
        t3 = time.perf_counter()
        t_seg += t2 - t1
        t_chain += t3 - t2
        out.append((fr.stamp_s, fr.travel_m, recs))
        if on_frame is not None:
            on_frame(fr, labels, recs)
    return Perception(out, t_render, t_seg, t_chain, "truth" if segmenter is None else "model")


def _default_planner(boom: Boom, planner_config: Any) -> Any:
    from crop_weed_seg.spray.planner import PlannerConfig, SprayPlanner

    return SprayPlanner(boom, planner_config if planner_config is not None else PlannerConfig())


def plan(perception: Perception, boom: Boom, drive: Drive, *, latency_s: float = 0.0,
         planner_config: Any = None, planner: Any = None, valve_delay_s: float | None = None,
         odometry: Odometry | None = None, dt_s: float = 0.002) -> Timeline:
    """Feed the targets to the planner when they arrive (stamp + ``latency_s``) and record the
    nozzle states every ``dt_s``. The valves open ``valve_delay_s`` after the command (default:
    the planner config's ``valve_latency_s`` when it has one, else 0)."""
    pl = planner if planner is not None else _default_planner(boom, planner_config)
    if valve_delay_s is None:
        cfg = planner_config if planner_config is not None else getattr(pl, "config", None)
        valve_delay_s = float(getattr(cfg, "valve_latency_s", 0.0) or 0.0)
    odo = odometry or Odometry(drive.speed_mps)
    arrivals = sorted(((stamp + latency_s, stamp, recs) for stamp, _, recs in perception.frames),
                      key=lambda a: a[0])
    n = int(math.floor(drive.duration_s / dt_s)) + 1
    states = np.zeros((n, boom.nozzle_count), bool)
    try:
        with_now = "now_s" in inspect.signature(pl.add_targets).parameters
    except (TypeError, ValueError):
        with_now = False
    j = 0
    for i in range(n):
        t = i * dt_s
        pl.update_odometry(t, odo.reported_speed(t))
        while j < len(arrivals) and arrivals[j][0] <= t + 1e-9:
            if with_now:
                pl.add_targets(arrivals[j][1], arrivals[j][2], now_s=t)
            else:
                pl.add_targets(arrivals[j][1], arrivals[j][2])
            j += 1
        states[i] = np.asarray(pl.nozzle_states(t), bool)[:boom.nozzle_count]
    t_phys = np.arange(n) * dt_s + valve_delay_s
    return Timeline(t_phys, states, dt_s, drive.start_x, drive.speed_mps)


# --------------------------------------------------------------------------------------------
# Scoring


@dataclass
class Score:
    weeds_scored: int
    weeds_hit: int
    crops_scored: int
    crops_hit: int
    double_sprays: int
    sprayed_area_m2: float
    blanket_area_m2: float
    span: tuple[float, float]
    weed_fraction: dict[int, float] = field(default_factory=dict, repr=False)
    crop_fraction: dict[int, float] = field(default_factory=dict, repr=False)
    weeds_stem_hit: int = 0
    crops_stem_hit: int = 0

    @property
    def weed_stem_hit_rate(self) -> float:
        """Share of scored weeds whose stem (the plant's centre point) was sprayed."""
        return self.weeds_stem_hit / self.weeds_scored if self.weeds_scored else float("nan")

    @property
    def crop_stem_hit_rate(self) -> float:
        """Share of scored crops whose stem (growing point) was sprayed."""
        return self.crops_stem_hit / self.crops_scored if self.crops_scored else float("nan")

    @property
    def weed_hit_rate(self) -> float:
        return self.weeds_hit / self.weeds_scored if self.weeds_scored else float("nan")

    @property
    def crop_hit_rate(self) -> float:
        return self.crops_hit / self.crops_scored if self.crops_scored else float("nan")

    @property
    def sprayed_ratio(self) -> float:
        return self.sprayed_area_m2 / self.blanket_area_m2 if self.blanket_area_m2 else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {"weeds_scored": self.weeds_scored, "weeds_hit": self.weeds_hit,
                "weed_hit_rate": self.weed_hit_rate, "crops_scored": self.crops_scored,
                "crops_hit": self.crops_hit, "crop_hit_rate": self.crop_hit_rate,
                "weeds_stem_hit": self.weeds_stem_hit,
                "weed_stem_hit_rate": self.weed_stem_hit_rate,
                "crops_stem_hit": self.crops_stem_hit,
                "crop_stem_hit_rate": self.crop_stem_hit_rate,
                "double_sprays": self.double_sprays, "sprayed_area_m2": self.sprayed_area_m2,
                "blanket_area_m2": self.blanket_area_m2, "sprayed_ratio": self.sprayed_ratio,
                "span_m": list(self.span)}


def spray_windows(boom: Boom, timeline: Timeline) -> list[tuple[int, float, float]]:
    """(lane, x0, x1): the field-x interval each maximal open run of each lane swept."""
    out = []
    nx = timeline.start_x + boom.nozzle_x
    for lane in range(timeline.open.shape[1]):
        o = timeline.open[:, lane].astype(np.int8)
        edges = np.diff(np.concatenate(([0], o, [0])))
        starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
        for a, b in zip(starts, ends):
            x0 = nx + timeline.speed_mps * timeline.t[a]
            x1 = nx + timeline.speed_mps * (timeline.t[b - 1] + timeline.dt)
            out.append((lane, float(min(x0, x1)), float(max(x0, x1))))
    return out


def score(fld: SimField, boom: Boom, timeline: Timeline, span: tuple[float, float], *,
          weed_hit_fraction: float = 0.9, crop_hit_fraction: float = 0.1,
          min_weed_area_m2: float = 1e-4) -> Score:
    """Score a physical nozzle timeline against the field's plants (module docstring)."""
    windows = spray_windows(boom, timeline)
    h, w = fld.labels.shape
    win_id = np.zeros((h, boom.nozzle_count), np.int32)  # window id sprayed per mosaic row/lane
    lane_of_id = [-1]
    for k, (lane, x0, x1) in enumerate(windows, start=1):
        # rows whose centre x lies in [x0, x1)
        ra = int(math.floor(float(fld.row_of_x(x1)))) + 1
        rb = int(math.floor(float(fld.row_of_x(x0))))
        if float(fld.x_of_row(rb)) < x0 - 1e-12:
            rb -= 1
        ra, rb = max(ra, 0), min(rb, h - 1)
        if rb >= ra:
            win_id[ra:rb + 1, lane] = k
        lane_of_id.append(lane)
    lane_of_id_arr = np.asarray(lane_of_id, np.int32)
    col_lane = boom.lane_of(fld.y_of_col(np.arange(w))).astype(np.int32)
    y_lo, y_hi = boom.right_edge, boom.right_edge + boom.width
    res = Score(0, 0, 0, 0, 0, 0.0, 0.0, (float(span[0]), float(span[1])))
    for p in fld.plants:
        if not (p.x_min >= span[0] and p.x_max <= span[1]):
            continue
        inside = p.y_min >= y_lo and p.y_max <= y_hi
        if (p.class_id == WEED and not inside) or not y_lo <= p.y <= y_hi:
            continue
        if p.class_id == WEED and p.area_m2 < min_weed_area_m2:
            continue
        mh, mw = p.mask.shape
        lanes = col_lane[p.col0:p.col0 + mw]
        ids = win_id[p.row0:p.row0 + mh][:, np.clip(lanes, 0, None)]
        ids = np.where((lanes >= 0)[None, :] & p.mask, ids, 0)
        frac = float(np.count_nonzero(ids)) / max(int(p.mask.sum()), 1)
        stem_row = int(np.clip(np.round(float(fld.row_of_x(p.x))), 0, h - 1))
        stem_lane = int(boom.lane_of(np.array([p.y]))[0])
        stem = stem_lane >= 0 and win_id[stem_row, stem_lane] > 0
        if p.class_id == WEED:
            res.weeds_stem_hit += int(stem)
            res.weeds_scored += 1
            res.weed_fraction[p.id] = frac
            if frac >= weed_hit_fraction:
                res.weeds_hit += 1
            used = np.unique(ids[ids > 0])
            if used.size >= 2 and np.bincount(lane_of_id_arr[used]).max() >= 2:
                res.double_sprays += 1
        elif p.class_id == CROP:
            res.crops_stem_hit += int(stem)
            res.crops_scored += 1
            res.crop_fraction[p.id] = frac
            if frac > crop_hit_fraction:
                res.crops_hit += 1
    sprayed = 0.0
    for _lane, x0, x1 in windows:
        sprayed += max(0.0, min(x1, span[1]) - max(x0, span[0])) * boom.nozzle_spacing_m
    res.sprayed_area_m2 = sprayed
    res.blanket_area_m2 = max(0.0, span[1] - span[0]) * boom.width
    return res


# --------------------------------------------------------------------------------------------
# One run, and sweeps


@dataclass
class SimResult:
    speed_mps: float
    frame_rate_hz: float
    latency_s: float
    mode: str
    frames: int
    targets: int
    score: Score
    timeline: Timeline = field(repr=False)
    timings_s: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        s = self.score
        return {"speed_mps": self.speed_mps, "fps": self.frame_rate_hz,
                "latency_ms": round(self.latency_s * 1000.0, 1), "mode": self.mode,
                "frames": self.frames, "targets": self.targets, "weeds": s.weeds_scored,
                "weed_hit_rate": s.weed_hit_rate, "crop_hit_rate": s.crop_hit_rate,
                "weed_stem_hit_rate": s.weed_stem_hit_rate,
                "crop_stem_hit_rate": s.crop_stem_hit_rate,
                "double_sprays": s.double_sprays, "sprayed_ratio": s.sprayed_ratio,
                **{k: round(v, 3) for k, v in self.timings_s.items()}}


def run_chain(fld: SimField, camera: SimCamera, boom: Boom, *, speed_mps: float,
              frame_rate_hz: float, latency_s: float = 0.0, segmenter: Any = None,
              target_config: Any = None, planner_config: Any = None, seed: int = 0,
              valve_delay_s: float | None = None, dt_s: float = 0.002,
              odometry: Odometry | None = None, score_kw: dict[str, Any] | None = None,
              extract_fn: Callable | None = None, tracker: Any = None,
              planner: Any = None) -> SimResult:
    """Drive once over ``fld`` and score it (``segmenter`` None = truth labels)."""
    drive = plan_drive(fld, camera, boom, speed_mps, frame_rate_hz)
    odo = odometry or Odometry(speed_mps)
    per = perceive(fld, camera, boom, drive, segmenter, target_config=target_config,
                   odometry=odo, seed=seed, extract_fn=extract_fn, tracker=tracker)
    t0 = time.perf_counter()
    tl = plan(per, boom, drive, latency_s=latency_s, planner_config=planner_config,
              planner=planner, valve_delay_s=valve_delay_s, odometry=odo, dt_s=dt_s)
    t1 = time.perf_counter()
    sc = score(fld, boom, tl, drive.scored_span, **(score_kw or {}))
    t2 = time.perf_counter()
    return SimResult(speed_mps, frame_rate_hz, latency_s, per.mode, len(per.frames),
                     sum(len(r) for _, _, r in per.frames), sc, tl,
                     {"render_s": per.render_s, "segment_s": per.segment_s,
                      "chain_s": per.chain_s, "plan_s": t1 - t0, "score_s": t2 - t1})


def sweep(fld: SimField, camera: SimCamera, boom: Boom, *, speeds: Sequence[float] = (0.5, 1, 2, 3),
          frame_rates: Sequence[float] = (10, 15, 30), latencies_s: Sequence[float] = (0.0,),
          segmenter: Any = None, target_config: Any = None, planner_config: Any = None,
          seed: int = 0, valve_delay_s: float | None = None,
          score_kw: dict[str, Any] | None = None,
          progress: Callable[[SimResult], None] | None = None) -> list[SimResult]:
    """Every speed × frame rate × latency. Frames are rendered and segmented once per
    (speed, frame rate); only planning and scoring repeat per latency."""
    results = []
    for v in speeds:
        for f in frame_rates:
            drive = plan_drive(fld, camera, boom, float(v), float(f))
            per = perceive(fld, camera, boom, drive, segmenter, target_config=target_config,
                           seed=seed)
            for lat in latencies_s:
                t0 = time.perf_counter()
                tl = plan(per, boom, drive, latency_s=float(lat), planner_config=planner_config,
                          valve_delay_s=valve_delay_s)
                t1 = time.perf_counter()
                sc = score(fld, boom, tl, drive.scored_span, **(score_kw or {}))
                r = SimResult(float(v), float(f), float(lat), per.mode, len(per.frames),
                              sum(len(x) for _, _, x in per.frames), sc, tl,
                              {"render_s": per.render_s, "segment_s": per.segment_s,
                               "chain_s": per.chain_s, "plan_s": t1 - t0,
                               "score_s": time.perf_counter() - t1})
                results.append(r)
                if progress is not None:
                    progress(r)
    return results


def latency_budget(results: Sequence[SimResult], min_weed_hit_rate: float = 0.95
                   ) -> dict[tuple[float, float], float | None]:
    """Per (speed, frame rate): the largest extra latency [s] whose weed hit rate is at least
    ``min_weed_hit_rate`` with every smaller tested latency passing too; None when even the
    smallest fails."""
    out: dict[tuple[float, float], float | None] = {}
    groups: dict[tuple[float, float], list[SimResult]] = {}
    for r in results:
        groups.setdefault((r.speed_mps, r.frame_rate_hz), []).append(r)
    for key, rs in groups.items():
        best = None
        for r in sorted(rs, key=lambda r: r.latency_s):
            if r.score.weed_hit_rate >= min_weed_hit_rate:
                best = r.latency_s
            else:
                break
        out[key] = best
    return out


# --------------------------------------------------------------------------------------------
# Bag


def write_bag(path: str | Path, fld: SimField, camera: SimCamera, boom: Boom, *,
              speed_mps: float, frame_rate_hz: float, seed: int = 0,
              odom_rate_hz: float = 50.0, jpeg_quality: int = 90,
              start_ns: int = 1_780_308_000_000_000_000, max_frames: int | None = None,
              frame_id: str = "camera_optical_frame") -> dict[str, Any]:
    """A rosbag2 (mcap) of a drive: ``/camera/image/compressed`` (JPEG), ``/camera/camera_info``,
    ``/camera/labels_truth`` (PNG mono8), ``/odom`` (nav_msgs/Odometry at ``odom_rate_hz``,
    frame ``odom`` → ``base_link``, pose.position.x = travel, twist.linear.x = speed), plus
    ``ground_truth.json`` in the bag folder (plants in field metres, and where base_link starts).
    Stamps: ``start_ns`` + sim time; header stamp = receive time. Returns the JSON written."""
    import json

    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    path = Path(path)
    drive = plan_drive(fld, camera, boom, speed_mps, frame_rate_hz)
    if max_frames is not None and max_frames < drive.frame_count:
        drive = replace(drive, duration_s=(max_frames - 1) / frame_rate_hz)
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    Time, Header = T["builtin_interfaces/msg/Time"], T["std_msgs/msg/Header"]
    CompressedImage, CameraInfo = T["sensor_msgs/msg/CompressedImage"], T["sensor_msgs/msg/CameraInfo"]
    ROI, Odom = T["sensor_msgs/msg/RegionOfInterest"], T["nav_msgs/msg/Odometry"]
    Pose, PoseCov = T["geometry_msgs/msg/Pose"], T["geometry_msgs/msg/PoseWithCovariance"]
    Twist, TwistCov = T["geometry_msgs/msg/Twist"], T["geometry_msgs/msg/TwistWithCovariance"]
    Point, Quat, Vec3 = (T["geometry_msgs/msg/Point"], T["geometry_msgs/msg/Quaternion"],
                         T["geometry_msgs/msg/Vector3"])
    intr = camera.intrinsics
    k = np.array([intr.fx, 0, intr.cx, 0, intr.fy, intr.cy, 0, 0, 1], np.float64)
    p = np.array([intr.fx, 0, intr.cx, 0, 0, intr.fy, intr.cy, 0, 0, 0, 1, 0], np.float64)
    d = np.asarray(intr.distortion or (0.0,) * 5, np.float64)
    odo = Odometry(speed_mps)

    def header(t_ns: int, fid: str):
        sec, nsec = divmod(t_ns, 1_000_000_000)
        return Header(stamp=Time(sec=sec, nanosec=nsec), frame_id=fid)

    counts = {"images": 0, "odom": 0}
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        c_img = writer.add_connection("/camera/image/compressed", CompressedImage.__msgtype__,
                                      typestore=ts)
        c_info = writer.add_connection("/camera/camera_info", CameraInfo.__msgtype__, typestore=ts)
        c_lab = writer.add_connection("/camera/labels_truth", CompressedImage.__msgtype__,
                                      typestore=ts)
        c_odom = writer.add_connection("/odom", Odom.__msgtype__, typestore=ts)
        n_odom = int(math.floor(drive.duration_s * odom_rate_hz + 1e-9)) + 1
        odom_times = [i / odom_rate_hz for i in range(n_odom)]
        frames = drive_frames(fld, camera, drive, seed)
        next_frame = next(frames, None)
        oi = 0
        while next_frame is not None or oi < n_odom:
            # odometry first when stamps tie, so a consumer has the speed when the image comes
            if oi < n_odom and (next_frame is None or odom_times[oi] <= next_frame.stamp_s + 1e-12):
                t = odom_times[oi]
                t_ns = start_ns + int(round(t * 1e9))
                msg = Odom(header=header(t_ns, "odom"), child_frame_id="base_link",
                           pose=PoseCov(pose=Pose(position=Point(x=float(odo.travel(t)), y=0.0,
                                                                 z=0.0),
                                                  orientation=Quat(x=0.0, y=0.0, z=0.0, w=1.0)),
                                        covariance=np.zeros(36, np.float64)),
                           twist=TwistCov(twist=Twist(linear=Vec3(x=float(speed_mps), y=0.0,
                                                                  z=0.0),
                                                      angular=Vec3(x=0.0, y=0.0, z=0.0)),
                                          covariance=np.zeros(36, np.float64)))
                writer.write(c_odom, t_ns, ts.serialize_cdr(msg, Odom.__msgtype__))
                counts["odom"] += 1
                oi += 1
                continue
            fr = next_frame
            t_ns = start_ns + int(round(fr.stamp_s * 1e9))
            hd = header(t_ns, frame_id)
            ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(fr.rgb, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
            ok2, png = cv2.imencode(".png", fr.labels)
            if not (ok and ok2):
                raise RuntimeError("image encoding failed")
            writer.write(c_img, t_ns, ts.serialize_cdr(
                CompressedImage(header=hd, format="rgb8; jpeg compressed bgr8",
                                data=np.asarray(jpg, np.uint8).ravel()),
                CompressedImage.__msgtype__))
            info = CameraInfo(header=hd, height=intr.height, width=intr.width,
                              distortion_model="plumb_bob", d=d, k=k,
                              r=np.eye(3, dtype=np.float64).ravel(), p=p, binning_x=0,
                              binning_y=0, roi=ROI(x_offset=0, y_offset=0, height=0, width=0,
                                                   do_rectify=False))
            writer.write(c_info, t_ns, ts.serialize_cdr(info, CameraInfo.__msgtype__))
            writer.write(c_lab, t_ns, ts.serialize_cdr(
                CompressedImage(header=hd, format="mono8; png compressed mono8",
                                data=np.asarray(png, np.uint8).ravel()),
                CompressedImage.__msgtype__))
            counts["images"] += 1
            next_frame = next(frames, None)
    m = camera.projector.mount
    truth = fld.ground_truth_json()
    truth.update({
        "drive": {"start_ns": int(start_ns), "base_link_start_x_m": drive.start_x,
                  "speed_mps": speed_mps, "frame_rate_hz": frame_rate_hz,
                  "duration_s": drive.duration_s, "frames": counts["images"],
                  "odom_messages": counts["odom"], "scored_span_m": list(drive.scored_span),
                  "note": "base_link is at field x = base_link_start_x_m + odom "
                          "pose.position.x, field y = base_link y"},
        "camera": {"width": intr.width, "height": intr.height, "fx": intr.fx, "fy": intr.fy,
                   "cx": intr.cx, "cy": intr.cy, "x": m.x, "y": m.y, "height_m": m.height,
                   "pitch_deg": m.pitch_deg, "exposure_s": camera.exposure_s},
        "boom": {"nozzle_count": boom.nozzle_count, "nozzle_spacing_m": boom.nozzle_spacing_m,
                 "center_y": boom.center_y, "nozzle_x": boom.nozzle_x},
    })
    (path / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    return truth
