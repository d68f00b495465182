"""The rosbag2 plumbing (``crop_weed_seg.bags.rosbag_io``): atomic output, writers for both
storage plugins, copied connections, headers and the compressed-image helpers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags")

from rosbags.rosbag2 import Reader  # noqa: E402

from crop_weed_seg.bags import processing  # noqa: E402
from crop_weed_seg.bags.rosbag_io import (  # noqa: E402
    CAMERA_INFO_TYPE,
    COMPRESSED_TYPE,
    BagProcessingError,
    atomic_output,
    camera_info,
    header_at,
    header_stamp_ns,
    iter_messages,
    jpeg_image,
    open_reader,
    open_writer,
    png_labels,
    serialize,
    split_ns,
    storage_of,
    typestore,
)
from crop_weed_seg.errors import BagError  # noqa: E402

T_NS = 1_780_308_000_123_456_789


def _leftovers(out: Path) -> list[str]:
    return [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_processing_keeps_the_plumbing_names() -> None:
    for name in ("BagProcessingError", "open_reader", "iter_messages", "is_bag_path",
                 "storage_of", "header_stamp_ns", "typestore", "STORAGES", "IMAGE_TYPE"):
        assert hasattr(processing, name), name


def test_header_and_stamps() -> None:
    ts = typestore()
    assert split_ns(T_NS) == (1_780_308_000, 123_456_789)
    header = header_at(ts, T_NS, "cam")
    assert (header.stamp.sec, header.stamp.nanosec, header.frame_id) == (1_780_308_000,
                                                                          123_456_789, "cam")
    raw = serialize(ts, camera_info(ts, header, 4, 3, np.eye(3).ravel(), np.zeros(5),
                                    np.zeros(12)))
    assert isinstance(raw, bytes) and header_stamp_ns(raw) == T_NS
    assert header_stamp_ns(raw[:8]) is None


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_atomic_writer_round_trip(tmp_path: Path, storage: str) -> None:
    out = tmp_path / "sub" / "bag"
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 0] = 200
    labels = np.arange(80, dtype=np.uint8).reshape(8, 10) % 3
    with atomic_output(out) as bag, open_writer(bag, storage) as writer:
        assert not out.exists() and bag.parent.parent == out.parent
        ts = writer.typestore
        header = header_at(ts, T_NS, "cam")
        c_img = writer.add_connection("/cam/image/compressed", COMPRESSED_TYPE)
        c_lab = writer.add_connection("/cam/labels_truth", COMPRESSED_TYPE)
        writer.write_message(c_img, T_NS, jpeg_image(ts, header, rgb, 95))
        writer.write_message(c_lab, T_NS, png_labels(ts, header, labels))
    assert writer.messages == 2
    assert out.is_dir() and storage_of(out) == storage and not _leftovers(out)
    ts = typestore()
    reader = open_reader(out)
    try:
        msgs = {c.topic: (t, ts.deserialize_cdr(raw, c.msgtype))
                for c, t, raw in iter_messages(reader, out)}
    finally:
        reader.close()
    t, img = msgs["/cam/image/compressed"]
    assert t == T_NS and img.format == "rgb8; jpeg compressed bgr8"
    decoded = cv2.imdecode(np.asarray(img.data), cv2.IMREAD_COLOR)
    assert abs(int(decoded[..., 2].mean()) - 200) <= 2  # BGR: red channel last
    lab = msgs["/cam/labels_truth"][1]
    assert lab.format == "mono8; png compressed mono8"
    assert np.array_equal(cv2.imdecode(np.asarray(lab.data), cv2.IMREAD_UNCHANGED), labels)


def test_copied_connections_keep_type_hash_and_qos(tmp_path: Path) -> None:
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )
    from rosbags.rosbag2 import Writer

    ts = typestore()
    never = QosTime(0, 0)
    latched = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
                  never, never, QosLiveliness.AUTOMATIC, never, False)
    src = tmp_path / "src"
    with Writer(src, version=9) as w:
        conn = w.add_connection("/info", CAMERA_INFO_TYPE, typestore=ts,
                                offered_qos_profiles=[latched])
        w.write(conn, T_NS, serialize(ts, camera_info(ts, header_at(ts, T_NS, "c"), 2, 2,
                                                      np.eye(3).ravel(), np.zeros(5),
                                                      np.zeros(12))))
    out = tmp_path / "out"
    with Reader(src) as reader, atomic_output(out) as bag, open_writer(bag, "mcap") as writer:
        copies = writer.copy_connections(reader.connections, src)
        for c, t, raw in reader.messages():
            writer.write(copies[c.id], t, raw)
    with Reader(src) as a, Reader(out) as b:
        (ca,), (cb,) = a.connections, b.connections
        assert (cb.topic, cb.msgtype, cb.digest, cb.msgdef.data) == (ca.topic, ca.msgtype,
                                                                     ca.digest, ca.msgdef.data)
        assert cb.ext.offered_qos_profiles == ca.ext.offered_qos_profiles
        assert cb.ext.offered_qos_profiles[0].durability == QosDurability.TRANSIENT_LOCAL
        assert [bytes(r) for _, _, r in a.messages()] == [bytes(r) for _, _, r in b.messages()]


def test_failure_leaves_no_output(tmp_path: Path) -> None:
    out = tmp_path / "bag"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(out) as bag, open_writer(bag, "mcap") as writer:
            writer.add_connection("/x", COMPRESSED_TYPE)
            raise RuntimeError("boom")
    assert not out.exists() and not _leftovers(out)


def test_existing_output_and_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "bag"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(BagProcessingError, match="exists; remove it"):
        with atomic_output(out, hint="remove it"):
            pass
    assert (out / "keep.txt").exists()
    with atomic_output(out, overwrite=True) as bag:
        bag.mkdir()
        (bag / "new.txt").write_text("new")
        assert (out / "keep.txt").exists()  # replaced only once the block ends
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"] and not _leftovers(out)


def test_encoding_failure_is_a_bag_error() -> None:
    ts = typestore()
    header = header_at(ts, T_NS, "cam")
    with pytest.raises(BagError, match="JPEG"):
        jpeg_image(ts, header, np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(BagError, match="PNG"):
        png_labels(ts, header, np.zeros((0, 0), np.uint8))

