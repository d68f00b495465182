"""Every rclpy name the package uses exists in Humble's rclpy, the oldest distribution we claim.

The API lists in ``test/fixtures/ros/`` were extracted from rclpy's own source (humble and jazzy
branches; provenance in their first lines). The check reads our code with ``ast`` (no ROS
needed) and looks at:

1. imports from rclpy (``from rclpy.x import Name``, ``import rclpy.x``): the name must exist;
2. dotted uses ``rclpy.a.b(...)``: the name must exist where it is defined (names rclpy's
   ``__init__`` merely re-exports, such as ``rclpy.ok``, are not in the lists: use
   ``rclpy.utilities.ok``, which every distribution has);
3. methods of the rclpy objects we hold (nodes, executors, clocks, publishers, ...) that newer
   rclpy has and Humble lacks (the Jazzy list minus the Humble list, e.g.
   ``add_post_set_parameters_callback``): no attribute of that name may be used anywhere,
   unless our own code defines it;
4. in our ``Node`` subclasses, ``self.m(...)`` and ``super().__init__(...)`` keyword arguments
   must be parameters of Humble's ``rclpy.node.Node`` method.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from support import FIXTURES, REPO

API_DIR = FIXTURES / "ros"
CHECKED = [REPO / "crop_weed_seg", REPO / "scripts"]
NODE_BASES = {"Node", "ManagedNode"}


def load_api(path: Path) -> dict[str, tuple[str, ...] | None]:
    """Qualified name -> parameter names (None for names listed without a signature)."""
    api: dict[str, tuple[str, ...] | None] = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([\w.]+)\((.*)\)", line)
        if m:
            params = tuple(p.strip() for p in m.group(2).split(",") if p.strip())
            api[m.group(1)] = params
        else:
            api[line.strip()] = None
    return api


HUMBLE = load_api(API_DIR / "rclpy-humble-api.txt")
JAZZY = load_api(API_DIR / "rclpy-jazzy-api.txt")


def exists(name: str, api: dict[str, tuple[str, ...] | None]) -> bool:
    """A listed name, or a module/class prefix of listed names."""
    return name in api or any(k.startswith(name + ".") for k in api)


#: The rclpy modules whose objects our code holds (nodes, executors, clocks, publishers...):
#: their methods that Jazzy has and Humble lacks must not be called.
HELD_MODULES = ("rclpy.node.", "rclpy.executors.", "rclpy.context.", "rclpy.clock.",
                "rclpy.time.", "rclpy.publisher.", "rclpy.subscription.", "rclpy.timer.",
                "rclpy.parameter.", "rclpy.qos.", "rclpy.client.", "rclpy.service.",
                "rclpy.signals.", "rclpy.impl.rcutils_logger.", "rclpy.duration.")


def method_names(api: dict[str, tuple[str, ...] | None]) -> set[str]:
    return {k.rsplit(".", 1)[1] for k in api if k.startswith(HELD_MODULES) and k.count(".") >= 3}


NEWER_ONLY = method_names(JAZZY) - method_names(HUMBLE)


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def problems_in(source: str, where: str, own_defs: set[str]) -> list[str]:
    """What in ``source`` Humble's rclpy does not have."""
    tree = ast.parse(source)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split(".")[0] == "rclpy":
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                if not exists(name, HUMBLE):
                    found.append(f"{where}:{node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "rclpy" and not exists(alias.name, HUMBLE):
                    found.append(f"{where}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted and dotted.startswith("rclpy.") and not exists(dotted, HUMBLE):
                found.append(f"{where}:{node.lineno}: {dotted}")
            if node.attr in NEWER_ONLY and node.attr not in own_defs:
                found.append(f"{where}:{node.lineno}: .{node.attr} (not in Humble's rclpy)")
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        if not any(isinstance(b, ast.Name) and b.id in NODE_BASES for b in cls.bases):
            continue
        for call in (n for n in ast.walk(cls) if isinstance(n, ast.Call)):
            func = call.func
            if not isinstance(func, ast.Attribute):
                continue
            owner = func.value
            is_self = isinstance(owner, ast.Name) and owner.id == "self"
            is_super = isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) \
                and owner.func.id == "super"
            if not (is_self or is_super) or func.attr in own_defs and not is_super:
                continue
            params = HUMBLE.get(f"rclpy.node.Node.{func.attr}")
            if params is None:
                continue
            for kw in call.keywords:
                if kw.arg is not None and kw.arg not in params:
                    found.append(f"{where}:{call.lineno}: Node.{func.attr}({kw.arg}=...) "
                                 "(Humble's signature has no such parameter)")
    return found


def our_sources() -> list[Path]:
    return sorted(p for root in CHECKED for p in root.rglob("*.py"))


def own_definitions(paths: list[Path]) -> set[str]:
    names: set[str] = set()
    for p in paths:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
    return names


def test_api_lists_are_there_and_differ() -> None:
    assert "rclpy.node.Node.create_publisher" in HUMBLE
    assert "add_post_set_parameters_callback" in NEWER_ONLY
    assert "create_publisher" not in NEWER_ONLY


def test_the_package_uses_only_rclpy_names_humble_has() -> None:
    paths = our_sources()
    assert any(p.name == "segmenter_node.py" for p in paths)
    own = own_definitions(paths)
    found = [f for p in paths
             for f in problems_in(p.read_text(), str(p.relative_to(REPO)), own)]
    assert not found, "rclpy API missing on Humble:\n" + "\n".join(found)


def test_the_check_catches_what_humble_lacks() -> None:
    source = (
        "import rclpy\n"
        "from rclpy.node import Node\n"
        "from rclpy.made_up import Thing\n"
        "class N(Node):\n"
        "    def __init__(self):\n"
        "        super().__init__('n', no_such_option=True)\n"
        "        self.add_post_set_parameters_callback(self.cb)\n"
        "        self.create_publisher(int, 't', 10, made_up_kw=1)\n"
        "rclpy.made_up_function()\n"
    )
    found = problems_in(source, "made_up.py", own_definitions([]))
    text = "\n".join(found)
    assert "rclpy.made_up import Thing" in text
    assert "no_such_option" in text
    assert "add_post_set_parameters_callback" in text
    assert "made_up_kw" in text
    assert "rclpy.made_up_function" in text
    assert not problems_in("from rclpy.node import Node\nimport rclpy\nrclpy.init()\n",
                           "fine.py", set())
