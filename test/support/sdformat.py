"""An SDFormat validator for tests: a world is checked against the specification's element
descriptions (``test/fixtures/gazebo/sdformat-1.11/*.sdf``, copied from libsdformat; provenance
in ``test/fixtures/gazebo/README.md``), because Gazebo cannot be installed here.

The spec: each file describes one ``<element>`` with its ``<attribute>`` s (name, type,
``required`` "0"/"1"), its child ``<element>`` s (inline, or ``ref="file"`` for a whole described
element such as a nested model) and ``<include filename="x.sdf" required="..."/>`` of other
files. A child's ``required`` is "0" (at most one), "1" (exactly one), "*" (any number), "+"
(at least one) or "-1" (deprecated). An element with a ``type`` holds a value of that type
(bool, int, unsigned int, double, float, string, char, vector3, vector2d, vector2i, pose,
quaternion, color, time), some with ``min``/``max``. A ``copy_data`` child (in ``plugin``)
means the element takes anything inside.

:func:`validate` reports, each with the element's path: an unknown element or attribute, a
missing required child or attribute, too many of a child, a deprecated element, a value that
is not of its type or outside its bounds, text inside an element that holds none, two sibling
elements of one kind with the same name (libsdformat's unique-name rule; plugins excepted). It is
stricter than libsdformat, which fills missing required elements with their defaults and only
warns about unknown ones: a world that passes says everything explicitly.

Known extensions (:data:`HARMONIC_EXTENSIONS`): elements Gazebo Harmonic reads that the 1.11
spec does not describe (libsdformat copies them with a warning), allowed only where listed.
Names with a namespace prefix (``xmlns:foo``, ``<foo:bar>``) are custom elements and skipped,
as libsdformat does.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from support import FIXTURES

SPEC_DIR = FIXTURES / "gazebo" / "sdformat-1.11"

#: (parent element, child element) -> value type: what Gazebo Harmonic reads beyond the spec.
#: ``sensor/gz_frame_id``: the frame id gz-sensors stamps a sensor's messages with.
HARMONIC_EXTENSIONS: dict[tuple[str, str], str] = {("sensor", "gz_frame_id"): "string"}

REQUIRED_KINDS = ("0", "1", "*", "+", "-1")


@dataclass
class AttributeSpec:
    name: str
    type: str
    required: bool


@dataclass
class ElementSpec:
    """One described element. ``children``: name -> (spec, required)."""

    name: str
    type: str | None = None
    minimum: str | None = None
    maximum: str | None = None
    copy_data: bool = False
    attributes: dict[str, AttributeSpec] = field(default_factory=dict)
    children: dict[str, tuple[ElementSpec, str]] = field(default_factory=dict)


class Spec:
    """The element descriptions of one spec folder, parsed on first use (files cached, so
    recursive references such as a nested ``model`` resolve)."""

    def __init__(self, folder: Path = SPEC_DIR) -> None:
        self.folder = Path(folder)
        self._files: dict[str, ElementSpec] = {}

    def file(self, filename: str) -> ElementSpec:
        if filename not in self._files:
            path = self.folder / filename
            if not path.is_file():
                raise FileNotFoundError(f"spec file {path} does not exist")
            root = ET.parse(path).getroot()
            if root.tag != "element":
                raise ValueError(f"{path}: root is <{root.tag}>, expected <element>")
            spec = ElementSpec(root.get("name", ""))
            self._files[filename] = spec   # before the children: a file may refer to itself
            self._fill(spec, root, filename)
        return self._files[filename]

    @property
    def root(self) -> ElementSpec:
        return self.file("root.sdf")

    def _fill(self, spec: ElementSpec, node: ET.Element, where: str) -> None:
        spec.type = node.get("type")
        spec.minimum, spec.maximum = node.get("min"), node.get("max")
        for child in node:
            if child.tag == "description":
                continue
            if child.tag == "attribute":
                name = child.get("name", "")
                spec.attributes[name] = AttributeSpec(name, child.get("type", "string"),
                                                      child.get("required") == "1")
            elif child.tag == "include":
                included = self.file(child.get("filename", ""))
                spec.children[included.name] = (included, _required(child, where))
            elif child.tag == "element":
                if child.get("copy_data") == "true":
                    spec.copy_data = True
                    continue
                name = child.get("name", "")
                if child.get("ref"):
                    sub = self.file(child.get("ref", "") + ".sdf")
                else:
                    sub = ElementSpec(name)
                    self._fill(sub, child, where)
                spec.children[name] = (sub, _required(child, where))
            else:
                raise ValueError(f"spec {where}: unexpected <{child.tag}> in {spec.name}")


def _required(node: ET.Element, where: str) -> str:
    value = node.get("required", "0")
    if value not in REQUIRED_KINDS:
        raise ValueError(f"spec {where}: required={value!r} on {node.get('name')}")
    return value


# --- value types ---------------------------------------------------------------------------------

_INT = re.compile(r"[+-]?\d+")
_UINT = re.compile(r"\+?\d+")


def _floats(text: str) -> list[float] | None:
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


def check_value(kind: str, text: str, attributes: dict[str, str] | None = None) -> str | None:
    """Why ``text`` is not a value of spec type ``kind`` (None when it is)."""
    t = text.strip()
    attributes = attributes or {}
    if kind == "string":
        return None
    if kind == "bool":
        return None if t.lower() in ("true", "false", "1", "0") else "is not a bool"
    if kind == "char":
        return None if len(t) == 1 else "is not one character"
    if kind == "int":
        return None if _INT.fullmatch(t) else "is not an int"
    if kind == "unsigned int":
        return None if _UINT.fullmatch(t) else "is not an unsigned int"
    if kind == "vector2i":
        parts = t.split()
        return None if len(parts) == 2 and all(_INT.fullmatch(p) for p in parts) \
            else "is not 2 ints (vector2i)"
    counts = {"double": (1,), "float": (1,), "vector3": (3,), "vector2d": (2,),
              "quaternion": (4,), "color": (3, 4), "time": (1, 2)}
    if kind == "pose":
        quat = attributes.get("rotation_format", "euler_rpy") == "quat_xyzw"
        counts["pose"] = (7,) if quat else (6,)
    if kind not in counts:
        return f"has spec type {kind!r}, which this validator does not know"
    values = _floats(t)
    if values is None or len(values) not in counts[kind]:
        want = " or ".join(str(n) for n in counts[kind])
        return f"is not a {kind} ({want} finite number{'s' if counts[kind] != (1,) else ''})"
    if kind == "time" and len(values) == 2 and not all(_INT.fullmatch(p) for p in t.split()):
        return "is not a time (seconds, or integer seconds and nanoseconds)"
    return None


def _bound_error(spec: ElementSpec, text: str) -> str | None:
    values = _floats(text)
    if values is None:
        return None
    for bound, below in ((spec.minimum, True), (spec.maximum, False)):
        limits = _floats(bound) if bound else None
        if not limits:
            continue
        pairs = zip(values, limits) if len(limits) == len(values) else \
            ((v, limits[0]) for v in values) if len(limits) == 1 else ()
        for value, limit in pairs:
            if (below and value < limit) or (not below and value > limit):
                return f"{text.strip()!r} is {'below its min' if below else 'above its max'} " \
                       f"{bound}"
    return None


# --- validation ----------------------------------------------------------------------------------

def _label(node: ET.Element) -> str:
    name = node.get("name")
    return f"{node.tag}[{name}]" if name else node.tag


def _custom(name: str) -> bool:
    return ":" in name or name.startswith("{")


def validate(source: Path | str, spec: Spec | None = None,
             extensions: dict[tuple[str, str], str] | None = None) -> list[str]:
    """Every way the SDF file (or text starting with ``<``) breaks the spec; [] when valid."""
    spec = spec or Spec()
    extensions = HARMONIC_EXTENSIONS if extensions is None else extensions
    text = source if isinstance(source, str) and source.lstrip().startswith("<") \
        else Path(source).read_text()
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        return [f"not XML: {e}"]
    errors: list[str] = []
    if root.tag != spec.root.name:
        return [f"root element is <{root.tag}>, expected <{spec.root.name}>"]
    _check(root, spec.root, "/" + _label(root), errors, extensions)
    return errors


def _check(node: ET.Element, spec: ElementSpec, path: str, errors: list[str],
           extensions: dict[tuple[str, str], str]) -> None:
    for name, value in node.attrib.items():
        if _custom(name):
            continue
        attr = spec.attributes.get(name)
        if attr is None:
            errors.append(f"{path}: unknown attribute {name!r} (valid: "
                          f"{', '.join(sorted(spec.attributes)) or 'none'})")
            continue
        why = check_value(attr.type, value)
        if why:
            errors.append(f"{path}/@{name}: {value!r} {why}")
    for name, attr in spec.attributes.items():
        if attr.required and name not in node.attrib:
            errors.append(f"{path}: missing required attribute {name!r}")
    if spec.copy_data:
        return   # a plugin's settings: anything goes

    text = (node.text or "").strip()
    if spec.type is None:
        if text:
            errors.append(f"{path}: holds text {text[:40]!r}, but the element takes no value")
    else:
        why = check_value(spec.type, node.text or "", dict(node.attrib))
        if why:
            errors.append(f"{path}: {text[:60]!r} {why}")
        elif spec.type not in ("string", "bool"):
            bound = _bound_error(spec, text)
            if bound:
                errors.append(f"{path}: {bound}")

    seen: dict[str, int] = {}
    names: set[tuple[str, str]] = set()
    for child in node:
        if not isinstance(child.tag, str) or _custom(child.tag):
            continue   # comments, processing instructions, custom (namespaced) elements
        seen[child.tag] = seen.get(child.tag, 0) + 1
        child_path = f"{path}/{_label(child)}"
        if child.get("name") is not None and child.tag != "plugin":
            if (child.tag, child.get("name", "")) in names:
                errors.append(f"{child_path}: another <{child.tag}> has the same name")
            names.add((child.tag, child.get("name", "")))
        if child.tag in spec.children:
            sub, required = spec.children[child.tag]
            if required == "-1":
                errors.append(f"{child_path}: deprecated element")
            _check(child, sub, child_path, errors, extensions)
        elif (spec.name, child.tag) in extensions:
            if len(child) or child.attrib:
                errors.append(f"{child_path}: extension element takes a value only")
            why = check_value(extensions[(spec.name, child.tag)], child.text or "")
            if why:
                errors.append(f"{child_path}: {why}")
        else:
            errors.append(f"{child_path}: unknown element <{child.tag}> in <{spec.name}> "
                          f"(valid: {', '.join(sorted(spec.children)) or 'none'})")
    for name, (_, required) in spec.children.items():
        count = seen.get(name, 0)
        if required in ("1", "+") and count == 0:
            errors.append(f"{path}: missing required element <{name}>")
        if required in ("0", "1") and count > 1:
            errors.append(f"{path}: <{name}> {count} times, at most once allowed")
    for (parent, name), _ in extensions.items():
        if parent == spec.name and seen.get(name, 0) > 1:
            errors.append(f"{path}: <{name}> {seen[name]} times, at most once allowed")


# --- files a world names -------------------------------------------------------------------------

#: Elements whose text is a file (relative to the world's folder, or file:// / absolute).
FILE_ELEMENTS = ("uri", "albedo_map", "normal_map", "roughness_map", "metalness_map",
                 "emissive_map", "light_map", "environment_map", "ambient_occlusion_map",
                 "specular_map", "glossiness_map", "filename", "cubemap_uri")


def named_files(world: Path) -> list[tuple[str, Path]]:
    """(text as written, resolved path) of every file the world names, and of the material
    libraries its OBJ meshes name. ``model://`` and web URIs are not files here: returned with
    an empty Path so the caller can refuse them."""
    world = Path(world)
    found: list[tuple[str, Path]] = []
    for node in ET.parse(world).getroot().iter():
        text = (node.text or "").strip()
        if node.tag not in FILE_ELEMENTS or not text:
            continue
        if text.startswith("file://"):
            path = Path(text[len("file://"):])
        elif "://" in text:
            found.append((text, Path()))
            continue
        else:
            path = Path(text) if Path(text).is_absolute() else world.parent / text
        found.append((text, path))
        if path.suffix.lower() == ".obj" and path.is_file():
            for line in path.read_text().splitlines():
                if line.startswith("mtllib "):
                    found.append((line, path.parent / line.split(None, 1)[1].strip()))
    return found
