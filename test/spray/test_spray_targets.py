"""Ground projection, boom lanes, weed targets, tracking and the target record layout against
hand-computed cases (no ROS)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from crop_weed_seg.errors import ConfigError, InvalidFrameError
from crop_weed_seg.spray.geometry import Boom, CameraIntrinsics, CameraMount, GroundProjector
from crop_weed_seg.spray.records import (
    POINT_FIELDS,
    POINT_STEP,
    TARGET_DTYPE,
    empty_targets,
    records_from_bytes,
)
from crop_weed_seg.spray.targets import TargetConfig, TargetExtractor, extract_targets
from crop_weed_seg.spray.tracking import TargetTracker

CAM = CameraIntrinsics(640, 480, 800.0, 800.0, 319.5, 239.5)
NADIR = GroundProjector(CAM, CameraMount(x=0.0, y=0.0, height=0.8, pitch_deg=0.0))
BOOM = Boom(nozzle_count=12, nozzle_spacing_m=0.05, center_y=0.0, nozzle_x=-0.5)


def test_record_layout_is_the_design_contract() -> None:
    expected = [("x", 0, "f4"), ("y", 4, "f4"), ("z", 8, "f4"), ("size_x", 12, "f4"),
                ("size_y", 16, "f4"), ("area", 20, "f4"), ("confidence", 24, "f4"),
                ("u", 28, "f4"), ("v", 32, "f4"), ("class_id", 36, "u2"), ("lane", 38, "i2"),
                ("track_id", 40, "u4"), ("time_to_nozzle", 44, "f4")]
    assert [(n, o, t[1:]) for n, t, o, _ in POINT_FIELDS] == expected
    assert TARGET_DTYPE.itemsize == POINT_STEP == 48
    assert all(TARGET_DTYPE.fields[n][0].str[0] in "<|" for n in TARGET_DTYPE.names)


def test_records_round_trip_and_read_by_name() -> None:
    recs = empty_targets(3)
    recs["x"], recs["lane"], recs["track_id"] = [0.1, 0.2, 0.3], [0, -1, 11], [7, 8, 2**32 - 1]
    back = records_from_bytes(recs.tobytes())
    for name in TARGET_DTYPE.names:
        assert np.array_equal(back[name], recs[name], equal_nan=name != "class_id"
                              and back[name].dtype.kind == "f"), name
    # a producer with another layout: only x (offset 4) and lane (offset 0), 8-byte points
    raw = np.zeros(2, np.dtype({"names": ["lane", "x"], "formats": ["<i2", "<f4"],
                                "offsets": [0, 4], "itemsize": 8}))
    raw["x"], raw["lane"] = [1.5, 2.5], [3, 4]
    other = records_from_bytes(raw.tobytes(), 8, {"lane": (0, "<i2"), "x": (4, "<f4")})
    assert list(other["x"]) == [1.5, 2.5] and list(other["lane"]) == [3, 4]
    assert np.isnan(other["time_to_nozzle"]).all()
    with pytest.raises(InvalidFrameError, match="whole number"):
        records_from_bytes(b"\0" * 50)
    assert len(records_from_bytes(b"")) == 0


def test_nadir_projection_by_hand() -> None:
    # f = 800 px at 0.8 m: 1 mm per pixel; image up = forward (+x), image right = right (-y)
    uv = np.array([[319.5, 239.5], [419.5, 239.5], [319.5, 139.5], [219.5, 339.5]])
    xy = NADIR.pixels_to_ground(uv)
    assert np.allclose(xy, [[0, 0], [0, -0.1], [0.1, 0], [-0.1, 0.1]])
    assert np.allclose(NADIR.ground_to_pixels(xy), uv)
    assert NADIR.metres_per_pixel(uv[:1]) == pytest.approx(0.001)


def test_pitched_camera_by_hand() -> None:
    mount = CameraMount(x=0.2, y=0.1, height=1.0, pitch_deg=30.0)
    proj = GroundProjector(CAM, mount)
    centre = proj.pixels_to_ground(np.array([[319.5, 239.5]]))[0]
    assert centre == pytest.approx([0.2 + math.tan(math.radians(30)), 0.1])
    # the image row 100 px above the centre looks 30° + atan(100/800) forward
    up = proj.pixels_to_ground(np.array([[319.5, 139.5]]))[0]
    assert up[0] == pytest.approx(0.2 + math.tan(math.radians(30) + math.atan(100 / 800)))
    pts = np.array([[0.0, 0.0], [50.0, 400.0], [600.0, 30.0]])
    assert np.allclose(proj.ground_to_pixels(proj.pixels_to_ground(pts)), pts, atol=1e-6)
    # steep enough, the top rows see the sky: no ground point
    sky = GroundProjector(CAM, CameraMount(height=1.0, pitch_deg=80.0))
    assert np.isnan(sky.pixels_to_ground(np.array([[319.5, 0.0]]))).all()


def test_distortion_is_undone() -> None:
    dist = (-0.25, 0.08, 0.001, -0.0005, 0.0)
    cam = CameraIntrinsics(640, 480, 800.0, 800.0, 319.5, 239.5, dist)
    proj = GroundProjector(cam, CameraMount(height=0.8))
    ground = np.array([[0.15, 0.2], [-0.1, -0.25], [0.0, 0.0]])
    uv = proj.ground_to_pixels(ground)
    assert not np.allclose(uv, NADIR.ground_to_pixels(ground), atol=1.0)  # distortion matters
    assert np.allclose(proj.pixels_to_ground(uv), ground, atol=1e-5)


def test_intrinsics_from_fov_camera_info_and_bad_values() -> None:
    cam = CameraIntrinsics.from_fov(640, 480, 90.0)
    assert cam.fx == pytest.approx(320.0) and cam.cx == 319.5
    info = CameraIntrinsics.from_camera_info([800, 0, 320, 0, 810, 240, 0, 0, 1], [0] * 5,
                                             640, 480)
    assert (info.fx, info.fy, info.cx, info.cy) == (800, 810, 320, 240)
    assert info.scaled_to(320, 240).fx == 400
    with pytest.raises(InvalidFrameError, match="focal length fx=0.0"):
        CameraIntrinsics.from_camera_info([0, 0, 320, 0, 810, 240, 0, 0, 1], [], 640, 480)
    with pytest.raises(InvalidFrameError, match="K has 4 values"):
        CameraIntrinsics.from_camera_info([1, 2, 3, 4], [], 640, 480)
    with pytest.raises(ConfigError, match="height"):
        CameraMount(height=0.0)


def test_lanes_at_the_boom_edges() -> None:
    # 12 nozzles x 5 cm centred on 0: from y = -0.30 (lane 0 starts) to +0.30 (lane 11 ends)
    y = np.array([-0.31, -0.30, -0.2501, -0.25, 0.0, 0.2999, 0.30, np.nan])
    assert list(BOOM.lane_of(y)) == [-1, 0, 0, 1, 6, 11, -1, -1]
    assert list(BOOM.lanes_between(-0.4, -0.26)) == [0]
    assert list(BOOM.lanes_between(-0.01, 0.06)) == [5, 6, 7]
    assert list(BOOM.lanes_between(0.35, 0.5)) == []
    assert BOOM.lane_center(0) == pytest.approx(-0.275)
    shifted = Boom(4, 0.1, center_y=0.5, nozzle_x=-1.0)
    assert list(shifted.lane_of([0.29, 0.31, 0.69, 0.71])) == [-1, 0, 3, -1]


def _scene() -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((480, 640), np.uint8)
    labels[100:140, 330:360] = 2     # a weed 4 x 3 cm left of... right of centre, ahead
    labels[300:302, 50:52] = 2       # a 2x2 px speck: opened away
    labels[200:260, 400:460] = 1     # a crop
    labels[225:235, 461:470] = 2     # a weed touching the crop's buffer
    conf = np.full(labels.shape, 0.9, np.float32)
    return labels, conf


def test_targets_have_ground_position_size_area_lane_and_time() -> None:
    labels, conf = _scene()
    recs = extract_targets(labels, conf, NADIR, BOOM, TargetConfig(crop_buffer_m=0.0),
                           speed_mps=2.0)
    big = recs[np.argmax(recs["area"])]
    # rows 100..139 -> x = (239.5 - 119.5) mm; cols 330..359 -> y = -(344.5 - 319.5) mm
    assert big["x"] == pytest.approx(0.120, abs=1e-4)
    assert big["y"] == pytest.approx(-0.025, abs=1e-4)
    assert big["size_x"] == pytest.approx(0.040, abs=1e-4)
    assert big["area"] == pytest.approx(0.04 * 0.03, rel=1e-2)  # opening rounds the corners
    assert big["lane"] == BOOM.lane_of(np.array([-0.025]))[0] == 5
    assert big["time_to_nozzle"] == pytest.approx((0.12 + 0.5) / 2.0, abs=1e-4)
    assert big["confidence"] == pytest.approx(0.9) and big["class_id"] == 2
    assert (big["u"], big["v"]) == pytest.approx((344.5, 119.5))
    assert not np.any((recs["u"] < 60))                         # the speck is gone


def test_wide_patch_is_split_at_lane_boundaries() -> None:
    labels = np.zeros((480, 640), np.uint8)
    labels[200:220, 200:440] = 2             # 24 cm across: spans about 5 lanes
    recs = extract_targets(labels, None, NADIR, BOOM)
    assert len(recs) >= 5
    assert (recs["size_y"] <= BOOM.nozzle_spacing_m + 0.0011).all()
    assert len(set(recs["lane"])) == len(recs)
    assert recs["area"].sum() == pytest.approx(0.02 * 0.24, rel=1e-3)


def test_crop_buffer_trims_or_suppresses() -> None:
    labels, conf = _scene()
    trim = extract_targets(labels, conf, NADIR, BOOM, TargetConfig(crop_buffer_m=0.005))
    assert all(r["u"] >= 466 - 0.5 for r in trim if r["u"] > 450)  # only the far part is left
    assert any(r["u"] > 450 for r in trim)
    wide = extract_targets(labels, conf, NADIR, BOOM, TargetConfig(crop_buffer_m=0.02))
    assert not any(r["u"] > 450 for r in wide)                     # all of it in the buffer
    suppress = extract_targets(labels, conf, NADIR, BOOM,
                               TargetConfig(crop_buffer_m=0.005, crop_protection="suppress"))
    assert not any(r["u"] > 450 for r in suppress)
    assert any(r["u"] == pytest.approx(344.5) for r in suppress)   # the free weed stays


def test_area_and_confidence_thresholds() -> None:
    labels = np.zeros((480, 640), np.uint8)
    labels[10:16, 10:16] = 2              # 36 mm²
    labels[100:110, 100:110] = 2          # 100 mm²
    conf = np.full(labels.shape, 0.9, np.float32)
    conf[100:110, 100:110] = 0.4
    recs = extract_targets(labels, conf, NADIR, BOOM, TargetConfig(min_area_m2=5e-5))
    assert len(recs) == 0                  # the small one by area, the big one by confidence
    recs = extract_targets(labels, conf, NADIR, BOOM,
                           TargetConfig(min_area_m2=3e-5, min_confidence=0.3))
    assert len(recs) == 2
    conf8 = (conf * 255).astype(np.uint8)  # the confidence image as the node publishes it
    assert len(extract_targets(labels, conf8, NADIR, BOOM,
                               TargetConfig(min_area_m2=3e-5, min_confidence=0.3))) == 2


def test_without_geometry_targets_keep_pixels_only() -> None:
    labels, conf = _scene()
    recs = extract_targets(labels, conf, None, None, TargetConfig(min_area_px=100))
    assert len(recs) >= 1 and np.isnan(recs["x"]).all() and (recs["lane"] == -1).all()
    assert np.isnan(recs["time_to_nozzle"]).all()


def test_label_size_must_match_the_camera_model() -> None:
    with pytest.raises(InvalidFrameError, match="does not match the camera model"):
        TargetExtractor(NADIR, BOOM).extract(np.zeros((240, 320), np.uint8), None)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="crop_protection"):
        TargetConfig(crop_protection="maybe")
    with pytest.raises(ConfigError, match="both sprayed and protected"):
        TargetConfig(spray_classes=(1, 2), protect_classes=(1,))


def test_tracking_keeps_one_id_across_frames_with_known_motion() -> None:
    tracker = TargetTracker(gate_m=0.03)
    ids = []
    for k in range(5):               # the robot drives 6 cm per frame; the weed is fixed
        travel = 0.06 * k
        recs = empty_targets(2)
        recs["x"] = [0.20 - travel + 0.003 * (-1) ** k, 0.25 - travel]
        recs["y"] = [0.05, -0.10]
        recs["class_id"] = 2
        out = tracker.update(recs, travel)
        ids.append(tuple(out["track_id"]))
    assert len(set(ids)) == 1 and 0 not in ids[0] and ids[0][0] != ids[0][1]
    # a weed appearing later gets a new id; a NaN target stays untracked
    recs = empty_targets(2)
    recs["x"], recs["y"], recs["class_id"] = [0.5, np.nan], [0.0, 0.0], 2
    out = tracker.update(recs, 0.3)
    assert out["track_id"][0] not in ids[0] and out["track_id"][1] == 0


def test_tracker_memory_is_bounded() -> None:
    tracker = TargetTracker(max_tracks=100, forget_behind_m=1.0)
    rng = np.random.default_rng(0)
    for k in range(200):
        recs = empty_targets(20)
        recs["x"], recs["y"], recs["class_id"] = \
            rng.uniform(0, 0.3, 20), rng.uniform(-.3, .3, 20), 2
        tracker.update(recs, 0.05 * k)
    assert len(tracker) <= 100


def test_extraction_on_a_rendered_blob_matches_its_ground_truth() -> None:
    """A 3 cm disc drawn on the ground through a pitched camera comes back where it was."""
    cam = CameraIntrinsics(640, 480, 700.0, 700.0, 320.0, 240.0)
    proj = GroundProjector(cam, CameraMount(x=0.1, y=0.0, height=0.9, pitch_deg=20.0))
    centre = np.array([0.45, -0.08])
    angles = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    circle = centre + 0.015 * np.column_stack((np.cos(angles), np.sin(angles)))
    poly = np.round(proj.ground_to_pixels(circle)).astype(np.int32)
    labels = np.zeros((480, 640), np.uint8)
    cv2.fillPoly(labels, [poly], 2)
    recs = extract_targets(labels, None, proj, Boom(1, 0.5, 0.0, -0.4), TargetConfig())
    assert len(recs) == 1
    assert recs["x"][0] == pytest.approx(centre[0], abs=0.002)
    assert recs["y"][0] == pytest.approx(centre[1], abs=0.002)
    # fillPoly includes the boundary pixels (+ half a pixel all round, about 1.3 mm/px here)
    assert recs["area"][0] == pytest.approx(np.pi * 0.015 ** 2, rel=0.15)


def test_every_target_has_a_sprayed_class_even_where_closing_bridged_soil() -> None:
    labels = np.zeros((480, 640), np.uint8)
    # leaves 3 px wide with 1 px gaps, which the closing fills; the lane boundary between
    # columns 219 and 220 starts a piece with the gap column 220, and the leaves right of it
    # start a row lower: that piece's first pixel is soil bridged by the closing
    for col in range(197, 260, 4):
        labels[100 if col < 220 else 101:160, col:col + 3] = 2
    recs = extract_targets(labels, None, NADIR, BOOM, TargetConfig(opening_px=0, closing_px=3))
    assert len(recs) >= 1 and (recs["class_id"] == 2).all()
