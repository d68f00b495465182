"""The camera mount from TF (segmenter parameter ``use_tf``): a
:class:`~crop_weed_seg.spray.mount_tf.TransformSource` over ``tf2_ros``.

``tf2_ros`` comes with a system ROS 2 install (``ros-<distro>-tf2-ros``); it is not on PyPI, so
the pip-installed wheels have no TF. It is imported only when ``use_tf`` is true, and then a
missing ``tf2_ros`` is a start-up error that says so (:func:`tf2_source`): a node that would
spray with a mount nobody gave it must not start. The math (transform <-> mount) and the
look-up policy are ROS-free, in :mod:`crop_weed_seg.spray.mount_tf`.
"""

from __future__ import annotations

from typing import Any

from rclpy.time import Time

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.spray.mount_tf import RigidTransform, TransformSource, TransformUnavailable


def tf2_source(node: Any) -> TransformSource:
    """A source listening to ``/tf`` and ``/tf_static`` with ``node`` (its executor runs the
    subscriptions). ConfigError, naming the fix, when ``tf2_ros`` cannot be imported."""
    try:
        import tf2_ros  # type: ignore[import-not-found,unused-ignore]  # only with use_tf
    except ImportError as exc:
        raise ConfigError(
            f"use_tf is true but tf2_ros cannot be imported ({exc}); tf2_ros comes with a "
            "system ROS 2 install (apt install ros-$ROS_DISTRO-tf2-ros, then source it), not "
            "with the pip wheels. Either run with it, or set use_tf false and give the mount as "
            "camera_x_m, camera_y_m, camera_height_m, camera_roll_deg, camera_pitch_deg, "
            "camera_yaw_deg") from None
    return Tf2Source(tf2_ros, node)


class Tf2Source:
    """:class:`~crop_weed_seg.spray.mount_tf.TransformSource` over a ``tf2_ros.Buffer`` filled
    by a ``TransformListener`` on the node (no thread of its own)."""

    def __init__(self, tf2_ros: Any, node: Any) -> None:
        self._errors = (tf2_ros.TransformException,)
        self._buffer = tf2_ros.Buffer()
        self._listener = tf2_ros.TransformListener(self._buffer, node, spin_thread=False)

    def lookup(self, target_frame: str, camera_frame: str,
               stamp_s: float | None) -> RigidTransform:
        when = Time() if stamp_s is None else Time(nanoseconds=int(round(stamp_s * 1e9)))
        try:
            stamped = self._buffer.lookup_transform(target_frame, camera_frame, when)
        except self._errors as exc:
            raise TransformUnavailable(
                f"no transform {target_frame} -> {camera_frame} in TF: "
                f"{type(exc).__name__}: {exc}") from None
        return RigidTransform.from_msg(stamped)
