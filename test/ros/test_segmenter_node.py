"""The segmenter node in a subprocess, talked to over real ROS 2 topics (Fast DDS): outputs,
headers, optional outputs, diagnostics, parameters, sim time, bad input, clean exit."""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from support import REPO

pytest.importorskip("rclpy")

from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from crop_weed_seg.image_files import read_rgb  # noqa: E402
from crop_weed_seg.model.contract import load_model_contract  # noqa: E402
from crop_weed_seg.perception.image_conversion import image_to_array  # noqa: E402
from crop_weed_seg.perception.segmenter import Segmenter  # noqa: E402
from crop_weed_seg.ros.segmenter_node import default_model_dir  # noqa: E402
from crop_weed_seg.ros.spray_messages import POINT_FIELD_MSGS, records_from_cloud  # noqa: E402
from crop_weed_seg.spray.geometry import (  # noqa: E402
    Boom,
    CameraIntrinsics,
    CameraMount,
    GroundProjector,
)

from support.nodes import (  # noqa: E402,E501
    NodeProcess,
    Probe,
    _values,  # noqa: E402
    fill,
    frame_message,
    key,
    labels_array,
    stamp,
)
from support.ros import ros_context, set_parameters  # noqa: E402
from support.yuv import i420_reference, yuv_message  # noqa: E402

SAMPLES = sorted((REPO / "samples" / "field" / "images").glob("*.png"))


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [read_rgb(p) for p in SAMPLES[:3]]


@pytest.fixture(scope="module")
def reference() -> Segmenter:
    return Segmenter(default_model_dir(), "onnxruntime")


@pytest.fixture(scope="module")
def context() -> Iterator[object]:
    with ros_context() as ctx:
        yield ctx


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    # The frames here come one at a time, often a second apart: with the default
    # stale_timeout_s (0.5 s, the planner's) the diagnostics would often say STALE instead of
    # the level a test looks for.
    proc = NodeProcess(tmp_path_factory.mktemp("node"), "/seg", "-p", "backend:=onnxruntime",
                       "-p", "stale_timeout_s:=5.0")
    yield proc
    proc.stop_cleanly()


@pytest.fixture(scope="module")
def probe(context: object, node: NodeProcess) -> Iterator[Probe]:
    p = Probe(context, "/seg")
    p.wait_for_node()
    yield p
    p.close()


def _set_parameters(probe: Probe, **values: object) -> list:
    return set_parameters(probe.node, probe.executor, "/seg/crop_weed_seg", **values)


def test_labels_keep_the_input_header_and_resolution(probe: Probe, frames: list,
                                                     reference: Segmenter) -> None:
    for i, rgb in enumerate(frames):
        sent = frame_message(rgb, sec=1000 + i, frame_id=f"cam_{i}")
        got = probe.send_and_wait(sent)
        assert got.header.frame_id == f"cam_{i}"
        assert key(got.header.stamp) == (1000 + i, 0)
        assert (got.height, got.width, got.encoding) == (480, 640, "mono8")
        labels = labels_array(got)
        expected = reference.segment(rgb, "RGB", want_confidence=False).labels
        assert set(np.unique(labels)) <= {0, 1, 2}
        assert np.mean(labels == expected) > 0.999


def test_bgr_and_odd_sizes_are_answered_at_their_own_resolution(probe: Probe,
                                                                frames: list) -> None:
    odd = np.ascontiguousarray(frames[0][:479, :641 - 2])
    got = probe.send_and_wait(frame_message(odd, sec=1100, encoding="bgr8"))
    assert (got.height, got.width) == (479, 639)


@pytest.mark.parametrize("h,w,cx,cy,r", [(720, 1280, 1000, 200, 40), (600, 600, 450, 120, 40)])
def test_16_9_and_1_1_frames_keep_their_geometry(probe: Probe, reference: Segmenter,
                                                h: int, w: int, cx: int, cy: int,
                                                r: int) -> None:
    """Frames of another aspect ratio than the model's 4:3 are fitted, not stretched: a plant
    disc comes back as labels at the frame's size, where the frame has it."""
    rng = np.random.default_rng(3)
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = (110, 80, 60)
    rgb = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
    cv2.circle(rgb, (cx, cy), r, (50, 160, 40), -1)
    got = probe.send_and_wait(frame_message(rgb, sec=1150 + h % 97))
    assert (got.height, got.width) == (h, w)
    labels = labels_array(got)
    assert np.mean(labels == reference.segment(rgb, "RGB").labels) > 0.999
    disc = np.zeros((h, w), np.uint8)
    cv2.circle(disc, (cx, cy), r, 1, -1)
    vegetation = labels > 0
    assert (vegetation & (disc > 0)).sum() / (vegetation | (disc > 0)).sum() > 0.9
    ys, xs = np.nonzero(vegetation)
    assert abs(xs.mean() - cx) < 3 and abs(ys.mean() - cy) < 3


def test_confidence_and_overlay_only_while_subscribed(probe: Probe, frames: list,
                                                      reference: Segmenter) -> None:
    before = probe.latest_values(lambda v: v["frames_out"] != "0")[2]
    assert before["confidence_published"] == "0" and before["overlay_published"] == "0"

    probe.subscribe("confidence")
    sec = 1200
    while not probe.confidence:  # until the node has matched the new subscriber
        probe.send_and_wait(frame_message(frames[1], sec=sec))
        sec += 1
        assert sec < 1260, "confidence never arrived after subscribing"
    (k, conf_msg), = probe.confidence.items()
    assert conf_msg.header == probe.labels[k].header
    conf, _ = image_to_array(conf_msg)
    expected = reference.segment(frames[1], "RGB").confidence
    assert np.mean(np.abs(conf.astype(int) - np.round(expected * 255)) <= 1) > 0.999

    # overlay: capped to overlay_max_rate_hz (5) by image time: frames 50 ms apart → every 4th
    probe.subscribe("overlay")
    sec_ns = [sec, 0]
    while not probe.overlay:
        probe.send_and_wait(frame_message(frames[2], sec=sec_ns[0]))
        sec_ns[0] += 1
        assert sec_ns[0] < sec + 60, "overlay never arrived after subscribing"
    # one more frame a second later must get an overlay: it is the reference for the cap
    first = (max(probe.overlay)[0] + 1, 0)
    probe.send_and_wait(frame_message(frames[2], sec=first[0]))
    assert probe.spin_until(lambda: first in probe.overlay, 10.0)
    for k in range(1, 13):
        t_ns = first[0] * 10**9 + k * 50_000_000
        msg = frame_message(frames[2], sec=0)
        msg.header.stamp = stamp(t_ns // 10**9, t_ns % 10**9)
        probe.send_and_wait(msg)
    last = (first[0], 600_000_000)
    assert probe.spin_until(lambda: last in probe.overlay, 10.0)
    offsets = sorted(round((s * 1e9 + ns - first[0] * 1e9) / 5e7) for s, ns in probe.overlay
                     if (s, ns) >= first)
    assert offsets == [0, 4, 8, 12]
    over, order = image_to_array(probe.overlay[first])
    assert order == "BGR" and over.shape == (480, 640, 3)
    soil = labels_array(probe.labels[first]) == 0
    assert np.array_equal(over[soil], frames[2][:, :, ::-1][soil])  # soil is left unblended


def test_labels_color_only_while_subscribed_in_the_model_palette(probe: Probe,
                                                                 frames: list) -> None:
    before = probe.latest_values(lambda v: v["frames_out"] != "0")[2]
    assert before["labels_color_published"] == "0"

    probe.subscribe("labels_color")
    sec = 1700
    while not probe.labels_color:  # until the node has matched the new subscriber
        probe.send_and_wait(frame_message(frames[0], sec=sec, frame_id="cam_color"))
        sec += 1
        assert sec < 1740, "labels_color never arrived after subscribing"
    k = min(probe.labels_color)
    colour_msg = probe.labels_color[k]
    assert colour_msg.header == probe.labels[k].header
    assert colour_msg.header.frame_id == "cam_color" and k[1] == 0 and 1700 <= k[0] < sec
    assert (colour_msg.height, colour_msg.width, colour_msg.encoding) == (480, 640, "rgb8")
    colour, order = image_to_array(colour_msg)
    palette = np.array(load_model_contract(default_model_dir()).palette, np.uint8)
    labels = labels_array(probe.labels[k])
    assert order == "RGB" and len(np.unique(labels)) > 1
    assert np.array_equal(colour, palette[labels])
    _, _, values = probe.latest_values(lambda v: int(v["labels_color_published"]) >= 1)
    assert int(values["labels_color_published"]) <= int(values["frames_out"])


def test_yuv422_frames_are_segmented_at_their_own_resolution(probe: Probe, frames: list,
                                                             reference: Segmenter) -> None:
    """A UYVY camera frame (padded rows, a size other than the model's) over DDS: labels at
    the frame's size, as for the same frame decoded by OpenCV and sent as rgb8."""
    rgb = np.ascontiguousarray(frames[1][:470, :630])
    sent = yuv_message(rgb, "yuv422", pad=12)
    sent.header.stamp = stamp(1750)
    sent.header.frame_id = "cam_yuv"
    got = probe.send_and_wait(sent)
    assert (got.height, got.width, got.encoding) == (470, 630, "mono8")
    assert got.header.frame_id == "cam_yuv" and key(got.header.stamp) == (1750, 0)
    expected = reference.segment(i420_reference(rgb), "RGB", want_confidence=False).labels
    assert np.mean(labels_array(got) == expected) > 0.999


def test_diagnostics_report_rates_latency_and_the_model(probe: Probe, frames: list) -> None:
    for i in range(5):
        probe.send_and_wait(frame_message(frames[0], sec=1300 + i))
    _, status, values = probe.latest_values(lambda v: int(v["frames_out"]) >= 5)
    contract = load_model_contract(default_model_dir())
    assert values["backend"] == "onnxruntime"
    assert values["model"] == contract.name and values["model_sha256"] == contract.onnx_sha256
    for name in ("input_rate_hz", "output_rate_hz", "latency_p50_ms", "latency_p95_ms",
                 "latency_max_ms", "preprocess_ms", "inference_ms", "postprocess_ms",
                 "dropped_frames", "rejected_frames"):
        assert name in values, name
    assert float(values["inference_ms"]) > 0
    # stamps are in 1970 here, so latency (publish time minus stamp) is decades: WARN
    assert float(values["latency_p50_ms"]) > 1e12
    assert status.level == status.WARN and "latency p95" in status.message
    assert values["input_topic"] == "/seg/image"


def test_parameters_are_validated_with_a_reason(probe: Probe) -> None:
    results = _set_parameters(probe, overlay_alpha=1.5)
    assert not results[0].successful and "overlay_alpha" in results[0].reason
    results = _set_parameters(probe, backend="torch")
    assert not results[0].successful and "read-only" in results[0].reason.lower()
    results = _set_parameters(probe, latency_budget_ms="fast")
    assert not results[0].successful
    results = _set_parameters(probe, overlay_alpha=0.2, latency_budget_ms=250.0)
    assert all(r.successful for r in results)
    # the parameters shared with the planner: its ranges (parameters/shared.py)
    results = _set_parameters(probe, nozzle_offset_m=-0.1)
    assert not results[0].successful and "nozzle_offset_m" in results[0].reason
    results = _set_parameters(probe, target_frame="odom")
    assert not results[0].successful and "read-only" in results[0].reason.lower()
    results = _set_parameters(probe, boom_center_y_m=15.0, odom_timeout_s=0.0)
    assert all(r.successful for r in results)
    assert all(r.successful for r in _set_parameters(probe, boom_center_y_m=0.0,
                                                     odom_timeout_s=1.0))
    # each value fits on its own, together they do not: refused as the planner refuses it
    results = _set_parameters(probe, default_speed_mps=12.0)  # above max_speed_mps (10)
    assert not results[0].successful and "max_speed_mps" in results[0].reason


def test_stale_when_frames_stop(probe: Probe) -> None:
    assert _set_parameters(probe, stale_timeout_s=0.5)[0].successful
    deadline_hit = probe.spin_until(
        lambda: probe.diagnostics[-1][1].level == probe.diagnostics[-1][1].STALE, 10.0)
    assert deadline_hit, probe.diagnostics[-1][1]
    assert "no image for" in probe.diagnostics[-1][1].message
    assert _set_parameters(probe, stale_timeout_s=5.0)[0].successful


def _malformed(i: int) -> Image:
    """One of six kinds of broken ``sensor_msgs/Image``."""
    msg = Image(height=48, width=64, encoding="rgb8", step=64 * 3)
    msg.header.stamp = stamp(50_000 + i)
    kind = i % 6
    payload = bytes(64 * 48 * 3)
    if kind == 0:            # step shorter than a row
        msg.step = 64 * 3 - 1
    elif kind == 1:          # truncated data
        payload = payload[:-100]
    elif kind == 2:          # unknown encoding
        msg.encoding = "yuv_magic"
    elif kind == 3:          # zero size
        msg.height = msg.width = msg.step = 0
        payload = b""
    elif kind == 4:          # huge header, small data
        msg.height = msg.width = 20000
        msg.step = 60000
    else:                    # padded step that the data does not have
        msg.step = 64 * 3 + 16
    return fill(msg, payload)


def test_survives_malformed_images_and_answers_every_valid_one(
        context: object, tmp_path: Path, frames: list) -> None:
    proc = NodeProcess(tmp_path, "/rob", "-p", "input_qos_reliability:=reliable",
                       "-p", "input_qos_depth:=100", "-p", "backend:=onnxruntime")
    probe = Probe(context, "/rob")
    try:
        probe.wait_for_node()
        small = cv2.resize(frames[0], (320, 240), interpolation=cv2.INTER_AREA)
        malformed = valid = 0
        for round_ in range(50):
            for j in range(5):
                probe.send(_malformed(round_ * 5 + j))
                malformed += 1
            # reliable input: no resend, so that the counts below are exact
            probe.send_and_wait(frame_message(small, sec=60_000 + round_), resend_after=30.0)
            valid += 1
        _, status, values = probe.latest_values(
            lambda v: int(v["frames_in"]) == malformed + valid, timeout=15.0)
        assert int(values["frames_out"]) == valid
        # each malformed message was either rejected or replaced by a newer one while waiting
        assert int(values["rejected_frames"]) + int(values["dropped_frames"]) == malformed
        # how many a burst loses to newer messages depends on thread timing; each kind's
        # rejection on its own is covered by test_image_conversion.py
        assert int(values["rejected_frames"]) >= 1 and values["last_reject_reason"]
        assert values["failed_frames"] == "0"
        assert proc.proc.poll() is None
    finally:
        probe.close()
        code = proc.stop(signal.SIGTERM)
    out = proc.output()
    assert code == 0 and "Traceback" not in out, out
    assert "frame skipped" in out  # logged, throttled


def test_compressed_transport_and_corrupt_jpeg(context: object, tmp_path: Path,
                                               frames: list) -> None:
    proc = NodeProcess(tmp_path, "/jpg", "-p", "input_transport:=compressed",
                       "-p", "input_qos_reliability:=reliable", "-p", "input_qos_depth:=50",
                       "-r", "image:=/jpg/camera")
    # image_transport naming: the remapped base topic plus /compressed
    probe = Probe(context, "/jpg", compressed=True, image_topic="/jpg/camera/compressed")
    try:
        probe.wait_for_node()
        jpeg = cv2.imencode(".jpg", frames[0][:, :, ::-1])[1].tobytes()
        for i in range(20):
            bad = CompressedImage(format="rgb8; jpeg compressed bgr8")
            bad.header.stamp = stamp(70_000 + i)
            fill(bad, jpeg[: len(jpeg) // 3] if i % 2 else b"\xff\xd8garbage" * 10)
            probe.send(bad)
            good = CompressedImage(format="rgb8; jpeg compressed bgr8")
            good.header.stamp = stamp(80_000 + i)
            fill(good, jpeg)
            probe.send_and_wait(good)
        assert all(key(stamp(70_000 + i)) not in probe.labels for i in range(20))
        assert probe.labels[(80_000, 0)].width == 640
    finally:
        probe.close()
        code = proc.stop(signal.SIGTERM)
    assert code == 0, proc.output()


def test_use_sim_time_latency_is_measured_on_the_sim_clock(context: object, tmp_path: Path,
                                                           frames: list) -> None:
    proc = NodeProcess(tmp_path, "/sim", "-p", "use_sim_time:=true")
    probe = Probe(context, "/sim")
    sim_now = stamp(5000, 250_000_000)
    try:
        probe.wait_for_node()

        def clock_reached() -> bool:
            probe.clock_pub.publish(Clock(clock=sim_now))
            return any(key(t) == key(sim_now) for t, _ in probe.diagnostics)
        assert probe.spin_until(clock_reached, 20.0), "node never reported the sim time"
        got = probe.send_and_wait(frame_message(frames[0], sec=5000))   # 250 ms before now
        assert key(got.header.stamp) == (5000, 0)
        _, _, values = probe.latest_values(lambda v: v["frames_out"] == "1")
        assert math.isclose(float(values["latency_p50_ms"]), 250.0, abs_tol=0.5)
        assert math.isclose(float(values["latency_max_ms"]), 250.0, abs_tol=0.5)
    finally:
        probe.close()
        proc.stop()


def test_missing_model_is_fatal_with_a_clear_message(tmp_path: Path) -> None:
    proc = NodeProcess(tmp_path, "/bad", "-p", f"model_dir:={tmp_path / 'no_such_model'}")
    code = proc.proc.wait(60)
    out = proc.output()
    proc.stop()
    assert code == 1
    assert "fatal" in out and "no_such_model" in out and "Traceback" not in out


def _soil_frame() -> np.ndarray:
    rng = np.random.default_rng(5)
    soil = np.empty((480, 640, 3), np.uint8)
    soil[:] = (110, 85, 60)
    return np.clip(soil + rng.normal(0, 6, soil.shape), 0, 255).astype(np.uint8)


def _fresh(rgb: np.ndarray) -> Image:
    """A frame stamped now (spray targets come only from frames younger than
    max_frame_age_s)."""
    msg = frame_message(rgb, sec=0)
    msg.header.stamp = stamp(*divmod(time.time_ns(), 1_000_000_000))
    return msg


def test_spray_targets_every_frame_with_the_input_stamp(probe: Probe, frames: list) -> None:
    got = probe.send_and_wait(frame_message(_soil_frame(), sec=1400, frame_id="cam"))
    k = key(got.header.stamp)
    assert probe.spin_until(lambda: k in probe.targets, 10.0)
    empty = probe.targets[k]
    assert empty.header.frame_id == "base_link" and key(empty.header.stamp) == k
    assert (empty.width, empty.height, empty.point_step, len(empty.data)) == (0, 1, 48, 0)
    assert [(f.name, f.offset, f.datatype, f.count) for f in empty.fields] == \
        [(f.name, f.offset, f.datatype, f.count) for f in POINT_FIELD_MSGS]
    # a frame from 1970 is far older than max_frame_age_s: never sprayed from, counted
    old = probe.send_and_wait(frame_message(frames[0], sec=1401))
    assert probe.spin_until(lambda: (1401, 0) in probe.targets, 10.0)
    assert probe.targets[(1401, 0)].width == 0
    # a fresh frame with weeds but no camera_info: targets in pixels, no ground position
    got = probe.send_and_wait(_fresh(frames[0]))
    k = key(got.header.stamp)
    assert probe.spin_until(lambda: k in probe.targets, 10.0)
    recs = records_from_cloud(probe.targets[k])
    assert len(recs) > 0 and np.isnan(recs["x"]).all() and (recs["lane"] == -1).all()
    assert key(old.header.stamp) == (1401, 0)
    _, status, values = probe.latest_values(lambda v: int(v["frames_too_old"]) >= 1)
    assert values["geometry"] == "none" and status.level == status.WARN


def _camera_info(width: int = 640, height: int = 480, f: float = 800.0) -> CameraInfo:
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.header.stamp = stamp(*divmod(time.time_ns(), 1_000_000_000))
    info.k = [f, 0.0, (width - 1) / 2, 0.0, f, (height - 1) / 2, 0.0, 0.0, 1.0]
    info.d = [0.0] * 5
    return info


def test_targets_on_the_ground_with_camera_info_odometry_and_bad_input(
        context: object, tmp_path: Path, frames: list) -> None:
    proc = NodeProcess(tmp_path, "/geo", "-p", "input_qos_reliability:=reliable",
                       "-p", "input_qos_depth:=10", "-p", "odom_timeout_s:=60.0",
                       "-p", "stale_timeout_s:=5.0")
    probe = Probe(context, "/geo")
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    info_pub = probe.node.create_publisher(CameraInfo, "/geo/camera_info", reliable)
    odom_pub = probe.node.create_publisher(Odometry, "/geo/odom", reliable)

    def odom(vx: float) -> None:
        msg = Odometry()
        msg.header.stamp = stamp(*divmod(time.time_ns(), 1_000_000_000))
        msg.twist.twist.linear.x = vx
        odom_pub.publish(msg)

    def targets_of(rgb: np.ndarray) -> np.ndarray:
        got = probe.send_and_wait(_fresh(rgb))
        k = key(got.header.stamp)
        assert probe.spin_until(lambda: k in probe.targets, 10.0)
        return records_from_cloud(probe.targets[k])

    try:
        probe.wait_for_node()
        assert probe.spin_until(lambda: info_pub.get_subscription_count() > 0
                                and odom_pub.get_subscription_count() > 0, 20.0)
        for _ in range(20):     # until the node has used both (they travel on other topics)
            info_pub.publish(_camera_info())
            odom(1.0)           # odometry is a stream, received best effort
            recs = targets_of(frames[0])
            if len(recs) and np.isfinite(recs["time_to_nozzle"]).all():
                break
        else:
            raise AssertionError("targets never got geometry and speed")
        proj = GroundProjector(CameraIntrinsics(640, 480, 800.0, 800.0, 319.5, 239.5),
                               CameraMount(height=0.8))
        xy = proj.pixels_to_ground(np.column_stack((recs["u"], recs["v"])))
        assert np.allclose(xy, np.column_stack((recs["x"], recs["y"])), atol=2e-4)
        boom = Boom(12, 0.05, 0.0, -0.5)
        assert np.array_equal(recs["lane"], boom.lane_of(recs["y"]))
        assert np.allclose(recs["time_to_nozzle"], recs["x"] + 0.5, atol=1e-5)  # 1 m/s
        tracked = recs["track_id"]
        assert (tracked > 0).all() and len(set(tracked)) == len(tracked)

        # bad input: zero focal length (the last good one is kept), NaN and reversing odometry
        def bad_input_counted() -> bool:
            info_pub.publish(_camera_info(f=0.0))
            odom(float("nan"))
            odom(-0.4)
            return bool(probe.diagnostics) and _values(probe.diagnostics[-1][1]).get(
                "bad_odometry", "0") >= "2" and _values(probe.diagnostics[-1][1]).get(
                "bad_camera_info", "0") >= "1"
        assert probe.spin_until(bad_input_counted, 15.0)
        recs = targets_of(frames[0])
        assert np.isfinite(recs["x"]).all() and np.isnan(recs["time_to_nozzle"]).all()
        # a camera_info of another shape than the images: no geometry, counted
        for _ in range(20):
            info_pub.publish(_camera_info(width=800, height=800))
            recs = targets_of(frames[0])
            if (recs["lane"] == -1).all():
                break
        assert (recs["lane"] == -1).all() and np.isnan(recs["x"]).all()
        _, status, values = probe.latest_values(lambda v: int(v["camera_info_mismatch"]) >= 1)
        assert status.level == status.WARN and values["geometry"] == "none"
    finally:
        probe.close()
        code = proc.stop()
    assert code == 0, proc.output()
