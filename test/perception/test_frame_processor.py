"""The one frame processor (perception/frame.py) without ROS: layout normalisation done once,
the node's path and the bag path giving the same labels and targets for the same frame, timings,
the time rules (jumps, future and old frames), the spray health rule, the shared PointField
datatypes."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

import crop_weed_seg.perception.segmenter as segmenter_module
from crop_weed_seg.errors import ConfigError, InvalidFrameError
from crop_weed_seg.image_files import read_rgb
from crop_weed_seg.perception.frame import (
    FUTURE,
    TOO_OLD,
    Frame,
    FrameProcessor,
    FrameSettings,
    SprayHealth,
    confidence_mono8,
    decode_message,
    labels_color_rgb8,
    overlay_bgr8,
    palette_rgb8,
    stamp_seconds,
)
from crop_weed_seg.perception.image_conversion import normalize_layout, to_bgr8, to_rgb8
from crop_weed_seg.perception.segmenter import SegmentationResult, Segmenter, Timings
from crop_weed_seg.perception.visualize import overlay
from crop_weed_seg.spray.pipeline import SpraySettings
from crop_weed_seg.spray.records import (
    POINT_FIELDS,
    POINTFIELD_DATATYPES,
    POINTFIELD_NUMPY,
    TARGET_DTYPE,
)

from support import REPO

START_NS = 1_780_308_000_123_456_789
PERIOD_NS = 100_000_000
H, W = 240, 320
K = [400.0, 0.0, (W - 1) / 2, 0.0, 400.0, (H - 1) / 2, 0.0, 0.0, 1.0]


@pytest.fixture(scope="module")
def segmenter():
    pytest.importorskip("onnxruntime")
    seg = Segmenter(REPO / "models" / "default", "onnxruntime")
    yield seg
    seg.close()


@pytest.fixture(scope="module")
def rgb_frames() -> list[np.ndarray]:
    paths = sorted((REPO / "samples" / "field" / "images").glob("*.png"))[:3]
    return [cv2.resize(read_rgb(p), (W, H), interpolation=cv2.INTER_AREA) for p in paths]


class FakeSegmenter:
    """Labels with one weed square in the same place (the robot stands still)."""

    def segment(self, frame: np.ndarray, channel_order: str = "RGB",
                want_confidence: bool = True) -> SegmentationResult:
        labels = np.zeros(frame.shape[:2], np.uint8)
        labels[150:162, 150:158] = 2          # within one nozzle lane
        conf = np.full(labels.shape, 0.9, np.float32)
        return SegmentationResult(labels, conf if want_confidence else None, {},
                                  Timings(1.0, 2.0, 3.0), labels, conf)


def frame_at(k: int, dt_ns: int = PERIOD_NS) -> Frame:
    return Frame(np.zeros((H, W, 3), np.uint8), "RGB", START_NS + k * dt_ns)


def processor_with_geometry(max_frame_age_s: float = math.inf, max_future_s: float = 0.2,
                            **spray) -> FrameProcessor:
    """CameraInfo for the frames and a robot standing still (odometry 0 m/s)."""
    settings = FrameSettings(SpraySettings(**spray), max_frame_age_s, max_future_s)
    proc = FrameProcessor(FakeSegmenter(), settings)
    proc.set_camera_info(K, [0.0] * 5, W, H, "plumb_bob")
    assert proc.update_odometry(stamp_seconds(START_NS), 0.0)
    return proc


# ------------------------------------------------------------------------------------ layout
def test_layout_normalisation_16_bit_mono_and_alpha() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    rgb16 = rgb.astype(np.uint16) * 256 + 255          # the low byte must not leak in
    a, order = normalize_layout(rgb16, "RGB")
    assert (order, a.dtype, a.shape) == ("RGB", np.uint8, (5, 7, 3)) and (a == rgb).all()
    bgra = np.dstack([rgb[:, :, ::-1], np.full((5, 7), 9, np.uint8)])
    a, order = normalize_layout(bgra, "BGR")
    assert order == "BGR" and (a == rgb[:, :, ::-1]).all()
    assert (to_rgb8(bgra, "BGR") == rgb).all() and (to_bgr8(bgra, "BGR") == rgb[:, :, ::-1]).all()
    mono16 = (rgb[:, :, 1].astype(np.uint16) << 8)[:, :, None]   # (H, W, 1)
    a, order = normalize_layout(mono16, "MONO")
    assert order == "RGB" and (a == rgb[:, :, 1:2]).all() and a.shape == (5, 7, 3)
    assert to_rgb8(rgb, "RGB").flags.c_contiguous and to_bgr8(rgb, "RGB").flags.c_contiguous
    with pytest.raises(InvalidFrameError, match="float32"):
        normalize_layout(rgb.astype(np.float32), "RGB")
    with pytest.raises(InvalidFrameError, match="channel order"):
        normalize_layout(rgb, "XYZ")


def test_the_segmenter_normalises_each_frame_once_at_the_model_size(
        segmenter: Segmenter, rgb_frames: list, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[int, ...], str]] = []
    real = segmenter_module.normalize_layout

    def counting(array, order):
        calls.append((array.shape, str(array.dtype)))
        return real(array, order)

    monkeypatch.setattr(segmenter_module, "normalize_layout", counting)
    proc = FrameProcessor(segmenter)
    h, w = segmenter.contract.input.size          # no resize: 16-bit data compares exactly
    rgb = cv2.resize(rgb_frames[0], (w, h), interpolation=cv2.INTER_LINEAR)
    reference = proc.process(Frame(rgb, "RGB", START_NS)).labels
    layouts = {"rgb16": ((rgb.astype(np.uint16) << 8) + 255, "RGB"),
               "bgra8": (np.dstack([rgb[:, :, ::-1], np.zeros((h, w), np.uint8)]), "BGR"),
               "mono16": (rgb[:, :, 1].astype(np.uint16) << 8, "MONO")}
    results = {}
    for name, (array, order) in layouts.items():
        results[name] = proc.process(Frame(array, order, START_NS)).labels
    assert len(calls) == 1 + len(layouts)                 # once per frame, nowhere else
    assert all(shape[:2] == (h, w) for shape, _ in calls)  # at the model's input size
    assert [dtype for _, dtype in calls] == ["uint8", "uint16", "uint8", "uint16"]
    assert (results["rgb16"] == reference).all() and (results["bgra8"] == reference).all()
    assert results["mono16"].shape == (h, w)


def test_overlay_and_confidence_outputs() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    labels = np.zeros((H, W), np.uint8)
    labels[10:50, 20:90] = 2
    labels[100:150, 200:260] = 1
    bgr = overlay_bgr8(rgb, "RGB", labels, 0.3)
    assert (bgr == overlay(rgb, labels, 0.3)[:, :, ::-1]).all()
    assert (overlay_bgr8(np.ascontiguousarray(rgb[:, :, ::-1]), "BGR", labels, 0.3) == bgr).all()
    conf = np.array([[0.0, 0.5, 1.0, 0.998]], np.float32)          # round half up
    assert confidence_mono8(conf).tolist() == [[0, 128, 255, 254]]


def test_labels_color_is_the_model_palette_at_each_label() -> None:
    palette = palette_rgb8(((1, 2, 3), (40, 200, 40), (250, 0, 7)))
    assert palette.dtype == np.uint8 and palette.shape == (3, 3)
    labels = np.random.default_rng(2).integers(0, 3, (H, W), dtype=np.uint8)
    labels[0, :4] = (0, 1, 2, 255)                 # 255 (ignore) has no colour: black
    colour = labels_color_rgb8(labels, palette)
    assert colour.shape == (H, W, 3) and colour.dtype == np.uint8
    assert colour.flags.c_contiguous
    known = labels < 3
    assert (colour[known] == palette[labels[known]]).all()
    assert colour[0, :4].tolist() == [[1, 2, 3], [40, 200, 40], [250, 0, 7], [0, 0, 0]]
    wide = labels_color_rgb8(labels.astype(np.int32) % 3, palette)   # other dtypes too
    assert (wide == palette[labels % 3]).all()


@pytest.mark.parametrize("palette", [((1, 2),), ((0, 0, 256),), ((-1, 0, 0),),
                                     ((0.5, 0, 0),)])
def test_a_palette_that_is_not_rgb_triples_is_a_config_error(palette: tuple) -> None:
    with pytest.raises(ConfigError, match="palette must be"):
        palette_rgb8(palette)


# ---------------------------------------------------------------------------- node vs bag
def _rosbags_messages(rgb_frames: list[np.ndarray]):
    rosbags = pytest.importorskip("rosbags")
    del rosbags
    from crop_weed_seg.bags.processing import typestore

    ts = typestore()
    T = ts.types

    def header(stamp: int, frame_id: str):
        sec, nsec = divmod(stamp, 10**9)
        return T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec), frame_id=frame_id)

    msgs = []
    for k, rgb in enumerate(rgb_frames * 2):
        t = START_NS + k * PERIOD_NS
        vec = T["geometry_msgs/msg/Vector3"]
        odom = T["nav_msgs/msg/Odometry"](
            header=header(t, "odom"), child_frame_id="base_link",
            pose=T["geometry_msgs/msg/PoseWithCovariance"](
                pose=T["geometry_msgs/msg/Pose"](
                    position=T["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0),
                    orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)),
                covariance=np.zeros(36)),
            twist=T["geometry_msgs/msg/TwistWithCovariance"](
                twist=T["geometry_msgs/msg/Twist"](linear=vec(x=0.6, y=0.0, z=0.0),
                                                   angular=vec(x=0.0, y=0.0, z=0.0)),
                covariance=np.zeros(36)))
        info = T["sensor_msgs/msg/CameraInfo"](
            header=header(t, "cam"), height=H, width=W, distortion_model="plumb_bob",
            d=np.zeros(5), k=np.array(K), r=np.eye(3).ravel(),
            p=np.array([K[0], 0, K[2], 0, 0, K[4], K[5], 0, 0, 0, 1, 0.]),
            binning_x=0, binning_y=0,
            roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0,
                                                      width=0, do_rectify=False))
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        image = T["sensor_msgs/msg/Image"](header=header(t, "cam"), height=H, width=W,
                                           encoding="bgr8", is_bigendian=0, step=W * 3,
                                           data=bgr.reshape(-1))
        msgs += [("/odom", t, odom), ("/camera/camera_info", t, info), ("/camera/image", t, image)]
    return ts, msgs


def test_the_node_path_and_the_bag_path_give_the_same_labels_and_targets(
        segmenter: Segmenter, rgb_frames: list, tmp_path: Path) -> None:
    ts, msgs = _rosbags_messages(rgb_frames)
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer

    from crop_weed_seg.bags.processing import process_bag

    src = tmp_path / "in"
    with Writer(src, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {}
        for topic, t, msg in msgs:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=ts)
            writer.write(conns[topic], t, ts.serialize_cdr(msg, msg.__msgtype__))
    settings = SpraySettings(min_confidence=0.3, default_speed_mps=-1.0)
    report = process_bag(src, tmp_path / "out", segmenter=segmenter, settings=settings)
    assert report.processed == len(rgb_frames) * 2
    bag_labels, bag_targets = [], []
    with Reader(tmp_path / "out") as reader:
        for conn, _t, raw in reader.messages():
            if conn.topic == "/camera/labels":
                msg = ts.deserialize_cdr(raw, conn.msgtype)
                bag_labels.append(np.asarray(msg.data).reshape(H, W))
            elif conn.topic == "/camera/spray_targets":
                msg = ts.deserialize_cdr(raw, conn.msgtype)
                bag_targets.append(np.frombuffer(bytes(np.asarray(msg.data)), TARGET_DTYPE))

    # The node's path: the same messages, camera state as callbacks, a clock 20 ms behind.
    node = FrameProcessor(segmenter, FrameSettings(spray=settings, max_frame_age_s=0.5))
    node_labels, node_targets = [], []
    for topic, _t, msg in msgs:
        if topic == "/camera/camera_info":
            node.set_camera_info(msg.k, msg.d, msg.width, msg.height, msg.distortion_model)
        elif topic == "/odom":
            st = msg.header.stamp
            node.update_odometry(stamp_seconds(st.sec * 10**9 + st.nanosec),
                                 msg.twist.twist.linear.x, msg.twist.twist.linear.y)
        else:
            frame = decode_message(msg, compressed=False)
            clock = functools.partial(int, frame.stamp_ns + 20_000_000)  # 20 ms later
            result = node.process(frame, want_confidence=True, clock_ns=clock)
            assert result.refused is None and result.geometry == "camera_info"
            assert result.confidence is not None and result.confidence.shape == (H, W)
            node_labels.append(result.labels)
            node_targets.append(result.targets)
    assert len(node_labels) == len(bag_labels) == len(rgb_frames) * 2
    for a, b in zip(node_labels, bag_labels):
        assert a.tobytes() == b.tobytes()
    assert sum(len(r) for r in node_targets) > 0, "the sample frames should give weed targets"
    assert any((r["track_id"] > 0).any() for r in node_targets)
    for a, b in zip(node_targets, bag_targets):
        assert a.tobytes() == b.tobytes()
    snap = node.snapshot()
    assert snap["targets_published"] == report.targets == sum(len(r) for r in node_targets)
    assert {k: snap[k] for k in report.counters} == report.counters


def test_timings_are_present_and_add_up(segmenter: Segmenter, rgb_frames: list) -> None:
    msg = SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=5, nanosec=7)),
                          encoding="rgb8", height=H, width=W, step=W * 3, is_bigendian=0,
                          data=rgb_frames[0].reshape(-1).tobytes())
    frame = decode_message(msg, compressed=False)
    assert frame.stamp_ns == 5_000_000_007 and frame.order == "RGB" and frame.decode_ms >= 0
    result = FrameProcessor(segmenter).process(frame, want_confidence=False)
    tm = result.timings
    stages = (tm.decode_ms, tm.preprocess_ms, tm.infer_ms, tm.postprocess_ms, tm.targets_ms)
    assert all(math.isfinite(v) and v >= 0 for v in stages) and tm.infer_ms > 0
    assert tm.total_ms == pytest.approx(sum(stages))
    assert result.confidence is None and result.confidence_model is not None
    assert result.stamp_ns == frame.stamp_ns and result.geometry == "none"
    assert result.labels_model.shape == result.confidence_model.shape
    assert sum(result.coverage.values()) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------- time
def test_a_jump_back_of_the_stamps_resets_tracking() -> None:
    proc = processor_with_geometry()
    ids = []
    for k in (0, 1, 2):
        r = proc.process(frame_at(k))
        assert r.time_jump is None and len(r.targets) == 1
        ids.append(int(r.targets["track_id"][0]))
    assert ids[0] == ids[1] == ids[2] > 0, "one weed, one track"
    r = proc.process(frame_at(-30))                    # 3 s back: a bag that loops
    assert r.time_jump is not None and "stamps jumped back" in r.time_jump
    assert proc.snapshot()["time_jumps"] == 1
    assert int(r.targets["track_id"][0]) > ids[0], "tracking started afresh, ids go on"


def test_clock_jump_future_and_old_frames_give_no_targets() -> None:
    proc = processor_with_geometry(max_frame_age_s=0.3, max_future_s=0.2)
    ok = proc.process(frame_at(0), clock_ns=lambda: START_NS + 50_000_000)
    assert ok.refused is None and len(ok.targets) == 1 and ok.age_s == pytest.approx(0.05)

    future = proc.process(frame_at(1), clock_ns=lambda: START_NS)         # 0.1 s ahead: fine
    assert future.refused is None
    future = proc.process(frame_at(5), clock_ns=lambda: START_NS + 100_000_000)  # 0.4 s ahead
    assert future.refused == FUTURE and len(future.targets) == 0
    assert "ahead of the node clock" in future.problem

    old = proc.process(frame_at(6), clock_ns=lambda: START_NS + 1_000_000_000)   # 0.4 s old
    assert old.refused == TOO_OLD and len(old.targets) == 0 and "0.400 s old" in old.problem

    back = proc.process(frame_at(-21), clock_ns=lambda: START_NS - 2_000_000_000)  # clock back
    assert back.time_jump is not None and "node clock jumped back" in back.time_jump
    snap = proc.snapshot()
    assert (snap["future_frames"], snap["frames_too_old"], snap["time_jumps"]) == (1, 1, 1)
    assert snap["targets_published"] == 1 + 1 + len(back.targets)
    assert snap["targets_last_frame"] == len(back.targets)


def test_settings_come_from_parameter_values_and_apply_to_the_next_frame() -> None:
    values = {"spray_classes": [2], "protect_classes": [1], "min_confidence": 0.95,
              "max_frame_age_s": 0.25, "max_future_s": 0.1, "max_speed_mps": 3.0,
              "overlay_alpha": 0.5, "default_speed_mps": 0.5}
    s = FrameSettings.from_values(values)
    assert s.spray.spray_classes == (2,) and s.spray.min_confidence == 0.95
    assert (s.max_frame_age_s, s.max_future_s, s.max_speed_mps) == (0.25, 0.1, 3.0)
    proc = processor_with_geometry()
    assert len(proc.process(frame_at(0)).targets) == 1
    proc.configure(s)                                     # confidence 0.9 < 0.95: no target
    assert len(proc.process(frame_at(1)).targets) == 0
    assert not proc.update_odometry(stamp_seconds(START_NS), 4.0)      # above max_speed_mps
    assert "max_speed_mps" in proc.odometry_problem
    assert proc.snapshot()["bad_odometry"] == 1


def test_no_geometry_without_camera_info_and_a_bad_camera_info_is_refused() -> None:
    proc = FrameProcessor(FakeSegmenter())
    r = proc.process(frame_at(0))
    assert r.geometry == "none" and len(r.targets) == 1 and r.targets["lane"][0] == -1
    with pytest.raises(InvalidFrameError):
        proc.set_camera_info([0.0] * 9, [0.0] * 5, W, H, "plumb_bob")
    snap = proc.snapshot()
    assert snap["bad_camera_info"] == 1 and snap["frames_without_geometry"] == 1


def test_invalid_frames_raise_and_count_nothing(segmenter: Segmenter) -> None:
    proc = FrameProcessor(segmenter)
    with pytest.raises(InvalidFrameError):
        proc.process(Frame(np.zeros((H, W, 2), np.uint8), "RGB", START_NS))
    assert proc.snapshot()["targets_published"] == 0


# ----------------------------------------------------------------------------- diagnostics
def _snap(**over) -> dict:
    snap = {"bad_camera_info": 0, "camera_info_mismatch": 0, "bad_odometry": 0,
            "frames_too_old": 0, "time_jumps": 0, "future_frames": 0, "geometry": "camera_info",
            "frames_out": 10, "last_camera_info_problem": "", "last_odometry_problem": "",
            "last_time_problem": ""}
    snap.update(over)
    return snap


def test_spray_health_warns_when_a_problem_counter_rises() -> None:
    health = SprayHealth()
    assert health.check(_snap(), "") is None
    msg = health.check(_snap(time_jumps=1, future_frames=1, last_time_problem="clock back"),
                       "")
    assert msg == ("spray input problems: time_jumps (clock back), future_frames; "
                   "geometry: camera_info (no camera_info)")
    assert health.check(_snap(time_jumps=1, future_frames=1), "") is None  # no new rise
    msg = health.check(_snap(time_jumps=1, future_frames=1, geometry="none"), "size mismatch")
    assert msg == "geometry: none (size mismatch)"
    assert health.check(_snap(time_jumps=1, future_frames=1, geometry="none", frames_out=0),
                        "") is None


# --------------------------------------------------------------------------- point fields
def test_one_pointfield_datatype_table() -> None:
    assert {POINTFIELD_NUMPY[POINTFIELD_DATATYPES[kind]] for _, kind, _, _ in POINT_FIELDS} \
        == {kind for _, kind, _, _ in POINT_FIELDS}
    for kind, code in POINTFIELD_DATATYPES.items():
        assert np.dtype(POINTFIELD_NUMPY[code]) == np.dtype(kind)
    try:
        from sensor_msgs.msg import PointField
    except ImportError:
        return
    names = {1: "INT8", 2: "UINT8", 3: "INT16", 4: "UINT16", 5: "INT32", 6: "UINT32",
             7: "FLOAT32", 8: "FLOAT64"}
    for code, name in names.items():
        assert getattr(PointField, name) == code


# -------------------------------------------------------------------------------- simulator
def test_the_simulator_runs_every_frame_through_the_frame_processor(
        segmenter: Segmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    from crop_weed_seg.sim import FieldConfig, SimCamera, generate_field, perceive, plan_drive
    from crop_weed_seg.spray.geometry import Boom

    calls = []
    real = FrameProcessor.process_segmented

    def counting(self, frame, seg, **kw):
        calls.append(frame.stamp_ns)
        return real(self, frame, seg, **kw)

    monkeypatch.setattr(FrameProcessor, "process_segmented", counting)
    boom = Boom(12, 0.05, 0.0, -0.5)
    fld = generate_field(FieldConfig(length_m=1.6, width_m=0.8, gsd_mm=2.0), seed=3)
    cam = SimCamera.default(W, H, 60.0)
    drive = plan_drive(fld, cam, boom, 1.0, 10.0)
    truth = perceive(fld, cam, boom, drive, None, seed=1)
    assert len(calls) == len(truth.frames) == drive.frame_count > 3
    records = np.concatenate([r for _, _, r in truth.frames])
    assert len(records) > 0 and (records["lane"] >= 0).any()
    tracked = records[records["track_id"] > 0]
    assert len(np.unique(tracked["track_id"])) < len(tracked), "weeds tracked across frames"
    model = perceive(fld, cam, boom, drive, segmenter, seed=1)
    records = np.concatenate([r for _, _, r in model.frames])
    assert len(calls) == 2 * drive.frame_count and len(records) > 0
    # pixel fields at camera resolution (the model's input is 512x384), as the node sends them
    assert records["u"].max() < W and records["v"].max() < H
