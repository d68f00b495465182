"""ROS parameter plumbing shared by the nodes: a ``ParameterDescriptor`` from a
:class:`~crop_weed_seg.parameters.table.ParamSpec`, and diagnostics value formatting."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from crop_weed_seg.parameters.table import ParamSpec


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """Description, read-only flag, constraints text and (for numbers) the range rclpy
    enforces; integer lists are range-checked by the node's own validation."""
    desc = ParameterDescriptor(description=spec.description, read_only=spec.read_only,
                               additional_constraints=spec.constraint_text())
    if spec.low is not None and spec.high is not None and not spec.is_int_list:
        if spec.kind is int:
            desc.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high),
                                               step=1)]
        else:
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
    return desc


def format_value(value: Any) -> str:
    """A diagnostics ``KeyValue`` value: '' for None, 3 decimals for floats."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
