"""What every per-pixel classifier offers: the trained model, the classical baseline, tiles."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Predictor(Protocol):
    """Anything that maps an (H, W, 3) uint8 RGB frame to (H, W) uint8 class ids."""

    name: str

    def predict(self, rgb: np.ndarray) -> np.ndarray: ...
