"""CVAT "Segmentation mask 1.1" exports (Pascal VOC style)::

    labelmap.txt                      # label:color_rgb:parts:actions
    SegmentationClass/<stem>.png      # one colour per class (RGB or palette PNG)
    JPEGImages/<stem>.jpg|jpeg|png    # the images ("Save images" ticked when exporting)
    ImageSets/Segmentation/<split>.txt   # optional: the stems of each subset (default, train...)

``labelmap.txt`` names each class and its colour (``peanut:0,255,0::``); the class names go
through the class map (``background`` is soil without an entry), so the mask colours need no
entry of their own. A mask colour ``labelmap.txt`` does not list is an error naming the mask
and the colour. ``SegmentationObject/`` (instance masks) is not read.

Splits are the ``ImageSets/Segmentation/*.txt`` files (a stem listed there with no image or no
mask is an error); ``split=None`` means every image under ``JPEGImages/`` that has a mask
(images without one are skipped; a mask without an image is an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from crop_weed_seg.data.class_map import ClassMap, Colour, parse_colour
from crop_weed_seg.data.colour_masks import mask_decoder
from crop_weed_seg.data.sample import Sample
from crop_weed_seg.errors import ConfigError, DatasetError

LABELMAP_FILE = "labelmap.txt"
MASK_DIR = "SegmentationClass"
IMAGE_DIR = "JPEGImages"
SPLIT_DIR = Path("ImageSets") / "Segmentation"
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")


def is_export(root: Path) -> bool:
    return (root / LABELMAP_FILE).is_file() and (root / MASK_DIR).is_dir()


def read_labelmap(root: Path) -> list[tuple[str, Colour]]:
    """``(name, (r, g, b))`` for each class line of ``labelmap.txt``, in file order."""
    path = root / LABELMAP_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the CVAT label map ({exc})") from exc
    entries: list[tuple[str, Colour]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(":", 3)  # a name may hold a colon; the last three fields cannot
        colour = parse_colour(parts[1]) if len(parts) == 4 else None
        if colour is None or not parts[0].strip():
            raise DatasetError(f"{path}: line {number} {line!r} is not 'name:R,G,B:parts:actions'")
        entries.append((parts[0].strip(), colour))
    if not entries:
        raise DatasetError(f"{path}: the CVAT label map lists no classes")
    return entries


def splits_of(root: Path) -> list[str]:
    folder = root / SPLIT_DIR
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.txt") if not p.name.startswith("."))


def _read_split(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the split file ({exc})") from exc
    stems = [line.split()[0] for line in lines if line.strip()]
    if not stems:
        raise DatasetError(f"{path}: the split lists no images; the dataset is empty")
    return stems


def _images_by_stem(images_dir: Path) -> dict[str, Path]:
    """Images under ``JPEGImages/`` (subfolders too: CVAT keeps a task's folder names), keyed by
    their path relative to it without the suffix."""
    found: dict[str, Path] = {}
    for path in sorted(images_dir.rglob("*")):
        if not path.is_file() or path.name.startswith(".") \
                or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        stem = path.relative_to(images_dir).with_suffix("").as_posix()
        if stem in found:
            raise DatasetError(f"{path}: two images share the stem {stem!r} "
                               f"(the other is {found[stem]})")
        found[stem] = path
    return found


def list_samples(root: Path, split: str | None) -> list[Sample]:
    if not is_export(root):
        raise DatasetError(f"{root}: not a CVAT segmentation-mask export (expected "
                           f"{LABELMAP_FILE} and {MASK_DIR}/)")
    images_dir, masks_dir = root / IMAGE_DIR, root / MASK_DIR
    if not images_dir.is_dir():
        raise DatasetError(f"{images_dir}: folder not found; export from CVAT with "
                           "'Save images' ticked, or copy the images there")
    images = _images_by_stem(images_dir)
    samples: list[Sample] = []
    if split is not None:
        names = splits_of(root)
        if split not in names:
            have = f"has splits {', '.join(names)}" if names else \
                f"has no {SPLIT_DIR.as_posix()}/*.txt split files (leave the split out)"
            raise ConfigError(f"{root}: the CVAT export {have}; split {split!r} is not one of them")
        split_file = root / SPLIT_DIR / f"{split}.txt"
        for stem in dict.fromkeys(_read_split(split_file)):
            if stem not in images:
                raise DatasetError(f"{split_file}: lists {stem!r} but no image "
                                   f"{images_dir / stem}.jpg|png exists")
            mask = masks_dir / f"{stem}.png"
            if not mask.is_file():
                raise DatasetError(f"{images[stem]}: image has no CVAT mask; expected {mask}")
            samples.append(Sample(stem, images[stem], mask))
        return samples
    for mask in sorted(masks_dir.rglob("*.png")):
        stem = mask.relative_to(masks_dir).with_suffix("").as_posix()
        if stem not in images:
            raise DatasetError(f"{mask}: mask has no image; expected {images_dir / stem}.jpg|png")
    for stem, image in images.items():
        mask = masks_dir / f"{stem}.png"
        if mask.is_file():
            samples.append(Sample(stem, image, mask))
    if not samples:
        raise DatasetError(f"{root}: no image under {IMAGE_DIR}/ has a mask in {MASK_DIR}/; "
                           "the dataset is empty")
    return samples


def decoder(class_map: ClassMap | None, root: Path) -> Callable[[Path], np.ndarray]:
    cmap = class_map or ClassMap()
    labelmap = root / LABELMAP_FILE
    colours: dict[Colour, int] = {}
    for name, colour in read_labelmap(root):  # unknown names fail here, naming labelmap.txt
        value = cmap.id_for_name(name, labelmap)
        if colours.get(colour, value) != value:
            raise DatasetError(f"{labelmap}: colour {colour} is given to classes with different "
                               f"targets (again by {name!r})")
        colours[colour] = value
    by_colour = ClassMap({}, colours, cmap.unlabelled, f"colours of {labelmap}")

    return mask_decoder(by_colour, "CVAT mask")
