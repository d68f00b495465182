"""The 6-DoF camera mount (``crop_weed_seg.spray.geometry.CameraMount``): roll, pitch and yaw of
the straight-down reference camera, checked by hand and against an independent rotation-matrix
composition; roll = yaw = 0 is bit for bit the pitch-only mount it always was."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.parameters import planner, segmenter
from crop_weed_seg.spray.geometry import CameraIntrinsics, CameraMount, GroundProjector
from crop_weed_seg.spray.pipeline import SpraySettings

# f = 800 px, principal point at the image centre: at 0.8 m height 1 mm per pixel at nadir.
CAM = CameraIntrinsics(640, 480, 800.0, 800.0, 319.5, 239.5)
CENTRE = np.array([[319.5, 239.5]])
RIGHT = np.array([[419.5, 239.5]])   # 100 px right of the centre
UP = np.array([[319.5, 139.5]])      # 100 px above the centre


def _legacy_rotation(pitch_deg: float) -> np.ndarray:
    """The pitch-only matrix as geometry.py computed it before roll and yaw existed."""
    t = math.radians(pitch_deg)
    return np.array([(0.0, -1.0, 0.0), (-math.cos(t), 0.0, -math.sin(t)),
                     (math.sin(t), 0.0, -math.cos(t))], np.float64).T


def _independent_rotation(roll_deg: float, pitch_deg: float, yaw_deg: float) -> np.ndarray:
    """Rz(yaw) · Ry(−pitch) · Rx(roll) · R0 from the textbook elementary rotations (right-handed
    about target_frame x, y, z); R0: the straight-down camera's optical axes as columns."""
    r, p, y = (math.radians(a) for a in (roll_deg, pitch_deg, yaw_deg))
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(-p), 0, math.sin(-p)], [0, 1, 0], [-math.sin(-p), 0, math.cos(-p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    r0 = np.array([[0, -1, 0], [-1, 0, 0], [0, 0, -1]], np.float64).T  # columns x, y, z optical
    return rz @ ry @ rx @ r0


def _independent_ground(mount: CameraMount, uv: np.ndarray) -> np.ndarray:
    """Ground point of undistorted pixels: the ray K⁻¹[u, v, 1] turned by the independent
    rotation, cut with z = 0."""
    rot = _independent_rotation(mount.roll_deg, mount.pitch_deg, mount.yaw_deg)
    rays = np.column_stack(((uv[:, 0] - CAM.cx) / CAM.fx, (uv[:, 1] - CAM.cy) / CAM.fy,
                            np.ones(len(uv)))) @ rot.T
    with np.errstate(divide="ignore"):
        t = np.where(rays[:, 2] < 0, mount.height / -rays[:, 2], np.nan)   # NaN: sky
    return np.array([mount.x, mount.y]) + t[:, None] * rays[:, :2]


def test_roll_and_yaw_zero_is_the_pitch_only_mount_bit_for_bit() -> None:
    for pitch in (0.0, -0.0, 1e-9, 12.5, -33.0, 45.0, 79.999, -80.0, 80.0):
        got = CameraMount(0.1, -0.2, 0.9, pitch, 0.0, 0.0).rotation()
        assert got.tobytes() == _legacy_rotation(pitch).tobytes(), pitch   # signed zeros too
        assert CameraMount(0.1, -0.2, 0.9, pitch).rotation().tobytes() == got.tobytes()


def test_yawed_90_degrees_image_right_is_forward_and_image_top_is_left() -> None:
    proj = GroundProjector(CAM, CameraMount(height=0.8, yaw_deg=90.0))
    assert proj.pixels_to_ground(CENTRE)[0] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert proj.pixels_to_ground(RIGHT)[0] == pytest.approx([0.1, 0.0], abs=1e-12)
    assert proj.pixels_to_ground(UP)[0] == pytest.approx([0.0, 0.1], abs=1e-12)
    # turned the other way, image right is backwards and the image top is to the right
    back = GroundProjector(CAM, CameraMount(height=0.8, yaw_deg=-90.0))
    assert back.pixels_to_ground(RIGHT)[0] == pytest.approx([-0.1, 0.0], abs=1e-12)
    assert back.pixels_to_ground(UP)[0] == pytest.approx([0.0, -0.1], abs=1e-12)
    # upside down (yaw 180): image right is the robot's left, the image top is backwards
    flip = GroundProjector(CAM, CameraMount(height=0.8, yaw_deg=180.0))
    assert flip.pixels_to_ground(RIGHT)[0] == pytest.approx([0.0, 0.1], abs=1e-12)
    assert flip.pixels_to_ground(UP)[0] == pytest.approx([-0.1, 0.0], abs=1e-12)


def test_yaw_turns_a_pitched_camera_to_look_sideways() -> None:
    # pitched 30° "forward", then yawed -90°: it looks to the right, out of the robot's side
    h = 1.0
    proj = GroundProjector(CAM, CameraMount(x=0.3, y=-0.4, height=h, pitch_deg=30.0,
                                            yaw_deg=-90.0))
    assert proj.pixels_to_ground(CENTRE)[0] == pytest.approx(
        [0.3, -0.4 - h * math.tan(math.radians(30.0))])
    # the image top is further out to the right; image right is backwards
    up = proj.pixels_to_ground(UP)[0]
    assert up == pytest.approx([0.3, -0.4 - h * math.tan(math.radians(30.0) + math.atan(0.125))])
    assert proj.pixels_to_ground(RIGHT)[0][0] < 0.3


def test_rolled_camera_at_nadir_by_hand() -> None:
    h, roll = 1.0, 30.0
    r = math.radians(roll)
    proj = GroundProjector(CAM, CameraMount(x=0.2, y=0.1, height=h, roll_deg=roll))
    # positive roll tilts the optical axis to the left (+y)
    assert proj.pixels_to_ground(CENTRE)[0] == pytest.approx([0.2, 0.1 + h * math.tan(r)])
    # image right still points to the robot's right, now at 30° - atan(100/800) off vertical
    assert proj.pixels_to_ground(RIGHT)[0] == pytest.approx(
        [0.2, 0.1 + h * math.tan(r - math.atan(0.125))])
    # the image top is still forward: the ray (0, -0.125, 1) meets the ground 0.125 h / cos r
    # ahead, at the same lateral offset as the centre
    assert proj.pixels_to_ground(UP)[0] == pytest.approx(
        [0.2 + 0.125 * h / math.cos(r), 0.1 + h * math.tan(r)])
    # rolled to the right by the same angle: the mirror image
    mirror = GroundProjector(CAM, CameraMount(x=0.2, y=0.1, height=h, roll_deg=-roll))
    assert mirror.pixels_to_ground(CENTRE)[0] == pytest.approx([0.2, 0.1 - h * math.tan(r)])


@pytest.mark.parametrize("roll, pitch, yaw", [
    (10.0, 20.0, 30.0), (-25.0, 15.0, 170.0), (40.0, -35.0, -120.0), (-70.0, 60.0, 45.0),
    (5.0, 0.0, 0.0), (0.0, 0.0, 33.0), (12.0, -8.0, -180.0)])
def test_roll_pitch_yaw_composed_against_independent_matrices(roll: float, pitch: float,
                                                              yaw: float) -> None:
    mount = CameraMount(x=0.15, y=-0.05, height=1.1, pitch_deg=pitch, roll_deg=roll,
                        yaw_deg=yaw)
    rot = mount.rotation()
    assert rot == pytest.approx(_independent_rotation(roll, pitch, yaw), abs=1e-12)
    assert rot.T @ rot == pytest.approx(np.eye(3), abs=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    proj = GroundProjector(CAM, mount)
    uv = np.array([[319.5, 239.5], [0.0, 0.0], [639.0, 479.0], [100.0, 400.0], [600.0, 50.0]])
    got = proj.pixels_to_ground(uv)
    want = _independent_ground(mount, uv)
    seen = np.isfinite(got[:, 0])
    assert np.array_equal(seen, np.isfinite(want[:, 0]))   # the same pixels see the sky
    assert seen[0]                                     # the optical axis always meets the ground
    assert got[seen] == pytest.approx(want[seen], abs=1e-9)
    assert proj.ground_to_pixels(got[seen]) == pytest.approx(uv[seen], abs=1e-6)


@pytest.mark.parametrize("roll, pitch, yaw", [
    (0.0, 0.0, 0.0), (0.0, 30.0, 0.0), (20.0, 0.0, 0.0), (15.0, 25.0, 60.0),
    (-30.0, -10.0, -150.0), (80.0, 80.0, 90.0)])
def test_image_centre_lands_where_the_optical_axis_meets_the_ground(roll: float, pitch: float,
                                                                   yaw: float) -> None:
    x, y, h = 0.4, -0.3, 0.9
    mount = CameraMount(x, y, h, pitch, roll, yaw)
    r, p, w = (math.radians(a) for a in (roll, pitch, yaw))
    # the optical axis before the yaw is (tan p, tan r / cos p) h from the foot of the camera
    ax, ay = h * math.tan(p), h * math.tan(r) / math.cos(p)
    expect = [x + ax * math.cos(w) - ay * math.sin(w), y + ax * math.sin(w) + ay * math.cos(w)]
    proj = GroundProjector(CAM, mount)
    assert proj.pixels_to_ground(CENTRE)[0] == pytest.approx(expect, abs=1e-9)
    # and the same from the matrix: position + (h / -z) * optical z axis
    z_opt = mount.rotation()[:, 2]
    assert proj.pixels_to_ground(CENTRE)[0] == pytest.approx(
        [x + h / -z_opt[2] * z_opt[0], y + h / -z_opt[2] * z_opt[1]], abs=1e-9)
    assert proj.ground_to_pixels(np.array([expect]))[0] == pytest.approx(CENTRE[0], abs=1e-6)


def test_mount_angles_out_of_range_are_refused() -> None:
    for kwargs, match in (({"roll_deg": 80.5}, "roll"), ({"roll_deg": math.nan}, "roll"),
                          ({"yaw_deg": -180.5}, "yaw"), ({"yaw_deg": math.inf}, "yaw")):
        with pytest.raises(ConfigError, match=match):
            CameraMount(**kwargs)
    CameraMount(roll_deg=-80.0, yaw_deg=180.0)


def test_roll_and_yaw_parameters_reach_the_mount() -> None:
    for name, low, high in (("camera_roll_deg", -80.0, 80.0),
                            ("camera_yaw_deg", -180.0, 180.0)):
        spec = segmenter.BY_NAME[name]
        assert (spec.default, spec.low, spec.high, spec.shared) == (0.0, low, high, False)
        assert name not in planner.BY_NAME   # the planner needs only camera_x_m
        assert segmenter.validate(name, high + 1.0) is not None
    settings = SpraySettings.from_values({"camera_roll_deg": 7.0, "camera_yaw_deg": -95.0,
                                          "camera_pitch_deg": 12.0, "camera_height_m": 1.2})
    assert settings.mount() == CameraMount(0.0, 0.0, 1.2, 12.0, 7.0, -95.0)
    assert SpraySettings().mount() == CameraMount()
