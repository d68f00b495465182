"""``spray_targets`` (sensor_msgs/PointCloud2) and ``spray_markers`` (MarkerArray) from target
records, and back: the consumer helper that reads a cloud into typed records by field name.

The point layout is :data:`crop_weed_seg.spray.records.POINT_FIELDS` (DESIGN.md §4).
"""

from __future__ import annotations

import array
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from crop_weed_seg.classes import PALETTE_RGB
from crop_weed_seg.errors import InvalidFrameError
from crop_weed_seg.spray.geometry import Boom
from crop_weed_seg.spray.records import (
    POINT_FIELDS,
    POINT_STEP,
    POINTFIELD_DATATYPES,
    POINTFIELD_NUMPY,
    records_from_bytes,
)

POINT_FIELD_MSGS = [PointField(name=name, offset=offset, datatype=POINTFIELD_DATATYPES[kind],
                               count=1)
                    for name, kind, offset, _ in POINT_FIELDS]


def _header(stamp: Any, frame_id: str) -> Header:
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = stamp.sec, stamp.nanosec
    return header


def cloud_from_records(records: np.ndarray, stamp: Any, frame_id: str) -> PointCloud2:
    """An unordered cloud (height 1) of the records; empty records give an empty cloud with
    the same fields."""
    msg = PointCloud2(header=_header(stamp, frame_id), height=1, width=int(len(records)),
                      fields=POINT_FIELD_MSGS, is_bigendian=False, point_step=POINT_STEP,
                      row_step=POINT_STEP * int(len(records)), is_dense=True)
    msg.data = array.array("B", records.tobytes())
    return msg


def records_from_cloud(msg: PointCloud2,
                       required: tuple[str, ...] = ("x", "y", "size_x", "size_y", "class_id",
                                                    "lane")) -> np.ndarray:
    """Typed target records from a ``spray_targets`` cloud, reading fields by name; fields the
    producer did not send keep their empty value. InvalidFrameError naming the problem when the
    cloud is unusable (big-endian, unknown datatypes, fields outside the point, wrong data length,
    a ``required`` field missing)."""
    if msg.is_bigendian:
        raise InvalidFrameError("big-endian spray_targets clouds are not supported")
    fields: dict[str, tuple[int, str]] = {}
    for f in msg.fields:
        kind = POINTFIELD_NUMPY.get(f.datatype)
        if kind is None:
            raise InvalidFrameError(f"field {f.name!r} has unknown datatype {f.datatype}")
        if f.offset + np.dtype(kind).itemsize > msg.point_step:
            raise InvalidFrameError(f"field {f.name!r} lies outside the {msg.point_step}-byte "
                                    "point")
        fields[f.name] = (f.offset, kind)
    missing = set(required) - set(fields)
    if missing:
        raise InvalidFrameError(f"cloud lacks the fields {', '.join(sorted(missing))}")
    points = msg.width * msg.height
    if len(msg.data) != points * msg.point_step:
        raise InvalidFrameError(f"cloud data of {len(msg.data)} bytes does not hold {points} "
                                f"points of {msg.point_step} bytes")
    if points == 0:
        return records_from_bytes(b"", max(msg.point_step, 1), fields)
    return records_from_bytes(memoryview(msg.data), msg.point_step, fields)


def markers_from_records(records: np.ndarray, boom: Boom | None, stamp: Any, frame_id: str,
                         lifetime_s: float = 0.5) -> MarkerArray:
    """One box per target (palette colour of its class, a bit above the ground) and the nozzle
    lane boundaries as lines; starts with DELETEALL so old targets vanish."""
    header = _header(stamp, frame_id)
    life = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1) * 1e9))
    markers = [Marker(header=header, ns="spray_targets", action=Marker.DELETEALL)]
    for i, rec in enumerate(records):
        if not np.isfinite(rec["x"]):
            continue
        rgb = PALETTE_RGB[int(rec["class_id"])] if rec["class_id"] < len(PALETTE_RGB) \
            else (255, 255, 255)
        m = Marker(header=header, ns="spray_targets", id=i, type=Marker.CUBE,
                   action=Marker.ADD, lifetime=life)
        m.pose.position.x, m.pose.position.y = float(rec["x"]), float(rec["y"])
        m.pose.position.z = 0.005
        m.pose.orientation.w = 1.0
        m.scale.x = max(float(rec["size_x"]), 0.005)
        m.scale.y = max(float(rec["size_y"]), 0.005)
        m.scale.z = 0.01
        m.color = ColorRGBA(r=rgb[0] / 255.0, g=rgb[1] / 255.0, b=rgb[2] / 255.0, a=0.8)
        markers.append(m)
    if boom is not None:
        lanes = Marker(header=header, ns="nozzle_lanes", id=0, type=Marker.LINE_LIST,
                       action=Marker.ADD, lifetime=life)
        lanes.pose.orientation.w = 1.0
        lanes.scale.x = 0.003
        lanes.color = ColorRGBA(r=0.2, g=0.6, b=1.0, a=0.8)
        for k in range(boom.nozzle_count + 1):
            y = boom.right_edge + k * boom.nozzle_spacing_m
            lanes.points += [Point(x=boom.nozzle_x, y=y, z=0.0),
                             Point(x=boom.nozzle_x + 1.0, y=y, z=0.0)]
        markers.append(lanes)
    return MarkerArray(markers=markers)
