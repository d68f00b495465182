"""Dataset descriptions: one YAML file that says where a labelled dataset lies, in which format,
how its classes map, how it is split, and under which licence. Splits are lists of sample
stems, so a split is fixed and recorded (a model card copies them)::

    name: peanut
    root: ../../shared/datasets/peanut      # relative to this file, or absolute
    format: colour-mask                     # any layout open_dataset knows; auto detects
    classes: {"0,0,0": soil, "0,255,0": crop, "255,0,0": weed}
    unlabelled: soil
    splits: {train: ["0002", ...], val: [...], test: [...]}
    licence: CC-BY-SA-4.0
    attribution: "Tran and Phan, IEEE Access 11 (2023) ..."

``splits`` is optional: without it the format's own splits (Supervisely dataset folders,
PhenoBench train/val) apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from crop_weed_seg.data.class_map import ClassMap, parse_class_map
from crop_weed_seg.errors import ConfigError, DatasetError

DESCRIPTION_SUFFIXES = (".yaml", ".yml")
_KEYS = {"name", "root", "format", "classes", "unlabelled", "splits", "licence", "attribution",
         "notes"}


@dataclass(frozen=True)
class DatasetDescription:
    path: Path
    name: str
    root: Path
    format: str = "auto"
    class_map: ClassMap | None = None
    splits: dict[str, list[str]] = field(default_factory=dict)
    licence: str | None = None
    attribution: str | None = None

    def stems(self, split: str) -> list[str]:
        if split not in self.splits:
            raise ConfigError(f"{self.path}: no split {split!r}; it has "
                              f"{', '.join(self.splits) or 'none'}")
        return self.splits[split]


def is_description(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in DESCRIPTION_SUFFIXES


def load_description(path: Path | str) -> DatasetDescription:
    """Read and check a dataset description; every error names the file."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DatasetError(f"{path}: cannot read dataset description ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("root"), str):
        raise DatasetError(f"{path}: a dataset description needs at least 'root:' (a folder)")
    unknown = set(doc) - _KEYS
    if unknown:
        raise DatasetError(f"{path}: unknown keys {sorted(unknown)}; valid: {sorted(_KEYS)}")
    root = Path(doc["root"]).expanduser()
    if not root.is_absolute():
        root = (path.parent / root).resolve()
    class_map = None
    if "classes" in doc:
        class_map = parse_class_map({k: doc[k] for k in ("classes", "unlabelled") if k in doc},
                                    str(path))
    splits: dict[str, list[str]] = {}
    raw_splits = doc.get("splits") or {}
    if not isinstance(raw_splits, dict):
        raise DatasetError(f"{path}: 'splits' must map a split name to a list of stems")
    seen: dict[str, str] = {}
    for name, stems in raw_splits.items():
        if not isinstance(stems, list) or not all(isinstance(s, (str, int)) for s in stems):
            raise DatasetError(f"{path}: splits[{name!r}] must be a list of sample stems")
        for stem in map(str, stems):
            if stem in seen:
                raise DatasetError(f"{path}: stem {stem!r} is in split {seen[stem]!r} and in "
                                   f"{name!r}; splits must not overlap")
            seen[stem] = str(name)
        splits[str(name)] = [str(s) for s in stems]
    return DatasetDescription(path=path, name=str(doc.get("name", path.stem)), root=root,
                              format=str(doc.get("format", "auto")), class_map=class_map,
                              splits=splits, licence=doc.get("licence"),
                              attribution=doc.get("attribution"))
