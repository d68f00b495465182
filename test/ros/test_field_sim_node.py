"""The field_sim node in a subprocess, listened to over real ROS 2 topics (Fast DDS): a scripted
drive publishes ``simulate``'s frames with the clock, odometry and camera_info that belong to
them and exits when done; a cmd_vel drive stands until commanded and moves as commanded; a
missing or undrivable field file is one ``fatal:`` line and exit code 1.

Synchronisation is by messages with deadlines (the node waits for the probe's subscriptions
before its clock starts), never by sleeping. Message checks use the sim stamps the node computes;
no wall-clock timing is asserted."""

from __future__ import annotations

import math
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import Twist  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from crop_weed_seg.ros.field_sim_node import (  # noqa: E402
    DIAGNOSTIC_NAME,
    odometry_messages,
    tf_message_type,
    transform_message,
)
from crop_weed_seg.sim.drive import drive_frames  # noqa: E402
from crop_weed_seg.sim.live import OdomSample, mount_transform  # noqa: E402
from crop_weed_seg.sim.scenario import (  # noqa: E402
    BoomSpec,
    CameraSpec,
    Scenario,
    write_field_file,
)
from crop_weed_seg.sim.world import FieldConfig, SimField  # noqa: E402
from crop_weed_seg.spray.geometry import CameraMount  # noqa: E402
from crop_weed_seg.spray.mount_tf import quaternion_to_matrix  # noqa: E402

from support.nodes import NodeProcess  # noqa: E402
from support.ros import python_module_command, ros_context, ros_env, spin_until  # noqa: E402

MODULE = "crop_weed_seg.ros.field_sim_node"
#: A small scenario: 3 m field, 160x120 camera, 2 mm mosaic; a pitched, rolled, yawed mount.
SMALL = Scenario(field=FieldConfig(length_m=3.0, width_m=0.6, gsd_mm=2.0), seed=5,
                 camera=CameraSpec(width=160, height=120, height_m=0.5, x_m=0.1, y_m=-0.05,
                                   pitch_deg=8.0, roll_deg=-4.0, yaw_deg=3.0),
                 boom=BoomSpec(nozzles=6, spacing_m=0.1))
RELIABLE = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
TF_STATIC = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)
TF_MESSAGE = tf_message_type()


def ns_of(t: Any) -> int:
    return t.sec * 1_000_000_000 + t.nanosec


class FieldSimProcess(NodeProcess):
    def __init__(self, workdir: Path, namespace: str, *params: str) -> None:
        args = [a for p in params for a in ("-p", p)]
        super().__init__(workdir, namespace, *args, module=MODULE)


class SimProbe:
    """Subscribes to everything field_sim publishes (under ``ns`` and the absolute topics) and
    publishes ``cmd_vel``."""

    def __init__(self, context: Any, ns: str) -> None:
        self.node = Node("probe" + ns.replace("/", "_"), context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.clock: list[int] = []
        self.images: dict[int, Image] = {}
        self.truth: dict[int, Image] = {}
        self.info: dict[int, CameraInfo] = {}
        self.odom: list[Odometry] = []
        self.tf: list[Any] = []
        self.tf_static: list[Any] = []
        sub = self.node.create_subscription
        sub(Clock, "/clock", lambda m: self.clock.append(ns_of(m.clock)), RELIABLE)
        sub(Image, f"{ns}/image", self._keep(self.images), RELIABLE)
        sub(Image, f"{ns}/labels_truth", self._keep(self.truth), RELIABLE)
        sub(CameraInfo, f"{ns}/camera_info", self._keep(self.info), RELIABLE)
        sub(Odometry, "/odom", self.odom.append, RELIABLE)
        if TF_MESSAGE is not None:
            sub(TF_MESSAGE, "/tf", self.tf.append, RELIABLE)
            sub(TF_MESSAGE, "/tf_static", self.tf_static.append, TF_STATIC)
        self.cmd_vel = self.node.create_publisher(Twist, f"{ns}/cmd_vel", 10)
        self.diagnostics: list[dict[str, str]] = []
        sub(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        self.diagnostics += [{kv.key: kv.value for kv in s.values} | {"message": s.message}
                             for s in msg.status if s.name == DIAGNOSTIC_NAME]

    @staticmethod
    def _keep(store: dict) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            store[ns_of(msg.header.stamp)] = msg
        return callback

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        return spin_until(self.executor, predicate, timeout)

    def command(self, speed: float, until: Callable[[], bool], timeout: float = 60.0) -> None:
        """Publish cmd_vel ``speed`` (again every second) until ``until()`` holds."""
        deadline = time.monotonic() + timeout
        msg = Twist()
        msg.linear.x = speed
        while True:
            self.cmd_vel.publish(msg)
            if self.spin_until(until, min(1.0, deadline - time.monotonic())):
                return
            assert time.monotonic() < deadline, f"cmd_vel {speed} had no effect in {timeout} s"

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=0)
        self.node.destroy_node()


def rgb_of(msg: Image) -> np.ndarray:
    assert msg.encoding == "rgb8" and msg.step == msg.width * 3
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)


def mono_of(msg: Image) -> np.ndarray:
    assert msg.encoding == "mono8" and msg.step == msg.width
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width)


@pytest.fixture(scope="module")
def context() -> Iterator[object]:
    with ros_context() as ctx:
        yield ctx


@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimField]:
    fld = SMALL.build_field()
    return write_field_file(tmp_path_factory.mktemp("field") / "field.json", SMALL, fld), fld


def test_scripted_drive_publishes_simulates_frames_and_exits_when_done(
        context: object, field: tuple[Path, SimField], tmp_path: Path) -> None:
    path, fld = field
    drive = SMALL.plan(fld)
    t0_ns, tail_s = 500_000_000, 0.5
    probe = SimProbe(context, "/fs")
    proc = FieldSimProcess(tmp_path, "/fs", f"field_file:={path}", "real_time_factor:=2.0",
                           "wait_for_subscribers:=true", "exit_when_done:=true",
                           "start_delay_s:=0.5", f"tail_s:={tail_s}")
    try:
        done = probe.spin_until(lambda: proc.proc.poll() is not None
                                and len(probe.truth) >= drive.frame_count, 180.0)
        assert done, f"frames {len(probe.truth)} of {drive.frame_count}:\n{proc.output()}"
    finally:
        probe.close()
        code = proc.stop()
    out = proc.output()
    assert code == 0 and "Traceback" not in out, out
    assert f"{drive.frame_count} frames published of {drive.frame_count}" in out, out

    # frames: simulate's frames, frame k stamped T0 + k / fps, three topics with one header
    expected = list(drive_frames(fld, SMALL.build_camera(), drive, SMALL.seed))
    stamps = sorted(probe.truth)
    assert stamps == [t0_ns + round(k * 1e9 / SMALL.frame_rate_hz) for k in range(len(expected))]
    assert sorted(probe.images) == stamps and sorted(probe.info) == stamps
    intr = SMALL.build_camera().intrinsics
    for k, stamp in enumerate(stamps):
        image, truth, info = probe.images[stamp], probe.truth[stamp], probe.info[stamp]
        assert image.header.frame_id == truth.header.frame_id == info.header.frame_id == \
            "camera_optical_frame"
        assert np.array_equal(mono_of(truth), expected[k].labels), f"labels of frame {k}"
        assert np.array_equal(rgb_of(image), expected[k].rgb), f"rgb of frame {k}"
        assert (info.width, info.height, info.distortion_model) == (160, 120, "plumb_bob")
        assert list(info.k) == [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
        assert list(info.d) == [0.0] * 5
    seen = set(np.unique(np.concatenate([mono_of(m).ravel() for m in probe.truth.values()])))
    assert seen == {0, 1, 2}  # soil, crop and weed: the comparison above is not vacuous

    # odometry: 50 Hz sim time, x = start_x + speed · (t − T0), consistent with the frames
    assert len(probe.odom) > 0.9 * (drive.duration_s + 1.0) * 50
    for msg in probe.odom:
        t = ns_of(msg.header.stamp)
        assert t % 20_000_000 == 0
        assert (msg.header.frame_id, msg.child_frame_id) == ("odom", "base_link")
        assert msg.pose.pose.position.x == pytest.approx(
            drive.start_x + SMALL.speed_mps * (t - t0_ns) * 1e-9, abs=1e-9)
        assert msg.twist.twist.linear.x == SMALL.speed_mps
    end_ns = t0_ns + round(drive.duration_s * 1e9)
    assert max(ns_of(m.header.stamp) for m in probe.odom) >= end_ns

    # clock: increasing 10 ms ticks from before the first frame to the end of the tail
    clock = probe.clock
    assert clock == sorted(set(clock)) and all(c % 10_000_000 == 0 for c in clock)
    assert clock[0] <= stamps[0] and clock[-1] >= end_ns + round(tail_s * 1e9) - 10_000_000
    assert len(clock) > 0.9 * (clock[-1] - clock[0]) / 10_000_000

    if TF_MESSAGE is None:
        assert "tf2_msgs is not installed" in out and "/tf_static are not published" in out
    else:
        (static,) = [t for m in probe.tf_static for t in m.transforms]
        assert (static.header.frame_id, static.child_frame_id) == \
            ("base_link", "camera_optical_frame")
        tr, q = static.transform.translation, static.transform.rotation
        assert (tr.x, tr.y, tr.z) == (0.1, -0.05, 0.5)
        mount = CameraMount(0.1, -0.05, 0.5, 8.0, -4.0, 3.0)
        assert np.allclose(quaternion_to_matrix((q.x, q.y, q.z, q.w)), mount.rotation(),
                           atol=1e-12)
        moving = [t for m in probe.tf for t in m.transforms]
        assert moving and all(t.child_frame_id == "base_link" for t in moving)


def test_cmd_vel_drive_stands_until_commanded_and_moves_as_commanded(
        context: object, field: tuple[Path, SimField], tmp_path: Path) -> None:
    path, fld = field
    start_x = SMALL.plan(fld).start_x
    probe = SimProbe(context, "/cv")
    proc = FieldSimProcess(tmp_path, "/cv", f"field_file:={path}", "drive_mode:=cmd_vel",
                           "real_time_factor:=2.0", "wait_for_subscribers:=true",
                           "exit_when_done:=true", "start_delay_s:=0.0", "tail_s:=0.2")
    try:
        assert probe.spin_until(lambda: len(probe.truth) >= 4 and len(probe.odom) >= 10
                                and probe.cmd_vel.get_subscription_count() > 0, 120.0), \
            proc.output()
        # standing: speed 0 at the drive's start, and frames still come (the same view)
        standing = list(probe.odom)
        assert {m.pose.pose.position.x for m in standing} == {start_x}
        assert {m.twist.twist.linear.x for m in standing} == {0.0}
        first = [mono_of(probe.truth[s]) for s in sorted(probe.truth)[:4]]
        assert all(np.array_equal(first[0], lab) for lab in first[1:])

        def moving_at(v: float) -> Callable[[], bool]:
            return lambda: sum(m.twist.twist.linear.x == v for m in probe.odom) >= 10

        probe.command(0.5, moving_at(0.5))
        moving = [m for m in probe.odom if m.twist.twist.linear.x == 0.5]
        for a, b in zip(moving, moving[1:]):
            dt = (ns_of(b.header.stamp) - ns_of(a.header.stamp)) * 1e-9
            assert b.pose.pose.position.x - a.pose.pose.position.x == pytest.approx(0.5 * dt,
                                                                                  abs=1e-9)
        assert moving[-1].pose.pose.position.x > start_x

        def after_moving() -> list[Odometry]:
            last = max(i for i, m in enumerate(probe.odom) if m.twist.twist.linear.x == 0.5)
            return probe.odom[last + 1:]

        probe.command(0.0, lambda: len(after_moving()) >= 10)
        stopped = after_moving()
        assert {m.twist.twist.linear.x for m in stopped} == {0.0}
        assert len({m.pose.pose.position.x for m in stopped}) == 1
        x_stop = stopped[0].pose.pose.position.x
        assert start_x < x_stop < start_x + 2.0
        frames_before = len(probe.truth)
        assert probe.spin_until(lambda: len(probe.truth) >= frames_before + 3, 60.0)

        # fast to the end of the drive: the run ends by itself (exit_when_done)
        probe.command(3.0, lambda: proc.proc.poll() is not None, timeout=120.0)
        assert probe.odom[-1].pose.pose.position.x >= start_x + SMALL.plan(fld).duration_s
    finally:
        probe.close()
        code = proc.stop()
    out = proc.output()
    assert code == 0 and "Traceback" not in out, out
    assert "drive done" in out and "exiting (exit_when_done)" in out, out


def test_sigterm_mid_drive_is_a_clean_exit(context: object, field: tuple[Path, SimField],
                                           tmp_path: Path) -> None:
    path, _ = field
    probe = SimProbe(context, "/st")
    proc = FieldSimProcess(tmp_path, "/st", f"field_file:={path}", "real_time_factor:=0.5",
                           "wait_for_subscribers:=true", "start_delay_s:=0.0")
    try:
        assert probe.spin_until(lambda: len(probe.truth) >= 3, 120.0), proc.output()
        # its diagnostics: how far the drive is, on the node's own (sim) stamps
        assert probe.spin_until(lambda: any(
            d["started"] == "True" and int(d["frames_published"]) > 0
            and d["field_file"] == str(path) and d["drive_mode"] == "scripted"
            for d in probe.diagnostics), 30.0), probe.diagnostics
    finally:
        probe.close()
    out = proc.stop_cleanly(signal.SIGTERM)
    assert "stopped by SIGTERM" in out and "stopped at sim t = " in out, out
    assert "drive done" not in out


@pytest.mark.parametrize(("make", "message"), [
    (lambda tmp: tmp / "missing.json", "does not exist"),
    (lambda tmp: write_field_file(tmp / "standing.json", replace(SMALL, speed_mps=0.0)),
     "speed_mps 0.0 must be positive"),
    (lambda tmp: write_field_file(tmp / "sky.json",
                                  replace(SMALL, camera=replace(SMALL.camera, pitch_deg=75.0))),
     "does not see the ground"),
])
def test_an_unusable_field_file_is_one_fatal_line(tmp_path: Path, make: Callable[[Path], Path],
                                                  message: str) -> None:
    path = make(tmp_path)
    cmd = python_module_command(MODULE, "--ros-args", "-p", f"field_file:={path}")
    result = subprocess.run(cmd, capture_output=True, text=True, env=ros_env(), timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    fatal = [line for line in out.splitlines() if "fatal:" in line]
    assert len(fatal) == 1 and str(path) in fatal[0] and message in fatal[0], out
    assert "Traceback" not in out


@pytest.mark.parametrize(("param", "message"), [
    ("real_time_factor:=0.0", "real_time_factor"),
    ("drive_mode:=teleport", "drive_mode must be one of scripted, cmd_vel"),
])
def test_a_bad_parameter_is_one_fatal_line(tmp_path: Path, param: str, message: str) -> None:
    cmd = python_module_command(MODULE, "--ros-args", "-p", param)
    result = subprocess.run(cmd, capture_output=True, text=True, env=ros_env(), timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    fatal = [line for line in out.splitlines() if "fatal:" in line]
    assert len(fatal) == 1 and message in fatal[0], out


def test_messages_carry_the_sample_and_the_mount() -> None:
    odom, tf = odometry_messages(OdomSample(1_250_000_000, 2.5, 0.75))
    assert (odom.header.stamp.sec, odom.header.stamp.nanosec) == (1, 250_000_000)
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")
    assert odom.pose.pose.position.x == 2.5 and odom.twist.twist.linear.x == 0.75
    assert odom.pose.pose.orientation.w == 1.0
    assert tf.header == odom.header and tf.child_frame_id == "base_link"
    assert tf.transform.translation.x == 2.5
    mount = CameraMount(0.2, 0.0, 0.7, pitch_deg=20.0, roll_deg=10.0, yaw_deg=-30.0)
    msg = transform_message(mount_transform(mount), 0)
    q = msg.transform.rotation
    assert (msg.header.frame_id, msg.child_frame_id) == ("base_link", "camera_optical_frame")
    assert (msg.transform.translation.x, msg.transform.translation.z) == (0.2, 0.7)
    assert np.allclose(quaternion_to_matrix((q.x, q.y, q.z, q.w)), mount.rotation(),
                       atol=1e-12)
    assert math.isclose(q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2, 1.0)
