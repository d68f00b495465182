"""The parameter machinery both nodes' tables use: :class:`ParamSpec` (one parameter: name,
default, description, range or choices, read-only flag), value validation and the YAML rendering
of a table.

Pure Python (no rclpy) so that the YAML and launch-file checks run without ROS. The ROS layer
(:mod:`crop_weed_seg.ros.parameters`) turns each :class:`ParamSpec` into a declared parameter
with a ``ParameterDescriptor`` and the nodes call their table's validation from the
set-parameters callback, so a rejected change always comes back with a reason.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterable, Union

import yaml

from crop_weed_seg.errors import ConfigError

Value = Union[bool, int, float, str, list]

#: The command that writes ``config/*.yaml`` from the tables.
GENERATOR = "python -m crop_weed_seg.parameters.config_files"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter. ``low``/``high`` bound numbers (inclusive); ``choices`` bound strings;
    ``non_empty`` strings must not be blank. ``read_only`` parameters are fixed at start-up
    (changing them needs a restart). ``shared``: the parameter of both nodes, defined once in
    :mod:`crop_weed_seg.parameters.shared`."""

    name: str
    default: Value
    description: str
    read_only: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    non_empty: bool = False
    shared: bool = False

    @property
    def kind(self) -> type:
        return type(self.default)

    @property
    def is_int_list(self) -> bool:
        return isinstance(self.default, list)

    def constraint_text(self) -> str:
        """What the descriptor's ``additional_constraints`` says."""
        if self.is_int_list:
            return f"integers, each {self.low} <= value <= {self.high}"
        if self.choices:
            return "one of: " + ", ".join(self.choices)
        if self.low is not None and self.high is not None:
            return f"{self.low} <= value <= {self.high}"
        if self.non_empty:
            return "not empty"
        return ""


def validate_named(table: Mapping[str, ParamSpec], name: str, value: Any) -> str | None:
    """None when ``value`` is acceptable for parameter ``name`` of ``table`` (or ``name`` is not
    in it: use_sim_time and other node-wide parameters), else the reason it is not."""
    spec = table.get(name)
    return None if spec is None else validate_value(spec, value)


def validate_value(spec: ParamSpec, value: Any) -> str | None:
    """None when ``value`` fits ``spec`` (type, choices, range, non-empty; integer lists:
    non-empty, each in range), else the reason it does not. rclpy hands integer arrays over as
    ``array``."""
    name = spec.name
    if spec.is_int_list:
        items = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "typecode") \
            else None
        if items is None or not items or \
                not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            return f"{name} must be a non-empty list of integers, got {value!r}"
        assert spec.low is not None and spec.high is not None
        bad = [v for v in items if not spec.low <= v <= spec.high]
        if bad:
            return f"{name} values {bad} are outside {spec.low:g}..{spec.high:g}"
        return None
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, spec.kind) or (spec.kind is not bool and isinstance(value, bool)):
        return f"{name} must be a {spec.kind.__name__}, got {type(value).__name__} {value!r}"
    checked: Any = value    # of the spec's own type: str, or a number with low/high
    if spec.choices and checked not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}; got {value!r}"
    if spec.non_empty and not checked.strip():
        return f"{name} must not be empty"
    if spec.low is not None and checked < spec.low:
        return f"{name} must be >= {spec.low}; got {value!r}"
    if spec.high is not None and checked > spec.high:
        return f"{name} must be <= {spec.high}; got {value!r}"
    return None


def by_name(parameters: Iterable[ParamSpec]) -> dict[str, ParamSpec]:
    """The table as a dict; ConfigError when a name appears twice."""
    table: dict[str, ParamSpec] = {}
    for spec in parameters:
        if spec.name in table:
            raise ConfigError(f"parameter {spec.name} is defined twice")
        table[spec.name] = spec
    return table


def problems(table: dict[str, ParamSpec], values: dict[str, Any]) -> list[str]:
    """The reason of every value in ``values`` that does not fit its parameter in ``table``
    (names not in the table are not ours: use_sim_time and other node-wide parameters)."""
    return [reason for name, value in values.items()
            if name in table and (reason := validate_value(table[name], value)) is not None]


def raise_problems(found: list[str]) -> None:
    """ConfigError naming every problem, if there is any."""
    if found:
        raise ConfigError("invalid parameters: " + "; ".join(found))


def render_yaml(node_name: str, executable: str, parameters: tuple[ParamSpec, ...]) -> str:
    """The parameter YAML of a node: every parameter with its default and description
    (``config/<node>.yaml``). Parameters both nodes share are marked [both nodes]."""
    lines = [
        f"# Parameters of the {node_name} node (executable {executable}) with their defaults.",
        f"# Generated by `{GENERATOR}` from",
        "# crop_weed_seg/parameters/ (see there); a test keeps this file and the node's table",
        "# equal. Start-up parameters (marked [restart]) are read once; the others can be",
        f"# changed at run time with `ros2 param set /{node_name} NAME VALUE` and are validated",
        "# (a rejection says why). [both nodes]: the same parameter, with the same meaning, of",
        "# crop_weed_seg and spray_planner (crop_weed_seg/parameters/shared.py).",
        f"/**/{node_name}:", "  ros__parameters:"]
    for p in parameters:
        note = (" [both nodes]" if p.shared else "") + (" [restart]" if p.read_only else "") + \
            (f" ({p.constraint_text()})" if p.constraint_text() else "")
        lines += ["    # " + line for line in textwrap.wrap(p.description + note, 92)]
        value = yaml.safe_dump(p.default, default_flow_style=True).splitlines()[0]
        if value == "''":
            value = '""'
        lines.append(f"    {p.name}: {value}")
    return "\n".join(lines) + "\n"
