"""Value noise: smooth random fields at chosen scales, built from upsampled random grids."""

from __future__ import annotations

import cv2
import numpy as np


def value_noise(rng: np.random.Generator, height: int, width: int, cell_px: float) -> np.ndarray:
    """A smooth random field in [-1, 1], (H, W) float32, with features about ``cell_px`` wide."""
    cell_px = max(cell_px, 1.0)
    gh = max(2, int(np.ceil(height / cell_px)) + 2)
    gw = max(2, int(np.ceil(width / cell_px)) + 2)
    grid = rng.uniform(-1.0, 1.0, size=(gh, gw)).astype(np.float32)
    big = cv2.resize(grid, (int(gw * cell_px), int(gh * cell_px)), interpolation=cv2.INTER_CUBIC)
    oy = int(rng.integers(0, max(1, big.shape[0] - height)))
    ox = int(rng.integers(0, max(1, big.shape[1] - width)))
    out = big[oy:oy + height, ox:ox + width]
    if out.shape != (height, width):
        out = cv2.resize(out, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, -1.0, 1.0)


def fractal_noise(rng: np.random.Generator, height: int, width: int, base_cell_px: float,
                  octaves: int = 4, persistence: float = 0.5) -> np.ndarray:
    """Sum of value-noise octaves, halving the cell size each octave; (H, W) float32 ≈ [-1, 1]."""
    total = np.zeros((height, width), np.float32)
    amplitude, norm, cell = 1.0, 0.0, base_cell_px
    for _ in range(octaves):
        total += amplitude * value_noise(rng, height, width, cell)
        norm += amplitude
        amplitude *= persistence
        cell = max(cell / 2.0, 1.0)
    return total / norm
