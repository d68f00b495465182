"""The dependency rules.

1. The core imports no ROS, torch or TensorRT at module level (checked by importing it).
2. The package's own imports follow the layer table below, and no two modules import each other
   (directly or round a longer loop). Checked on the source with ``ast``: every import
   statement counts, function-level and ``TYPE_CHECKING`` ones included.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import crop_weed_seg

from support import REPO

PACKAGE = "crop_weed_seg"
PACKAGE_DIR = Path(crop_weed_seg.__file__).resolve().parent

#: Subpackages allowed to import heavy or ROS modules: everything else is the core.
NON_CORE = ("crop_weed_seg.ros", "crop_weed_seg.tools", "crop_weed_seg.nn",
            "crop_weed_seg.training")
FORBIDDEN = ("torch", "rclpy", "tensorrt", "onnxruntime", "matplotlib")

#: The foundation: the package root and the top-level modules every folder may import.
FOUNDATION = "foundation"
FOUNDATION_MODULES = frozenset({PACKAGE, f"{PACKAGE}.classes", f"{PACKAGE}.errors",
                                f"{PACKAGE}.image_files", f"{PACKAGE}.stamps"})
#: Low to high: the folders (subpackages of crop_weed_seg) each folder may import, besides
#: itself and the foundation. Direct imports only: a folder that needs one further down goes
#: through what it may import.
CORE = ("model", "nn", "backends", "spray", "synthetic", "perception", "bags", "data", "sim")
LAYERS: dict[str, frozenset[str]] = {
    FOUNDATION: frozenset(),
    "model": frozenset(),
    "nn": frozenset({"model"}),
    "backends": frozenset({"nn", "model"}),
    "spray": frozenset({"model"}),
    "synthetic": frozenset(),
    "perception": frozenset({"backends", "model", "spray"}),
    "parameters": frozenset({"spray"}),
    "bags": frozenset({"perception", "spray", "model"}),
    "data": frozenset({"bags", "perception", "synthetic", "model"}),
    "sim": frozenset({"perception", "spray", "synthetic", "bags", "data", "model", "backends"}),
    "training": frozenset({"data", "nn", "model", "synthetic", "backends", "perception"}),
    "ros": frozenset(CORE) | {"parameters"},  # not tools, not training
    "tools": frozenset(),  # everything: filled in below
}
LAYERS["tools"] = frozenset(LAYERS) - {"tools"}

# --- 1. no ROS, torch or TensorRT in the core ----------------------------------------------------

def core_modules() -> list[str]:
    names = ["crop_weed_seg"]
    for info in pkgutil.walk_packages(crop_weed_seg.__path__, "crop_weed_seg."):
        if not info.name.startswith(NON_CORE):
            names.append(info.name)
    return names


def test_core_modules_import_no_ros_torch_or_tensorrt() -> None:
    modules = core_modules()
    assert "crop_weed_seg.synthetic.field" in modules and "crop_weed_seg.data.datasets" in modules
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_guard_would_notice_a_forbidden_import() -> None:
    code = "import sys, crop_weed_seg.nn.network; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


# --- 2. layers and cycles: the checker ------------------------------------------------------------

@dataclass(frozen=True)
class Import:
    """``importer`` (a module, in file ``path`` at ``line``) imports module ``imported``."""

    importer: str
    imported: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}"


def package_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imports_in_source(source: str, module: str, path: str, is_package: bool,
                      known: Iterable[str] = ()) -> list[Import]:
    """The imports of our own package in ``source``, anywhere in it. ``from X import Y`` counts
    as an import of module ``X.Y`` when that is one of the ``known`` modules, else of ``X``;
    relative imports are resolved."""
    known = set(known)
    found = []
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: len(module.split(".")) - node.level
                                          + (1 if is_package else 0)]
                base = ".".join(parent + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for target in dict.fromkeys(targets):
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                found.append(Import(module, target, path, node.lineno))
    return found


def package_imports() -> list[Import]:
    modules = package_modules()
    found = []
    for name, path in modules.items():
        found += imports_in_source(path.read_text("utf-8"), name,
                                   str(path.relative_to(REPO)) if path.is_relative_to(REPO)
                                   else str(path), path.name == "__init__.py", modules)
    return found


def layer_of(module: str) -> str:
    if module in FOUNDATION_MODULES:
        return FOUNDATION
    return module.split(".")[1]


def layer_violations(imports: Iterable[Import],
                     layers: Mapping[str, frozenset[str]] = LAYERS) -> list[str]:
    """One line per import that the table does not allow, naming the module and the import."""
    problems = []
    for imp in imports:
        source, target = layer_of(imp.importer), layer_of(imp.imported)
        if source not in layers:
            problems.append(f"{imp}: folder {source!r} is not in the layer table")
        elif target not in layers:
            problems.append(f"{imp}: folder {target!r} is not in the layer table")
        elif target not in layers[source] | {source, FOUNDATION}:
            allowed = ", ".join([FOUNDATION] + sorted(layers[source]))
            problems.append(f"{imp}: {source} may import only {allowed}")
    return problems


def _strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: the strongly connected components of ``graph``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _a_loop(graph: Mapping[str, set[str]], members: list[str]) -> list[str]:
    """A shortest loop through ``members[0]`` inside the component ``members``."""
    start, inside = members[0], set(members)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & inside):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return path[::-1] + [start]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{members} is not a cycle")


def import_cycles(imports: Iterable[Import]) -> dict[frozenset[str], str]:
    """Each import cycle between modules (as its set of modules) with a description of one loop
    in it that names every import on the way."""
    imports = list(imports)
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], Import] = {}
    for imp in imports:
        graph.setdefault(imp.importer, set()).add(imp.imported)
        graph.setdefault(imp.imported, set())
        where.setdefault((imp.importer, imp.imported), imp)
    cycles = {}
    for component in _strongly_connected(graph):
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        loop = _a_loop(graph, component)
        steps = "; ".join(str(where[a, b]) for a, b in zip(loop, loop[1:]))
        cycles[frozenset(component)] = f"import cycle {' -> '.join(loop)} ({steps})"
    return cycles


def table_cycles(layers: Mapping[str, frozenset[str]]) -> list[list[str]]:
    graph = {layer: set(allowed) - {layer} for layer, allowed in layers.items()}
    return [c for c in _strongly_connected(graph) if len(c) > 1]


# --- 2. layers and cycles: the package ------------------------------------------------------------

def test_the_layer_table_is_acyclic_and_names_every_folder() -> None:
    assert table_cycles(LAYERS) == []
    assert all(allowed <= set(LAYERS) for allowed in LAYERS.values())
    folders = {p.name for p in PACKAGE_DIR.iterdir()
               if p.is_dir() and (p / "__init__.py").is_file()}
    top_modules = {f"{PACKAGE}.{p.stem}" for p in PACKAGE_DIR.glob("*.py")} - {
        f"{PACKAGE}.__init__"}
    assert folders == set(LAYERS) - {FOUNDATION}, \
        "each folder of crop_weed_seg needs its row in LAYERS (test/test_layers.py)"
    assert top_modules == FOUNDATION_MODULES - {PACKAGE}, \
        "a new top-level module is foundation (FOUNDATION_MODULES) or belongs in a folder"


def test_each_folder_imports_only_the_folders_it_may() -> None:
    imports = package_imports()
    assert len(imports) > 300 and any(i.importer == "crop_weed_seg.tools.cli" for i in imports)
    problems = layer_violations(imports)
    assert not problems, "imports against the layer table:\n" + "\n".join(problems)


def test_no_import_cycles_between_modules() -> None:
    cycles = import_cycles(package_imports())
    assert not cycles, "\n".join(cycles.values())


# --- 2. layers and cycles: the checker catches made-up violations -------------------------------

def test_the_checker_names_a_made_up_upward_import() -> None:
    source = ("import numpy\n"
              "from crop_weed_seg.errors import ConfigError\n"
              "from crop_weed_seg.model import preprocess\n\n"
              "def late():\n"
              "    from crop_weed_seg.perception import segmenter\n"
              "    import crop_weed_seg.ros.segmenter_node\n")
    known = {"crop_weed_seg.model.preprocess", "crop_weed_seg.perception.segmenter"}
    imports = imports_in_source(source, "crop_weed_seg.model.contract",
                                "crop_weed_seg/model/contract.py", False, known)
    assert [(i.imported, i.line) for i in imports] == [
        ("crop_weed_seg.errors", 2), ("crop_weed_seg.model.preprocess", 3),
        ("crop_weed_seg.perception.segmenter", 6), ("crop_weed_seg.ros.segmenter_node", 7)]
    assert layer_violations(imports) == [
        "crop_weed_seg/model/contract.py:6: crop_weed_seg.model.contract imports "
        "crop_weed_seg.perception.segmenter: model may import only foundation",
        "crop_weed_seg/model/contract.py:7: crop_weed_seg.model.contract imports "
        "crop_weed_seg.ros.segmenter_node: model may import only foundation"]
    fake = [Import("crop_weed_seg.perception.segmenter", "crop_weed_seg.training.trainer",
                   "crop_weed_seg/perception/segmenter.py", 9),
            Import("crop_weed_seg.ros.segmenter_node", "crop_weed_seg.tools.cli",
                   "crop_weed_seg/ros/segmenter_node.py", 3),
            Import("crop_weed_seg.tools.cli", "crop_weed_seg.ros.segmenter_node",
                   "crop_weed_seg/tools/cli.py", 5),
            Import("crop_weed_seg.newfolder.x", "crop_weed_seg.model.contract", "x.py", 1)]
    problems = layer_violations(fake)
    assert len(problems) == 3
    assert problems[0].startswith("crop_weed_seg/perception/segmenter.py:9: "
                                  "crop_weed_seg.perception.segmenter imports "
                                  "crop_weed_seg.training.trainer: perception may import only "
                                  "foundation, backends, model, spray")
    assert "segmenter_node imports crop_weed_seg.tools.cli: ros may import" in problems[1]
    assert "folder 'newfolder' is not in the layer table" in problems[2]


def test_the_checker_resolves_relative_imports() -> None:
    known = {"crop_weed_seg.data.sample", "crop_weed_seg.errors"}
    imports = imports_in_source("from .sample import Sample\nfrom .. import errors\n",
                                "crop_weed_seg.data.cvat", "cvat.py", False, known)
    assert [i.imported for i in imports] == ["crop_weed_seg.data.sample", "crop_weed_seg.errors"]
    imports = imports_in_source("from . import sample\n", "crop_weed_seg.data", "__init__.py",
                                True, known)
    assert [i.imported for i in imports] == ["crop_weed_seg.data.sample"]


def test_the_checker_finds_a_made_up_cycle_and_names_its_imports() -> None:
    fake = [Import("p.a", "p.b", "p/a.py", 3), Import("p.b", "p.c", "p/b.py", 4),
            Import("p.c", "p.a", "p/c.py", 50), Import("p.c", "p.d", "p/c.py", 6),
            Import("p.d", "p.d", "p/d.py", 7), Import("p.e", "p.a", "p/e.py", 8)]
    cycles = import_cycles(fake)
    assert set(cycles) == {frozenset({"p.a", "p.b", "p.c"}), frozenset({"p.d"})}
    assert cycles[frozenset({"p.a", "p.b", "p.c"})] == (
        "import cycle p.a -> p.b -> p.c -> p.a (p/a.py:3: p.a imports p.b; "
        "p/b.py:4: p.b imports p.c; p/c.py:50: p.c imports p.a)")
    assert import_cycles(fake[:2] + fake[3:]) == {
        frozenset({"p.d"}): "import cycle p.d -> p.d (p/d.py:7: p.d imports p.d)"}


def test_the_table_check_finds_a_made_up_cycle() -> None:
    bad = dict(LAYERS, model=frozenset({"perception"}))
    assert table_cycles(bad) == [["backends", "model", "nn", "perception", "spray"]]
