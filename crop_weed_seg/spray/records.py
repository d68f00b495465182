"""The ``spray_targets`` point layout (DESIGN.md §4) as one constant, and typed records.

A target is one row of :data:`TARGET_DTYPE`, a little-endian numpy structured dtype whose byte
layout *is* the PointCloud2 point layout (point_step 48, height 1, is_dense true). The ROS layer
builds ``PointField`` entries from :data:`POINT_FIELDS` and copies ``records.tobytes()`` into the
cloud; consumers read fields by name (:func:`records_from_bytes`).

Coordinates: ``target_frame`` (default ``base_link``) with x forward (direction of travel), y to
the left, z up, the ground plane at z = 0.
"""

from __future__ import annotations

import numpy as np

from crop_weed_seg.errors import InvalidFrameError

#: (name, numpy type, offset, meaning) — the contract of DESIGN.md §4.
POINT_FIELDS: tuple[tuple[str, str, int, str], ...] = (
    ("x", "<f4", 0, "target centroid in target_frame [m]"),
    ("y", "<f4", 4, "target centroid in target_frame [m]"),
    ("z", "<f4", 8, "0 on the ground plane [m]"),
    ("size_x", "<f4", 12, "along-track extent [m]"),
    ("size_y", "<f4", 16, "across-track extent [m]"),
    ("area", "<f4", 20, "weed area [m^2]"),
    ("confidence", "<f4", 24, "mean weed probability over the blob"),
    ("u", "<f4", 28, "centroid column in image pixels (camera resolution)"),
    ("v", "<f4", 32, "centroid row in image pixels (camera resolution)"),
    ("class_id", "<u2", 36, "label index (model.yaml)"),
    ("lane", "<i2", 38, "nozzle index, -1 outside the boom"),
    ("track_id", "<u4", 40, "stable id across frames, 0 when untracked"),
    ("time_to_nozzle", "<f4", 44, "s from the image stamp until the centroid reaches the "
                                  "nozzle line; NaN when speed is unknown"),
)
POINT_STEP = 48

#: numpy type string -> ``sensor_msgs/PointField`` datatype (INT8 = 1 … FLOAT64 = 8): the one
#: definition for the ROS layer's clouds and the bag writer's, which must not import ROS.
POINTFIELD_DATATYPES: dict[str, int] = {"<i1": 1, "|i1": 1, "<u1": 2, "|u1": 2, "<i2": 3,
                                        "<u2": 4, "<i4": 5, "<u4": 6, "<f4": 7, "<f8": 8}
#: ``sensor_msgs/PointField`` datatype -> numpy type string (little-endian)
POINTFIELD_NUMPY: dict[int, str] = {1: "<i1", 2: "<u1", 3: "<i2", 4: "<u2", 5: "<i4", 6: "<u4",
                                    7: "<f4", 8: "<f8"}

TARGET_DTYPE = np.dtype({"names": [f[0] for f in POINT_FIELDS],
                         "formats": [f[1] for f in POINT_FIELDS],
                         "offsets": [f[2] for f in POINT_FIELDS],
                         "itemsize": POINT_STEP})


def empty_targets(n: int = 0) -> np.ndarray:
    """``n`` zeroed target records (lane -1, time_to_nozzle NaN)."""
    records = np.zeros(n, TARGET_DTYPE)
    records["lane"] = -1
    records["time_to_nozzle"] = np.nan
    return records


def records_from_bytes(data: bytes | bytearray | memoryview, point_step: int = POINT_STEP,
                       fields: dict[str, tuple[int, str]] | None = None) -> np.ndarray:
    """Targets from a cloud's ``data``. ``fields`` maps name -> (offset, numpy type) as the
    sender declared them (default: our layout), so a consumer reads fields by name even if a
    producer laid them out differently; missing fields keep their empty value."""
    raw = np.frombuffer(bytes(data), np.uint8)
    if point_step <= 0 or raw.size % point_step:
        raise InvalidFrameError(f"cloud data of {raw.size} bytes is not a whole number of "
                         f"{point_step}-byte points")
    n = raw.size // point_step
    if fields is None and point_step == POINT_STEP:
        return np.frombuffer(raw.tobytes(), TARGET_DTYPE).copy()
    layout = fields or {name: (offset, kind) for name, kind, offset, _ in POINT_FIELDS}
    src = raw.reshape(n, point_step)
    out = empty_targets(n)
    known = TARGET_DTYPE.names or ()
    for name, (offset, kind) in layout.items():
        if name not in known:
            continue
        width = np.dtype(kind).itemsize
        column = src[:, offset:offset + width].copy().view(kind).reshape(n)
        out[name] = column.astype(TARGET_DTYPE[name])
    return out
