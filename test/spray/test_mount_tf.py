"""The camera mount from a transform (``crop_weed_seg.spray.mount_tf``), without ROS: transform
<-> CameraMount round trips for many mounts, checked against ``CameraMount.rotation()`` and
against the REP 103 optical frame of a URDF camera; the refusals with their reasons; the boom
staying put; and the look-up policy of ``MountFromTransforms`` driven by a FAKE source."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.parameters import segmenter
from crop_weed_seg.spray.geometry import CameraMount
from crop_weed_seg.spray.mount_tf import (
    RECHECK_S,
    RETRY_S,
    MountFromTransforms,
    RigidTransform,
    TransformUnavailable,
    matrix_to_quaternion,
    mount_from_transform,
    mount_parameters,
    quaternion_to_matrix,
    same_mount,
    transform_from_mount,
    values_with_mount,
)
from crop_weed_seg.spray.pipeline import SpraySettings


def _mounts() -> list[CameraMount]:
    """The limits of every angle combined, and many random mounts."""
    out = [CameraMount(0.1, -0.2, 0.9, pitch_deg=p, roll_deg=r, yaw_deg=y)
           for p, r, y in itertools.product((-80.0, -30.0, 0.0, 45.0, 80.0),
                                            (-80.0, -5.0, 0.0, 12.0, 80.0),
                                            (-180.0, -90.0, 0.0, 37.0, 90.0, 180.0))]
    rng = np.random.default_rng(15)
    for _ in range(500):
        out.append(CameraMount(float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5)),
                               float(rng.uniform(0.05, 5.0)),
                               pitch_deg=float(rng.uniform(-80, 80)),
                               roll_deg=float(rng.uniform(-80, 80)),
                               yaw_deg=float(rng.uniform(-180, 180))))
    return out


def _same_rotation(q1: tuple[float, ...], q2: tuple[float, ...]) -> bool:
    """q and -q are one rotation (w is about 0 for a camera looking down)."""
    a, b = np.array(q1), np.array(q2)
    return bool(np.allclose(a, b, atol=1e-12) or np.allclose(a, -b, atol=1e-12))


def _angles_close(a: CameraMount, b: CameraMount, tol: float = 1e-9) -> bool:
    yaw = abs((a.yaw_deg - b.yaw_deg + 180.0) % 360.0 - 180.0)   # -180 and 180 are one yaw
    return abs(a.roll_deg - b.roll_deg) < tol and abs(a.pitch_deg - b.pitch_deg) < tol \
        and yaw < tol


def test_round_trips_for_many_mounts_and_the_matrix_is_the_mounts_rotation() -> None:
    for mount in _mounts():
        transform = transform_from_mount(mount)
        assert np.allclose(transform.matrix(), mount.rotation(), atol=1e-12), mount
        assert transform.translation == (mount.x, mount.y, mount.height)
        back = mount_from_transform(transform)
        assert (back.x, back.y, back.height) == (mount.x, mount.y, mount.height)
        assert _angles_close(back, mount), (mount, back)
        again = transform_from_mount(back)
        assert _same_rotation(again.rotation, transform.rotation), mount


def test_quaternions_round_trip_and_are_normalised() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        rot = quaternion_to_matrix(q)
        assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-12)
        assert math.isclose(np.linalg.det(rot), 1.0, abs_tol=1e-12)
        back = np.array(matrix_to_quaternion(rot))
        assert back[3] >= 0 and np.allclose(back, q * np.sign(q[3]), atol=1e-12)
        assert np.allclose(quaternion_to_matrix(3.0 * q), rot, atol=1e-12)   # not unit: scaled


def _rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF's rpy (fixed axes x, y, z, radians) as a matrix, from the elementary rotations."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch),
                              math.sin(pitch), math.cos(yaw), math.sin(yaw))
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


#: camera_link -> camera_optical_frame in every ROS camera description (REP 103: the optical
#: frame has z forward out of the lens, x right, y down; the body frame x forward, y left, z up).
OPTICAL = _rpy(-math.pi / 2, 0.0, -math.pi / 2)


def _urdf_camera(pitch_down_deg: float, yaw_deg: float = 0.0,
                 xyz: tuple[float, float, float] = (0.9, 0.3, 0.85)) -> RigidTransform:
    """The transform base_link -> camera_optical_frame of a URDF whose camera_link (body frame,
    x along the lens) is pitched down by ``pitch_down_deg`` and yawed by ``yaw_deg``."""
    body = _rpy(0.0, math.radians(pitch_down_deg), math.radians(yaw_deg))
    return RigidTransform(xyz, matrix_to_quaternion(body @ OPTICAL))


def test_a_urdf_camera_looking_straight_down_is_the_reference_mount() -> None:
    """A body frame pitched down 90° with the standard optical child frame is the mount with
    all angles 0 (image top forward, image right to the robot's right); pitched down 78°
    it is tilted 12° forward; yawed, it is yawed the same way."""
    mount = mount_from_transform(_urdf_camera(90.0))
    assert same_mount(mount, CameraMount(0.9, 0.3, 0.85))
    assert np.allclose(mount.rotation(), CameraMount().rotation(), atol=1e-12)
    tilted = mount_from_transform(_urdf_camera(78.0, 30.0))
    assert math.isclose(tilted.pitch_deg, 12.0, abs_tol=1e-9)
    assert math.isclose(tilted.yaw_deg, 30.0, abs_tol=1e-9)
    assert math.isclose(tilted.roll_deg, 0.0, abs_tol=1e-9)


def test_a_static_transform_publisher_quaternion_by_hand() -> None:
    """The reference camera is a half turn about (1, -1, 0)/√2: quaternion (√½, -√½, 0, 0), as
    one would give it to static_transform_publisher."""
    h = math.sqrt(0.5)
    mount = mount_from_transform(RigidTransform((0.2, 0.0, 1.0), (h, -h, 0.0, 0.0)))
    assert same_mount(mount, CameraMount(0.2, 0.0, 1.0))
    assert _same_rotation(matrix_to_quaternion(CameraMount().rotation()), (h, -h, 0.0, 0.0))


def test_refusals_name_the_frames_and_the_reason() -> None:
    body = _rpy(0.0, math.radians(90.0), 0.0)       # the body frame, not the optical one
    with pytest.raises(ConfigError, match=r"base_link -> cam_link.*optical frame"):
        mount_from_transform(RigidTransform((0, 0, 1), matrix_to_quaternion(body)),
                             "base_link", "cam_link")
    up = RigidTransform((0, 0, 1), (0.0, 0.0, 0.0, 1.0))   # identity: the lens looks up
    with pytest.raises(ConfigError, match="not below the horizon"):
        mount_from_transform(up, "base_link", "cam")
    with pytest.raises(ConfigError, match="ground at z = 0"):
        mount_from_transform(RigidTransform((0.0, 0.0, -0.1),
                                            transform_from_mount(CameraMount()).rotation),
                             "base_link", "cam")
    with pytest.raises(ConfigError, match="not finite"):
        mount_from_transform(RigidTransform((math.nan, 0, 1), (1, 0, 0, 0)))
    with pytest.raises(ConfigError, match="not a rotation"):
        mount_from_transform(RigidTransform((0, 0, 1), (0, 0, 0, 0)))
    # roll 85° is beyond the mount's range though still below the horizon
    rolled = RigidTransform((0, 0, 1), matrix_to_quaternion(_rpy(math.radians(85), 0, 0)
                                                            @ CameraMount().rotation()))
    with pytest.raises(ConfigError, match=r"roll 85\.00 deg is outside"):
        mount_from_transform(rolled, "base_link", "cam")


def test_from_a_transform_stamped_message() -> None:
    stamped = SimpleNamespace(transform=SimpleNamespace(
        translation=SimpleNamespace(x=1.0, y=2.0, z=3.0),
        rotation=SimpleNamespace(x=0.5, y=-0.5, z=0.5, w=0.5)))
    t = RigidTransform.from_msg(stamped)
    assert t == RigidTransform((1.0, 2.0, 3.0), (0.5, -0.5, 0.5, 0.5))
    assert RigidTransform.from_msg(stamped.transform) == t
    msgs = pytest.importorskip("geometry_msgs.msg")     # the real message where it exists
    real = msgs.TransformStamped()
    real.transform.translation.x, real.transform.translation.z = 0.9, 0.8
    real.transform.rotation.x, real.transform.rotation.y = math.sqrt(0.5), -math.sqrt(0.5)
    real.transform.rotation.w = 0.0
    assert same_mount(mount_from_transform(RigidTransform.from_msg(real)),
                      CameraMount(0.9, 0.0, 0.8))


def test_the_mount_moves_the_projection_and_the_boom_stays() -> None:
    values = {p.name: p.default for p in segmenter.PARAMETERS}
    values.update(camera_x_m=0.9, nozzle_offset_m=1.3)
    mount = CameraMount(0.95, 0.1, 0.8, pitch_deg=10.0, roll_deg=-4.0, yaw_deg=20.0)
    moved = SpraySettings.from_values(values_with_mount(values, mount))
    assert moved.mount() == mount
    boom, before = moved.boom(), SpraySettings.from_values(values).boom()
    assert (boom.nozzle_count, boom.nozzle_spacing_m, boom.center_y) == \
        (before.nozzle_count, before.nozzle_spacing_m, before.center_y)
    assert math.isclose(boom.nozzle_x, before.nozzle_x, abs_tol=1e-12)   # 0.9 - 1.3 still
    assert mount_parameters(mount)["camera_yaw_deg"] == 20.0
    assert values["camera_x_m"] == 0.9          # the parameter values are not changed


class FakeSource:
    """FAKE TransformSource (tf2_ros is not installable here): answers with ``transform`` or
    raises TransformUnavailable while it is None; records every lookup."""

    def __init__(self, transform: RigidTransform | None = None) -> None:
        self.transform = transform
        self.calls: list[tuple[str, str, float | None]] = []

    def lookup(self, target_frame: str, camera_frame: str,
               stamp_s: float | None) -> RigidTransform:
        self.calls.append((target_frame, camera_frame, stamp_s))
        if self.transform is None:
            raise TransformUnavailable(f"{target_frame} -> {camera_frame} not published yet")
        return self.transform


MOUNT_A = CameraMount(0.9, 0.3, 0.85, pitch_deg=12.0, roll_deg=6.0, yaw_deg=2.0)
MOUNT_B = CameraMount(0.9, 0.3, 0.85, pitch_deg=12.0, roll_deg=6.0, yaw_deg=2.5)


def test_looked_up_until_found_then_rechecked_slowly() -> None:
    source = FakeSource()
    tf = MountFromTransforms(source, "base_link")
    assert not tf.poll(0.0) and source.calls == [] and "frame_id" in tf.problem
    assert not tf.poll(0.0, "cam_opt")
    assert source.calls == [("base_link", "cam_opt", None)] and tf.mount is None
    assert "not published yet" in tf.problem
    assert not tf.poll(RETRY_S * 0.9, "cam_opt") and len(source.calls) == 1    # not yet due
    source.transform = transform_from_mount(MOUNT_A)
    assert tf.poll(RETRY_S, "cam_opt") and same_mount(tf.mount, MOUNT_A) and tf.problem == ""
    found = tf.mount
    assert not tf.poll(RETRY_S + RECHECK_S * 0.9, "cam_opt") and len(source.calls) == 2
    assert not tf.poll(RETRY_S + RECHECK_S, "cam_opt") and tf.mount is found    # unchanged
    assert len(source.calls) == 3
    source.transform = transform_from_mount(MOUNT_B)
    assert tf.poll(RETRY_S + 2 * RECHECK_S, "cam_opt") and same_mount(tf.mount, MOUNT_B)
    # TF gone (a publisher died): the last mount is kept, the problem said
    source.transform = None
    assert not tf.poll(RETRY_S + 3 * RECHECK_S, "cam_opt") and same_mount(tf.mount, MOUNT_B)
    assert "last mount found is kept" in tf.problem
    snap = tf.snapshot()
    assert snap["mount_source"] == "tf" and snap["tf_frames"] == "base_link -> cam_opt"
    assert (snap["tf_lookups"], snap["tf_lookup_failures"], snap["tf_mount_changes"]) == \
        (5, 2, 2)
    assert snap["mount"].startswith("x=0.900 y=0.300 height=0.850 m, roll=6.00 pitch=12.00")


def test_an_unusable_transform_drops_the_mount() -> None:
    source = FakeSource(transform_from_mount(MOUNT_A))
    tf = MountFromTransforms(source, "base_link", "cam_opt")
    assert tf.poll(0.0, "ignored_hint") and source.calls[-1][1] == "cam_opt"  # the parameter
    source.transform = RigidTransform((0.9, 0.3, 0.85), (0.0, 0.0, 0.0, 1.0))  # looks up
    assert tf.poll(RECHECK_S) and tf.mount is None and "optical" in tf.problem
    assert not tf.poll(RECHECK_S + RETRY_S * 0.5)
    source.transform = transform_from_mount(MOUNT_A)
    assert tf.poll(RECHECK_S + RETRY_S) and same_mount(tf.mount, MOUNT_A)     # retried soon


def test_a_new_camera_frame_is_looked_up_at_once() -> None:
    source = FakeSource(transform_from_mount(MOUNT_A))
    tf = MountFromTransforms(source, "odom_ground")
    assert tf.poll(0.0, "cam_a")
    assert not tf.poll(0.1, "cam_b") and [c[1] for c in source.calls] == ["cam_a", "cam_b"]
    assert tf.frame == "cam_b"
