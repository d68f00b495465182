"""Drive simulator: rendering geometry, ground truth, scoring, bag output, determinism."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from crop_weed_seg.classes import CROP, WEED
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.sim import (
    Drive,
    FieldConfig,
    Perception,
    SimCamera,
    SimField,
    drive_frames,
    generate_field,
    oracle_timeline,
    plan,
    plan_drive,
    score,
    timeline_from_ground_windows,
)
from crop_weed_seg.spray.geometry import Boom, CameraIntrinsics, CameraMount, GroundProjector
from crop_weed_seg.spray.records import empty_targets

BOOM = Boom(nozzle_count=12, nozzle_spacing_m=0.05, center_y=0.0, nozzle_x=-0.5)


def _disk(radius_px: int) -> np.ndarray:
    m = np.zeros((2 * radius_px + 1,) * 2, np.uint8)
    cv2.circle(m, (radius_px, radius_px), radius_px, 1, -1)
    return m.astype(bool)


def _camera(pitch: float = 0.0, **kw) -> SimCamera:
    return SimCamera(GroundProjector(CameraIntrinsics.from_fov(320, 240, 60.0),
                                     CameraMount(0.1, 0.02, 0.8, pitch)), **kw)


@pytest.mark.parametrize("pitch", [0.0, 25.0])
def test_marker_appears_where_ground_to_pixels_predicts(pitch):
    fld = SimField.blank(4.0, 1.2, gsd_mm=1.0)
    marker = (2.3, 0.11)
    fld.add_plant(WEED, *marker, _disk(15))
    cam = _camera(pitch, read_noise=0.0, shot_noise=0.0)
    base_x = 2.0
    _, labels = cam.render(fld, base_x)
    v, u = np.nonzero(labels == WEED)
    assert u.size > 20
    expect = cam.projector.ground_to_pixels(np.array([[marker[0] - base_x, marker[1]]]))[0]
    assert abs(u.mean() - expect[0]) < 1.0 and abs(v.mean() - expect[1]) < 1.0
    if pitch == 0.0:  # ahead of the camera (x > 0.1) → upper half; left of it → left half
        assert v.mean() < 120 and u.mean() < 160


def test_motion_blur_spreads_along_travel_only():
    fld = SimField.blank(3.0, 1.0, gsd_mm=1.0, soil_rgb=(0, 0, 0))
    fld.add_plant(WEED, 1.5, 0.0, _disk(4), color=(255, 255, 255))
    cam = _camera(0.0, exposure_s=0.01, read_noise=0.0, shot_noise=0.0)
    sharp, _ = cam.render(fld, 1.4, speed_mps=0.0)
    blurred, _ = cam.render(fld, 1.4, speed_mps=2.0)  # 2 cm (~7 px) of blur along image rows
    rows = lambda img: np.count_nonzero((img[:, :, 0] > 20).any(axis=1))  # noqa: E731
    cols = lambda img: np.count_nonzero((img[:, :, 0] > 20).any(axis=0))  # noqa: E731
    assert rows(blurred) >= rows(sharp) + 4
    assert abs(cols(blurred) - cols(sharp)) <= 1


def test_generated_field_ground_truth_matches_the_mosaic():
    fld = generate_field(FieldConfig(length_m=1.5, width_m=0.6, gsd_mm=2.0, weeds_per_m2=30),
                         seed=4)
    weeds = [p for p in fld.plants if p.class_id == WEED]
    crops = [p for p in fld.plants if p.class_id == CROP]
    assert len(weeds) > 5 and len(crops) > 3 and fld.rows_y
    covered = np.zeros(fld.labels.shape, bool)
    for p in fld.plants:
        win = fld.labels[p.row0:p.row0 + p.mask.shape[0], p.col0:p.col0 + p.mask.shape[1]]
        assert win.shape == p.mask.shape
        assert (win[p.mask] > 0).all()             # a plant's footprint is vegetation
        assert p.area_m2 == pytest.approx(p.mask.sum() * fld.gsd_m ** 2)
        assert p.x_min <= p.x <= p.x_max and p.y_min <= p.y <= p.y_max
        covered[p.row0:p.row0 + p.mask.shape[0], p.col0:p.col0 + p.mask.shape[1]] |= p.mask
    assert np.array_equal(covered, fld.labels > 0)  # and all vegetation belongs to a plant
    json.dumps(fld.ground_truth_json())


def _distance_to_nearest_crop(fld):
    crops = np.array([(p.x, p.y) for p in fld.plants if p.class_id == CROP])
    return np.array([np.hypot(*(crops - (p.x, p.y)).T).min()
                     for p in fld.plants if p.class_id == WEED])


def test_weed_placement_shares_move_weeds_towards_the_crops():
    base = dict(length_m=3.0, width_m=0.8, gsd_mm=3.0, weeds_per_m2=25)
    touching = generate_field(FieldConfig(**base, weed_touching_crop_prob=1.0,
                                          weed_in_row_prob=0.0), seed=5)
    anywhere = generate_field(FieldConfig(**base, weed_touching_crop_prob=0.0,
                                          weed_in_row_prob=0.0), seed=5)
    near, far = _distance_to_nearest_crop(touching), _distance_to_nearest_crop(anywhere)
    assert len(near) > 20 and len(far) > 20
    assert near.max() < 0.12                 # every weed within a crop plant's reach
    assert np.median(far) > 2 * np.median(near)


@pytest.mark.parametrize("touching,in_row", [(-0.1, 0.2), (0.7, 0.5), (0.2, 1.5)])
def test_bad_weed_placement_shares_are_refused(touching, in_row):
    with pytest.raises(ConfigError, match="placement shares"):
        FieldConfig(weed_touching_crop_prob=touching, weed_in_row_prob=in_row).validate()


def test_field_and_frames_are_deterministic_for_a_seed():
    cfg = FieldConfig(length_m=1.5, width_m=0.8, gsd_mm=2.0)
    a, b = generate_field(cfg, seed=7), generate_field(cfg, seed=7)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.labels, b.labels)
    assert [p.to_json() for p in a.plants] == [p.to_json() for p in b.plants]
    assert not np.array_equal(a.rgb, generate_field(cfg, seed=8).rgb)
    cam = _camera()
    drive = plan_drive(a, cam, BOOM, 1.0, 10.0)
    f1 = [fr.rgb for fr in drive_frames(a, cam, drive, seed=3)]
    f2 = [fr.rgb for fr in drive_frames(a, cam, drive, seed=3)]
    f3 = [fr.rgb for fr in drive_frames(a, cam, drive, seed=4)]
    assert all(np.array_equal(x, y) for x, y in zip(f1, f2))
    assert not np.array_equal(f1[0], f3[0])      # fresh noise per seed


# --------------------------------------------------------------------------------- scoring

def _scoring_field():
    fld = SimField.blank(3.0, 1.0, gsd_mm=1.0)
    weed = fld.add_plant(WEED, 1.5, 0.0, _disk(10))   # 2.1 cm wide, half in lane 5, half in 6
    crop = fld.add_plant(CROP, 2.2, -0.1, _disk(15))
    return fld, weed, crop


def _tl(windows, speed=1.0, start_x=0.0, duration=3.0):
    return timeline_from_ground_windows(BOOM, speed, start_x, duration, windows, dt=0.002)


SPAN = (0.5, 2.5)


def test_nozzle_open_exactly_over_a_weed_is_a_hit():
    fld, weed, crop = _scoring_field()
    lanes = BOOM.lanes_between(weed.y_min, weed.y_max)
    sc = score(fld, BOOM, _tl([(k, weed.x_min, weed.x_max) for k in lanes]), SPAN)
    assert sc.weeds_scored == 1 and sc.weeds_hit == 1 and sc.weed_hit_rate == 1.0
    assert sc.weed_fraction[weed.id] == pytest.approx(1.0)
    assert sc.crops_scored == 1 and sc.crops_hit == 0 and sc.double_sprays == 0
    # one lane only covers part of it → not a 90 % hit
    sc = score(fld, BOOM, _tl([(lanes[0], weed.x_min, weed.x_max)]), SPAN)
    assert sc.weeds_hit == 0


def test_nozzle_open_too_late_misses():
    fld, weed, _ = _scoring_field()
    lanes = BOOM.lanes_between(weed.y_min, weed.y_max)
    late = [(k, weed.x, weed.x_max + 0.05) for k in lanes]  # opens at the weed's centre
    sc = score(fld, BOOM, _tl(late), SPAN)
    assert sc.weeds_hit == 0 and 0.3 < sc.weed_fraction[weed.id] < 0.7


def test_crop_under_an_open_nozzle_is_hit():
    fld, _, crop = _scoring_field()
    sc = score(fld, BOOM, _tl([(BOOM.lane_of(crop.y), crop.x_min, crop.x_max)]), SPAN)
    assert sc.crops_hit == 1 and sc.crop_hit_rate == 1.0 and sc.weeds_hit == 0


def test_two_windows_over_a_weed_are_a_double_spray():
    fld, weed, _ = _scoring_field()
    lane = int(BOOM.lane_of(weed.y))
    sc = score(fld, BOOM, _tl([(lane, weed.x_min - 0.01, weed.x - 0.003),
                               (lane, weed.x + 0.003, weed.x_max + 0.01)]), SPAN)
    assert sc.double_sprays == 1
    # two lanes with one window each is not a double spray
    lanes = BOOM.lanes_between(weed.y_min, weed.y_max)
    sc = score(fld, BOOM, _tl([(k, weed.x_min, weed.x_max) for k in lanes]), SPAN)
    assert sc.double_sprays == 0


def test_always_open_is_blanket_and_hits_everything():
    fld, _, _ = _scoring_field()
    t = np.arange(0.0, 3.0, 0.002)
    from crop_weed_seg.sim import Timeline

    tl = Timeline(t, np.ones((len(t), BOOM.nozzle_count), bool), 0.002, 0.0, 1.0)
    sc = score(fld, BOOM, tl, SPAN)
    assert sc.sprayed_ratio == pytest.approx(1.0)
    assert sc.blanket_area_m2 == pytest.approx((SPAN[1] - SPAN[0]) * BOOM.width)
    assert sc.weed_hit_rate == 1.0 and sc.crop_hit_rate == 1.0
    never = Timeline(t, np.zeros_like(tl.open), 0.002, 0.0, 1.0)
    assert score(fld, BOOM, never, SPAN).sprayed_ratio == 0.0


def test_oracle_hits_every_scored_weed_of_a_generated_field():
    fld = generate_field(FieldConfig(length_m=3.0, width_m=0.8, gsd_mm=1.5), seed=2)
    drive = plan_drive(fld, _camera(), BOOM, 1.0, 10.0)
    sc = score(fld, BOOM, oracle_timeline(fld, BOOM, drive), drive.scored_span)
    assert sc.weeds_scored > 3 and sc.weed_hit_rate == 1.0 and sc.double_sprays == 0
    assert 0.0 < sc.sprayed_ratio < 0.5


# ------------------------------------------------------------------------- planning loop

class _FakePlanner:
    """Opens lane 0 from the moment any targets arrive; logs calls."""

    def __init__(self):
        self.calls, self.speeds, self.armed = [], [], False

    def update_odometry(self, t, speed_mps):
        self.speeds.append((t, speed_mps))

    def add_targets(self, stamp_s, records, now_s=None):
        self.calls.append((stamp_s, now_s, len(records)))
        self.armed = True

    def nozzle_states(self, t):
        s = np.zeros(BOOM.nozzle_count, bool)
        s[0] = self.armed
        return s


def test_plan_delivers_targets_late_and_delays_the_valves():
    per = Perception([(0.1 * k, 0.1 * k, empty_targets(k)) for k in range(5)], 0, 0, 0, "truth")
    drive = Drive(start_x=0.0, duration_s=0.5, speed_mps=1.0, frame_rate_hz=10.0,
                  scored_span=(0.0, 1.0))
    pl = _FakePlanner()
    tl = plan(per, BOOM, drive, latency_s=0.05, planner=pl, valve_delay_s=0.03, dt_s=0.002)
    assert [c[0] for c in pl.calls] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert [c[1] for c in pl.calls] == pytest.approx([0.05, 0.15, 0.25, 0.35, 0.45])
    first_open = tl.t[np.argmax(tl.open[:, 0])]
    assert first_open == pytest.approx(0.05 + 0.03)  # arrival + valve delay
    assert not tl.open[:, 1:].any()


# ----------------------------------------------------------------------------------- bag

def test_bag_is_written_and_readable(tmp_path):
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    fld = generate_field(FieldConfig(length_m=1.5, width_m=0.8, gsd_mm=2.0), seed=1)
    cam = _camera()
    from crop_weed_seg.sim import write_bag

    truth = write_bag(tmp_path / "bag", fld, cam, BOOM, speed_mps=1.0, frame_rate_hz=10.0,
                      seed=1, odom_rate_hz=50.0, max_frames=4)
    ts = get_typestore(Stores.ROS2_HUMBLE)
    msgs: dict[str, list] = {}
    with Reader(tmp_path / "bag") as reader:
        for conn, t_ns, raw in reader.messages():
            msgs.setdefault(conn.topic, []).append((t_ns, ts.deserialize_cdr(raw, conn.msgtype)))
    assert set(msgs) == {"/camera/image/compressed", "/camera/camera_info",
                         "/camera/labels_truth", "/odom"}
    assert [len(msgs[k]) for k in ("/camera/image/compressed", "/camera/camera_info",
                                   "/camera/labels_truth")] == [4, 4, 4]
    assert len(msgs["/odom"]) == 16  # 0.3 s at 50 Hz, both ends
    start = truth["drive"]["start_ns"]
    img_t = [t for t, _ in msgs["/camera/image/compressed"]]
    assert img_t == [start + k * 100_000_000 for k in range(4)]
    for t, m in msgs["/camera/image/compressed"]:
        assert m.header.stamp.sec * 10 ** 9 + m.header.stamp.nanosec == t
        rgb = cv2.imdecode(np.asarray(m.data), cv2.IMREAD_COLOR)
        assert rgb.shape == (240, 320, 3)
    t_last, lab = msgs["/camera/labels_truth"][-1]
    labels = cv2.imdecode(np.asarray(lab.data), cv2.IMREAD_UNCHANGED)
    frames = list(drive_frames(fld, cam, plan_drive(fld, cam, BOOM, 1.0, 10.0), seed=1))
    assert np.array_equal(labels, frames[3].labels)
    t_od, od = msgs["/odom"][-1]
    assert od.header.frame_id == "odom" and od.child_frame_id == "base_link"
    assert od.twist.twist.linear.x == pytest.approx(1.0)
    assert od.pose.pose.position.x == pytest.approx((t_od - start) * 1e-9)
    info = msgs["/camera/camera_info"][0][1]
    assert info.width == 320 and info.k[0] == pytest.approx(cam.intrinsics.fx)
    gt = json.loads((tmp_path / "bag" / "ground_truth.json").read_text())
    assert len(gt["plants"]) == len(fld.plants) and gt["drive"]["frames"] == 4
