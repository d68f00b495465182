"""Readers for the on-disk dataset layouts this package trains and evaluates on.

Every reader yields ``(rgb, labels)`` pairs: ``rgb`` is (H, W, 3) uint8 in RGB order and
``labels`` is (H, W) uint8 holding class ids 0 soil, 1 crop, 2 weed, 3 vegetation (a plant,
crop or weed unknown: partial labels) or 255 ("ignore").

``open_dataset`` also opens a dataset description (a ``.yaml`` file: root, format, class map,
fixed splits; :mod:`crop_weed_seg.data.description`) and ``open_source`` a ``PATH[:SPLIT]``
text as the command line gives it.

Layouts (``detect_layout`` tells them apart, ``open_dataset`` opens one); the formats that name
their classes their own way take a class map (:mod:`crop_weed_seg.data.class_map`:
``classes.yaml`` beside the data, ``--classes``, or the description's ``classes:``):

``colour-mask``
    ``images/<stem>.jpg|png`` and ``labels/<stem>.png`` (or ``masks/``) painted one colour per
    class (:mod:`crop_weed_seg.data.colour_masks`); detected when the class map names colours.
``supervisely``
    A Supervisely project: ``meta.json``, ``<dataset>/img`` and ``<dataset>/ann``
    (:mod:`crop_weed_seg.data.supervisely`); the dataset folders are its splits.
``cvat``
    A CVAT "Segmentation mask 1.1" export: ``labelmap.txt`` (class names and colours),
    ``SegmentationClass/<stem>.png`` and ``JPEGImages/<stem>.jpg|png``
    (:mod:`crop_weed_seg.data.cvat`); the ``ImageSets/Segmentation/<split>.txt`` files are its
    splits, ``split=None`` every image with a mask.
``labelme``
    A folder of LabelMe ``<stem>.json`` files (polygons, rectangles, circles, lines) naming
    their images by ``imagePath`` (:mod:`crop_weed_seg.data.labelme`); no split of its own.

``folder``
    ``images/<stem>.png|jpg|jpeg`` and ``labels/<stem>.png`` (single channel class ids, 8 or
    16 bit, values in {0, 1, 2, 255}). Has no split of its own: only ``split=None``.
``phenobench``
    ``<split>/images/<stem>.png`` and ``<split>/semantics/<stem>.png`` (8 or 16 bit). Semantics
    3 (partial crop) becomes 1 crop and 4 (partial weed) becomes 2 weed; 255 stays ignore.
    Splits ``train`` and ``val``; ``split`` must be given (the ``test`` split has no labels).
``cwfid``
    ``images/NNN_image.png``, ``annotations/NNN_annotation.png`` (colour coded: green crop, red
    weed, anything else soil) and ``train_test_split.yaml`` (keys ``train`` and ``test`` listing
    image numbers). Splits ``train`` and ``test``; ``split=None`` means every image.

Listing (which files exist, which image has which label) happens when a dataset is opened;
content checks (readability, label size, label values) happen lazily in ``__getitem__`` and
all at once in ``SegmentationDataset.validate``. Every problem is one ``DatasetError`` whose
message names the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from crop_weed_seg.classes import CROP, IGNORE_INDEX, NUM_CLASSES, SOIL, WEED
from crop_weed_seg.data import colour_masks, cvat, labelme, supervisely
from crop_weed_seg.data.bag_dataset import open_bag_dataset
from crop_weed_seg.data.class_map import ClassMap, find_class_map
from crop_weed_seg.data.description import is_description, load_description
from crop_weed_seg.data.sample import Sample, visible_files
from crop_weed_seg.errors import ConfigError, DatasetError
from crop_weed_seg.image_files import read_id_image, read_rgb

LAYOUTS: tuple[str, ...] = ("folder", "phenobench", "cwfid", "colour-mask", "supervisely", "cvat",
                           "labelme")
FOLDER_IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")
PHENOBENCH_SPLITS: tuple[str, ...] = ("train", "val")
CWFID_SPLITS: tuple[str, ...] = ("train", "test")
CWFID_SPLIT_FILE = "train_test_split.yaml"

_CWFID_IMAGE_RE = re.compile(r"^(\d+)_image\.png$", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Label decoding
# --------------------------------------------------------------------------------------------


def _make_lut(mapping: dict[int, int]) -> np.ndarray:
    lut = np.full(65536, IGNORE_INDEX, dtype=np.uint8)
    for src, dst in mapping.items():
        lut[src] = dst
    return lut


class _IdDecoder:
    """Maps raw label ids through a table, rejecting ids that are not in it."""

    def __init__(self, mapping: dict[int, int], description: str) -> None:
        self.allowed = np.array(sorted(mapping), dtype=np.int64)
        self.lut = _make_lut(mapping)
        self.description = description
        self.identity = all(k == v for k, v in mapping.items())

    def __call__(self, path: Path) -> np.ndarray:
        raw = read_id_image(path)
        counts = np.bincount(raw.ravel(), minlength=256 if raw.dtype == np.uint8 else 65536)
        present = np.flatnonzero(counts)
        bad = np.setdiff1d(present, self.allowed)
        if bad.size:
            shown = ", ".join(str(int(v)) for v in bad[:20]) + (" ..." if bad.size > 20 else "")
            allowed = ", ".join(str(int(v)) for v in self.allowed)
            raise DatasetError(
                f"{path}: label values [{shown}] are outside the class set "
                f"{{{allowed}}} ({self.description})"
            )
        if self.identity and raw.dtype == np.uint8:
            return raw
        return np.ascontiguousarray(self.lut[raw])


_FOLDER_DECODER = _IdDecoder(
    {SOIL: SOIL, CROP: CROP, WEED: WEED, IGNORE_INDEX: IGNORE_INDEX},
    "0 soil, 1 crop, 2 weed, 255 ignore",
)
_PHENOBENCH_DECODER = _IdDecoder(
    {0: SOIL, 1: CROP, 2: WEED, 3: CROP, 4: WEED, IGNORE_INDEX: IGNORE_INDEX},
    "PhenoBench semantics: 0 soil, 1 crop, 2 weed, 3 partial crop, 4 partial weed, 255 ignore",
)


def _decode_cwfid(path: Path) -> np.ndarray:
    """Colour-coded CWFID annotation -> (H, W) uint8 class ids (never 255)."""
    try:
        rgb = read_rgb(path, upright=False)
    except DatasetError as exc:
        raise DatasetError(str(exc).replace("cannot read image", "cannot read annotation")) from exc
    r = rgb[:, :, 0]
    g = rgb[:, :, 1]
    labels = np.zeros(rgb.shape[:2], dtype=np.uint8)
    labels[(g > 127) & (r < 128)] = CROP
    labels[(r > 127) & (g < 128)] = WEED
    return labels


_DECODERS: dict[str, Callable[[Path], np.ndarray]] = {
    "folder": _FOLDER_DECODER,
    "phenobench": _PHENOBENCH_DECODER,
    "cwfid": _decode_cwfid,
}


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


class SegmentationDataset:
    """An ordered list of samples of one layout; indexing reads and checks one pair.

    ``dataset[i]`` returns ``(rgb, labels)``: rgb (H, W, 3) uint8 RGB, labels (H, W) uint8 in
    {0, 1, 2, 255}. Samples are sorted by stem.
    """

    def __init__(self, root: Path, layout: str, split: str | None, samples: list[Sample],
                 decode: Callable[[Path], np.ndarray] | None = None) -> None:
        if decode is None and layout not in _DECODERS:
            raise ConfigError(f"unknown dataset layout {layout!r}; valid: {', '.join(LAYOUTS)}")
        self.root = Path(root)
        self.layout = layout
        self.split = split
        self.samples: list[Sample] = sorted(samples, key=lambda s: s.stem)
        self._decode = decode if decode is not None else _DECODERS[layout]
        #: Where the data came from (a description file, a licence), for model cards.
        self.description: dict[str, object] = {}

    def subset(self, indices: "np.ndarray | list[int]",
               split: str | None = None) -> "SegmentationDataset":
        """The samples at ``indices`` (in this dataset's order), same decoder and layout."""
        view = SegmentationDataset(self.root, self.layout, split if split is not None
                                   else self.split, [self.samples[int(i)] for i in indices],
                                   self._decode)
        view.description = dict(self.description)
        return view

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return (
            f"SegmentationDataset(root={str(self.root)!r}, layout={self.layout!r}, "
            f"split={self.split!r}, samples={len(self.samples)})"
        )

    def _sample(self, index: int) -> Sample:
        n = len(self.samples)
        if not -n <= index < n:
            raise IndexError(f"sample index {index} out of range for {n} samples")
        return self.samples[index]

    def load_label(self, index: int) -> np.ndarray:
        """Read and decode one label only: (H, W) uint8 in {0, 1, 2, 255}.

        Checks the label's values but not its size against the image (that needs the image).
        """
        return self._decode(self._sample(index).label_path)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(rgb (H, W, 3) uint8, labels (H, W) uint8)`` for sample ``index``."""
        sample = self._sample(index)
        image = read_rgb(sample.image_path)
        labels = self._decode(sample.label_path)
        if labels.shape != image.shape[:2]:
            lh, lw = labels.shape
            ih, iw = image.shape[:2]
            raise DatasetError(
                f"{sample.label_path}: label is {lw}x{lh} (WxH) but its image "
                f"{sample.image_path} is {iw}x{ih}; they must be the same size"
            )
        return image, labels

    def validate(self) -> None:
        """Read every sample; raise the first problem found as a ``DatasetError``."""
        for index in range(len(self.samples)):
            self[index]


# --------------------------------------------------------------------------------------------
# Layout listing
# --------------------------------------------------------------------------------------------


def _require_dir(path: Path, layout: str, what: str) -> None:
    if not path.is_dir():
        raise DatasetError(f"{path}: folder not found; the {layout} layout expects {what}")


_visible_files = visible_files


def _check_root(root: Path) -> None:
    if not root.exists():
        raise DatasetError(f"{root}: dataset root does not exist")
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset root is not a folder")


def _list_folder(root: Path, split: str | None) -> list[Sample]:
    if split is not None:
        raise ConfigError(
            f"the folder layout has no splits of its own; split must be None, got {split!r} "
            f"(use split_indices to hold out a validation part)"
        )
    images_dir, labels_dir = root / "images", root / "labels"
    _require_dir(images_dir, "folder", "images/<stem>.png|jpg|jpeg")
    _require_dir(labels_dir, "folder", "labels/<stem>.png next to images/")
    by_stem: dict[str, Path] = {}
    for path in _visible_files(images_dir):
        if path.suffix.lower() not in FOLDER_IMAGE_SUFFIXES:
            continue
        if path.stem in by_stem:
            raise DatasetError(
                f"{path}: two images share the stem {path.stem!r} "
                f"(the other is {by_stem[path.stem]}); stems must be unique"
            )
        by_stem[path.stem] = path
    if not by_stem:
        raise DatasetError(
            f"{images_dir}: no images found (expected {', '.join(FOLDER_IMAGE_SUFFIXES)} files); "
            "the dataset is empty"
        )
    samples = []
    for stem in sorted(by_stem):
        label = labels_dir / f"{stem}.png"
        if not label.is_file():
            raise DatasetError(f"{by_stem[stem]}: image has no label; expected {label}")
        samples.append(Sample(stem, by_stem[stem], label))
    return samples


def _list_phenobench(root: Path, split: str | None) -> list[Sample]:
    if split not in PHENOBENCH_SPLITS:
        hint = " (the PhenoBench test split has no semantics labels)" if split == "test" else ""
        raise ConfigError(
            f"the phenobench layout needs split set to one of {', '.join(PHENOBENCH_SPLITS)}; "
            f"got {split!r}{hint}"
        )
    split_dir = root / split
    images_dir, labels_dir = split_dir / "images", split_dir / "semantics"
    _require_dir(split_dir, "phenobench", f"<root>/{split}/images and <root>/{split}/semantics")
    _require_dir(images_dir, "phenobench", f"<root>/{split}/images/<stem>.png")
    _require_dir(labels_dir, "phenobench", f"<root>/{split}/semantics/<stem>.png")
    images = [p for p in _visible_files(images_dir) if p.suffix.lower() == ".png"]
    if not images:
        raise DatasetError(f"{images_dir}: no .png images found; the dataset is empty")
    samples = []
    for image in images:
        label = labels_dir / image.name
        if not label.is_file():
            raise DatasetError(f"{image}: image has no semantics label; expected {label}")
        samples.append(Sample(image.stem, image, label))
    return samples


def _read_cwfid_split(path: Path, split: str) -> list[int]:
    if not path.is_file():
        raise DatasetError(
            f"{path}: split file not found; the cwfid layout needs it for split={split!r}"
        )
    try:
        with path.open("r", encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(f"{path}: cannot read split file ({exc})") from exc
    if not isinstance(document, dict) or split not in document:
        raise DatasetError(f"{path}: split file has no {split!r} key (expected 'train' and 'test')")
    numbers = document[split]
    if not isinstance(numbers, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in numbers
    ):
        raise DatasetError(f"{path}: {split!r} must be a list of integer image numbers")
    return numbers


def _list_cwfid(root: Path, split: str | None) -> list[Sample]:
    if split is not None and split not in CWFID_SPLITS:
        raise ConfigError(
            f"the cwfid layout has splits {', '.join(CWFID_SPLITS)} (or None for all); "
            f"got {split!r}"
        )
    images_dir, labels_dir = root / "images", root / "annotations"
    _require_dir(images_dir, "cwfid", "images/NNN_image.png")
    _require_dir(labels_dir, "cwfid", "annotations/NNN_annotation.png")
    by_number: dict[int, tuple[str, Path]] = {}
    for path in _visible_files(images_dir):
        match = _CWFID_IMAGE_RE.match(path.name)
        if match is None:
            continue
        number = int(match.group(1))
        if number in by_number:
            raise DatasetError(
                f"{path}: image number {number} appears twice (also {by_number[number][1]})"
            )
        by_number[number] = (match.group(1), path)
    if not by_number:
        raise DatasetError(f"{images_dir}: no NNN_image.png images found; the dataset is empty")
    if split is None:
        numbers = sorted(by_number)
    else:
        split_file = root / CWFID_SPLIT_FILE
        numbers = sorted(set(_read_cwfid_split(split_file, split)))
        for number in numbers:
            if number not in by_number:
                raise DatasetError(
                    f"{split_file}: lists image {number} in {split!r} but "
                    f"{images_dir / f'{number:03d}_image.png'} does not exist"
                )
        if not numbers:
            raise DatasetError(f"{split_file}: split {split!r} is empty; the dataset is empty")
    samples = []
    for number in numbers:
        digits, image = by_number[number]
        label = labels_dir / f"{digits}_annotation.png"
        if not label.is_file():
            raise DatasetError(f"{image}: image has no annotation; expected {label}")
        samples.append(Sample(digits, image, label))
    return samples


_LISTERS: dict[str, Callable[[Path, str | None], list[Sample]]] = {
    "folder": _list_folder,
    "phenobench": _list_phenobench,
    "cwfid": _list_cwfid,
    "colour-mask": colour_masks.list_samples,
    "supervisely": supervisely.list_samples,
    "cvat": cvat.list_samples,
    "labelme": labelme.list_samples,
}

#: Formats whose labels need a class map: layout -> decoder factory (class map, root).
_MAPPED_DECODERS: dict[str, Callable[[ClassMap | None, Path], Callable[[Path], np.ndarray]]] = {
    "colour-mask": colour_masks.decoder,
    "supervisely": supervisely.decoder,
    "cvat": cvat.decoder,
    "labelme": labelme.decoder,
}


def detect_layout(root: Path | str, class_map: ClassMap | None = None) -> str:
    """Tell which layout ``root`` holds.

    Supervisely: ``meta.json`` and a ``<dataset>/ann`` folder. CVAT: ``labelmap.txt`` and
    ``SegmentationClass/``. PhenoBench: ``train/images`` or ``val/images`` exists. CWFID:
    ``annotations/`` or ``train_test_split.yaml`` exists. LabelMe: ``*.json`` files, the first
    of which has a ``shapes`` key, and no ``images/``. Colour-mask: ``images/`` and ``labels/``
    (or ``masks/``) with a class map that names colours (``class_map``, else ``classes.yaml``
    in ``root``). Folder: ``images/`` exists. Checked in that order.
    """
    root = Path(root)
    _check_root(root)
    if supervisely.is_project(root):
        return "supervisely"
    if cvat.is_export(root):
        return "cvat"
    if any((root / s / "images").is_dir() for s in (*PHENOBENCH_SPLITS, "test")):
        return "phenobench"
    if (root / "annotations").is_dir() or (root / CWFID_SPLIT_FILE).is_file():
        return "cwfid"
    if labelme.is_folder(root):
        return "labelme"
    if (root / "images").is_dir():
        if class_map is None:
            class_map = find_class_map(root, None)
        if class_map is not None and class_map.colours and colour_masks.label_folder(root):
            return "colour-mask"
        return "folder"
    raise DatasetError(
        f"{root}: cannot tell the dataset layout; expected images/ + labels/ (folder, or "
        f"colour-mask with a classes.yaml naming colours), meta.json + <dataset>/ann "
        f"(supervisely), labelmap.txt + SegmentationClass/ (cvat), LabelMe *.json files "
        f"(labelme), train/images + train/semantics (phenobench) or images/ + annotations/ + "
        f"{CWFID_SPLIT_FILE} (cwfid)"
    )


def is_bag(root: Path | str) -> bool:
    """A rosbag2: a folder with ``metadata.yaml``, or a ``.mcap`` / ``.db3`` file."""
    root = Path(root)
    if root.is_dir():
        return (root / "metadata.yaml").is_file()
    return root.is_file() and root.suffix.lower() in (".mcap", ".db3")


def open_dataset(root: Path | str, layout: str = "auto", split: str | None = None,
                 classes: Path | str | ClassMap | None = None) -> SegmentationDataset:
    """List the samples of ``root`` in ``layout`` (``"auto"`` detects it) and ``split``.

    ``root`` may be a dataset description (``.yaml``): its root, format, class map and
    splits apply. A rosbag2 (``layout`` ``"bag"``, or detected by :func:`is_bag`) opens as a
    :class:`~crop_weed_seg.data.bag_dataset.BagDataset`: frames paired with its
    ``labels_truth`` topic.
    ``classes`` is a class map (or its file) for the formats that need one; without it
    ``classes.yaml`` in ``root`` is used when present.

    Raises ``DatasetError`` for a missing root or folder, an image without a label, or no
    images at all; ``ConfigError`` for an unknown layout or a split the layout does not have.
    """
    root = Path(root)
    if is_description(root):
        return _open_description(root, split, classes)
    if layout == "bag" or (layout == "auto" and is_bag(root)):
        if split is not None:
            raise ConfigError(f"{root}: a bag has no splits; leave out --split")
        return open_bag_dataset(root)  # type: ignore[return-value]  # same interface
    if layout != "auto" and layout not in LAYOUTS:
        raise ConfigError(f"unknown dataset layout {layout!r}; valid: auto, bag, "
                          f"{', '.join(LAYOUTS)}")
    _check_root(root)
    class_map = classes if isinstance(classes, ClassMap) else find_class_map(root, classes)
    if layout == "auto":
        layout = detect_layout(root, class_map)
    samples = _LISTERS[layout](root, split)
    decode = _MAPPED_DECODERS[layout](class_map, root) if layout in _MAPPED_DECODERS else None
    return SegmentationDataset(root, layout, split, samples, decode)


def _open_description(path: Path, split: str | None,
                      classes: Path | str | ClassMap | None) -> SegmentationDataset:
    desc = load_description(path)
    if not desc.root.is_dir():
        raise DatasetError(f"{path}: its root {desc.root} is not a folder (edit root: in "
                           f"{path.name}, relative to the file, or give the data folder itself)")
    class_map = desc.class_map if classes is None else classes
    native_split = split if not desc.splits else None
    data = open_dataset(desc.root, desc.format, native_split, class_map)
    data.description = {"description": str(path), "name": desc.name, "licence": desc.licence,
                        "attribution": desc.attribution}
    if not desc.splits or split is None:
        return data
    index = {s.stem: i for i, s in enumerate(data.samples)}
    missing = [stem for stem in desc.stems(split) if stem not in index]
    if missing:
        raise DatasetError(f"{path}: split {split!r} lists {len(missing)} stems not found under "
                           f"{desc.root}: {', '.join(missing[:5])}")
    return data.subset([index[stem] for stem in desc.stems(split)], split)


def parse_source(text: str | Path) -> tuple[Path, str | None, int]:
    """``PATH[:SPLIT][@REPEAT]`` as given to ``--data`` -> (path, split, repeat).

    A path that exists as given is taken whole (a colon in a real folder name stays).
    ``REPEAT`` (a positive integer) weights a source in a training mix.
    """
    text = str(text)
    repeat = 1
    if "@" in text and not Path(text).exists():
        text, _, count = text.rpartition("@")
        try:
            repeat = int(count)
        except ValueError:
            raise ConfigError(f"--data {text}@{count}: the repeat after @ must be an integer") \
                from None
        if repeat < 1:
            raise ConfigError(f"--data {text}@{count}: the repeat after @ must be >= 1")
    if ":" in text and not Path(text).exists():
        path, _, split = text.rpartition(":")
        return Path(path), split or None, repeat
    return Path(text), None, repeat


def open_source(text: str | Path, layout: str = "auto", split: str | None = None,
                classes: Path | str | None = None) -> SegmentationDataset:
    """Open ``PATH[:SPLIT]`` (a split in the text wins over ``split``)."""
    path, text_split, _ = parse_source(text)
    return open_dataset(path, layout, text_split if text_split is not None else split, classes)


# --------------------------------------------------------------------------------------------
# Class weights and splitting
# --------------------------------------------------------------------------------------------


def label_counts(dataset: SegmentationDataset, max_images: int | None = None) -> np.ndarray:
    """Pixel count per label value (256,) int64 over the labels of ``dataset`` (only label
    files are read); ``max_images`` limits it to that many, evenly spaced."""
    n = len(dataset)
    if max_images is not None:
        if max_images < 1:
            raise ConfigError(f"max_images must be at least 1, got {max_images}")
        indices = np.unique(np.linspace(0, n - 1, num=min(max_images, n)).round().astype(int))
    else:
        indices = np.arange(n)
    counts = np.zeros(256, dtype=np.int64)
    for index in indices:
        counts += np.bincount(dataset.load_label(int(index)).ravel(), minlength=256)
    return counts


def class_frequency_weights(dataset: "SegmentationDataset | list[SegmentationDataset]",
                            num_classes: int = NUM_CLASSES,
                            max_images: int | None = None) -> np.ndarray:
    """Loss weights per class from label pixel frequencies: (num_classes,) float32.

    Uses the ENet scheme ``w_c = 1 / ln(1.02 + p_c)`` where ``p_c`` is the fraction of
    labelled (non-255) pixels of class ``c``. Weights lie in (1 / ln(2.02), 1 / ln(1.02)]
    i.e. about (1.42, 50.5]; a class with no pixels gets the cap 50.5, so all are finite.
    Label ids >= ``num_classes`` (255 ignore, 3 vegetation) are not counted. A list of
    datasets is counted together (``max_images`` per dataset).

    ``max_images`` limits the count to that many labels, evenly spaced over the dataset.
    Only label files are read. Raises ``DatasetError`` if no pixel is labelled.
    """
    if num_classes < 1:
        raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
    datasets = dataset if isinstance(dataset, list) else [dataset]
    counts = sum((label_counts(d, max_images) for d in datasets), np.zeros(256, np.int64))
    class_counts = counts[:num_classes].astype(np.float64)
    total = class_counts.sum()
    if total <= 0:
        raise DatasetError(
            f"{datasets[0].root}: no labelled pixels (all ignore) in the label images; "
            "cannot compute class weights"
        )
    freq = class_counts / total
    return (1.0 / np.log(1.02 + freq)).astype(np.float32)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministically split ``range(n)`` into (train, val) index arrays, each sorted int64.

    The validation part has ``round(n * val_fraction)`` items, at least 1 when
    ``val_fraction > 0`` and ``n >= 2``, and never all of them. Same (n, fraction, seed) ->
    same split on every machine (NumPy PCG64).
    """
    if n < 0:
        raise ConfigError(f"n must not be negative, got {n}")
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, max(n - 1, 0))
    order = np.random.default_rng(seed).permutation(n)
    val = np.sort(order[:n_val]).astype(np.int64)
    train = np.sort(order[n_val:]).astype(np.int64)
    return train, val
