"""Bare-soil backgrounds: base colour, multi-scale texture, moisture, clods, stones, residue.

Everything here is label 0 (soil): stones and crop residue are not vegetation.
Colours are linear RGB float32 in [0, 1].
"""

from __future__ import annotations

import cv2
import numpy as np

from crop_weed_seg.synthetic.noise import fractal_noise, value_noise

# HSV-ish soil families (hue deg, saturation, value): brown loam, grey silt, red clay, dark humus,
# pale sand. A sample draws one and jitters it.
_SOIL_FAMILIES = (
    (28.0, 0.45, 0.42),
    (35.0, 0.18, 0.50),
    (18.0, 0.50, 0.40),
    (30.0, 0.35, 0.22),
    (38.0, 0.30, 0.62),
)


def hsv_to_rgb(h_deg: float, s: float, v: float) -> np.ndarray:
    """One HSV colour (hue in degrees, s and v in [0, 1]) to an RGB float32 triple."""
    px = np.array([[[h_deg / 2.0, s * 255.0, v * 255.0]]], np.float32).clip(0, 255).astype(np.uint8)
    return cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def render_soil(rng: np.random.Generator, height: int, width: int, px_per_cm: float) -> np.ndarray:
    """A soil image (H, W, 3) float32 whose texture scales with ``px_per_cm`` (the GSD)."""
    fam = _SOIL_FAMILIES[int(rng.integers(len(_SOIL_FAMILIES)))]
    base = hsv_to_rgb(
        fam[0] + rng.uniform(-6, 6),
        float(np.clip(fam[1] * rng.uniform(0.7, 1.3), 0.05, 0.8)),
        float(np.clip(fam[2] * rng.uniform(0.75, 1.25), 0.12, 0.8)),
    )
    # Brightness texture at several scales: aggregates (mm) to furrows (dm).
    fine = fractal_noise(rng, height, width, base_cell_px=1.5 * px_per_cm, octaves=3)
    coarse = value_noise(rng, height, width, cell_px=25.0 * px_per_cm)
    shade = 1.0 + 0.22 * fine + 0.12 * coarse
    # Moisture patches: darker, slightly more saturated regions with soft edges.
    wet = np.clip(value_noise(rng, height, width, cell_px=18.0 * px_per_cm) - rng.uniform(0.1, 0.7),
                  0.0, 1.0)
    shade *= 1.0 - rng.uniform(0.2, 0.45) * wet
    img = shade[:, :, None] * base[None, None, :]
    # Per-channel low-frequency tint so the soil is not one flat hue.
    tint = value_noise(rng, height, width, cell_px=12.0 * px_per_cm)
    img[:, :, 0] *= 1.0 + 0.06 * tint
    img[:, :, 2] *= 1.0 - 0.06 * tint
    _draw_clods(rng, img, px_per_cm)
    _draw_stones(rng, img, px_per_cm)
    _draw_residue(rng, img, px_per_cm)
    return np.clip(img, 0.0, 1.0)


def _draw_clods(rng: np.random.Generator, img: np.ndarray, px_per_cm: float) -> None:
    """Soil clods: lumps with a lit and a shadowed side."""
    h, w = img.shape[:2]
    area_dm2 = (h * w) / (10.0 * px_per_cm) ** 2
    count = int(rng.poisson(rng.uniform(0.5, 6.0) * area_dm2))
    for _ in range(min(count, 400)):
        r = max(1.0, rng.uniform(0.3, 2.0) * px_per_cm)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        col = img[int(min(cy, h - 1)), int(min(cx, w - 1))].copy()
        n = int(rng.integers(5, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = r * rng.uniform(0.5, 1.0, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
        dark = rng.uniform(0.72, 0.88)
        cv2.fillPoly(img, [(pts + 0.3 * r).astype(np.int32)], (col * dark).tolist())
        cv2.fillPoly(img, [pts.astype(np.int32)], (col * rng.uniform(1.0, 1.12)).tolist())


def _draw_stones(rng: np.random.Generator, img: np.ndarray, px_per_cm: float) -> None:
    """Stones: grey to beige polygons with a soft shadow, a few per square decimetre at most."""
    h, w = img.shape[:2]
    area_dm2 = (h * w) / (10.0 * px_per_cm) ** 2
    count = int(rng.poisson(rng.uniform(0.0, 1.5) * area_dm2))
    for _ in range(min(count, 120)):
        r = max(1.5, rng.uniform(0.3, 2.5) * px_per_cm)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        n = int(rng.integers(6, 11))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = r * rng.uniform(0.7, 1.0, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang) * rng.uniform(0.6, 1.0)], 1)
        grey = rng.uniform(0.35, 0.75)
        col = np.array([grey, grey * rng.uniform(0.92, 1.0), grey * rng.uniform(0.8, 0.98)])
        shadow = (pts + r * 0.25).astype(np.int32)
        cv2.fillPoly(img, [shadow], (img[int(min(cy, h - 1)), int(min(cx, w - 1))] * 0.6).tolist())
        cv2.fillPoly(img, [pts.astype(np.int32)], col.tolist())
        hl = (pts - (pts - [cx, cy]) * 0.45 - r * 0.12).astype(np.int32)
        cv2.fillPoly(img, [hl], (np.minimum(col * 1.12, 1.0)).tolist())


def _draw_residue(rng: np.random.Generator, img: np.ndarray, px_per_cm: float) -> None:
    """Crop residue: straw-coloured stalk fragments (not vegetation: they are dead, label soil)."""
    h, w = img.shape[:2]
    area_dm2 = (h * w) / (10.0 * px_per_cm) ** 2
    count = int(rng.poisson(rng.uniform(0.0, 3.0) * area_dm2))
    for _ in range(min(count, 200)):
        length = rng.uniform(1.0, 6.0) * px_per_cm
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        a = rng.uniform(0, np.pi)
        p0 = (int(cx - np.cos(a) * length / 2), int(cy - np.sin(a) * length / 2))
        p1 = (int(cx + np.cos(a) * length / 2), int(cy + np.sin(a) * length / 2))
        v = rng.uniform(0.45, 0.8)
        col = (v, v * rng.uniform(0.82, 0.92), v * rng.uniform(0.5, 0.65))
        cv2.line(img, p0, p1, col, max(1, int(rng.uniform(0.08, 0.3) * px_per_cm)))
