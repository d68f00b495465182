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

#: Label-only id for "plant, crop or weed unknown" (partial labels such as EWS's wheat/soil
#: masks, or a team's quick plant masks). Never predicted: the loss supervises
#: P(crop) + P(weed) on these pixels, and the metrics count them for vegetation IoU only.
VEGETATION = 3

#: What a class map may send a source class to (``classes.yaml``), and the label id it becomes.
LABEL_TARGETS: dict[str, int] = {
    "soil": SOIL,
    "crop": CROP,
    "weed": WEED,
    "vegetation": VEGETATION,
    "ignore": IGNORE_INDEX,
}
