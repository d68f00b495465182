"""The spray_planner node in a subprocess, talked to over real ROS 2 topics (Fast DDS): a nozzle
opens and closes at the predicted (sim) time, the failure policy when targets stop (also with the
clock stopped), lost and bad odometry, parameter validation, clean exit and fatal start-up errors.

Synchronisation is by messages with deadlines: the test drives ``/clock`` step by step and waits
for the ``nozzle_states`` message stamped with each step; diagnostics show counters."""

from __future__ import annotations

import math
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import JointState, PointCloud2, PointField  # noqa: E402

from crop_weed_seg.ros.spray_planner_node import DIAGNOSTIC_NAME  # noqa: E402
from crop_weed_seg.spray.geometry import Boom  # noqa: E402
from crop_weed_seg.spray.records import POINT_FIELDS, POINT_STEP, empty_targets  # noqa: E402

from support.nodes import NodeProcess  # noqa: E402
from support.ros import (  # noqa: E402
    python_module_command,
    ros_context,
    ros_env,
    set_parameters,
    spin_until,
)

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
DATATYPES = {"<f4": PointField.FLOAT32, "<u2": PointField.UINT16, "<i2": PointField.INT16,
             "<u4": PointField.UINT32}
T0_NS = 100 * 10**9
BOOM = Boom(12, 0.05, 0.0, -0.5)


def to_time(ns: int) -> Time:
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def key(t: Any) -> int:
    return t.sec * 10**9 + t.nanosec


def cloud(records: np.ndarray, stamp_ns: int, frame_id: str = "base_link") -> PointCloud2:
    msg = PointCloud2(height=1, width=len(records), is_bigendian=False, point_step=POINT_STEP,
                      row_step=POINT_STEP * len(records), is_dense=True)
    msg.fields = [PointField(name=name, offset=offset, datatype=DATATYPES[kind], count=1)
                  for name, kind, offset, _ in POINT_FIELDS]
    msg.data = records.tobytes()
    msg.header.stamp = to_time(stamp_ns)
    msg.header.frame_id = frame_id
    return msg


def odometry(stamp_ns: int, vx: float) -> Odometry:
    msg = Odometry()
    msg.header.stamp = to_time(stamp_ns)
    msg.header.frame_id = "odom"
    msg.twist.twist.linear.x = vx
    return msg


class PlannerProcess(NodeProcess):
    """``spray_planner`` in a subprocess."""

    def __init__(self, workdir: Path, namespace: str, *ros_args: str) -> None:
        super().__init__(workdir, namespace, *ros_args,
                         module="crop_weed_seg.ros.spray_planner_node")


class Probe:
    def __init__(self, context: Any, ns: str) -> None:
        self.ns = ns
        self.node = Node("probe" + ns.replace("/", "_"), context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.targets_pub = self.node.create_publisher(PointCloud2, f"{ns}/spray_targets",
                                                      RELIABLE)
        self.odom_pub = self.node.create_publisher(Odometry, f"{ns}/odom", RELIABLE)
        self.clock_pub = self.node.create_publisher(Clock, "/clock", 10)
        self.states: list[JointState] = []
        self.diagnostics: list[DiagnosticStatus] = []
        self.node.create_subscription(JointState, f"{ns}/nozzle_states", self.states.append,
                                      RELIABLE)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name == DIAGNOSTIC_NAME and values.get("input_topic") == \
                    f"{self.ns}/spray_targets":
                self.diagnostics.append(status)

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        return spin_until(self.executor, predicate, timeout, step=0.005)

    def wait_for_node(self, timeout: float = 30.0) -> None:
        assert self.spin_until(lambda: self.targets_pub.get_subscription_count() > 0
                               and self.odom_pub.get_subscription_count() > 0
                               and len(self.states) > 0, timeout), \
            f"spray_planner under {self.ns} did not come up within {timeout} s"

    def diagnostic(self, condition: Callable[[DiagnosticStatus, dict[str, str]], bool],
                   timeout: float = 10.0, republish: Callable[[], None] | None = None
                   ) -> tuple[DiagnosticStatus, dict[str, str]]:
        """Wait for a diagnostics status that satisfies ``condition`` (calling ``republish``
        about every second meanwhile)."""
        start = len(self.diagnostics)
        deadline = time.monotonic() + timeout

        def match() -> tuple[DiagnosticStatus, dict[str, str]] | None:
            for status in self.diagnostics[start:]:
                values = {kv.key: kv.value for kv in status.values}
                if condition(status, values):
                    return status, values
            return None
        while time.monotonic() < deadline:
            if republish is not None:
                republish()
            if self.spin_until(lambda: match() is not None,
                               min(1.0, deadline - time.monotonic())):
                break
        found = match()
        last = self.diagnostics[-1] if self.diagnostics else None
        assert found is not None, f"no matching diagnostics within {timeout} s; last: " \
            f"{last and (last.message, {kv.key: kv.value for kv in last.values})}"
        return found

    def state_at(self, stamp_ns: int, timeout: float = 5.0) -> list[float]:
        """Publish /clock = stamp and wait for the nozzle_states stamped with it."""
        deadline = time.monotonic() + timeout
        while True:
            self.clock_pub.publish(Clock(clock=to_time(stamp_ns)))
            found = [m for m in self.states if key(m.header.stamp) == stamp_ns]
            if found or self.spin_until(
                    lambda: any(key(m.header.stamp) == stamp_ns for m in self.states[-5:]),
                    min(0.5, deadline - time.monotonic())):
                return list(next(m for m in reversed(self.states)
                                 if key(m.header.stamp) == stamp_ns).position)
            assert time.monotonic() < deadline, f"no nozzle_states stamped {stamp_ns} ns"

    def set_parameters(self, **values: Any) -> list[Any]:
        return set_parameters(self.node, self.executor, f"{self.ns}/spray_planner", **values)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=0)
        self.node.destroy_node()


@pytest.fixture(scope="module")
def context() -> Iterator[object]:
    with ros_context() as ctx:
        yield ctx


@pytest.fixture(scope="module")
def planner_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlannerProcess]:
    proc = PlannerProcess(tmp_path_factory.mktemp("planner"), "/pl",
                          "-p", "use_sim_time:=true", "-p", "rate_hz:=100.0",
                          "-p", "stale_timeout_s:=60.0", "-p", "failure_policy:=blanket")
    yield proc
    proc.stop_cleanly()


@pytest.fixture(scope="module")
def probe(context: object, planner_node: PlannerProcess) -> Iterator[Probe]:
    p = Probe(context, "/pl")
    p.clock_pub.publish(Clock(clock=to_time(T0_NS)))
    try:
        p.wait_for_node()
    except AssertionError as exc:
        raise AssertionError(planner_node.output()) from exc
    yield p
    p.close()


def test_nozzle_opens_and_closes_at_the_predicted_time(probe: Probe) -> None:
    # Nothing received yet: stale, failure policy blanket -> all open.
    assert probe.state_at(T0_NS) == [1.0] * 12
    msg = probe.states[-1]
    assert msg.name == [f"nozzle_{i:02d}" for i in range(12)]
    assert msg.header.frame_id == "base_link"

    probe.diagnostic(lambda s, v: v.get("odometry_updates", "0") != "0",
                     republish=lambda: probe.odom_pub.publish(odometry(T0_NS, 1.0)))
    lane = 3
    rec = empty_targets(1)
    rec["x"], rec["y"], rec["size_x"], rec["size_y"] = 0.3, BOOM.lane_center(lane), 0.04, 0.01
    rec["class_id"], rec["lane"], rec["track_id"] = 2, lane, 7
    probe.targets_pub.publish(cloud(rec, T0_NS))
    probe.diagnostic(lambda s, v: v.get("accepted_targets") == "1")

    # v = 1 m/s, latency 0.03 s, margin 0.02 m, nozzle_x = -0.5 m, x = 0.3 m, size 0.04 m:
    # the window is reached at 0.73 s and left at 0.81 s; a command stands for one period
    # (rate_hz 100: 10 ms) and is judged halfway through it, so the lane is commanded open for
    # 0.725 s <= t - T0 <= 0.81 s (a point test: from 0.73 s, and the probe at 0.727 s would
    # find it shut). Clock steps of 10 ms, 2-3 ms off the edges.
    opened = []
    for k in range(100):
        t_ns = T0_NS + 7_000_000 + k * 10_000_000
        position = probe.state_at(t_ns)
        others = position[:lane] + position[lane + 1:]
        assert others == [0.0] * 11, (k, position)
        if position[lane] == 1.0:
            opened.append(round((t_ns - T0_NS) * 1e-9, 4))
    expected = [round(0.727 + 0.01 * i, 4) for i in range(9)]
    assert opened == expected


def test_lost_odometry_applies_the_failure_policy(probe: Probe) -> None:
    # The last odometry was stamped T0; 2.5 s later (odom_timeout_s 1 s) it is lost, while the
    # targets (stale_timeout_s 60 s) are still fresh: failure policy blanket.
    assert probe.state_at(T0_NS + 2_500_000_000) == [1.0] * 12
    status, values = probe.diagnostic(lambda s, v: "odometry lost" in s.message)
    assert status.level == DiagnosticStatus.WARN and "blanket" in status.message
    assert values["odometry_lost"] == "True" and values["stale"] == "False"
    assert values["odometry_timeouts"] == "1"


def test_failure_policy_when_targets_stop_even_with_the_clock_stopped(probe: Probe) -> None:
    # The sim clock stands still from here on: the steady-clock watchdog must apply the policy.
    results = probe.set_parameters(stale_timeout_s=0.3)
    assert results[0].successful, results[0].reason
    _, values = probe.diagnostic(
        lambda s, v: s.level == DiagnosticStatus.WARN and "blanket" in s.message)
    assert values["stale"] == "True" and values["applied"] == "failure_policy:blanket"
    assert probe.spin_until(lambda: list(probe.states[-1].position) == [1.0] * 12, 5.0)
    probe.diagnostic(lambda s, v: int(v["watchdog_published"]) > 0)


def test_bad_odometry_is_counted_and_reported(probe: Probe) -> None:
    status, values = probe.diagnostic(
        lambda s, v: s.level == DiagnosticStatus.ERROR and v["bad_odometry"] != "0",
        republish=lambda: probe.odom_pub.publish(odometry(T0_NS + 10**9, math.nan)))
    assert "bad_odometry" in status.message


def test_parameters_are_validated_and_applied(probe: Probe) -> None:
    result, = probe.set_parameters(mode="mist")
    assert not result.successful and "mode" in result.reason
    result, = probe.set_parameters(margin_m=-0.5)
    assert not result.successful and "margin_m" in result.reason
    result, = probe.set_parameters(spray_classes=[2, 70000])
    assert not result.successful and "spray_classes" in result.reason
    result, = probe.set_parameters(spray_classes=[1, 2])
    assert result.successful, result.reason
    # the parameters shared with the segmenter: its ranges (parameters/shared.py)
    result, = probe.set_parameters(target_frame="odom")
    assert not result.successful and "read-only" in result.reason.lower()
    result, = probe.set_parameters(boom_center_y_m=15.0)
    assert result.successful, result.reason
    result, = probe.set_parameters(default_speed_mps=12.0)  # above max_speed_mps
    assert not result.successful and "max_speed_mps" in result.reason
    result, = probe.set_parameters(boom_center_y_m=0.0)
    assert result.successful, result.reason
    result, = probe.set_parameters(nozzle_count=8)  # the joint list follows the boom
    assert result.successful, result.reason
    assert probe.spin_until(lambda: len(probe.states[-1].name) == 8, 5.0)
    assert probe.states[-1].name[-1] == "nozzle_07"


def test_real_time_defaults_and_sigterm(context: object, tmp_path: Path) -> None:
    proc = PlannerProcess(tmp_path, "/rt")
    probe = Probe(context, "/rt")
    try:
        probe.wait_for_node()
        assert probe.spin_until(lambda: len(probe.states) >= 20, 10.0)
        msg = probe.states[-1]
        assert list(msg.position) == [0.0] * 12  # stale, failure policy off
        assert msg.header.frame_id == "base_link" and msg.name[-1] == "nozzle_11"
        stamps = [key(m.header.stamp) * 1e-9 for m in probe.states[-20:]]
        assert abs(time.time() - stamps[-1]) < 5.0  # a command stamp on the system clock
        rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        assert 25.0 < rate < 100.0
    finally:
        probe.close()
        code = proc.stop(signal.SIGTERM)
    out = proc.output()
    assert code == 0 and "Traceback" not in out, out


def test_bad_parameter_is_fatal_with_one_line(tmp_path: Path) -> None:
    cmd = python_module_command("crop_weed_seg.ros.spray_planner_node", "--ros-args",
                                "-p", "failure_policy:=spot")
    result = subprocess.run(cmd, capture_output=True, text=True, env=ros_env(), timeout=60)
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "fatal" in lines[0] and "failure_policy" in lines[0], lines
