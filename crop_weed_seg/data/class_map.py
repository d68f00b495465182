"""Class maps: which class of a labelled dataset becomes soil, crop, weed, vegetation or ignore.

Real datasets name their classes their own way (``Wheat``, ``peanut``, ``_background_``) or
paint them in colours (Peanut: black / green / red). A class map sends each source class to
one of the package's label targets (:data:`crop_weed_seg.classes.LABEL_TARGETS`):
``soil``, ``crop``, ``weed``, ``vegetation`` (a plant whose crop-or-weed identity is unknown:
only the soil/plant boundary is trained on it) or ``ignore``.

It is read from a small YAML document: ``classes.yaml`` beside the data, a file given on the
command line (``--classes``), or the ``classes:`` block of a dataset description::

    classes:
      Wheat: vegetation          # a class name (case-insensitive)
      "0,255,0": crop            # a mask colour as R,G,B (or "#00ff00")
    unlabelled: soil             # pixels no object covers (Supervisely, LabelMe); default soil

Names without an entry fall back to the obvious ones (``soil``, ``background``,
``_background_``, ``crop``, ``weed``, ``vegetation``, ``plant``, ``ignore``); any other name
or colour met in a file is an error naming that file and the class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from crop_weed_seg.classes import IGNORE_INDEX, LABEL_TARGETS, SOIL
from crop_weed_seg.errors import DatasetError

CLASS_MAP_FILE = "classes.yaml"

#: Names understood without a class map entry (lower case).
DEFAULT_NAMES: dict[str, str] = {
    "soil": "soil", "background": "soil", "_background_": "soil", "ground": "soil",
    "crop": "crop", "weed": "weed", "vegetation": "vegetation", "plant": "vegetation",
    "ignore": "ignore", "void": "ignore", "unlabelled": "ignore", "unlabeled": "ignore",
}

_HEX_RE = re.compile(r"^#?([0-9a-fA-F]{6})$")
_RGB_RE = re.compile(r"^\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*$")

Colour = tuple[int, int, int]


def parse_colour(text: str) -> Colour | None:
    """``"R,G,B"`` or ``"#rrggbb"`` -> (r, g, b); None when ``text`` is not a colour."""
    match = _RGB_RE.match(text)
    if match:
        rgb = tuple(int(v) for v in match.groups())
        if max(rgb) > 255:
            return None
        return rgb  # type: ignore[return-value]
    match = _HEX_RE.match(text.strip())
    if match:
        value = int(match.group(1), 16)
        return (value >> 16) & 255, (value >> 8) & 255, value & 255
    return None


def target_id(target: object, where: str) -> int:
    """Label id of a target name (``soil`` ... ``ignore``); ``DatasetError`` naming ``where``."""
    if not isinstance(target, str) or target.lower() not in LABEL_TARGETS:
        raise DatasetError(f"{where}: class target {target!r} is not one of "
                           f"{', '.join(LABEL_TARGETS)}")
    return LABEL_TARGETS[target.lower()]


@dataclass(frozen=True)
class ClassMap:
    """Source class names and colours -> label ids (0 soil, 1 crop, 2 weed, 3 vegetation,
    255 ignore). ``source`` names where the map came from, for error messages."""

    names: dict[str, int] = field(default_factory=dict)
    colours: dict[Colour, int] = field(default_factory=dict)
    unlabelled: int = SOIL
    source: str = "built-in names"

    def id_for_name(self, name: str, where: Path | str) -> int:
        """The label id of source class ``name``; an unknown name is a ``DatasetError``."""
        key = name.strip().lower()
        if key in self.names:
            return self.names[key]
        if key in DEFAULT_NAMES:
            return LABEL_TARGETS[DEFAULT_NAMES[key]]
        raise DatasetError(
            f"{where}: class {name!r} has no entry in the class map ({self.source}); add "
            f"'{name}: soil|crop|weed|vegetation|ignore' under classes: in {CLASS_MAP_FILE}")

    def decode_colours(self, rgb: np.ndarray, where: Path | str) -> np.ndarray:
        """An (H, W, 3) RGB colour mask -> (H, W) uint8 label ids; unknown colours are an error
        naming the file, the colours and how many pixels have them."""
        if not self.colours:
            raise DatasetError(f"{where}: colour mask but the class map ({self.source}) "
                               "names no colours (keys like \"0,255,0\")")
        code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) \
            | rgb[..., 2].astype(np.int32)
        keys = np.array([(r << 16) | (g << 8) | b for r, g, b in self.colours], dtype=np.int32)
        values = np.array(list(self.colours.values()), dtype=np.uint8)
        order = np.argsort(keys)
        keys, values = keys[order], values[order]
        pos = np.clip(np.searchsorted(keys, code), 0, len(keys) - 1)
        known = keys[pos] == code
        if not known.all():
            bad, counts = np.unique(code[~known], return_counts=True)
            top = np.argsort(-counts)[:5]
            shown = ", ".join(f"({v >> 16},{(v >> 8) & 255},{v & 255}) x{c}"
                              for v, c in zip(bad[top], counts[top]))
            raise DatasetError(
                f"{where}: {int((~known).sum())} pixels have colours the class map "
                f"({self.source}) does not name: {shown}")
        return np.ascontiguousarray(values[pos].astype(np.uint8))

    def to_json(self) -> dict[str, Any]:
        inverse = {v: k for k, v in LABEL_TARGETS.items()}
        doc: dict[str, Any] = {n: inverse[i] for n, i in self.names.items()}
        doc.update({f"{r},{g},{b}": inverse[i] for (r, g, b), i in self.colours.items()})
        return {"classes": doc, "unlabelled": inverse[self.unlabelled]}


def parse_class_map(document: object, source: str) -> ClassMap:
    """Build a class map from a parsed YAML document (``classes:`` and ``unlabelled:``)."""
    if not isinstance(document, dict) or not isinstance(document.get("classes"), dict):
        raise DatasetError(f"{source}: a class map needs a 'classes:' mapping of source class "
                           "(name or R,G,B colour) to soil|crop|weed|vegetation|ignore")
    names: dict[str, int] = {}
    colours: dict[Colour, int] = {}
    for key, target in document["classes"].items():
        where = f"{source}: classes[{key!r}]"
        value = target_id(target, where)
        colour = parse_colour(str(key)) if isinstance(key, str) else None
        if colour is not None:
            colours[colour] = value
        elif isinstance(key, str) and key.strip():
            names[key.strip().lower()] = value
        else:
            raise DatasetError(f"{where}: a key must be a class name or an R,G,B colour")
    unknown = set(document) - {"classes", "unlabelled"}
    if unknown:
        raise DatasetError(f"{source}: unknown keys {sorted(unknown)} in a class map "
                           "(expected classes, unlabelled)")
    unlabelled = target_id(document.get("unlabelled", "soil"), f"{source}: unlabelled")
    if unlabelled == IGNORE_INDEX and not names and not colours:
        raise DatasetError(f"{source}: the class map maps nothing")
    return ClassMap(names, colours, unlabelled, source)


def load_class_map(path: Path | str) -> ClassMap:
    """Read a ``classes.yaml`` file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: class map file not found")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DatasetError(f"{path}: cannot read class map ({exc})") from exc
    return parse_class_map(document, str(path))


def find_class_map(root: Path, explicit: Path | str | None) -> ClassMap | None:
    """The class map given on the command line, else ``classes.yaml`` in ``root``, else None."""
    if explicit is not None:
        return load_class_map(explicit)
    beside = Path(root) / CLASS_MAP_FILE
    return load_class_map(beside) if beside.is_file() else None
