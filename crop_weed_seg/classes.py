"""The class set shared by labels, models, metrics and visualisation."""

from __future__ import annotations

import numpy as np

#: Class names by label index. Label files use these ids; 255 marks "ignore".
CLASS_NAMES: tuple[str, ...] = ("soil", "crop", "weed")
SOIL, CROP, WEED = 0, 1, 2
NUM_CLASSES = len(CLASS_NAMES)
IGNORE_INDEX = 255

#: RGB colour per class for overlays and colourised label images.
PALETTE_RGB: np.ndarray = np.array(
    [
        [120, 85, 60],  # soil: brown
        [40, 200, 40],  # crop: green
        [230, 30, 30],  # weed: red
    ],
    dtype=np.uint8,
)
