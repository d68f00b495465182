"""The field_sim stepper (crop_weed_seg/sim/live.py): what the node publishes at each sim time,
without ROS. Scripted frames are ``simulate``'s frames; odometry follows the drive; cmd_vel
integrates the commanded speed; the mount transform and CameraInfo numbers match the camera."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.sim.drive import drive_frames, frame_rng
from crop_weed_seg.sim.live import (
    ClockTick,
    Event,
    LiveDrive,
    LiveFrame,
    LiveSettings,
    OdomSample,
    camera_info_numbers,
    mount_transform,
    open_field,
    stamp_ns,
)
from crop_weed_seg.sim.scenario import BoomSpec, CameraSpec, Scenario, write_field_file
from crop_weed_seg.sim.world import FieldConfig, SimField
from crop_weed_seg.spray.geometry import CameraMount
from crop_weed_seg.spray.mount_tf import matrix_to_quaternion, quaternion_to_matrix

SMALL = Scenario(field=FieldConfig(length_m=3.0, width_m=0.6, gsd_mm=2.0), seed=5,
                 camera=CameraSpec(width=160, height=120, height_m=0.5),
                 boom=BoomSpec(nozzles=6, spacing_m=0.1))


@pytest.fixture(scope="module")
def fld() -> SimField:
    return SMALL.build_field()


def of_type(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def test_scripted_frames_are_simulates_frames(fld: SimField) -> None:
    live = LiveDrive(SMALL, fld, LiveSettings(start_delay_s=0.5))
    drive = SMALL.plan(fld)
    frames = of_type(list(live.advance(60.0)), LiveFrame)
    expected = list(drive_frames(fld, SMALL.build_camera(), drive, SMALL.seed))
    assert len(frames) == len(expected) == drive.frame_count == live.frame_count
    for got, want in zip(frames, expected):
        assert got.index == want.index
        assert got.stamp_ns == stamp_ns(0.5 + want.index / SMALL.frame_rate_hz)
        assert got.base_x == drive.start_x + want.travel_m
        assert np.array_equal(got.rgb, want.rgb) and np.array_equal(got.labels, want.labels)
    assert {1, 2} <= set(np.unique(np.concatenate([f.labels.ravel() for f in frames])))


def test_scripted_odometry_clock_and_order(fld: SimField) -> None:
    settings = LiveSettings(start_delay_s=1.0, clock_rate_hz=100.0, odom_rate_hz=50.0)
    live = LiveDrive(SMALL, fld, settings)
    drive = live.drive
    events = list(live.advance(2.0))
    clock = of_type(events, ClockTick)
    odom = of_type(events, OdomSample)
    assert [c.stamp_ns for c in clock] == [j * 10_000_000 for j in range(201)]
    assert [o.stamp_ns for o in odom] == [i * 20_000_000 for i in range(101)]
    for o in odom:  # at speed all along: x = start_x + speed · (t − T0), before T0 too
        t = o.stamp_ns * 1e-9
        assert o.x == pytest.approx(drive.start_x + SMALL.speed_mps * (t - 1.0), abs=1e-12)
        assert o.speed_mps == SMALL.speed_mps
    stamps = [e.stamp_ns for e in events]
    assert stamps == sorted(stamps)
    # at the first frame's instant: clock first, then odometry, then the frame
    first = next(i for i, e in enumerate(events) if isinstance(e, LiveFrame))
    assert [type(e) for e in events[first - 2:first + 1]] == [ClockTick, OdomSample, LiveFrame]
    assert len({e.stamp_ns for e in events[first - 2:first + 1]}) == 1
    assert not live.done and live.now_s == 2.0


def test_stepping_in_pieces_gives_the_same_events(fld: SimField) -> None:
    settings = LiveSettings(start_delay_s=0.3)
    whole = [(type(e).__name__, e.stamp_ns) for e in LiveDrive(SMALL, fld, settings).advance(4)]
    live = LiveDrive(SMALL, fld, settings)
    pieces: list[tuple[str, int]] = []
    t = 0.0
    for step in (0.0, 0.013, 0.2, 0.0005, 1.0, 0.7, 2.5):
        t = min(4.0, t + step)
        pieces += [(type(e).__name__, e.stamp_ns) for e in live.advance(t)]
    pieces += [(type(e).__name__, e.stamp_ns) for e in live.advance(4.0)]
    assert pieces == whole


def test_the_run_is_done_a_tail_after_the_drive_end(fld: SimField) -> None:
    live = LiveDrive(SMALL, fld, LiveSettings(start_delay_s=0.5, tail_s=0.4))
    end = 0.5 + live.drive.duration_s
    assert live.drive_end_s == pytest.approx(end) and live.done_s == pytest.approx(end + 0.4)
    list(live.advance(end + 0.39))
    assert not live.done
    list(live.advance(end + 0.41))
    assert live.done
    # clock and odometry go on after the end; frames do not
    later = list(live.advance(end + 1.0))
    assert of_type(later, ClockTick) and of_type(later, OdomSample)
    assert not of_type(later, LiveFrame)


def test_cmd_vel_at_the_scenario_speed_from_the_start_is_the_scripted_drive(fld: SimField
                                                                            ) -> None:
    live = LiveDrive(SMALL, fld, LiveSettings(drive_mode="cmd_vel", start_delay_s=0.0))
    live.command(SMALL.speed_mps)
    frames = of_type(list(live.advance(60.0)), LiveFrame)
    expected = list(drive_frames(fld, SMALL.build_camera(), SMALL.plan(fld), SMALL.seed))
    assert len(frames) == len(expected)
    for got, want in zip(frames, expected):
        assert got.stamp_ns == stamp_ns(want.stamp_s)
        assert np.array_equal(got.rgb, want.rgb) and np.array_equal(got.labels, want.labels)
    assert live.done


def test_cmd_vel_integrates_speed_changes_and_stands_at_zero(fld: SimField) -> None:
    live = LiveDrive(SMALL, fld, LiveSettings(drive_mode="cmd_vel", start_delay_s=0.0,
                                              tail_s=0.5))
    x0 = live.start_x
    assert live.frame_count is None and live.drive_end_s is None
    standing = list(live.advance(1.0))
    assert {o.x for o in of_type(standing, OdomSample)} == {x0}
    assert {o.speed_mps for o in of_type(standing, OdomSample)} == {0.0}
    frames = of_type(standing, LiveFrame)
    assert len(frames) == 16  # 15 fps from t = 0: a standing robot still sees
    camera = SMALL.build_camera()
    rgb, labels = camera.render(fld, x0, 0.0, frame_rng(SMALL.seed, 3))
    assert np.array_equal(frames[3].rgb, rgb) and np.array_equal(frames[3].labels, labels)
    assert frames[3].base_x == x0

    live.command(0.5)                       # at t = 1.0
    moving = of_type(list(live.advance(2.0)), OdomSample)
    for o in moving:
        assert o.x == pytest.approx(x0 + 0.5 * (o.stamp_ns * 1e-9 - 1.0), abs=1e-12)
        assert o.speed_mps == 0.5
    live.command(-0.25)                     # at t = 2.0: x = x0 + 0.5, reversing
    back = of_type(list(live.advance(2.4)), OdomSample)
    assert back[-1].x == pytest.approx(x0 + 0.5 - 0.25 * 0.4, abs=1e-12)
    live.command(0.0)                       # stands again
    still = list(live.advance(3.0))
    assert {round(o.x, 12) for o in of_type(still, OdomSample)} == {round(x0 + 0.4, 12)}
    assert len(of_type(still, LiveFrame)) == 9 and live.drive_end_s is None and not live.done

    # 2 m/s from t = 3.0: the drive end is reached at 3.0 + (end − x) / 2, frames stop there
    live.command(2.0)
    reach = 3.0 + (live.end_x - (x0 + 0.4)) / 2.0
    rest = list(live.advance(reach + 0.45))
    assert live.drive_end_s == pytest.approx(reach)
    last = of_type(rest, LiveFrame)[-1]
    assert last.stamp_ns <= stamp_ns(reach) and last.base_x <= live.end_x
    assert last.speed_mps == 2.0
    assert not live.done
    list(live.advance(reach + 0.51))
    assert live.done


def test_bad_commands_are_refused_with_the_reason(fld: SimField) -> None:
    scripted = LiveDrive(SMALL, fld)
    with pytest.raises(ConfigError, match="need drive_mode cmd_vel"):
        scripted.command(1.0)
    live = LiveDrive(SMALL, fld, LiveSettings(drive_mode="cmd_vel"))
    for bad in (math.nan, math.inf):
        with pytest.raises(ConfigError, match="not a finite number"):
            live.command(bad)
    assert live.speed_mps == 0.0


@pytest.mark.parametrize(("settings", "message"), [
    (LiveSettings(real_time_factor=0.0), "real_time_factor 0.0 must be positive"),
    (LiveSettings(real_time_factor=-2.0), "real_time_factor -2.0 must be positive"),
    (LiveSettings(drive_mode="teleport"), "drive_mode 'teleport' is not one of scripted"),
    (LiveSettings(clock_rate_hz=0.0), "clock_rate_hz 0.0 must be positive"),
    (LiveSettings(odom_rate_hz=math.nan), "odom_rate_hz nan must be positive"),
    (LiveSettings(start_delay_s=-1.0), "start_delay_s -1.0 must not be negative"),
    (LiveSettings(tail_s=math.inf), "tail_s inf must not be negative"),
])
def test_settings_that_cannot_run_are_config_errors(fld: SimField, settings: LiveSettings,
                                                    message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LiveDrive(SMALL, fld, settings)


@pytest.mark.parametrize(("scenario", "message"), [
    (replace(SMALL, speed_mps=0.0), "speed_mps 0.0 must be positive: a drive over 3 m at zero "
                                    "speed never ends"),
    (replace(SMALL, speed_mps=-1.0), "speed_mps -1.0 must be positive"),
    (replace(SMALL, camera=replace(SMALL.camera, pitch_deg=70.0)),
     "camera does not see the ground"),
])
def test_scenarios_that_cannot_be_driven_are_config_errors(fld: SimField, scenario: Scenario,
                                                           message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LiveDrive(scenario, fld)


def test_a_field_shorter_than_the_footprint_is_a_config_error() -> None:
    tiny = SimField.blank(0.3, 0.6, 2.0)
    with pytest.raises(ConfigError, match="shorter than the camera footprint"):
        LiveDrive(SMALL, tiny)


def test_field_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"field file {tmp_path / 'none.json'} does not exist"):
        open_field(tmp_path / "none.json")
    path = write_field_file(tmp_path / "standing.json", replace(SMALL, speed_mps=0.0))
    with pytest.raises(ConfigError, match=f"{path}.*speed_mps 0.0 must be positive"):
        open_field(path)
    path = write_field_file(tmp_path / "up.json",
                            replace(SMALL, camera=replace(SMALL.camera, pitch_deg=75.0)))
    with pytest.raises(ConfigError, match=f"{path}.*does not see the ground"):
        open_field(path)
    scenario, fld = open_field(write_field_file(tmp_path / "ok.json", SMALL))
    assert scenario == SMALL and fld.length_m == pytest.approx(3.0)


@pytest.mark.parametrize("mount", [
    CameraMount(0.1, -0.05, 0.8),
    CameraMount(0.3, 0.1, 0.6, pitch_deg=25.0),
    CameraMount(0.0, 0.0, 0.7, pitch_deg=10.0, roll_deg=-15.0, yaw_deg=30.0),
    CameraMount(0.0, 0.0, 0.7, pitch_deg=-35.0, roll_deg=40.0, yaw_deg=-170.0),
    CameraMount(0.0, 0.0, 0.7, yaw_deg=180.0),
])
def test_mount_transform_is_the_camera_mount(mount: CameraMount) -> None:
    tf = mount_transform(mount)
    assert (tf.parent, tf.child) == ("base_link", "camera_optical_frame")
    assert tf.translation == (mount.x, mount.y, mount.height)
    q = tf.rotation_xyzw
    assert math.isclose(sum(v * v for v in q), 1.0, abs_tol=1e-12) and q[3] >= 0
    assert np.allclose(quaternion_to_matrix(q), mount.rotation(), atol=1e-12)
    # the optical axis (z) looks down for every mount here
    assert quaternion_to_matrix(q)[2, 2] < 0


def test_mount_transform_of_a_scenario_camera_and_the_straight_down_value() -> None:
    spec = CameraSpec(x_m=0.2, y_m=0.1, height_m=0.9, pitch_deg=5.0, roll_deg=3.0, yaw_deg=-4.0)
    tf = mount_transform(spec)
    mount = CameraMount(0.2, 0.1, 0.9, 5.0, 3.0, -4.0)
    assert tf.translation == (0.2, 0.1, 0.9)
    assert np.allclose(quaternion_to_matrix(tf.rotation_xyzw), mount.rotation(), atol=1e-12)
    # straight down: optical x = −y, optical y = −x, optical z = −z of base_link, a half turn
    # about (1, −1, 0)/√2
    h = math.sqrt(0.5)
    assert np.allclose(mount_transform(CameraMount()).rotation_xyzw, (h, -h, 0.0, 0.0),
                       atol=1e-12) or \
        np.allclose(mount_transform(CameraMount()).rotation_xyzw, (-h, h, 0.0, 0.0), atol=1e-12)


def test_quaternion_from_matrix_round_trips_every_branch() -> None:
    rng = np.random.default_rng(3)
    branches = set()
    for _ in range(200):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        m = quaternion_to_matrix(tuple(q))
        got = matrix_to_quaternion(m)
        assert np.allclose(quaternion_to_matrix(got), m, atol=1e-12)
        assert np.allclose(np.abs(np.dot(got, q)), 1.0, atol=1e-12)
        branches.add(int(np.argmax((np.trace(m), m[0, 0], m[1, 1], m[2, 2]))))
    assert branches == {0, 1, 2, 3}
    with pytest.raises(ConfigError, match="not a rotation"):
        matrix_to_quaternion(np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ConfigError, match="not a rotation"):
        matrix_to_quaternion(np.eye(3) * 2.0)


def test_camera_info_numbers_are_the_scenario_camera() -> None:
    camera = SMALL.build_camera()
    info = camera_info_numbers(camera)
    i = camera.intrinsics
    assert (info.width, info.height) == (160, 120)
    assert info.distortion_model == "plumb_bob" and info.d == (0.0,) * 5
    assert info.k == (i.fx, 0.0, i.cx, 0.0, i.fy, i.cy, 0.0, 0.0, 1.0)
    assert info.p == (i.fx, 0.0, i.cx, 0.0, 0.0, i.fy, i.cy, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert info.r == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    # hfov 60°: fx = (W / 2) / tan(30°)
    assert i.fx == pytest.approx(80.0 / math.tan(math.radians(30.0)))
