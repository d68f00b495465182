"""Plant morphologies drawn leaf by leaf onto a colour layer and an exact label layer.

Sizes are in centimetres on the ground and scaled by ``px_per_cm``; angles are radians in image
coordinates (x right, y down). Labels are drawn without anti-aliasing, so the label of a pixel is
exactly the class of the topmost leaf drawn there (painter's order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from crop_weed_seg.classes import CROP, WEED
from crop_weed_seg.synthetic.soil import hsv_to_rgb

_SHIFT = 3  # fixed-point bits for sub-pixel polygon vertices
_ONE = 1 << _SHIFT
GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))


@dataclass
class Canvas:
    """The plant layer: colour (H, W, 3) float32 and labels (H, W) uint8, 0 where no plant."""

    color: np.ndarray
    label: np.ndarray
    px_per_cm: float


@dataclass(frozen=True)
class PlantStyle:
    """What one plant looks like: its class, base colour and growth stage in [0, 1]."""

    class_id: int
    color: np.ndarray
    stage: float


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * _ONE).astype(np.int32)


def _profile(kind: str, t: np.ndarray) -> np.ndarray:
    """Half-width profile of a leaf along its length, t in [0, 1] from base to tip."""
    if kind == "ovate":
        p = (t ** 0.55) * (1.0 - t) ** 0.85
    elif kind == "lanceolate":
        p = np.sin(np.pi * t)
    elif kind == "strap":
        p = np.clip((1.0 - t) / 0.3, 0.0, 1.0) ** 0.8 * np.clip(t / 0.05, 0.3, 1.0)
    elif kind == "round":
        p = np.sqrt(np.clip(np.sin(np.pi * t), 0.0, 1.0))
    elif kind == "rhombic":
        p = 1.0 - np.abs(2.0 * t - 0.8) / 1.2
    elif kind == "heart":
        p = np.sqrt(np.clip(np.sin(np.pi * t), 0, 1)) * \
            (1.0 - 0.35 * np.exp(-((t - 1.0) / 0.12) ** 2))
    else:
        raise ValueError(f"unknown leaf kind {kind!r}")
    return p / max(float(p.max()), 1e-6)


def leaf_outline(length: float, width: float, kind: str, bend: float = 0.0,
                 serration: float = 0.0, teeth: int = 0, n: int = 16) -> np.ndarray:
    """Leaf polygon in leaf coordinates (x from base to tip, y across), (2n, 2) float32."""
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)
    half = 0.5 * width * _profile(kind, t)
    if serration > 0 and teeth > 0:
        half = half * (1.0 - serration * np.abs(np.sin(t * teeth * np.pi)))
    centre = bend * length * t ** 2
    upper = np.stack([t * length, centre + half], 1)
    lower = np.stack([t * length, centre - half], 1)[::-1]
    return np.concatenate([upper, lower]).astype(np.float32)


def _place(points: np.ndarray, x: float, y: float, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, s], [-s, c]], np.float32)
    return points @ rot + np.array([x, y], np.float32)


def draw_leaf(canvas: Canvas, style: PlantStyle, rng: np.random.Generator, x: float, y: float,
              angle: float, length: float, width: float, kind: str, bend: float = 0.0,
              serration: float = 0.0, teeth: int = 0, highlight: bool = True) -> None:
    """Draw one leaf with its base at (x, y) [px] pointing along ``angle``: label, colour,
    shading."""
    if length < 0.6:
        return
    outline = leaf_outline(length, max(width, 0.8), kind, bend, serration, teeth)
    pts = _fixed(_place(outline, x, y, angle))
    colour = np.clip(style.color * rng.uniform(0.85, 1.12, 3), 0.0, 1.0)
    cv2.fillPoly(canvas.color, [pts], colour.tolist(), lineType=cv2.LINE_8, shift=_SHIFT)
    cv2.fillPoly(canvas.label, [pts], int(style.class_id), lineType=cv2.LINE_8, shift=_SHIFT)
    if not highlight or length < 4:
        return
    # A lighter half-blade (light from one side) and a midrib give the leaf relief.
    side = 1.0 if rng.random() < 0.5 else -1.0
    t = np.linspace(0.05, 0.9, 10, dtype=np.float32)
    half = 0.5 * width * _profile(kind, t) * 0.8
    centre = bend * length * t ** 2
    lit = np.concatenate([np.stack([t * length, centre], 1),
                          np.stack([t * length, centre + side * half], 1)[::-1]])
    lit_col = np.clip(colour * rng.uniform(1.08, 1.25), 0.0, 1.0)
    cv2.fillPoly(canvas.color, [_fixed(_place(lit, x, y, angle))], lit_col.tolist(),
                 lineType=cv2.LINE_8, shift=_SHIFT)
    rib = _fixed(_place(np.stack([t * length, centre], 1), x, y, angle))
    thickness = max(1, int(round(width * 0.06)))
    cv2.polylines(canvas.color, [rib], False, np.clip(colour * 1.3, 0, 1).tolist(), thickness,
                  lineType=cv2.LINE_8, shift=_SHIFT)


def draw_stem(canvas: Canvas, style: PlantStyle, points: np.ndarray, thickness_px: float) -> None:
    """A stem or petiole as a polyline through ``points`` (N, 2) [px]; labelled as the plant."""
    th = max(1, int(round(thickness_px)))
    pts = _fixed(points)
    colour = np.clip(style.color * 1.15, 0, 1).tolist()
    cv2.polylines(canvas.color, [pts], False, colour, th, lineType=cv2.LINE_8, shift=_SHIFT)
    cv2.polylines(canvas.label, [pts], False, int(style.class_id), th, lineType=cv2.LINE_8,
                  shift=_SHIFT)


# --- crops -------------------------------------------------------------------------------------

def draw_rosette(canvas: Canvas, style: PlantStyle, rng: np.random.Generator,
                 x: float, y: float) -> None:
    """Broad-leaf rosette (sugar-beet like): ovate leaves on petioles in a golden-angle spiral."""
    ppc = canvas.px_per_cm
    n = int(round(4 + style.stage * 10 + rng.integers(0, 3)))
    max_len = (2.0 + 9.0 * style.stage) * ppc * rng.uniform(0.85, 1.15)
    a0 = rng.uniform(0, 2 * np.pi)
    for i in range(n):  # oldest (largest) leaves first, youngest on top
        age = 1.0 - i / max(n, 1)
        length = max_len * (0.45 + 0.55 * age) * rng.uniform(0.85, 1.1)
        ang = a0 + i * GOLDEN_ANGLE + rng.normal(0, 0.12)
        petiole = length * 0.25
        px, py = x + np.cos(ang) * petiole, y + np.sin(ang) * petiole
        draw_stem(canvas, style, np.array([[x, y], [px, py]], np.float32), length * 0.07)
        draw_leaf(canvas, style, rng, px, py, ang, length, length * rng.uniform(0.5, 0.68),
                  "ovate", bend=rng.normal(0, 0.08), serration=rng.uniform(0, 0.05), teeth=9)


def draw_narrow(canvas: Canvas, style: PlantStyle, rng: np.random.Generator,
                x: float, y: float) -> None:
    """Narrow-leaf crop (maize/cereal like): long strap leaves in two opposite ranks."""
    ppc = canvas.px_per_cm
    n = int(round(2 + style.stage * 5 + rng.integers(0, 2)))
    max_len = (4.0 + 14.0 * style.stage) * ppc * rng.uniform(0.85, 1.15)
    a0 = rng.uniform(0, 2 * np.pi)
    for i in range(n):
        age = 1.0 - i / max(n, 1)
        length = max_len * (0.35 + 0.65 * age) * rng.uniform(0.85, 1.1)
        ang = a0 + (i % 2) * np.pi + rng.normal(0, 0.3)
        draw_leaf(canvas, style, rng, x, y, ang, length, length * rng.uniform(0.1, 0.15),
                  "strap", bend=rng.normal(0, 0.18))
    r = max(1.0, 0.35 * ppc * (0.5 + style.stage))
    cv2.circle(canvas.color, (int(x), int(y)), int(r), np.clip(style.color * 1.2, 0, 1).tolist(),
               -1)
    cv2.circle(canvas.label, (int(x), int(y)), int(r), int(style.class_id), -1)


# --- weeds -------------------------------------------------------------------------------------

def draw_broadleaf_weed(canvas: Canvas, style: PlantStyle, rng: np.random.Generator,
                        x: float, y: float) -> None:
    """Broad-leaf weed (goosefoot/amaranth like): opposite leaf pairs turning 90° per pair."""
    ppc = canvas.px_per_cm
    pairs = int(1 + round(style.stage * 3))
    max_len = (1.0 + 3.5 * style.stage) * ppc * rng.uniform(0.8, 1.2)
    kind = "rhombic" if rng.random() < 0.6 else "ovate"
    a0 = rng.uniform(0, np.pi)
    for i in range(pairs):
        length = max_len * (1.0 - 0.18 * i)
        for side in (0.0, np.pi):
            ang = a0 + i * np.pi / 2 + side + rng.normal(0, 0.15)
            draw_leaf(canvas, style, rng, x, y, ang, length, length * rng.uniform(0.5, 0.75), kind,
                      serration=rng.uniform(0.08, 0.25), teeth=int(rng.integers(4, 9)))


def draw_grass_weed(canvas: Canvas, style: PlantStyle, rng: np.random.Generator,
                    x: float, y: float) -> None:
    """Grass weed: thin curved blades fanning out from one point."""
    ppc = canvas.px_per_cm
    n = int(2 + round(style.stage * 7))
    max_len = (2.0 + 9.0 * style.stage) * ppc
    a0 = rng.uniform(0, 2 * np.pi)
    for _ in range(n):
        length = max_len * rng.uniform(0.5, 1.0)
        ang = a0 + rng.normal(0, 0.9)
        width = max(2.0, length * rng.uniform(0.025, 0.045))
        draw_leaf(canvas, style, rng, x, y, ang, length, width, "strap", bend=rng.normal(0, 0.3),
                  highlight=False)


def draw_divided_weed(canvas: Canvas, style: PlantStyle, rng: np.random.Generator,
                      x: float, y: float) -> None:
    """Finely divided weed (mayweed/chamomile like): stems carrying many thin side segments."""
    ppc = canvas.px_per_cm
    stems = int(3 + round(style.stage * 5))
    max_len = (1.5 + 5.0 * style.stage) * ppc
    thick = max(2.0, 0.18 * ppc)
    a0 = rng.uniform(0, 2 * np.pi)
    for k in range(stems):
        ang = a0 + k * 2 * np.pi / stems + rng.normal(0, 0.25)
        length = max_len * rng.uniform(0.6, 1.0)
        bend = rng.normal(0, 0.25)
        t = np.linspace(0, 1, 8, dtype=np.float32)
        local = np.stack([t * length, bend * length * t ** 2], 1)
        stem = _place(local, x, y, ang)
        draw_stem(canvas, style, stem, thick)
        seg_len = max(3.0, 0.5 * ppc)
        n_seg = int(max(2, length / max(0.35 * ppc, 2.0)))
        for j in range(1, n_seg):
            px, py = _place(np.array([[j / n_seg * length, bend * length * (j / n_seg) ** 2]],
                                     np.float32), x, y, ang)[0]
            side = 1.0 if j % 2 else -1.0
            sa = ang + side * rng.uniform(0.6, 1.1)
            sl = seg_len * rng.uniform(0.6, 1.2) * (1.0 - 0.5 * j / n_seg)
            draw_stem(canvas, style,
                      np.array([[px, py], [px + np.cos(sa) * sl, py + np.sin(sa) * sl]],
                               np.float32), thick)


def draw_seedling_weed(canvas: Canvas, style: PlantStyle, rng: np.random.Generator,
                       x: float, y: float) -> None:
    """Seedling: two cotyledons, and two small true leaves once a little older."""
    ppc = canvas.px_per_cm
    length = (0.8 + 1.2 * style.stage) * ppc * rng.uniform(0.8, 1.2)
    a0 = rng.uniform(0, np.pi)
    for side in (0.0, np.pi):
        draw_leaf(canvas, style, rng, x, y, a0 + side + rng.normal(0, 0.1), length,
                  length * rng.uniform(0.35, 0.5), "lanceolate", highlight=False)
    if style.stage > 0.4:
        for side in (0.0, np.pi):
            draw_leaf(canvas, style, rng, x, y, a0 + np.pi / 2 + side, length * 0.6,
                      length * 0.45, "round", highlight=False)


def draw_trifoliate_weed(canvas: Canvas, style: PlantStyle, rng: np.random.Generator,
                         x: float, y: float) -> None:
    """Trifoliate weed (clover/medick like): leaves of three heart-shaped leaflets on stalks.

    Kept out of the default training set so that evaluation can show how a model treats a
    weed morphology it never saw.
    """
    ppc = canvas.px_per_cm
    leaves = int(2 + round(style.stage * 5))
    for _ in range(leaves):
        ang = rng.uniform(0, 2 * np.pi)
        stalk = (0.6 + 2.0 * style.stage) * ppc * rng.uniform(0.5, 1.0)
        lx, ly = x + np.cos(ang) * stalk, y + np.sin(ang) * stalk
        draw_stem(canvas, style, np.array([[x, y], [lx, ly]], np.float32), max(1.5, 0.12 * ppc))
        leaflet = (0.6 + 0.8 * style.stage) * ppc * rng.uniform(0.8, 1.2)
        for k in (-1, 0, 1):
            draw_leaf(canvas, style, rng, lx, ly, ang + k * 2.1 + rng.normal(0, 0.1), leaflet,
                      leaflet * 0.9, "heart", highlight=False)


PlantDrawer = Callable[[Canvas, PlantStyle, np.random.Generator, float, float], None]

#: Crop morphologies: name -> (drawer, hue range [deg], saturation range, value range).
CROP_MORPHOLOGIES: dict[str, tuple[PlantDrawer, tuple[float, float], tuple[float, float],
                                   tuple[float, float]]] = {
    "rosette": (draw_rosette, (85, 115), (0.6, 0.9), (0.35, 0.6)),
    "narrow": (draw_narrow, (95, 120), (0.5, 0.8), (0.3, 0.5)),
}

#: Weed morphologies, same layout. "trifoliate" is the held-out one by default.
WEED_MORPHOLOGIES: dict[str, tuple[PlantDrawer, tuple[float, float], tuple[float, float],
                                   tuple[float, float]]] = {
    "broadleaf": (draw_broadleaf_weed, (60, 95), (0.25, 0.6), (0.4, 0.68)),
    "grass": (draw_grass_weed, (65, 92), (0.45, 0.8), (0.45, 0.7)),
    "divided": (draw_divided_weed, (85, 115), (0.45, 0.8), (0.3, 0.55)),
    "seedling": (draw_seedling_weed, (75, 105), (0.5, 0.85), (0.45, 0.72)),
    "trifoliate": (draw_trifoliate_weed, (95, 125), (0.4, 0.7), (0.3, 0.55)),
}


def plant_style(rng: np.random.Generator, class_id: int,
                hue: tuple[float, float], sat: tuple[float, float], val: tuple[float, float],
                stage: float) -> PlantStyle:
    """Draw a plant's base colour from its morphology's ranges."""
    colour = hsv_to_rgb(rng.uniform(*hue), rng.uniform(*sat), rng.uniform(*val))
    return PlantStyle(class_id=class_id, color=colour, stage=float(np.clip(stage, 0.0, 1.0)))


__all__ = [
    "CROP", "CROP_MORPHOLOGIES", "Canvas", "PlantStyle", "WEED", "WEED_MORPHOLOGIES",
    "draw_leaf", "leaf_outline", "plant_style",
]
