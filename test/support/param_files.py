"""ROS 2 parameter files read as rclpy reads them, without ROS: which blocks of a file a node
takes and the values that result.

rclpy (``_populate_node_parameters_from_rcl_params`` in its C++ layer, the same rule as
rclcpp's ``parameter_map_from``) walks the file's node-name blocks in file order, gives each a
leading ``/``, turns ``/*`` into the regular expression ``(/\\w+)`` (so ``/**`` becomes
``(/\\w+)*``: any number of name tokens) and takes the block's ``ros__parameters`` when the
pattern matches the node's whole fully qualified name; a later block overrides an earlier one.
Nested mappings are parameter names joined with ``.``. A ROS test checks this reading against
rclpy itself (test/ros/test_example_rig_nodes.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


def load(path: Path) -> dict[str, Any]:
    """The file as a mapping of node-name pattern -> ``ros__parameters`` (flattened); a
    ValueError names a block that is not a parameter block."""
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a mapping of node names")
    blocks: dict[str, Any] = {}
    for pattern, block in doc.items():
        if not isinstance(block, dict) or set(block) != {"ros__parameters"} or \
                not isinstance(block["ros__parameters"], dict):
            raise ValueError(f"{path}: block {pattern!r} must hold exactly 'ros__parameters'")
        blocks[str(pattern)] = _flatten(block["ros__parameters"])
    return blocks


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def matches(pattern: str, node_fqn: str) -> bool:
    """Whether a block's node-name pattern applies to the node ``node_fqn`` (``/ns/name``)."""
    name = pattern if pattern.startswith("/") else "/" + pattern
    return re.fullmatch(name.replace("/*", r"(/\w+)"), node_fqn) is not None


def blocks_for(blocks: dict[str, Any], node_fqn: str) -> list[str]:
    """The patterns of the blocks ``node_fqn`` takes, in file order."""
    return [pattern for pattern in blocks if matches(pattern, node_fqn)]


def parameters_for(blocks: dict[str, Any], node_fqn: str) -> dict[str, Any]:
    """The values ``node_fqn`` gets from the file (later blocks win)."""
    values: dict[str, Any] = {}
    for pattern in blocks_for(blocks, node_fqn):
        values.update(blocks[pattern])
    return values
