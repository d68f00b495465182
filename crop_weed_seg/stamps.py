"""Time stamps, converted one way everywhere: ROS ``builtin_interfaces/Time`` (``sec``,
``nanosec``) ↔ integer nanoseconds ↔ float seconds. Every output carries its input's stamp, so
every layer (nodes, bag processing, the simulator, the planner) uses these and nothing else."""

from __future__ import annotations

from typing import Any

NS_PER_S = 1_000_000_000


def split_ns(t_ns: int) -> tuple[int, int]:
    """(sec, nanosec) of a time in nanoseconds (nanosec in [0, 1e9), also before 1970)."""
    sec, nsec = divmod(int(t_ns), NS_PER_S)
    return sec, nsec


def stamp_seconds(stamp_ns: int) -> float:
    """A stamp in nanoseconds as seconds, the way every stamp of the chain is converted
    (``sec + nanosec · 1e-9``, as for odometry headers)."""
    sec, nsec = split_ns(stamp_ns)
    return sec + nsec * 1e-9


def header_stamp_ns(header: Any) -> int:
    """``header.stamp`` of a ROS message (rclpy's or rosbags') in nanoseconds."""
    return int(header.stamp.sec) * NS_PER_S + int(header.stamp.nanosec)
