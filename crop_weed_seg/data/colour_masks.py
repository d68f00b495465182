"""Colour-mask folders: ``images/<stem>.jpg|png`` and ``labels/<stem>.png`` (or ``masks/``)
painted in one colour per class, with a class map naming the colours (Peanut: black soil,
green crop, red weed)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from crop_weed_seg.data.class_map import ClassMap
from crop_weed_seg.data.sample import Sample, visible_files
from crop_weed_seg.errors import ConfigError, DatasetError
from crop_weed_seg.image_files import read_rgb

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")
LABEL_FOLDERS: tuple[str, ...] = ("labels", "masks")


def label_folder(root: Path) -> Path | None:
    """``labels/`` or ``masks/`` under ``root``, whichever exists first."""
    for name in LABEL_FOLDERS:
        if (root / name).is_dir():
            return root / name
    return None


def list_samples(root: Path, split: str | None) -> list[Sample]:
    if split is not None:
        raise ConfigError(f"{root}: a colour-mask folder has no splits of its own; a dataset "
                          f"description (YAML with splits:) gives one, got split {split!r}")
    images_dir, labels_dir = root / "images", label_folder(root)
    if not images_dir.is_dir() or labels_dir is None:
        raise DatasetError(f"{root}: the colour-mask layout expects images/ and labels/ "
                           "(or masks/) folders")
    samples: list[Sample] = []
    seen: dict[str, Path] = {}
    for image in visible_files(images_dir):
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if image.stem in seen:
            raise DatasetError(f"{image}: two images share the stem {image.stem!r} "
                               f"(the other is {seen[image.stem]})")
        seen[image.stem] = image
        label = labels_dir / f"{image.stem}.png"
        if not label.is_file():
            raise DatasetError(f"{image}: image has no colour mask; expected {label}")
        samples.append(Sample(image.stem, image, label))
    if not samples:
        raise DatasetError(f"{images_dir}: no images found; the dataset is empty")
    return samples


def mask_decoder(class_map: ClassMap, what: str = "colour mask"
                 ) -> Callable[[Path], np.ndarray]:
    """Read a colour mask as stored (never turned by EXIF) and map its colours to label ids;
    ``what`` names the file kind in errors."""
    def decode(path: Path) -> np.ndarray:
        try:
            rgb = read_rgb(path, upright=False)
        except DatasetError as exc:
            raise DatasetError(str(exc).replace("cannot read image", f"cannot read {what}")) \
                from exc
        return class_map.decode_colours(rgb, path)

    return decode


def decoder(class_map: ClassMap | None, root: Path) -> Callable[[Path], np.ndarray]:
    if class_map is None or not class_map.colours:
        raise DatasetError(f"{root}: a colour-mask dataset needs a class map naming its colours "
                           "(classes.yaml beside the data, --classes, or a dataset description)")
    return mask_decoder(class_map)
