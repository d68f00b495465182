"""The camera mount from a transform (TF), without ROS: the math between a rigid transform
(translation + quaternion) and :class:`~crop_weed_seg.spray.geometry.CameraMount`, the
:class:`TransformSource` interface the node looks transforms up through, and
:class:`MountFromTransforms`, which keeps the mount a source reports (parameter ``use_tf``).

Frames. The transform is the one ``tf2_ros.Buffer.lookup_transform(target_frame,
camera_frame, ...)`` returns: the pose of the camera's *optical* frame in ``target_frame``
(``header.frame_id`` = ``target_frame``, ``child_frame_id`` = the camera frame). Its translation
is the optical centre in ``target_frame`` (whose ground is the plane z = 0, so z is the
height); its rotation turns ``target_frame`` axes into the optical axes (REP 103 optical frame:
z forward out of the lens, x right, y down), i.e. its matrix has the optical x, y, z axes as
columns, exactly :meth:`CameraMount.rotation`. Quaternions are (x, y, z, w) as in
``geometry_msgs/Quaternion``.

Decomposition. ``CameraMount.rotation()`` is R = Rz(yaw) · Ry(−pitch) · Rx(roll) · R0 with R0
the straight-down reference camera, so M = R · R0ᵀ = Rz(yaw) · Ry(−pitch) · Rx(roll) and
pitch = asin(M[2, 0]), roll = atan2(M[2, 1], M[2, 2]), yaw = atan2(M[1, 0], M[0, 0]). With roll
and pitch within ±80° (the mount's ranges: the optical axis below the horizon) this is the one
decomposition; a transform outside them is refused with the reason (most often the camera's
body frame, x forward, given instead of its optical frame).

Lookups. The mount of a camera on a robot is static: :class:`MountFromTransforms` looks it up
every :data:`RETRY_S` until found, then re-checks every :data:`RECHECK_S`; a changed transform
(beyond :data:`POSITION_TOLERANCE_M` / :data:`ANGLE_TOLERANCE_DEG`) replaces the mount, a
lookup that fails keeps the last good one, and a transform that cannot be a camera mount drops
it (no ground positions rather than wrong ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from crop_weed_seg.errors import ConfigError, CropWeedSegError
from crop_weed_seg.spray.geometry import CameraMount

#: Until the transform is found, it is looked up this often [s].
RETRY_S = 0.5
#: Once found, it is looked up again this often [s] (a static mount; a recalibration shows).
RECHECK_S = 5.0
#: A transform that moves the optical centre less than this is the same mount [m].
POSITION_TOLERANCE_M = 1e-4
#: ... and turns it by less than this about every axis [deg].
ANGLE_TOLERANCE_DEG = 1e-3
#: TF's camera x further than this from camera_x_m (the nozzle line's reference) is warned [m].
CAMERA_X_WARN_M = 0.01
#: The parameters a mount stands for (camera_x_m places the boom too: :func:`values_with_mount`).
MOUNT_PARAMETERS = ("camera_x_m", "camera_y_m", "camera_height_m", "camera_roll_deg",
                    "camera_pitch_deg", "camera_yaw_deg")
#: The reference camera's optical axes as columns (all angles 0: straight down, image top +x).
R0 = CameraMount().rotation()
_MAX_TILT_DEG = 80.0


class TransformUnavailable(CropWeedSegError):
    """A transform source has no transform between the frames (yet); the message says why."""


@dataclass(frozen=True)
class RigidTransform:
    """A TransformStamped's transform: ``translation`` (x, y, z) [m] and ``rotation`` as a
    quaternion (x, y, z, w), the pose of the child frame in the parent frame."""

    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]

    @classmethod
    def from_msg(cls, transform: Any) -> "RigidTransform":
        """From a ``geometry_msgs/Transform`` (or a ``TransformStamped``: its ``transform``)."""
        t = getattr(transform, "transform", transform)
        return cls((float(t.translation.x), float(t.translation.y), float(t.translation.z)),
                   (float(t.rotation.x), float(t.rotation.y), float(t.rotation.z),
                    float(t.rotation.w)))

    def matrix(self) -> np.ndarray:
        """The rotation as a 3x3 matrix (columns: the child frame's axes in the parent)."""
        return quaternion_to_matrix(self.rotation)


class TransformSource(Protocol):
    """Where transforms come from: ``tf2_ros`` on a robot (:mod:`crop_weed_seg.ros.tf_mount`),
    a stand-in in tests."""

    def lookup(self, target_frame: str, camera_frame: str,
               stamp_s: float | None) -> RigidTransform:
        """The pose of ``camera_frame`` in ``target_frame`` at ``stamp_s`` (None: the latest
        available). Raises :class:`TransformUnavailable` when there is none."""
        ...


def quaternion_to_matrix(q: tuple[float, float, float, float] | np.ndarray) -> np.ndarray:
    """The rotation matrix of a quaternion (x, y, z, w), normalised first; ConfigError for a
    non-finite or zero quaternion."""
    x, y, z, w = (float(v) for v in q)
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(norm) or norm < 1e-9:
        raise ConfigError(f"quaternion {tuple(q)} is not a rotation (zero or not finite)")
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]], np.float64)


def matrix_to_quaternion(rot: np.ndarray) -> tuple[float, float, float, float]:
    """The unit quaternion (x, y, z, w), w >= 0, of a rotation matrix (Shepperd's method: the
    largest of w, x, y, z is computed first, so no division by a small number). ConfigError
    when ``rot`` is not a rotation. The one conversion of the package (field_sim's and the
    Gazebo world's transforms use it too)."""
    m = np.asarray(rot, np.float64)
    if m.shape != (3, 3) or not np.isfinite(m).all() or \
            not np.allclose(m.T @ m, np.eye(3), atol=1e-9) or np.linalg.det(m) <= 0:
        raise ConfigError(f"not a rotation matrix: {m.tolist()}")
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0.0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = (s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s)
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = ((m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = ((m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s)
    norm = math.sqrt(sum(float(v) ** 2 for v in q))
    sign = -1.0 if q[3] < 0 else 1.0
    x, y, z, w = (sign * float(v) / norm for v in q)
    return (x, y, z, w)


def transform_from_mount(mount: CameraMount) -> RigidTransform:
    """The transform from ``target_frame`` to the optical frame of a camera on ``mount`` (what
    a URDF or a static_transform_publisher of that mount would give)."""
    return RigidTransform((float(mount.x), float(mount.y), float(mount.height)),
                          matrix_to_quaternion(mount.rotation()))


def mount_from_transform(transform: RigidTransform, target_frame: str = "target_frame",
                         camera_frame: str = "the camera frame") -> CameraMount:
    """The :class:`CameraMount` of a camera whose optical frame has pose ``transform`` in
    ``target_frame``. ConfigError naming both frames when it cannot be one: not finite, the
    optical centre not above the ground (z = 0 of ``target_frame``), the optical axis not below
    the horizon, or roll or pitch outside ±80° (a body frame, x forward, instead of the
    optical frame, or a camera looking at the horizon)."""
    where = f"transform {target_frame} -> {camera_frame}"
    x, y, z = transform.translation
    if not all(math.isfinite(v) for v in (x, y, z)):
        raise ConfigError(f"{where}: translation {transform.translation} is not finite")
    try:
        rot = transform.matrix()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not z > 0.0:
        raise ConfigError(
            f"{where}: the camera is at z = {z:.3f} m, not above the ground; {target_frame} "
            "must have the ground at z = 0 (a footprint frame, e.g. base_footprint)")
    axis = rot[:, 2]
    if not axis[2] < -1e-6:
        raise ConfigError(
            f"{where}: the optical axis (z) points along {np.round(axis, 3).tolist()} in "
            f"{target_frame}, not below the horizon; is {camera_frame} the camera's optical frame "
            "(REP 103: z forward out of the lens, x right, y down; usually *_optical_frame)?")
    m = rot @ R0.T
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, float(m[2, 0])))))
    roll = math.degrees(math.atan2(float(m[2, 1]), float(m[2, 2])))
    yaw = math.degrees(math.atan2(float(m[1, 0]), float(m[0, 0])))
    for name, value in (("roll", roll), ("pitch", pitch)):
        if abs(value) > _MAX_TILT_DEG + 1e-6:     # rounding at the limit is no reason to refuse
            raise ConfigError(
                f"{where}: camera {name} {value:.2f} deg is outside ±{_MAX_TILT_DEG:g} deg (the "
                f"mount's range); is {camera_frame} the camera's optical frame (REP 103: z "
                "forward out of the lens, x right, y down)?")
    return CameraMount(x, y, z, pitch_deg=_clamp(pitch, _MAX_TILT_DEG),
                       roll_deg=_clamp(roll, _MAX_TILT_DEG), yaw_deg=_clamp(yaw, 180.0))


def _clamp(value: float, limit: float) -> float:
    return max(-limit, min(limit, value))


def mount_parameters(mount: CameraMount) -> dict[str, float]:
    """The node parameters (camera_x_m .. camera_yaw_deg) that describe ``mount``."""
    return {"camera_x_m": float(mount.x), "camera_y_m": float(mount.y),
            "camera_height_m": float(mount.height), "camera_roll_deg": float(mount.roll_deg),
            "camera_pitch_deg": float(mount.pitch_deg), "camera_yaw_deg": float(mount.yaw_deg)}


def values_with_mount(values: dict[str, Any], mount: CameraMount) -> dict[str, Any]:
    """Parameter values whose ground projection uses ``mount`` while the boom stays where the
    parameters put it. The nozzle line is at x = camera_x_m − nozzle_offset_m in both nodes
    (spray_planner has no TF), so with the camera's x taken from the mount, nozzle_offset_m is
    shifted by the same amount: the segmenter's nozzle line stays the planner's."""
    out = dict(values)
    out.update(mount_parameters(mount))
    if "camera_x_m" in values and "nozzle_offset_m" in values:
        out["nozzle_offset_m"] = float(values["nozzle_offset_m"]) + \
            float(mount.x) - float(values["camera_x_m"])
    return out


def same_mount(a: CameraMount | None, b: CameraMount | None) -> bool:
    """Whether two mounts differ by less than the tolerances (yaw compared round the circle)."""
    if a is None or b is None:
        return a is b
    if max(abs(a.x - b.x), abs(a.y - b.y), abs(a.height - b.height)) >= POSITION_TOLERANCE_M:
        return False
    yaw = abs((a.yaw_deg - b.yaw_deg + 180.0) % 360.0 - 180.0)
    return max(abs(a.roll_deg - b.roll_deg), abs(a.pitch_deg - b.pitch_deg), yaw) \
        < ANGLE_TOLERANCE_DEG


def describe(mount: CameraMount) -> str:
    """One line: position [m] and angles [deg]."""
    return (f"x={mount.x:.3f} y={mount.y:.3f} height={mount.height:.3f} m, "
            f"roll={mount.roll_deg:.2f} pitch={mount.pitch_deg:.2f} yaw={mount.yaw_deg:.2f} deg")


class MountFromTransforms:
    """The camera mount as a :class:`TransformSource` reports it (node parameter ``use_tf``).

    Call :meth:`poll` often (the node: every :data:`RETRY_S` on the steady clock); it looks up
    only when due (module docstring: until found every ``retry_s``, then every ``recheck_s``)
    and says whether :attr:`mount` changed. ``camera_frame`` empty: the frame given to
    :meth:`poll` (the frame_id of the camera's messages). Not thread-safe: one caller."""

    def __init__(self, source: TransformSource, target_frame: str, camera_frame: str = "",
                 retry_s: float = RETRY_S, recheck_s: float = RECHECK_S) -> None:
        self.source = source
        self.target_frame = target_frame
        self.camera_frame = camera_frame
        self.retry_s = retry_s
        self.recheck_s = recheck_s
        self.mount: CameraMount | None = None
        #: the frame of the last lookup ('' before the first)
        self.frame = ""
        #: why the mount is missing or may be out of date; '' when the last lookup gave it
        self.problem = "not looked up yet"
        self.lookups = 0
        self.failures = 0
        self.changes = 0
        self._next_s: float | None = None

    def poll(self, now_s: float, frame_hint: str = "") -> bool:
        """Look the transform up if due; True when :attr:`mount` changed (found, moved, or
        dropped because the transform cannot be a camera mount)."""
        frame = self.camera_frame or frame_hint
        if not frame:
            self.problem = ("waiting for the camera's frame_id (no image or camera_info yet; "
                            "or set camera_frame)")
            return False
        if self._next_s is not None and now_s < self._next_s and frame == self.frame:
            return False
        self.frame = frame
        self.lookups += 1
        before = self.mount
        try:
            transform = self.source.lookup(self.target_frame, frame, None)
            mount = mount_from_transform(transform, self.target_frame, frame)
        except TransformUnavailable as exc:
            self.failures += 1
            self.problem = str(exc) + (" (the last mount found is kept)" if self.mount else "")
        except ConfigError as exc:
            self.failures += 1
            self.problem = str(exc)
            self.mount = None
        else:
            self.problem = ""
            if not same_mount(mount, self.mount):
                self.mount = mount
        self._next_s = now_s + (self.recheck_s if self.mount is not None else self.retry_s)
        changed = not same_mount(before, self.mount)
        self.changes += int(changed)
        return changed

    def snapshot(self) -> dict[str, Any]:
        """Diagnostics values: frames, the mount in use, lookup counters, the problem."""
        return {"mount_source": "tf", "tf_frames": f"{self.target_frame} -> {self.frame or '?'}",
                "mount": describe(self.mount) if self.mount else "none",
                "tf_lookups": self.lookups, "tf_lookup_failures": self.failures,
                "tf_mount_changes": self.changes, "tf_problem": self.problem}
