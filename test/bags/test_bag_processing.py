"""Offline bag processing (``crop_weed_seg.bags.processing``, ``crop-weed-seg bag``) and bags as
evaluation datasets (``crop_weed_seg.data.bag_dataset``): round trips in sqlite3 and mcap, topic
choice, broken frames counted, broken bags refused with the path and the reason, and never an
output bag at OUT after a failure."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from support import REPO

pytest.importorskip("rosbags")
pytest.importorskip("onnxruntime")

from rosbags.rosbag2 import Reader, StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

from crop_weed_seg.bags.processing import (  # noqa: E402
    BagProcessingError,
    image_base,
    process_bag,
    storage_of,
)
from crop_weed_seg.errors import CropWeedSegError, DatasetError  # noqa: E402
from crop_weed_seg.spray.records import POINT_FIELDS, records_from_bytes  # noqa: E402

SAMPLE = REPO / "test" / "fixtures" / "sample_bag"
TS = get_typestore(Stores.ROS2_HUMBLE)
T = TS.types
START = 1_780_308_000_000_000_000
PERIOD = 100_000_000
H, W = 240, 320


@pytest.fixture(scope="module")
def segmenter():
    from crop_weed_seg.perception.segmenter import Segmenter

    seg = Segmenter(REPO / "models" / "default", "onnxruntime")
    yield seg
    seg.close()


@pytest.fixture(scope="module")
def frames() -> list[tuple[np.ndarray, np.ndarray]]:
    """4 (rgb, truth labels) pairs from the sample bag, downscaled to 320x240."""
    out: dict[int, list] = {}
    with Reader(SAMPLE) as reader:
        for conn, _t, raw in reader.messages():
            if conn.topic == "/camera/camera_info":
                continue
            msg = TS.deserialize_cdr(raw, conn.msgtype)
            k = (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec - START) // PERIOD
            if k >= 4:
                continue
            img = cv2.imdecode(np.asarray(msg.data), cv2.IMREAD_UNCHANGED)
            if img.ndim == 3:
                img = cv2.cvtColor(cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA),
                                   cv2.COLOR_BGR2RGB)
            else:
                img = cv2.resize(img, (W, H), interpolation=cv2.INTER_NEAREST)
            out.setdefault(int(k), [None, None])[0 if img.ndim == 3 else 1] = img
    return [tuple(out[k]) for k in sorted(out)]


def _header(stamp: int, frame_id: str = "cam"):
    sec, nsec = divmod(stamp, 10**9)
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                                    frame_id=frame_id)


def image_msg(stamp: int, arr: np.ndarray, encoding: str = "rgb8", step: int | None = None,
              data: np.ndarray | None = None):
    h, w = arr.shape[:2]
    ch = arr.shape[2] if arr.ndim == 3 else 1
    return T["sensor_msgs/msg/Image"](
        header=_header(stamp), height=h, width=w, encoding=encoding, is_bigendian=0,
        step=w * ch if step is None else step,
        data=np.ascontiguousarray(arr).reshape(-1) if data is None else data)


def compressed_msg(stamp: int, arr: np.ndarray, ext: str = ".jpg", payload: bytes | None = None):
    if payload is None:
        img = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if arr.ndim == 3 else arr
        payload = cv2.imencode(ext, img)[1].tobytes()
    fmt = "rgb8; jpeg compressed bgr8" if ext == ".jpg" else "mono8; png compressed mono8"
    return T["sensor_msgs/msg/CompressedImage"](header=_header(stamp), format=fmt,
                                                data=np.frombuffer(payload, np.uint8))


def camera_info_msg(stamp: int, w: int = W, h: int = H, f: float = 400.0):
    return T["sensor_msgs/msg/CameraInfo"](
        header=_header(stamp), height=h, width=w, distortion_model="plumb_bob",
        d=np.zeros(5), k=np.array([f, 0, (w - 1) / 2, 0, f, (h - 1) / 2, 0, 0, 1.0]),
        r=np.eye(3).ravel(), p=np.array([f, 0, (w - 1) / 2, 0, 0, f, (h - 1) / 2, 0, 0, 0, 1, 0.]),
        binning_x=0, binning_y=0,
        roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                  do_rectify=False))


def odom_msg(stamp: int, vx: float):
    g = T
    return g["nav_msgs/msg/Odometry"](
        header=_header(stamp, "odom"), child_frame_id="base_link",
        pose=g["geometry_msgs/msg/PoseWithCovariance"](
            pose=g["geometry_msgs/msg/Pose"](
                position=g["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0),
                orientation=g["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)),
            covariance=np.zeros(36)),
        twist=g["geometry_msgs/msg/TwistWithCovariance"](
            twist=g["geometry_msgs/msg/Twist"](linear=g["geometry_msgs/msg/Vector3"](
                x=vx, y=0.0, z=0.0), angular=g["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)),
            covariance=np.zeros(36)))


def write_bag(path: Path, messages: list[tuple[str, int, object]], storage: str = "mcap") -> Path:
    """messages: (topic, bag time, message object or raw CDR bytes with its type as a tuple)."""
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {}
        for topic, t, msg in messages:
            msgtype = msg[0] if isinstance(msg, tuple) else msg.__msgtype__
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=TS)
            raw = msg[1] if isinstance(msg, tuple) else TS.serialize_cdr(msg, msgtype)
            writer.write(conns[topic], t, raw)
    return path


def drive_messages(frames, image_topic: str = "/camera/image", compressed: bool = False,
                   truth: bool = True) -> list:
    msgs = []
    for k, (rgb, lab) in enumerate(frames):
        t = START + k * PERIOD
        msgs.append(("/odom", t, odom_msg(t, 0.6)))
        msgs.append(("/camera/camera_info", t, camera_info_msg(t)))
        msgs.append((image_topic, t, compressed_msg(t, rgb) if compressed else image_msg(t, rgb)))
        if truth:
            msgs.append(("/camera/labels_truth", t, compressed_msg(t, lab, ".png")))
    return msgs


def read_all(path: Path) -> list[tuple[str, str, int, bytes]]:
    with Reader(path) as reader:
        return [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in reader.messages()]


def assert_no_output(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], \
        "a temporary output folder was left behind"


# --------------------------------------------------------------------------------------------


def test_image_base() -> None:
    assert image_base("/camera/image/compressed") == "/camera"
    assert image_base("/camera/image") == "/camera"
    assert image_base("/camera/image_raw/compressed") == "/camera"
    assert image_base("/cam0/rgb") == "/cam0/rgb"
    assert image_base("/image") == ""


@pytest.mark.parametrize("storage,out_storage", [("sqlite3", None), ("mcap", None),
                                                 ("sqlite3", "mcap")])
def test_round_trip(tmp_path: Path, frames, segmenter, storage: str, out_storage) -> None:
    src = write_bag(tmp_path / "in", drive_messages(frames), storage)
    out = tmp_path / "out"
    report = process_bag(src, out, segmenter=segmenter, overlay=True, storage=out_storage,
                         csv_path=tmp_path / "frames.csv")
    assert storage_of(out) == (out_storage or storage)
    assert report.frames == report.processed == 4 and not report.skipped
    before, after = read_all(src), read_all(out)
    assert len(after) == len(before) + 3 * report.processed == report.messages_out
    originals = [m for m in after if m[0] not in ("/camera/labels", "/camera/spray_targets",
                                                  "/camera/overlay")]
    assert sorted(originals) == sorted(before)  # same topics, types, stamps and bytes
    images = {t: TS.deserialize_cdr(raw, ty) for topic, ty, t, raw in before
              if topic == "/camera/image"}
    fields = {name: (offset, kind) for name, kind, offset, _ in POINT_FIELDS}
    for topic, ty, t, raw in after:
        if topic not in ("/camera/labels", "/camera/spray_targets", "/camera/overlay"):
            continue
        msg = TS.deserialize_cdr(raw, ty)
        src_header = images[t].header
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == \
            (src_header.stamp.sec, src_header.stamp.nanosec)
        if topic == "/camera/labels":
            assert (msg.encoding, msg.height, msg.width, msg.step) == ("mono8", H, W, W)
            assert msg.header.frame_id == "cam"
            frame = np.asarray(images[t].data).reshape(H, W, 3)
            expected = segmenter.segment(frame, "RGB").labels
            assert bytes(np.asarray(msg.data)) == expected.tobytes()
        elif topic == "/camera/overlay":
            assert (msg.encoding, msg.height, msg.width) == ("bgr8", H, W)
        else:
            assert msg.header.frame_id == "base_link"
            assert (msg.height, msg.point_step, msg.is_dense, msg.is_bigendian) == \
                (1, 48, True, False)
            assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
                ("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("size_x", 12, 7, 1),
                ("size_y", 16, 7, 1), ("area", 20, 7, 1), ("confidence", 24, 7, 1),
                ("u", 28, 7, 1), ("v", 32, 7, 1), ("class_id", 36, 4, 1), ("lane", 38, 3, 1),
                ("track_id", 40, 6, 1), ("time_to_nozzle", 44, 7, 1)]
            data = bytes(np.asarray(msg.data))
            assert msg.row_step == len(data) == 48 * msg.width
            records = records_from_bytes(data)
            by_name = records_from_bytes(data, 48, fields)
            assert records.tobytes() == by_name.tobytes()
            if len(records):
                assert (records["class_id"] == 2).all()       # weeds only (spray_classes)
                assert np.isfinite(records["x"]).all() and (records["lane"] >= -1).all()
                assert np.isfinite(records["time_to_nozzle"]).all()  # odom speed was used
    with open(tmp_path / "frames.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["stamp"] for r in rows] == [f"{(START + k * PERIOD) // 10**9}."
                                          f"{(START + k * PERIOD) % 10**9:09d}" for k in range(4)]
    assert all(r["status"] == "ok" and float(r["infer_ms"]) > 0 for r in rows)
    assert sum(int(r["weed_targets"]) for r in rows) == report.targets


def test_labels_byte_identical_across_runs(tmp_path: Path, frames, segmenter) -> None:
    src = write_bag(tmp_path / "in", drive_messages(frames, compressed=True))
    process_bag(src, tmp_path / "a", segmenter=segmenter)
    process_bag(src, tmp_path / "b", segmenter=segmenter)
    a = [m for m in read_all(tmp_path / "a") if m[0].endswith(("/labels", "/spray_targets"))]
    b = [m for m in read_all(tmp_path / "b") if m[0].endswith(("/labels", "/spray_targets"))]
    assert len(a) == 8 and a == b


def test_two_cameras_need_a_choice(tmp_path: Path, frames, segmenter) -> None:
    msgs = drive_messages(frames[:2], "/cam_a/image", truth=False)
    msgs += [("/cam_b/image/compressed", START + k * PERIOD,
              compressed_msg(START + k * PERIOD, rgb)) for k, (rgb, _) in enumerate(frames[:2])]
    src = write_bag(tmp_path / "in", sorted(msgs, key=lambda m: m[1]))
    out = tmp_path / "out"
    with pytest.raises(BagProcessingError) as err:
        process_bag(src, out, segmenter=segmenter)
    text = str(err.value)
    assert str(src) in text and "/cam_a/image" in text and "/cam_b/image/compressed" in text
    assert "--image-topic" in text
    assert_no_output(out)
    report = process_bag(src, out, segmenter=segmenter, image_topic="/cam_b/image/compressed")
    assert report.processed == 2
    topics = {m[0] for m in read_all(out)}
    assert {"/cam_b/labels", "/cam_b/spray_targets"} <= topics and "/cam_a/labels" not in topics
    # camera_info of another camera is still taken when it is the only one
    assert report.topics.camera_info == "/camera/camera_info"


def test_raw_preferred_over_its_compressed(tmp_path: Path, frames, segmenter) -> None:
    msgs = drive_messages(frames[:1], "/camera/image_raw", truth=False)
    msgs.append(("/camera/image_raw/compressed", START, compressed_msg(START, frames[0][0])))
    src = write_bag(tmp_path / "in", msgs)
    report = process_bag(src, tmp_path / "out", segmenter=segmenter)
    assert report.topics.image == "/camera/image_raw" and report.processed == 1


def test_unsupported_type_as_image_topic(tmp_path: Path, frames, segmenter) -> None:
    src = write_bag(tmp_path / "in", drive_messages(frames[:1]))
    out = tmp_path / "out"
    with pytest.raises(BagProcessingError, match="/odom is nav_msgs/msg/Odometry, not an image"):
        process_bag(src, out, segmenter=segmenter, image_topic="/odom")
    with pytest.raises(BagProcessingError, match="has no topic '/nope'"):
        process_bag(src, out, segmenter=segmenter, image_topic="/nope")
    assert_no_output(out)


def test_broken_frames_are_counted_and_skipped(tmp_path: Path, frames, segmenter) -> None:
    rgb = frames[0][0]
    good_jpeg = cv2.imencode(".jpg", rgb)[1].tobytes()
    raw_msgs = [
        image_msg(START, rgb),                                        # good
        image_msg(START + 1, rgb, step=W * 3 - 1),                    # step too small
        image_msg(START + 2, rgb, data=np.zeros(100, np.uint8)),      # data too short
        image_msg(START + 3, rgb, encoding="yuv422_weird"),           # unknown encoding
        image_msg(START + 4, rgb),                                    # good
    ]
    msgs = [("/camera/image", m.header.stamp.nanosec + START, m) for m in raw_msgs]
    msgs.append(("/camera/image", START + 5, ("sensor_msgs/msg/Image", b"\x00\x01\x00\x00xx")))
    src = write_bag(tmp_path / "in", msgs)
    report = process_bag(src, tmp_path / "out", segmenter=segmenter, csv_path=tmp_path / "f.csv")
    assert report.frames == 6 and report.processed == 2
    assert report.skipped == {"decode": 3, "deserialize": 1}
    assert "step" in report.skip_examples["decode"]
    assert len(read_all(tmp_path / "out")) == 6 + 2 * 2
    rows = list(csv.DictReader(open(tmp_path / "f.csv")))
    assert [r["status"].split(" ")[0] for r in rows] == ["ok", "skipped", "skipped", "skipped",
                                                         "ok", "skipped"]
    assert "decode: 3" in report.summary()

    comp = [("/camera/image/compressed", START, compressed_msg(START, rgb)),
            ("/camera/image/compressed", START + 1,
             compressed_msg(START + 1, rgb, payload=good_jpeg[:len(good_jpeg) // 3])),
            ("/camera/image/compressed", START + 2,
             compressed_msg(START + 2, rgb, payload=b"\xff\xd8garbage" * 20)),
            ("/camera/image/compressed", START + 3, compressed_msg(START + 3, rgb, payload=b""))]
    src2 = write_bag(tmp_path / "in2", comp, "sqlite3")
    report = process_bag(src2, tmp_path / "out2", segmenter=segmenter)
    assert report.frames == 4 and report.processed + report.skipped.get("decode", 0) == 4
    assert report.skipped.get("decode", 0) >= 2  # garbage and empty; a truncated JPEG may decode


def test_corrupt_bags_are_refused(tmp_path: Path, frames, segmenter) -> None:
    msgs = drive_messages(frames, truth=False)
    out = tmp_path / "out"
    # mcap cut in half
    src = write_bag(tmp_path / "cut", msgs)
    mcap = next(src.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[:len(data) // 2])
    with pytest.raises(BagProcessingError) as err:
        process_bag(src, out, segmenter=segmenter)
    assert str(src) in str(err.value)
    assert_no_output(out)
    # sqlite with garbage
    src = write_bag(tmp_path / "garbage", msgs, "sqlite3")
    db = next(src.glob("*.db3"))
    db.write_bytes(b"this is not sqlite" * 1000)
    with pytest.raises(BagProcessingError) as err:
        process_bag(src, out, segmenter=segmenter)
    assert str(src) in str(err.value)
    assert_no_output(out)
    # unknown storage plugin
    src = write_bag(tmp_path / "foo", msgs[:3])
    meta = src / "metadata.yaml"
    meta.write_text(meta.read_text().replace("storage_identifier: mcap", "storage_identifier: foo"))
    with pytest.raises(BagProcessingError, match="foo"):
        process_bag(src, out, segmenter=segmenter)
    assert_no_output(out)
    # not a bag at all
    with pytest.raises(BagProcessingError, match="not a rosbag2"):
        process_bag(tmp_path, out, segmenter=segmenter)
    assert isinstance(err.value, CropWeedSegError)


def test_existing_output_and_overwrite(tmp_path: Path, frames, segmenter) -> None:
    src = write_bag(tmp_path / "in", drive_messages(frames[:1], truth=False))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(BagProcessingError, match="exists"):
        process_bag(src, out, segmenter=segmenter)
    assert (out / "keep.txt").exists()
    process_bag(src, out, segmenter=segmenter, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "metadata.yaml").exists()
    assert len(read_all(out)) == 3 + 2


def test_export_frames_and_eval_from_bag(tmp_path: Path, frames, segmenter) -> None:
    from crop_weed_seg.data.bag_dataset import open_bag_dataset
    from crop_weed_seg.data.datasets import open_dataset
    from crop_weed_seg.data.evaluation import evaluate

    src = write_bag(tmp_path / "in", drive_messages(frames, compressed=True), "sqlite3")
    report = process_bag(src, tmp_path / "out", segmenter=segmenter,
                         export_frames=tmp_path / "export")
    assert report.exported_images == report.exported_labels == 4
    folder = open_dataset(tmp_path / "export")
    assert [s.stem for s in folder.samples][0] == f"{START // 10**9:010d}_000000000"
    bag = open_bag_dataset(src)
    assert len(bag) == 4 and bag.topics.truth == "/camera/labels_truth"
    for i in range(4):
        (a_img, a_lab), (b_img, b_lab) = folder[i], bag[i]
        assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
        assert np.array_equal(b_lab, frames[i][1])
    s_folder = evaluate(segmenter.predict, folder)
    s_bag = evaluate(segmenter.predict, bag)
    assert s_folder.to_json() == s_bag.to_json()

    no_truth = write_bag(tmp_path / "nt", drive_messages(frames[:1], truth=False))
    with pytest.raises(DatasetError, match="no ground-truth topic"):
        open_bag_dataset(no_truth)


def test_cli(tmp_path: Path, frames, segmenter, capsys) -> None:
    from crop_weed_seg.tools import bag_cmd

    parser = argparse.ArgumentParser()
    bag_cmd.add_parser(parser.add_subparsers())
    src = write_bag(tmp_path / "in", drive_messages(frames[:2], compressed=True, truth=False))
    args = parser.parse_args(["bag", str(src), str(tmp_path / "out"), "--backend", "onnxruntime",
                              "--csv", str(tmp_path / "f.csv"), "--storage", "sqlite3",
                              "--overlay", "--json", str(tmp_path / "r.json")])
    assert bag_cmd.run(args) == 0
    out = capsys.readouterr().out
    assert "processed 2" in out and "infer" in out
    assert storage_of(tmp_path / "out") == "sqlite3" and (tmp_path / "r.json").exists()


def test_no_ros_imported() -> None:
    code = ("import sys, crop_weed_seg.bags.processing, crop_weed_seg.data.bag_dataset, "
            "crop_weed_seg.tools.bag_cmd\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rclpy', 'sensor_msgs', "
            "'std_msgs', 'nav_msgs', 'onnxruntime', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO)
    assert out.stdout.strip() == "[]"
