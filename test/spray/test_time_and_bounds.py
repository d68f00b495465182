"""Time discontinuities and plausibility bounds in the core (no ROS): tracking and travel across
a jump of the stamps or the clock, frames from the future, out-of-order frames, implausible
odometry, CameraInfo checked completely, the planner's resets (docs/RELIABILITY.md)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from crop_weed_seg.errors import ConfigError, InvalidFrameError
from crop_weed_seg.parameters.planner import build, defaults
from crop_weed_seg.spray.geometry import Boom, CameraIntrinsics, CameraMount, GroundProjector
from crop_weed_seg.spray.pipeline import (
    MAX_SPEED_MPS,
    TIME_JUMP_BACK_S,
    SpeedEstimate,
    SpraySettings,
    TargetPipeline,
)
from crop_weed_seg.spray.planner import PlannerConfig, SprayPlanner
from crop_weed_seg.spray.records import empty_targets
from crop_weed_seg.spray.tracking import TargetTracker

SETTINGS = SpraySettings(hfov_deg=60.0, camera_height_m=0.8, min_confidence=0.0)
PROJ = GroundProjector(CameraIntrinsics.from_fov(640, 480, 60.0), CameraMount(height=0.8))
BOOM = Boom(12, 0.05, 0.0, -0.5)
K = [800.0, 0.0, 319.5, 0.0, 800.0, 239.5, 0.0, 0.0, 1.0]


def weed_labels(x: float, y: float = 0.075, r: float = 0.015) -> np.ndarray:
    """A frame's labels with one weed disc at (x, y) in base_link."""
    angles = np.linspace(0, 2 * np.pi, 100, endpoint=False)
    circle = np.array([x, y]) + r * np.column_stack((np.cos(angles), np.sin(angles)))
    labels = np.zeros((480, 640), np.uint8)
    cv2.fillPoly(labels, [np.round(PROJ.ground_to_pixels(circle)).astype(np.int32)], 2)
    return labels


def drive(pipe: TargetPipeline, stamps: list[float], weed_x: float, start_travel: float = 0.0,
          speed: float = 1.0) -> list[int]:
    """Frames of a fixed weed at field x ``weed_x`` while the robot drives at ``speed``; the
    track id of the weed in each frame."""
    ids = []
    for t in stamps:
        pipe.speed.update(t, speed)
        travel = start_travel + speed * (t - stamps[0])
        recs = pipe.targets(weed_labels(weed_x - travel), None, t, SETTINGS)
        assert len(recs) == 1
        ids.append(int(recs["track_id"][0]))
    return ids


def test_backwards_jump_of_the_stamps_starts_tracking_afresh() -> None:
    """A bag that loops: the same stretch again, stamped 10 s earlier. Before, travel froze at
    the newest stamp and the ids stuck to image positions (a weed moving through the image kept
    the id of the weed seen there before the jump)."""
    pipe = TargetPipeline()
    stamps = [100.0 + 0.1 * k for k in range(5)]
    before = drive(pipe, stamps, 0.2)
    assert len(set(before)) == 1 and before[0] > 0
    after = drive(pipe, [t - 10.0 for t in stamps], 0.2)
    assert pipe.counters["time_jumps"] == 1 and "jumped back" in pipe.last_time_problem
    assert len(set(after)) == 1 and after[0] not in before     # new track, ids never reused
    # a small step back (a frame out of order) is no jump: placed by extrapolating back
    pipe.speed.update(95.0, 1.0)
    recs = pipe.targets(weed_labels(0.2 - 0.35), None, 90.0 + 0.1 * 3 + 0.05, SETTINGS)
    assert pipe.counters["time_jumps"] == 1 and len(recs) == 1


def test_clock_jump_back_and_frames_from_the_future() -> None:
    pipe = TargetPipeline()
    stamps = [50.0 + 0.1 * k for k in range(4)]
    for t in stamps:
        assert pipe.check_clock(t, t + 0.01) is None
    first = drive(pipe, stamps, 0.2)
    # a frame stamped 10 s ahead of the clock: no targets, counted, tracking reset
    why = pipe.check_clock(stamps[-1] + 10.0, stamps[-1] + 0.1, max_future_s=0.2)
    assert why is not None and "ahead of the node clock" in why
    assert pipe.counters["future_frames"] == 1 and pipe.counters["time_jumps"] == 0
    # the next frames are not frozen by the future stamp: one weed, one new id
    nxt = [stamps[-1] + 0.1 * k for k in range(1, 4)]
    for t in nxt:
        assert pipe.check_clock(t, t) is None
    again = drive(pipe, nxt, 0.1)
    assert len(set(again)) == 1 and again[0] not in first
    # the node clock going back 10 s (use_sim_time and a simulator reset)
    assert pipe.check_clock(nxt[-1] - 10.0, nxt[-1] - 10.0) is None
    assert pipe.counters["time_jumps"] == 1 and "clock jumped back" in pipe.last_time_problem
    # within the tolerance it is no jump
    assert pipe.check_clock(nxt[-1] - 10.0 - TIME_JUMP_BACK_S / 2, nxt[-1] - 10.0) is None
    assert pipe.counters["time_jumps"] == 1


def test_tracker_ids_go_on_counting_after_a_reset_and_new_settings() -> None:
    tracker = TargetTracker()
    recs = empty_targets(2)
    recs["x"], recs["y"], recs["class_id"] = [0.1, 0.2], [0.0, 0.1], 2
    first = tracker.update(recs, 0.0)["track_id"]
    tracker.clear()
    assert len(tracker) == 0
    second = tracker.update(recs, 0.0)["track_id"]
    assert set(first).isdisjoint(second)
    assert TargetTracker(first_id=tracker.next_id).update(recs, 0.0)["track_id"][0] > max(second)
    pipe = TargetPipeline()
    ids = drive(pipe, [1.0, 1.1], 0.2)
    other = SpraySettings(hfov_deg=60.0, camera_height_m=0.8, min_confidence=0.0,
                          min_area_px=10)
    pipe.speed.update(1.2, 1.0)
    recs = pipe.targets(weed_labels(0.0), None, 1.2, other)
    assert recs["track_id"][0] > max(ids)


@pytest.mark.parametrize("vx,vy,max_speed,why", [
    (1e9, 0.0, MAX_SPEED_MPS, "above max_speed_mps"),
    (3.0, 3.0, 4.0, "above max_speed_mps"),
    (math.nan, 0.0, MAX_SPEED_MPS, "not finite"),
    (-0.5, 0.0, MAX_SPEED_MPS, "reverses"),
])
def test_implausible_odometry_is_refused_with_its_reason(vx: float, vy: float, max_speed: float,
                                                         why: str) -> None:
    est = SpeedEstimate()
    assert est.update(0.0, 1.0)
    assert not est.update(0.1, vx, vy, max_speed)
    assert est.bad == 1 and why in est.last_problem and est.speed is None
    assert est.at(0.1, 1.0, -1.0) == (None, "unknown")   # time_to_nozzle NaN, not 0
    assert est.update(0.2, 9.9)


def test_odom_timeout_and_default_speed_mean_what_they_mean_in_the_planner() -> None:
    """odom_timeout_s 0: no age limit; default_speed_mps <= 0: no speed (as in the planner)."""
    est = SpeedEstimate()
    assert est.at(5.0, 1.0, 0.0) == (None, "unknown")
    assert est.at(5.0, 1.0, 0.7) == (0.7, "default_speed_mps")
    assert est.update(0.0, 1.5)
    assert est.at(5.0, 1.0, -1.0) == (None, "unknown")    # 5 s apart: too old
    assert est.at(5.0, 0.0, -1.0) == (1.5, "odom")        # 0: however old
    assert est.at(0.5, 1.0, -1.0) == (1.5, "odom")


@pytest.mark.parametrize("k,d,model,why", [
    (K, [0.0] * 5, "plumb_bob", None),
    (K, [], "plumb_bob", None),                                       # none given
    (K, [], "", None),                                                # uncalibrated
    (K, [-0.25, 0.08, 0.001, -0.0005, 0.0], "plumb_bob", None),
    (K, [-0.25, 0.08, 0.001, -0.0005, 0.0, 0.01, 0.02, 0.001], "rational_polynomial", None),
    (K, [-0.05, 0.01, 0.0, 0.0], "equidistant", None),
    (K, [0.1] * 100, "plumb_bob", "has 5 coefficients, D has 100"),
    (K, [0.1] * 5, "rational_polynomial", "has 8 coefficients, D has 5"),
    (K, [0.1] * 5, "equidistant", "has 4 coefficients, D has 5"),
    (K, [0.0] * 5, "kannala_brandt_magic", "is not supported"),
    (K, [0.1, 0, 0, 0, 0], "", "distortion_model is empty"),
    (K, [5.0] * 5, "plumb_bob", "does not invert"),
    (K, [1e30] * 5, "plumb_bob", "does not invert"),
    (K, [math.nan] * 5, "plumb_bob", "NaN"),
    (K[:8] + [2.0], [0.0] * 5, "plumb_bob", "not a camera matrix"),
    ([800.0, 3.0] + K[2:], [0.0] * 5, "plumb_bob", "skew"),
    (K[:2] + [5000.0] + K[3:], [0.0] * 5, "plumb_bob", "outside the 640x480 image"),
    (K[:4] + [math.inf] + K[5:], [0.0] * 5, "plumb_bob", "NaN or Inf"),
    ([0.0] * 9, [0.0] * 5, "plumb_bob", "not a camera matrix"),
    ([0.0] * 8 + [1.0], [0.0] * 5, "plumb_bob", "focal length"),
])
def test_camera_info_is_checked_completely(k: list[float], d: list[float], model: str,
                                           why: str | None) -> None:
    if why is None:
        cam = CameraIntrinsics.from_camera_info(k, d, 640, 480, model)
        proj = GroundProjector(cam, CameraMount(height=0.8))
        ground = np.array([[0.15, 0.2], [-0.1, -0.25], [0.0, 0.0]])
        assert np.allclose(proj.pixels_to_ground(proj.ground_to_pixels(ground)), ground,
                           atol=1e-4)
        return
    with pytest.raises(InvalidFrameError, match=why):
        CameraIntrinsics.from_camera_info(k, d, 640, 480, model)


def test_a_refused_camera_info_keeps_the_last_good_one() -> None:
    pipe = TargetPipeline()
    pipe.set_camera_info(K, [0.0] * 5, 640, 480, "plumb_bob")
    good = pipe.camera_info
    for d, model in (([0.1] * 100, "plumb_bob"), ([0.0] * 5, "fisheye9000")):
        with pytest.raises(InvalidFrameError):
            pipe.set_camera_info(K, d, 640, 480, model)
    assert pipe.camera_info is good and pipe.counters["bad_camera_info"] == 2
    assert "fisheye9000" in pipe.last_camera_info_problem
    # frames keep their geometry (before: every frame failed in undistortPoints)
    recs = pipe.targets(weed_labels(0.1), None, 1.0, SpraySettings(min_confidence=0.0))
    assert pipe.geometry_source == "camera_info" and np.isfinite(recs["x"]).all()


# --------------------------------------------------------------------------------- planner
def _targets(x: float, lane: int, track_id: int = 1) -> np.ndarray:
    recs = empty_targets(1)
    recs["x"], recs["y"], recs["size_x"], recs["size_y"] = x, BOOM.lane_center(lane), 0.04, 0.01
    recs["class_id"], recs["lane"], recs["track_id"] = 2, lane, track_id
    return recs


def _planner(**config: object) -> SprayPlanner:
    return SprayPlanner(BOOM, PlannerConfig(**{"stale_timeout_s": 100.0, "odom_timeout_s": 0.0,
                                               **config}))


def test_planner_clock_jump_back_forgets_what_it_stored() -> None:
    """A weed with the same track id seen before and after the jump (the segmenter's ids stuck
    to image positions): before, both views were joined into one long window."""
    p = _planner()
    for t in np.arange(100.0, 101.0, 0.1):
        p.update_odometry(float(t), 1.0)
        p.nozzle_states(float(t))
    assert p.add_targets(100.9, _targets(0.3, 4), 100.9) == 1
    # the clock jumps back 10 s; the same track id comes again from the new timeline
    p.nozzle_states(91.0)
    assert p.counters["time_jumps"] == 1 and p.stored_intervals == 0 and not p.has_odometry
    p.update_odometry(91.0, 1.0)
    assert p.add_targets(91.0, _targets(0.3, 4), 91.0) == 1
    (a, b), = p.windows(4)
    assert b - a == pytest.approx(0.04 + 2 * 0.02)
    # odometry going back counts once too (clock_resets as before)
    p.update_odometry(80.0, 1.0)
    assert p.counters["time_jumps"] == 2 and p.counters["clock_resets"] == 1


def test_planner_target_stamps_back_and_from_the_future() -> None:
    p = _planner(max_target_age_s=30.0, max_future_s=0.5)
    p.update_odometry(0.0, 1.0)
    assert p.add_targets(20.0, _targets(0.3, 4, 1), 20.0) == 1
    # stamps jump back 10 s while the clock does not: stored windows forgotten, counted once
    assert p.add_targets(10.0, _targets(0.3, 5, 1), 20.1) == 1
    assert p.counters["time_jumps"] == 1 and p.windows(4) == [] and len(p.windows(5)) == 1
    # 0.4 s ahead is within max_future_s; 10 s ahead is refused and forgets the windows
    assert p.add_targets(20.5, _targets(0.3, 6, 2), 20.1) == 1
    assert p.add_targets(30.2, _targets(0.3, 7, 3), 20.2) == 0
    assert p.counters["future_frames"] == 1 and p.stored_intervals == 0
    assert p.counters["rejected_messages"] == 1 and "ahead of the clock" in p.last_time_problem
    assert p.counters["time_jumps"] == 1   # the future stamp did not become the newest


def test_planner_implausible_speed_is_bad_odometry_and_leads_to_the_failure_policy() -> None:
    p = SprayPlanner(BOOM, PlannerConfig(stale_timeout_s=100.0, odom_timeout_s=1.0,
                                         failure_policy="blanket", max_speed_mps=10.0))
    p.add_targets(0.0, empty_targets(), 0.0)     # targets flow: not stale
    assert not p.update_odometry(0.0, 1e9)
    assert p.counters["bad_odometry"] == 1 and "max_speed_mps" in p.last_odometry_problem
    assert not p.has_odometry                    # never used: no odometry, nozzles shut
    assert not p.nozzle_states(0.0).any() and p.applied() == "no_odometry"
    assert p.update_odometry(0.1, 1.0)
    p.add_targets(0.1, empty_targets(), 0.1)
    for t in np.arange(0.2, 1.5, 0.05):          # a stream of implausible updates
        assert not p.update_odometry(float(t), -5e8)
        p.add_targets(float(t), empty_targets(), float(t))
        states = p.nozzle_states(float(t))
    assert p.applied() == "failure_policy:blanket" and states.all()
    assert p.counters["bad_odometry"] == 1 + 26 and p.counters["odometry_timeouts"] == 1
    assert p.status()["last_odometry_problem"].startswith("odometry speed -5e+08")


def test_planner_parameters_bound_speed_and_future() -> None:
    values = defaults()
    assert values["max_speed_mps"] == 10.0 and values["max_future_s"] == 0.2
    _, config = build(values)
    assert config.max_speed_mps == 10.0 and config.max_future_s == 0.2
    with pytest.raises(ConfigError, match="must not exceed max_speed_mps"):
        build({**values, "default_speed_mps": 12.0, "max_speed_mps": 5.0})
    with pytest.raises(ConfigError, match="max_speed_mps"):
        build({**values, "max_speed_mps": 0.0})
