"""The rosbag2 player over real DDS: every stored message arrives byte for byte, in order, with
/clock, remaps, loops, subscriber waits and clear errors; the CLI on the committed sample bag."""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from crop_weed_seg.tools.bag_player import (
    BagError,
    BagPlayer,
    main,
    recorded_latched,
    split_ros_args,
)

from support.ros import REPO, python_module_command, ros_context, ros_env, spin_until

SAMPLE_BAG = REPO / "test" / "fixtures" / "sample_bag"
START_NS = 1_780_000_000 * 1_000_000_000
PERIOD_NS = 50_000_000
N = 20
IMAGE, INFO = "/test_bag/image", "/test_bag/camera_info"
RELIABLE = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)


def write_bag(path: Path, storage: StoragePlugin, n: int = N) -> dict[str, list[bytes]]:
    """A bag of n 64x48 rgb8 images and camera infos at 20 Hz; returns the stored bytes."""
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    stored: dict[str, list[bytes]] = {IMAGE: [], INFO: []}
    with Writer(path, version=9, storage_plugin=storage) as writer:
        c_img = writer.add_connection(IMAGE, "sensor_msgs/msg/Image", typestore=ts)
        c_info = writer.add_connection(INFO, "sensor_msgs/msg/CameraInfo", typestore=ts)
        for k in range(n):
            stamp = START_NS + k * PERIOD_NS
            header = T["std_msgs/msg/Header"](
                stamp=T["builtin_interfaces/msg/Time"](sec=stamp // 10**9,
                                                       nanosec=stamp % 10**9),
                frame_id="cam")
            pixels = np.random.default_rng(k).integers(0, 256, 48 * 64 * 3, dtype=np.uint8)
            img = T["sensor_msgs/msg/Image"](header=header, height=48, width=64,
                                             encoding="rgb8", is_bigendian=0, step=192,
                                             data=pixels)
            info = T["sensor_msgs/msg/CameraInfo"](
                header=header, height=48, width=64, distortion_model="plumb_bob",
                d=np.zeros(5), k=np.array([60.0, 0, 32, 0, 60, 24, 0, 0, 1]),
                r=np.eye(3).ravel(), p=np.array([60.0, 0, 32, 0, 0, 60, 24, 0, 0, 0, 1, 0]),
                binning_x=0, binning_y=0,
                roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0,
                                                          width=0, do_rectify=False))
            for conn, msg, topic in ((c_img, img, IMAGE), (c_info, info, INFO)):
                raw = bytes(ts.serialize_cdr(msg, conn.msgtype))
                writer.write(conn, stamp, raw)
                stored[topic].append(raw)
    return stored


@pytest.fixture(params=[StoragePlugin.SQLITE3, StoragePlugin.MCAP], ids=["sqlite3", "mcap"])
def bag(request, tmp_path) -> tuple[Path, dict[str, list[bytes]]]:
    path = tmp_path / "bag"
    return path, write_bag(path, request.param)


@pytest.fixture
def ctx():
    with ros_context() as context:
        yield context


class Recorder:
    """A node that keeps the raw bytes of every message on some topics, and /clock."""

    def __init__(self, context, topics: dict[str, type], clock: bool = True) -> None:
        self.node = rclpy.create_node("recorder", context=context)
        self.raw: dict[str, list[bytes]] = {t: [] for t in topics}
        self.clock: list[int] = []
        for topic, cls in topics.items():
            self.node.create_subscription(cls, topic, self.raw[topic].append, RELIABLE,
                                          raw=True)
        if clock:
            self.node.create_subscription(
                Clock, "/clock",
                lambda m: self.clock.append(m.clock.sec * 10**9 + m.clock.nanosec), RELIABLE)


def play_in_thread(player: BagPlayer) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            player.play()
        except BaseException as exc:  # re-raised by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def finish(thread: threading.Thread, errors: list[BaseException], player: BagPlayer) -> None:
    thread.join(timeout=30)
    assert not thread.is_alive(), "player did not finish"
    if errors:
        raise errors[0]


def stamps(raw: list[bytes], cls: type) -> list[int]:
    out = []
    for data in raw:
        h = deserialize_message(data, cls).header.stamp
        out.append(h.sec * 10**9 + h.nanosec)
    return out


def test_every_message_arrives_identical_and_in_order(bag, ctx):
    path, stored = bag
    rec = Recorder(ctx, {IMAGE: Image, INFO: CameraInfo})
    published: list[tuple[str, int, int]] = []
    player = BagPlayer(path, context=ctx, rate=10.0, clock_hz=100.0, wait_for_subscribers=20,
                       on_publish=lambda topic, ns, p, t: published.append((topic, ns, p)))
    try:
        thread, errors = play_in_thread(player)
        last = START_NS + (N - 1) * PERIOD_NS
        ok = spin_until(rec.node, lambda: all(len(v) == N for v in rec.raw.values())
                        and bool(rec.clock) and rec.clock[-1] >= last, timeout=30)
        finish(thread, errors, player)
        assert ok, f"got {[len(v) for v in rec.raw.values()]} messages, clock {rec.clock[-1:]}"
    finally:
        player.close()
    assert rec.raw[IMAGE] == stored[IMAGE]  # byte for byte, in order
    assert rec.raw[INFO] == stored[INFO]
    expected = [START_NS + k * PERIOD_NS for k in range(N)]
    assert stamps(rec.raw[IMAGE], Image) == expected
    assert stamps(rec.raw[INFO], CameraInfo) == expected
    assert rec.clock == sorted(rec.clock) and rec.clock[0] >= START_NS
    assert player.counts == {IMAGE: N, INFO: N}
    assert len(published) == 2 * N and player.passes_done == 1
    assert player.bag_start_ns == START_NS
    assert player.clock_ns(last) == last
    assert player.scheduled_monotonic(last) == pytest.approx(
        player.start_monotonic + (N - 1) * PERIOD_NS / 1e9 / 10.0)
    # at rate 10 the 0.95 s bag takes about 0.1 s; generous bound for a loaded CI machine
    assert 0.09 <= player.duration_s < 5.0
    assert "40 messages" in player.summary()


def test_clock_ticks_while_waiting(tmp_path, ctx):
    write_bag(tmp_path / "bag", StoragePlugin.MCAP, n=5)
    rec = Recorder(ctx, {INFO: CameraInfo})
    player = BagPlayer(tmp_path / "bag", context=ctx, rate=2.0, clock_hz=200.0,
                       wait_for_subscribers=20, topics=[INFO])
    last = START_NS + 4 * PERIOD_NS
    try:
        thread, errors = play_in_thread(player)
        ok = spin_until(rec.node, lambda: len(rec.raw[INFO]) == 5 and bool(rec.clock)
                        and rec.clock[-1] >= last, timeout=30)
        finish(thread, errors, player)
        assert ok
    finally:
        player.close()
    # 0.1 s of playback at 200 Hz: ticks between the 25 ms spaced messages, bag time at rate 2
    assert player.clock_count >= 5 + 10
    between = [c for c in rec.clock if (c - START_NS) % PERIOD_NS]
    assert between and all(START_NS < c < last for c in between)
    assert rec.clock == sorted(rec.clock) and rec.clock[-1] == last


def test_topics_and_remaps(bag, ctx):
    path, stored = bag
    rec = Recorder(ctx, {"/remapped/image": Image, INFO: CameraInfo}, clock=False)
    player = BagPlayer(path, context=ctx, rate=0, topics=[IMAGE],
                       remaps={IMAGE: "/remapped/image"}, wait_for_subscribers=20)
    try:
        assert player.topics == {IMAGE: "/remapped/image"}
        thread, errors = play_in_thread(player)
        ok = spin_until(rec.node, lambda: len(rec.raw["/remapped/image"]) == N, timeout=30)
        finish(thread, errors, player)
        assert ok
    finally:
        player.close()
    assert rec.raw["/remapped/image"] == stored[IMAGE]
    spin_until(rec.node, lambda: False, timeout=0.2)  # anything stray would arrive now
    assert rec.raw[INFO] == []
    assert player.counts == {"/remapped/image": N}


def _qos(durability):
    from rosbags.interfaces import (
        Qos,
        QosDurability,
        QosHistory,
        QosLiveliness,
        QosReliability,
        QosTime,
    )
    return Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, getattr(QosDurability, durability),
               QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP],
                         ids=["sqlite3", "mcap"])
def test_latched_topics_reach_late_subscribers(tmp_path, ctx, storage):
    """A topic recorded from a transient-local publisher is replayed transient-local: a
    subscriber that joins after the player published still gets it; a volatile one does not."""
    ts = get_typestore(Stores.ROS2_HUMBLE)
    latched, volatile = "/test_bag/static_info", "/test_bag/info"
    with Writer(tmp_path / "bag", version=9, storage_plugin=storage) as writer:
        c_latched = writer.add_connection(latched, "std_msgs/msg/String", typestore=ts,
                                          offered_qos_profiles=[_qos("TRANSIENT_LOCAL")])
        c_volatile = writer.add_connection(volatile, "std_msgs/msg/String", typestore=ts,
                                           offered_qos_profiles=[_qos("VOLATILE")])
        for conn, text in ((c_latched, "static"), (c_volatile, "volatile")):
            raw = bytes(ts.serialize_cdr(ts.types["std_msgs/msg/String"](data=text),
                                         conn.msgtype))
            writer.write(conn, START_NS, raw)
    player = BagPlayer(tmp_path / "bag", context=ctx, rate=0)
    try:
        durability = {t: player._pubs[t].qos_profile.durability for t in (latched, volatile)}
        assert durability == {latched: DurabilityPolicy.TRANSIENT_LOCAL,
                              volatile: DurabilityPolicy.VOLATILE}
        player.play()                       # nobody listens yet
        node = rclpy.create_node("late_listener", context=ctx)
        got: dict[str, list[str]] = {latched: [], volatile: []}
        late = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(String, latched, lambda m: got[latched].append(m.data), late)
        node.create_subscription(String, volatile, lambda m: got[volatile].append(m.data),
                                 RELIABLE)
        assert spin_until(node, lambda: got[latched] == ["static"], timeout=10)
        spin_until(node, lambda: False, timeout=0.3)
        assert got == {latched: ["static"], volatile: []}
        node.destroy_node()
    finally:
        player.close()


@pytest.mark.parametrize("profiles, latched", [
    ("- history: 3\n  depth: 0\n  reliability: 1\n  durability: 1\n", True),   # rosbag2 YAML
    ("- history: 3\n  depth: 0\n  reliability: 1\n  durability: 2\n", False),
    ("", False), (None, False)])
def test_latched_from_metadata_text(profiles, latched):
    from types import SimpleNamespace
    conn = SimpleNamespace(ext=SimpleNamespace(offered_qos_profiles=profiles))
    assert recorded_latched([conn]) is latched


def test_loop_twice_keeps_the_clock_going(bag, ctx):
    path, stored = bag
    rec = Recorder(ctx, {IMAGE: Image})
    player = BagPlayer(path, context=ctx, rate=20.0, loop=2, clock_hz=200.0, topics=[IMAGE],
                       wait_for_subscribers=20)
    last = START_NS + (N - 1) * PERIOD_NS
    try:
        thread, errors = play_in_thread(player)
        end = player.clock_ns(last, pass_index=1)
        ok = spin_until(rec.node, lambda: len(rec.raw[IMAGE]) == 2 * N and bool(rec.clock)
                        and rec.clock[-1] >= end, timeout=30)
        finish(thread, errors, player)
        assert ok, (len(rec.raw[IMAGE]), rec.clock[-1:])
    finally:
        player.close()
    assert rec.raw[IMAGE] == stored[IMAGE] * 2
    assert player.loop_period_ns == N * PERIOD_NS  # duration + one frame interval
    assert end == last + N * PERIOD_NS
    assert rec.clock == sorted(rec.clock)
    assert player.passes_done == 2 and player.counts == {IMAGE: 2 * N}


def test_stop_from_another_thread(bag, ctx):
    path, _ = bag
    player = BagPlayer(path, context=ctx, rate=1.0, loop=True)
    try:
        thread, errors = play_in_thread(player)
        player.stop()
        finish(thread, errors, player)
    finally:
        player.close()
    assert player.stopped and "stopped" in player.summary()


def test_wait_for_subscribers_times_out(bag, ctx):
    path, _ = bag
    player = BagPlayer(path, context=ctx, remaps={IMAGE: "/nobody/listens",
                                                  INFO: "/nobody/either"},
                       wait_for_subscribers=0.3, rate=0)
    try:
        with pytest.raises(BagError, match="no subscriber matched /nobody/either, "
                                           "/nobody/listens within 0.3 s"):
            player.play()
        assert sum(player.counts.values()) == 0
    finally:
        player.close()
    lenient = BagPlayer(path, context=ctx, remaps={IMAGE: "/nobody/listens"}, rate=0,
                        wait_for_subscribers=0.1, wait_strict=False)
    try:
        lenient.play()
    finally:
        lenient.close()
    assert lenient.counts["/nobody/listens"] == N


def test_bad_bags_give_one_clear_error(tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        BagPlayer(tmp_path / "missing")
    (tmp_path / "notabag").mkdir()
    (tmp_path / "notabag" / "x.txt").write_text("hello")
    with pytest.raises(BagError, match="no metadata.yaml"):
        BagPlayer(tmp_path / "notabag")
    (tmp_path / "notabag" / "metadata.yaml").write_text("rosbag2_bagfile_information: 3\n")
    with pytest.raises(BagError, match="is not a readable rosbag2"):
        BagPlayer(tmp_path / "notabag")
    (tmp_path / "file.txt").write_text("hello")
    with pytest.raises(BagError, match="is not a rosbag2: .* or a .mcap / .db3 file"):
        BagPlayer(tmp_path / "file.txt")


def test_unknown_message_package_is_named(tmp_path):
    ts = get_typestore(Stores.ROS2_HUMBLE)
    ts.register(get_types_from_msg("int32 value", "nonexistent_msgs/msg/Thing"))
    with Writer(tmp_path / "bag", version=9) as writer:
        conn = writer.add_connection("/thing", "nonexistent_msgs/msg/Thing", typestore=ts)
        writer.write(conn, 1, bytes(ts.serialize_cdr(
            ts.types["nonexistent_msgs/msg/Thing"](value=3), "nonexistent_msgs/msg/Thing")))
    with pytest.raises(BagError, match="nonexistent_msgs/msg/Thing on topic /thing: the "
                                       "Python package 'nonexistent_msgs' is not installed"):
        BagPlayer(tmp_path / "bag")


def test_bad_topic_selection(bag):
    path, _ = bag
    with pytest.raises(BagError, match="/nope not in"):
        BagPlayer(path, topics=["/nope"])
    with pytest.raises(BagError, match="remap source"):
        BagPlayer(path, remaps={"/nope": "/x"})
    with pytest.raises(BagError, match="wait topic"):
        BagPlayer(path, topics=[IMAGE], wait_topics=[INFO])


def test_cli_returns_2_for_a_bad_bag(tmp_path, capsys):
    assert main([str(tmp_path / "missing"), "--rate", "2"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert main([str(SAMPLE_BAG), "--remap", "no-separator"]) == 2


def test_split_ros_args():
    own, ros = split_ros_args(["bag", "--remap", "/a:=/b", "--ros-args", "-r", "__node:=p",
                               "--", "--rate", "2", "--ros-args", "--log-level", "warn"])
    assert own == ["bag", "--remap", "/a:=/b", "--rate", "2"]
    assert ros == ["--ros-args", "-r", "__node:=p", "--ros-args", "--log-level", "warn"]


def sample_bag_images() -> list[bytes]:
    with Reader(SAMPLE_BAG) as reader:
        conns = [c for c in reader.connections if c.topic == "/camera/image/compressed"]
        return [bytes(data) for _, _, data in reader.messages(conns)]


def test_cli_subprocess_plays_the_sample_bag(ctx):
    expected = sample_bag_images()
    assert len(expected) == 40
    rec = Recorder(ctx, {"/replay/image/compressed": CompressedImage}, clock=False)
    proc = subprocess.Popen(
        python_module_command("crop_weed_seg.tools.bag_player", str(SAMPLE_BAG), "--rate", "8",
                              "--clock", "--wait-for-subscribers", "30",
                              "--wait-topics", "/replay/image/compressed",
                              "--remap", "/camera/image/compressed:=/replay/image/compressed",
                              "--ros-args", "--log-level", "warn"),
        env=ros_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        got = rec.raw["/replay/image/compressed"]
        ok = spin_until(rec.node, lambda: len(got) == 40 or proc.poll() is not None, timeout=60)
        spin_until(rec.node, lambda: len(got) == 40, timeout=5)  # late ones after exit
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert ok and proc.returncode == 0, (proc.returncode, len(got), err)
    assert got == expected
    assert "/replay/image/compressed=40" in out and "/camera/labels_truth=40" in out
    assert "Traceback" not in err
    assert [m.header.frame_id for m in (deserialize_message(got[0], CompressedImage),)] == [
        "camera_optical_frame"]


def test_cli_subprocess_exits_cleanly_on_sigterm(ctx):
    rec = Recorder(ctx, {"/camera/camera_info": CameraInfo}, clock=False)
    proc = subprocess.Popen(
        python_module_command("crop_weed_seg.tools.bag_player", str(SAMPLE_BAG), "--loop",
                              "--topics", "/camera/camera_info", "--wait-for-subscribers", "30"),
        env=ros_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        got = rec.raw["/camera/camera_info"]
        ok = spin_until(rec.node, lambda: len(got) >= 2 or proc.poll() is not None, timeout=60)
        assert ok and proc.poll() is None, proc.communicate(timeout=5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped" in out and "/camera/camera_info=" in out
