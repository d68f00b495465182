"""The sim_scorer node in a subprocess, fed over real ROS 2 topics (Fast DDS) by a probe that plays
a simulated drive on sim time: /clock, /odom, labels / labels_truth pairs (some missing, one
late, one of another size, one malformed, truth in mono8 and rgb8) and nozzle_states from the
oracle timeline (a planner with perfect knowledge). The score.json it writes at the end must show
every weed hit (the same figures as ``score()`` on the oracle timeline) and the mIoU that was fed.
Also: SIGINT before the end writes an incomplete score; a missing field file is fatal.

Synchronisation is by messages with deadlines: the probe publishes the drive in chunks and waits
for the scorer's diagnostics to show every chunk received; the run ends when the process exits.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402

from crop_weed_seg.data.metrics import ConfusionAccumulator  # noqa: E402
from crop_weed_seg.perception.image_conversion import array_to_image  # noqa: E402
from crop_weed_seg.ros.scorer_node import DIAGNOSTIC_NAME  # noqa: E402
from crop_weed_seg.sim import oracle_timeline, score  # noqa: E402
from crop_weed_seg.sim.scenario import (  # noqa: E402
    BoomSpec,
    CameraSpec,
    Scenario,
    write_field_file,
)
from crop_weed_seg.sim.world import FieldConfig  # noqa: E402
from crop_weed_seg.spray.planner import nozzle_joint_names  # noqa: E402

from support.nodes import NodeProcess  # noqa: E402
from support.ros import python_module_command, ros_context, ros_env, spin_until  # noqa: E402

RELIABLE = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
NS = 10**9
MS = 10**6
SCENARIO = Scenario(field=FieldConfig(length_m=3.0, width_m=0.6, gsd_mm=2.0), seed=5,
                    camera=CameraSpec(width=160, height=120, height_m=0.5),
                    boom=BoomSpec(nozzles=6, spacing_m=0.1))
T0_NS = 1 * NS               # sim time of the drive's start (field_sim's start_delay_s)
LABEL_SHAPE = (24, 32)       # the scorer compares label images of any size


def to_time(ns: int) -> Time:
    return Time(sec=ns // NS, nanosec=ns % NS)


@dataclass
class Field:
    path: Path
    fld: Any
    boom: Any
    drive: Any
    latency_ns: int


@pytest.fixture(scope="module")
def field_file(tmp_path_factory: pytest.TempPathFactory) -> Field:
    fld = SCENARIO.build_field()
    path = write_field_file(tmp_path_factory.mktemp("field") / "field.json", SCENARIO, fld)
    return Field(path, fld, SCENARIO.build_boom(), SCENARIO.plan(fld),
                 int(round(SCENARIO.valve_latency_ms * MS)))


@pytest.fixture(scope="module")
def context() -> Iterator[object]:
    with ros_context() as ctx:
        yield ctx


class ScorerProcess(NodeProcess):
    def __init__(self, workdir: Path, namespace: str, *ros_args: str) -> None:
        super().__init__(workdir, namespace, *ros_args, module="crop_weed_seg.ros.scorer_node")


@dataclass
class Sent:
    """What the probe sent, to compare with what the scorer saw."""

    states: int = 0
    odometry: int = 0
    labels: int = 0
    truth: int = 0
    pairs: ConfusionAccumulator = field(default_factory=ConfusionAccumulator)


class Probe:
    """Plays the simulator, the segmenter and the planner towards the scorer under ``ns``."""

    def __init__(self, context: Any, ns: str, field_file: Path) -> None:
        self.ns = ns
        self.field_file = str(field_file)
        self.node = Node("probe" + ns.replace("/", "_"), context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.clock_pub = self.node.create_publisher(Clock, "/clock", 10)
        self.odom_pub = self.node.create_publisher(Odometry, "/odom", RELIABLE)
        self.states_pub = self.node.create_publisher(JointState, f"{ns}/nozzle_states", RELIABLE)
        self.labels_pub = self.node.create_publisher(Image, f"{ns}/labels", RELIABLE)
        self.truth_pub = self.node.create_publisher(Image, f"{ns}/labels_truth", RELIABLE)
        self.diagnostics: list[dict[str, str]] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.sent = Sent()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name == DIAGNOSTIC_NAME and values.get("field_file") == self.field_file:
                self.diagnostics.append(values)

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        return spin_until(self.executor, predicate, timeout, step=0.01)

    def wait_for_node(self, timeout: float = 90.0) -> None:
        pubs = (self.clock_pub, self.odom_pub, self.states_pub, self.labels_pub, self.truth_pub)
        assert self.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs)
                               and bool(self.diagnostics), timeout), \
            f"sim_scorer under {self.ns} did not come up within {timeout} s"

    def shows(self, condition: Callable[[dict[str, str]], bool], timeout: float) -> bool:
        return self.spin_until(lambda: bool(self.diagnostics) and condition(self.diagnostics[-1]),
                               timeout)

    def wait_received(self, timeout: float = 60.0, odometry_lost: int = 3) -> dict[str, str]:
        """Wait for diagnostics that show everything sent so far received (odometry is best
        effort at the scorer: a few may be lost on the way)."""
        s = self.sent

        def caught_up(v: dict[str, str]) -> bool:
            return (int(v["nozzle_samples"]) + int(v["bad_nozzle_states"]) >= s.states
                    and int(v["odometry_samples"]) + int(v["bad_odometry"]) >=
                    s.odometry - odometry_lost
                    and int(v["labels_received"]) + int(v["frames_bad_labels"]) >= s.labels
                    and int(v["truth_received"]) + int(v["frames_bad_truth"]) >= s.truth)
        assert self.shows(caught_up, timeout), \
            f"the scorer did not receive what was sent ({s}); last diagnostics: " \
            f"{self.diagnostics[-1] if self.diagnostics else None}"
        return self.diagnostics[-1]

    def handshake(self, t_ns: int, x: float, names: list[str], timeout: float = 60.0) -> None:
        """Before the drive: odometry, nozzle states (all shut) and one image pair stamped
        ``t_ns``, sent again until the scorer shows them. Messages sent before the scorer's
        readers have matched this probe's writers are lost (best effort) or may be (reliable,
        volatile); the same stamp again replaces a sample, it is not counted twice."""
        deadline = time.monotonic() + timeout
        while not self.shows(lambda v: int(v["odometry_samples"]) >= 1
                             and int(v["nozzle_samples"]) >= 1, 2.0):
            assert time.monotonic() < deadline, f"no odometry/nozzle_states seen: " \
                f"{self.diagnostics[-1] if self.diagnostics else None}"
            self.odometry(t_ns, x, count=False)
            self.states(t_ns, [False] * len(names), names, count=False)
        self.sent.odometry, self.sent.states = 1, 1
        truth = np.zeros(LABEL_SHAPE, np.uint8)
        truth[4:10, 4:12] = 1
        for key, truth_side in (("truth_received", True), ("frames_matched", False)):
            def seen(v: dict[str, str], key: str = key) -> bool:
                return int(v[key]) >= 1
            while True:     # reliable: sent again only when the first one surely went astray
                self.image(truth_side, t_ns, truth, count=False)
                if self.shows(seen, 15.0):
                    break
                assert time.monotonic() < deadline, f"image pair not seen: {self.diagnostics}"
        self.sent.labels, self.sent.truth = 1, 1
        self.sent.pairs.add(truth, truth)

    # -- messages -----------------------------------------------------------------------------
    def clock(self, t_ns: int) -> None:
        self.clock_pub.publish(Clock(clock=to_time(t_ns)))

    def odometry(self, t_ns: int, x: float, count: bool = True) -> None:
        msg = Odometry()
        msg.header.stamp = to_time(t_ns)
        msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
        msg.pose.pose.position.x = x
        msg.twist.twist.linear.x = SCENARIO.speed_mps
        self.odom_pub.publish(msg)
        self.sent.odometry += count

    def states(self, t_ns: int, row: Any, names: list[str], count: bool = True) -> None:
        msg = JointState(name=names, position=[1.0 if v else 0.0 for v in row])
        msg.header.stamp = to_time(t_ns)
        msg.header.frame_id = "base_link"
        self.states_pub.publish(msg)
        self.sent.states += count

    def image(self, truth: bool, t_ns: int, labels: np.ndarray, encoding: str = "mono8",
              count: bool = True) -> None:
        data = labels if encoding == "mono8" else \
            np.stack([labels, np.full_like(labels, 200), np.full_like(labels, 7)], axis=2)
        msg = array_to_image(data, encoding)
        msg.header.stamp = to_time(t_ns)
        msg.header.frame_id = "camera_optical_frame"
        (self.truth_pub if truth else self.labels_pub).publish(msg)
        if truth:
            self.sent.truth += count
        else:
            self.sent.labels += count

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=0)
        self.node.destroy_node()


def truth_frame(k: int) -> np.ndarray:
    return np.random.default_rng(k).choice(3, LABEL_SHAPE, p=[0.7, 0.2, 0.1]).astype(np.uint8)


def predicted_frame(k: int) -> np.ndarray:
    pred = truth_frame(k).copy()
    flat = pred.reshape(-1)
    flat[:40 + 3 * k] = (flat[:40 + 3 * k] + 1) % 3    # a few wrong pixels, more later on
    return pred


def drive_events(f: Field) -> list[tuple[int, int, str, Any]]:
    """The drive as (sim time, order, kind, payload), sorted: clock every 10 ms, odometry at
    50 Hz, frames at the scenario's rate, nozzle commands (oracle timeline − valve latency) on
    every change and every 20 ms."""
    drive = f.drive
    oracle = oracle_timeline(f.fld, f.boom, drive)
    dt_ns = int(round(oracle.dt * NS))
    end_x = drive.start_x + drive.duration_s * drive.speed_mps
    end_ns = T0_NS + int(round(drive.duration_s * NS))
    events: list[tuple[int, int, str, Any]] = []
    for i, row in enumerate(oracle.open):
        if i == 0 or i % 10 == 0 or i == len(oracle.open) - 1 or \
                (row != oracle.open[i - 1]).any():
            events.append((T0_NS - f.latency_ns + i * dt_ns, 1, "states", row))
    for j in range(-5, (end_ns - T0_NS) // (20 * MS) + 30):   # on past the end, standing
        t = T0_NS + j * 20 * MS
        x = min(end_x, drive.start_x + drive.speed_mps * max(0, t - T0_NS) / NS)
        events.append((t, 0, "odometry", x))
    for k in range(drive.frame_count):
        events.append((T0_NS + int(round(k / drive.frame_rate_hz * NS)), 2, "frame", k))
    for t in range(T0_NS - 500 * MS, end_ns + 800 * MS, 10 * MS):
        events.append((t, -1, "clock", None))
    return sorted(events, key=lambda e: (e[0], e[1]))


MISSING_LABELS = (3,)        # the segmenter dropped these frames
LATE_LABELS = (8,)           # their labels come 25 frames later (after their truth expired)
MISSING_TRUTH = (5,)
SIZE_MISMATCH = (10,)
MALFORMED_LABELS = (12,)


def play_frame(probe: Probe, k: int, t_ns: int, frame_stamps: dict[int, int]) -> None:
    frame_stamps[k] = t_ns
    truth, pred = truth_frame(k), predicted_frame(k)
    if k not in MISSING_TRUTH:
        probe.image(True, t_ns, truth, "rgb8" if k % 2 == 0 else "mono8")
    if k in MISSING_LABELS or k in LATE_LABELS:
        pass
    elif k in SIZE_MISMATCH:
        probe.image(False, t_ns, pred[:12, :16].copy())
    elif k in MALFORMED_LABELS:
        msg = array_to_image(pred, "mono8")
        msg.header.stamp = to_time(t_ns)
        msg.step = 8                       # smaller than the width: a broken publisher
        probe.labels_pub.publish(msg)
        probe.sent.labels += 1
    else:
        probe.image(False, t_ns, pred)
        if k not in MISSING_TRUTH:
            probe.sent.pairs.add(truth, pred)
    for late in LATE_LABELS:
        if k == late + 25:
            probe.image(False, frame_stamps[late], predicted_frame(late))


def test_a_drive_is_scored_with_the_simulators_scoring(context: object, field_file: Field,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = ScorerProcess(tmp_path, "/sc", "-p", "use_sim_time:=true",
                         "-p", f"field_file:={field_file.path}", "-p", f"out_dir:={out}",
                         "-p", "exit_when_done:=true", "-p", "tail_s:=0.2",
                         "-p", "match_horizon_s:=1.0")
    probe = Probe(context, "/sc", field_file.path)
    names = nozzle_joint_names(field_file.boom.nozzle_count)
    frame_stamps: dict[int, int] = {}
    try:
        probe.clock(T0_NS - 600 * MS)
        try:
            probe.wait_for_node()
        except AssertionError as exc:
            raise AssertionError(proc.output()) from exc
        probe.handshake(T0_NS - NS, field_file.drive.start_x, names)
        events = drive_events(field_file)
        # the clock stays at the drive's end until the scorer has everything: then it moves on
        end_ns = T0_NS + int(round(field_file.drive.duration_s * NS))
        final_clock = [e[0] for e in events if e[2] == "clock" and e[0] > end_ns]
        events = [e for e in events if e[2] != "clock" or e[0] <= end_ns]
        chunk_end = events[0][0] + 500 * MS
        for n, (t, _, kind, payload) in enumerate(events):
            if kind == "clock":
                probe.clock(t)
            elif kind == "odometry":
                probe.odometry(t, payload)
            elif kind == "states":
                probe.states(t, payload, names)
            else:
                play_frame(probe, payload, t, frame_stamps)
            if n == 100:                                       # malformed: counted, skipped
                probe.states_pub.publish(JointState(name=names[:2], position=[1.0, 0.0]))
                probe.sent.states += 1
                bad = Odometry()
                bad.header.stamp = to_time(t)
                bad.pose.pose.position.x = float("nan")
                probe.odom_pub.publish(bad)
                probe.sent.odometry += 1
            if t >= chunk_end and kind != "clock":
                probe.wait_received()
                chunk_end = t + 500 * MS
        values = probe.wait_received()
        assert values["end_reached"] == "True" and values["finished"] == "False"
        for t in final_clock:   # past the drive's end + latency + tail: it scores and exits
            probe.clock(t)
        deadline = time.monotonic() + 90.0
        while proc.proc.poll() is None and time.monotonic() < deadline:
            probe.spin_until(lambda: proc.proc.poll() is not None, 1.0)
        assert proc.proc.poll() == 0, proc.output()
    finally:
        probe.close()
        proc.stop()
    log = proc.output()
    assert "Traceback" not in log, log
    assert "final score (complete: drive end)" in log and "weeds   scored" in log, log
    assert " frames " in log and "mIoU" in log and "t=" in log, log   # progress lines

    report = json.loads((out / "score.json").read_text())
    sc = report["score"]
    expect = score(field_file.fld, field_file.boom,
                   oracle_timeline(field_file.fld, field_file.boom, field_file.drive),
                   field_file.drive.scored_span)
    assert report["complete"] and report["end_reason"] == "drive end"
    assert sc["weeds_scored"] == expect.weeds_scored > 3
    assert sc["weeds_hit"] == sc["weeds_scored"]                  # every weed hit
    assert (sc["crops_scored"], sc["crops_hit"], sc["double_sprays"]) == \
        (expect.crops_scored, expect.crops_hit, expect.double_sprays)
    assert sc["sprayed_area_m2"] == pytest.approx(expect.sprayed_area_m2, rel=1e-6)

    fed = probe.sent.pairs.scores()
    assert report["segmentation"]["miou"] == pytest.approx(fed.miou, abs=1e-12)
    assert 0.3 < fed.miou < 0.95
    for name, value in fed.iou.items():
        assert report["segmentation"]["iou"][name] == pytest.approx(value, abs=1e-12)
    frames = report["frames"]
    assert frames["matched"] == probe.sent.pairs.images
    assert frames["labels_missing"] == len(MISSING_LABELS + LATE_LABELS + MALFORMED_LABELS)
    assert frames["truth_missing"] == len(MISSING_TRUTH)
    assert (frames["late"], frames["size_mismatch"], frames["bad_labels"]) == (1, 1, 1)
    assert report["nozzles"]["bad_nozzle_states"] == 1
    assert report["nozzles"]["bad_odometry"] == 1
    try:
        import matplotlib  # noqa: F401
        assert report["plot"] == "score.png" and (out / "score.png").stat().st_size > 0
    except ImportError:
        assert report["plot"] is None


def test_sigint_before_the_end_writes_an_incomplete_score(context: object, field_file: Field,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = ScorerProcess(tmp_path, "/si", "-p", "use_sim_time:=true",
                         "-p", f"field_file:={field_file.path}", "-p", f"out_dir:={out}",
                         "-p", "exit_when_done:=true")
    probe = Probe(context, "/si", field_file.path)
    try:
        probe.clock(T0_NS)
        try:
            probe.wait_for_node()
        except AssertionError as exc:
            raise AssertionError(proc.output()) from exc
        names = nozzle_joint_names(field_file.boom.nozzle_count)
        probe.handshake(T0_NS - NS, field_file.drive.start_x, names)
        for j in range(10):
            t = T0_NS + j * 20 * MS
            probe.clock(t)
            probe.odometry(t, field_file.drive.start_x + 0.02 * j)
            probe.states(t, [j % 2] * field_file.boom.nozzle_count, names)
        values = probe.wait_received()
        assert values["end_reached"] == "False"
    finally:
        probe.close()
    log = proc.stop_cleanly(signal.SIGINT)
    report = json.loads((out / "score.json").read_text())
    assert not report["complete"] and "SIGINT" in report["end_reason"]
    assert report["nozzles"]["samples"] == 11 and report["score"]["weeds_hit"] == 0
    assert "INCOMPLETE" in log


@pytest.mark.parametrize("args, message", [
    ((), "field_file is required"),
    (("-p", "field_file:=/nonexistent/field.json"), "/nonexistent/field.json does not exist"),
])
def test_a_missing_field_file_is_fatal(args: tuple[str, ...], message: str) -> None:
    cmd = python_module_command("crop_weed_seg.ros.scorer_node", "--ros-args", *args)
    result = subprocess.run(cmd, capture_output=True, text=True, env=ros_env(), timeout=90)
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "fatal:" in lines[0] and message in lines[0], lines
