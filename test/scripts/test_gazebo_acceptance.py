"""scripts/gazebo_acceptance.py without Gazebo: ``--help`` works, a machine without gz / ros_gz
gets a clear message and exit 2, and its pure helpers (prerequisites, drive command, score
report, waiting for the scorer's JSON) behave."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from support import REPO

SCRIPT = REPO / "scripts" / "gazebo_acceptance.py"


@pytest.fixture(scope="module")
def acc() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("gazebo_acceptance", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_help_works_without_ros_or_gazebo() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--distance-m" in proc.stdout and "Gazebo" in proc.stdout


def test_without_gz_exits_2_with_what_to_install(tmp_path: Path) -> None:
    """A PATH without gz and ros2 (this machine has neither anyway)."""
    env = dict(os.environ, PATH=str(tmp_path))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot run: `gz` (Gazebo's command line) is not on PATH" in proc.stderr
    assert "ros-jazzy-ros-gz" in proc.stderr and "`ros2` is not on PATH" in proc.stderr
    assert not (tmp_path / "o").exists()   # nothing written before the checks pass


class _Done:
    def __init__(self, code: int) -> None:
        self.returncode = code


def test_prerequisites_name_each_missing_piece(acc: types.ModuleType) -> None:
    calls: list[list[str]] = []

    def run_ok(cmd: list[str], **kw: Any) -> _Done:
        calls.append(cmd)
        return _Done(0)

    everything = acc.missing_prerequisites(which=lambda name: f"/usr/bin/{name}", run=run_ok)
    assert [p for p in everything if "rclpy" not in p] == []     # rclpy is in this venv
    assert ["gz", "sim", "--versions"] in calls
    assert ["ros2", "pkg", "prefix", "ros_gz_bridge"] in calls

    def run_without_bridge(cmd: list[str], **kw: Any) -> _Done:
        return _Done(1 if cmd[-1] in ("ros_gz_bridge", "crop_weed_seg") or cmd[:2] == [
            "gz", "sim"] else 0)

    problems = acc.missing_prerequisites(which=lambda name: f"/usr/bin/{name}",
                                         run=run_without_bridge)
    assert any("gz tools are there but not gz-sim" in p for p in problems)
    assert any("ros_gz_bridge" in p and "ros-jazzy-ros-gz" in p for p in problems)
    assert any("crop_weed_seg is not built" in p for p in problems)
    assert not any("tf2_ros" in p for p in problems)


def test_drive_command_stops_at_the_end(acc: types.ModuleType) -> None:
    assert acc.speed_command(1.0, 10.0, 0.8) == 0.8
    assert acc.speed_command(10.0, 10.0, 0.8) == 0.0
    assert acc.speed_command(12.0, 10.0, 0.8) == 0.0


def test_report_tables_and_exit_code(acc: types.ModuleType) -> None:
    doc = {"complete": True, "end_reason": "drive end reached",
           "score": {"weeds_scored": 40, "weed_hit_rate": 0.9, "crops_scored": 20,
                     "crop_hit_rate": 0.25, "double_sprays": 1, "sprayed_ratio": float("nan")},
           "segmentation": {"miou": 0.71}, "frames": {"matched": 140}, "notes": ["n"]}
    rows = dict(acc.score_rows(doc))
    assert rows["weed hit rate"] == "90.0 %" and rows["sprayed / blanket"] == "–"
    assert rows["mIoU (labels vs labels_truth)"] == "0.710"
    table = acc.format_table(("a", "b"), [("x|y", 1)])
    assert "x\\|y" in table and table.count("\n") == 2
    passed = acc.Check("clock", True, "ok")
    assert acc.exit_code([passed]) == 0
    assert acc.exit_code([passed, acc.Check("drive", None, "not reached")]) == 1
    assert acc.exit_code([]) == 1
    assert "**not reached**" in acc.checks_table([acc.Check("drive", None, "")])
    assert rows["frames matched (labels with labels_truth)"] == "140"
    assert acc.score_is_complete(doc) and not acc.score_is_complete({**doc, "complete": False})
    assert not acc.score_is_complete({"score": {}})


def test_waiting_for_the_score_reads_a_whole_document(acc: types.ModuleType,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "score.json"
    assert acc.wait_for_json(path, 5.0, lambda: False, poll_s=0.01) is None   # writer died
    assert acc.wait_for_json(path, 0.05, lambda: True, poll_s=0.01) is None   # timed out
    path.write_text('{"score": {"weed')                                      # half written
    timer = threading.Timer(0.2, lambda: path.write_text(json.dumps({"score": {"a": 1}})))
    timer.start()
    try:
        assert acc.wait_for_json(path, 10.0, lambda: True, poll_s=0.02) == {"score": {"a": 1}}
    finally:
        timer.cancel()


# --- the probe against a FAKE Gazebo over real ROS ----------------------------------------------

class FakeGazebo:
    """FAKE of Gazebo + ros_gz_bridge + the segmenter (none of them can run here): a node that
    publishes what the bridged world would (``/clock``, ``image``, ``labels_truth`` rgb8 with
    the class in every channel, ``/odom``) and the segmenter's ``labels``, moves the robot by
    the last ``cmd_vel`` and spins in its own thread. Time advances 10 ms per wall 10 ms."""

    def __init__(self, context: Any, start_x: float, truth_frame: str = "camera_optical_frame"
                 ) -> None:
        import rclpy
        from geometry_msgs.msg import Twist
        from nav_msgs.msg import Odometry
        from rclpy.executors import SingleThreadedExecutor
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image

        self.Image, self.Odometry, self.Clock = Image, Odometry, Clock
        self.node = rclpy.create_node("fake_gazebo", context=context)
        self.x, self.speed, self.steps, self.truth_frame = start_x, 0.0, 0, truth_frame
        self.commands: list[float] = []
        self.pub = {name: self.node.create_publisher(kind, topic, 10) for name, kind, topic in (
            ("clock", Clock, "/clock"), ("image", Image, "/image"),
            ("truth", Image, "/labels_truth"), ("labels", Image, "/labels"),
            ("odom", Odometry, "/odom"))}
        self.node.create_subscription(Twist, "/cmd_vel", self._on_cmd, 10)
        self.node.create_timer(0.01, self._step)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_cmd(self, msg: Any) -> None:
        self.speed = float(msg.linear.x)
        self.commands.append(self.speed)

    def _image(self, stamp: Any, frame: str, encoding: str, value: Any) -> Any:
        import numpy as np

        msg = self.Image()
        msg.header.stamp, msg.header.frame_id = stamp, frame
        msg.height, msg.width, msg.encoding = 48, 64, encoding
        channels = 1 if encoding == "mono8" else 3
        msg.step = 64 * channels
        plane = np.zeros((48, 64, channels), np.uint8)
        plane[:, :20] = value[0]
        plane[:, 20:40] = value[1]
        msg.data = plane.tobytes()
        return msg

    def _step(self) -> None:
        from builtin_interfaces.msg import Time

        self.steps += 1
        self.x += self.speed * 0.01
        ns = self.steps * 10_000_000
        stamp = Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
        clock = self.Clock()
        clock.clock = stamp
        self.pub["clock"].publish(clock)
        if self.steps % 2 == 0:
            odom = self.Odometry()
            odom.header.stamp, odom.header.frame_id, odom.child_frame_id = stamp, "odom", \
                "base_link"
            odom.pose.pose.position.x = self.x
            odom.twist.twist.linear.x = self.speed
            self.pub["odom"].publish(odom)
        if self.steps % 7 == 0:
            self.pub["image"].publish(self._image(stamp, "camera_optical_frame", "rgb8",
                                                  (90, 120)))
            self.pub["truth"].publish(self._image(stamp, self.truth_frame, "rgb8", (1, 2)))
            self.pub["labels"].publish(self._image(stamp, "camera_optical_frame", "mono8",
                                                   (1, 2)))

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(10)
        self.node.destroy_node()


def _probe_run(acc: types.ModuleType, truth_frame: str) -> tuple[list[Any], FakeGazebo]:
    pytest.importorskip("rclpy")
    from crop_weed_seg.sim.drive import Drive
    from crop_weed_seg.sim.scenario import CameraSpec, Scenario

    from support.ros import ros_context

    scenario = Scenario(camera=CameraSpec(width=64, height=48), speed_mps=1.0)
    drive = Drive(start_x=0.3, duration_s=0.5, speed_mps=1.0, frame_rate_hz=15.0,
                  scored_span=(0.5, 0.7))
    args = types.SimpleNamespace(startup_timeout_s=60.0, timeout_s=60.0)
    checks: list[Any] = []
    with ros_context() as context:
        fake = FakeGazebo(context, drive.start_x, truth_frame)
        try:
            acc.probe_and_drive(args, scenario, drive, checks, context=context)
        finally:
            fake.close()
    return checks, fake


def test_the_probe_waits_drives_to_the_end_and_checks_the_topics(
        acc: types.ModuleType) -> None:
    checks, fake = _probe_run(acc, "camera_optical_frame")
    assert [c.name for c in checks][:2] == ["/clock from Gazebo",
                                            "first labelled frame (segmenter labels)"]
    assert all(c.passed for c in checks), acc.checks_table(checks)
    assert len(checks) == 8
    assert fake.x >= 0.8 - 1e-9 and fake.x < 1.2             # drove to the end, then stopped
    assert fake.commands[0] == 1.0 and fake.commands[-1] == 0.0


def test_the_probe_fails_a_wrong_labels_frame(acc: types.ModuleType) -> None:
    """Gazebo without gz_frame_id stamps the sensor's scoped name: the check says so."""
    checks, _ = _probe_run(acc, "robot::base_link::segmentation")
    failed = [c for c in checks if not c.passed]
    assert [c.name for c in failed] == ["labels_truth: frame id, size"], \
        acc.checks_table(checks)
    assert "robot::base_link::segmentation" in failed[0].detail
