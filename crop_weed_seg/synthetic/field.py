"""Compose a field frame: soil, crop rows, weeds, shadows, then the camera's effects.

``generate_sample(config, seed, index)`` is deterministic: the same (config, seed, index) gives
the same image and labels on every machine with the same numpy and OpenCV.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from crop_weed_seg.classes import CROP, WEED
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.synthetic.camera import (
    cast_shadow,
    illumination_gains,
    jpeg_roundtrip,
    motion_blur,
    sensor_noise,
)
from crop_weed_seg.synthetic.plants import (
    CROP_MORPHOLOGIES,
    WEED_MORPHOLOGIES,
    Canvas,
    PlantStyle,
    plant_style,
)
from crop_weed_seg.synthetic.soil import render_soil

Range = tuple[float, float]


@dataclass(frozen=True)
class SynthConfig:
    """Everything a synthetic field frame is drawn from. Ranges are sampled uniformly per frame.

    Units: ground sampling distance in mm per pixel, spacings in cm, densities per m²,
    colour temperature in kelvin, exposure as a gain, blur lengths in cm on the ground.
    """

    height: int = 512
    width: int = 512
    gsd_mm: Range = (0.6, 1.6)
    crop_morphologies: tuple[str, ...] = ("rosette", "narrow")
    weed_morphologies: tuple[str, ...] = ("broadleaf", "grass", "divided", "seedling")
    row_spacing_cm: Range = (30.0, 60.0)
    in_row_spacing_cm: Range = (10.0, 30.0)
    crop_gap_prob: float = 0.1
    crop_stage: Range = (0.3, 1.0)
    weeds_per_m2: Range = (5.0, 120.0)
    weed_free_prob: float = 0.08
    weed_in_row_prob: float = 0.25
    weed_touching_crop_prob: float = 0.2
    weed_stage: Range = (0.0, 1.0)
    color_temperature_k: tuple[Range, ...] = ((4500.0, 7500.0),)
    exposure: tuple[Range, ...] = ((0.7, 1.3),)
    cast_shadow_prob: float = 0.35
    plant_shadow_strength: Range = (0.15, 0.5)
    motion_blur_prob: float = 0.4
    motion_blur_cm: Range = (0.1, 0.8)
    defocus_prob: float = 0.15
    read_noise: Range = (0.002, 0.02)
    shot_noise: Range = (0.0, 0.0015)
    jpeg_prob: float = 0.6
    jpeg_quality: tuple[int, int] = (35, 95)
    row_angle_jitter_deg: float = 8.0
    across_rows_prob: float = 0.25

    def validate(self) -> "SynthConfig":
        """Raise ConfigError naming the first bad field; return self when all is well."""
        if self.height < 32 or self.width < 32:
            raise ConfigError(f"image size {self.height}x{self.width} is too small (min 32x32)")
        for name in self.crop_morphologies:
            if name not in CROP_MORPHOLOGIES:
                raise ConfigError(f"unknown crop morphology {name!r}; "
                                  f"valid: {', '.join(CROP_MORPHOLOGIES)}")
        for name in self.weed_morphologies:
            if name not in WEED_MORPHOLOGIES:
                raise ConfigError(f"unknown weed morphology {name!r}; "
                                  f"valid: {', '.join(WEED_MORPHOLOGIES)}")
        if not self.crop_morphologies:
            raise ConfigError("at least one crop morphology is needed")
        if self.gsd_mm[0] <= 0 or self.gsd_mm[1] < self.gsd_mm[0]:
            raise ConfigError(f"gsd_mm range {self.gsd_mm} must be positive and ordered")
        return self

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: Named configurations. ``train`` is what the default model learns from; ``heldout`` adds a weed
#: morphology (trifoliate) and illumination colour ranges that ``train`` never contains.
PRESETS: dict[str, SynthConfig] = {
    "train": SynthConfig(),
    "heldout": SynthConfig(
        weed_morphologies=("broadleaf", "grass", "divided", "seedling", "trifoliate"),
        color_temperature_k=((3000.0, 4300.0), (7800.0, 10000.0)),
    ),
}


def sample_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The random stream of frame ``index`` of a dataset made with ``seed``."""
    return np.random.SeedSequence([int(seed), int(index)])


def _pick_range(rng: np.random.Generator, ranges: tuple[Range, ...]) -> float:
    lo, hi = ranges[int(rng.integers(len(ranges)))]
    return float(rng.uniform(lo, hi))


@dataclass
class _Plant:
    kind: str
    class_id: int
    x: float
    y: float
    stage: float
    order: float = field(default=0.0)


def _crop_positions(rng: np.random.Generator, cfg: SynthConfig, h: int, w: int,
                    ppc: float) -> tuple[list[_Plant], dict[str, Any]]:
    """Crop plants on straight parallel rows with regular in-row spacing, jitter and gaps."""
    angle = np.deg2rad(rng.normal(0.0, cfg.row_angle_jitter_deg))
    if rng.random() < cfg.across_rows_prob:
        angle += np.pi / 2
    along = np.array([np.sin(angle), np.cos(angle)])  # row direction (x, y); 0 rad = vertical
    normal = np.array([along[1], -along[0]])
    spacing = rng.uniform(*cfg.row_spacing_cm) * ppc
    in_row = rng.uniform(*cfg.in_row_spacing_cm) * ppc
    kind = cfg.crop_morphologies[int(rng.integers(len(cfg.crop_morphologies)))]
    stage = rng.uniform(*cfg.crop_stage)
    centre = np.array([w / 2.0, h / 2.0])
    half_diag = 0.5 * np.hypot(h, w) + 20 * ppc
    offset0 = rng.uniform(0, spacing)
    plants: list[_Plant] = []
    row_offsets = []
    k_max = int(half_diag / spacing) + 1
    for k in range(-k_max, k_max + 1):
        off = offset0 + k * spacing - spacing * round(offset0 / spacing)
        row_offsets.append(float(off))
        phase = rng.uniform(0, in_row)
        n_max = int(half_diag / in_row) + 1
        for j in range(-n_max, n_max + 1):
            if rng.random() < cfg.crop_gap_prob:
                continue
            s = phase + j * in_row + rng.normal(0, 0.08 * in_row)
            lateral = off + rng.normal(0, 0.6 * ppc)
            x, y = centre + along * s + normal * lateral
            if -15 * ppc < x < w + 15 * ppc and -15 * ppc < y < h + 15 * ppc:
                plants.append(_Plant(kind, CROP, float(x), float(y),
                                     float(stage + rng.normal(0, 0.08))))
    meta = {"crop_morphology": kind, "row_angle_deg": float(np.rad2deg(angle)),
            "row_spacing_px": float(spacing), "in_row_spacing_px": float(in_row),
            "crop_stage": float(stage)}
    return plants, meta


def _weed_positions(rng: np.random.Generator, cfg: SynthConfig, h: int, w: int, ppc: float,
                    crops: list[_Plant]) -> list[_Plant]:
    if not cfg.weed_morphologies or rng.random() < cfg.weed_free_prob:
        return []
    area_m2 = (h / (100 * ppc)) * (w / (100 * ppc))
    density = float(np.exp(rng.uniform(*np.log(cfg.weeds_per_m2))))
    count = min(int(rng.poisson(density * area_m2)), 200)
    weeds = []
    for _ in range(count):
        kind = cfg.weed_morphologies[int(rng.integers(len(cfg.weed_morphologies)))]
        u = rng.random()
        if crops and u < cfg.weed_touching_crop_prob:
            c = crops[int(rng.integers(len(crops)))]
            a = rng.uniform(0, 2 * np.pi)
            r = (1.0 + 8.0 * c.stage) * ppc * rng.uniform(0.3, 1.2)
            x, y = c.x + np.cos(a) * r, c.y + np.sin(a) * r
        elif crops and u < cfg.weed_touching_crop_prob + cfg.weed_in_row_prob:
            p, q = crops[int(rng.integers(len(crops)))], crops[int(rng.integers(len(crops)))]
            t = rng.random()  # between two crop plants: on the row line if both share a row
            x, y = (p.x, p.y) if abs(p.x - q.x) + abs(p.y - q.y) > 60 * ppc else (
                p.x + t * (q.x - p.x), p.y + t * (q.y - p.y))
            x, y = x + rng.normal(0, 2 * ppc), y + rng.normal(0, 2 * ppc)
        else:
            x, y = rng.uniform(0, w), rng.uniform(0, h)
        weeds.append(_Plant(kind, WEED, float(x), float(y), float(rng.uniform(*cfg.weed_stage))))
    return weeds


def generate_sample(config: SynthConfig, seed: int, index: int
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Render frame ``index`` of dataset ``seed``.

    Returns ``(rgb, labels, meta)``: rgb (H, W, 3) uint8, labels (H, W) uint8 with 0 soil,
    1 crop, 2 weed, and a JSON-serialisable dict of what was drawn.
    """
    cfg = config
    rng = np.random.default_rng(sample_seed(seed, index))
    h, w = cfg.height, cfg.width
    gsd = rng.uniform(*cfg.gsd_mm)
    ppc = 10.0 / gsd  # pixels per centimetre
    soil = render_soil(rng, h, w, ppc)

    crops, meta = _crop_positions(rng, cfg, h, w, ppc)
    weeds = _weed_positions(rng, cfg, h, w, ppc, crops)
    plants = crops + weeds
    for p in plants:  # painter's order: a random "height" so either class may cover the other
        p.order = float(rng.random())
    plants.sort(key=lambda p: p.order)

    canvas = Canvas(color=np.zeros((h, w, 3), np.float32), label=np.zeros((h, w), np.uint8),
                    px_per_cm=ppc)
    counts: dict[str, int] = {}
    # One cultivar per field: every crop plant shares a base colour (small per-plant jitter);
    # each weed draws its own.
    crop_colour = None
    if crops:
        _, hue, sat, val = CROP_MORPHOLOGIES[crops[0].kind]
        crop_colour = plant_style(rng, CROP, hue, sat, val, 0.0).color
    for p in plants:
        if p.class_id == CROP and crop_colour is not None:
            drawer = CROP_MORPHOLOGIES[p.kind][0]
            colour = np.clip(crop_colour * rng.uniform(0.95, 1.05, 3), 0.0, 1.0)
            style = PlantStyle(CROP, colour.astype(np.float32), float(np.clip(p.stage, 0, 1)))
        else:
            drawer, hue, sat, val = WEED_MORPHOLOGIES[p.kind]
            style = plant_style(rng, p.class_id, hue, sat, val, p.stage)
        drawer(canvas, style, rng, p.x, p.y)
        counts[p.kind] = counts.get(p.kind, 0) + 1

    vegetation = (canvas.label > 0).astype(np.float32)
    # Plants cast soft shadows on the soil, offset away from the sun.
    sun = rng.uniform(0, 2 * np.pi)
    shift = rng.uniform(0.2, 1.2) * ppc
    m = np.array([[1, 0, np.cos(sun) * shift], [0, 1, np.sin(sun) * shift]], np.float32)
    shadow = cv2.warpAffine(vegetation, m, (w, h))
    k = max(3, int(0.6 * ppc) | 1)
    shadow = cv2.GaussianBlur(shadow, (k, k), 0)
    soil *= 1.0 - rng.uniform(*cfg.plant_shadow_strength) * shadow[:, :, None]
    img = np.where(vegetation[:, :, None] > 0, canvas.color, soil)

    kelvin = _pick_range(rng, cfg.color_temperature_k)
    exposure = _pick_range(rng, cfg.exposure)
    img = img * illumination_gains(kelvin)[None, None, :] * exposure
    shadowed = bool(rng.random() < cfg.cast_shadow_prob)
    if shadowed:
        cast_shadow(rng, img, float(rng.uniform(0.3, 0.6)))
    blur_px = 0.0
    if rng.random() < cfg.motion_blur_prob:
        blur_px = float(rng.uniform(*cfg.motion_blur_cm) * ppc)
        travel = np.deg2rad(meta["row_angle_deg"]) + np.pi / 2
        img = motion_blur(img, blur_px, float(travel))
    if rng.random() < cfg.defocus_prob:
        sigma = float(rng.uniform(0.5, 1.5))
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = sensor_noise(rng, img.astype(np.float32), float(rng.uniform(*cfg.read_noise)),
                       float(rng.uniform(*cfg.shot_noise)))
    rgb = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    quality = None
    if rng.random() < cfg.jpeg_prob:
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        rgb = jpeg_roundtrip(rgb, quality)

    meta.update({
        "seed": int(seed), "index": int(index), "gsd_mm": float(gsd),
        "plants": counts, "crops": len(crops), "weeds": len(weeds),
        "crops_in_view": sum(0 <= c.x < w and 0 <= c.y < h for c in crops),
        "color_temperature_k": kelvin, "exposure": exposure, "cast_shadow": shadowed,
        "motion_blur_px": blur_px, "jpeg_quality": quality,
    })
    return rgb, canvas.label, meta


def config_with_size(config: SynthConfig, height: int, width: int) -> SynthConfig:
    """A copy of ``config`` for another frame size."""
    return replace(config, height=height, width=width).validate()
