"""``sim_scorer``: scores a simulated drive over ROS (issue 16; docs/SIMULATION.md).

Reads the field file (``field_file``: scenario, optionally drive and plants) and regenerates the
field, so it knows every plant's footprint. Subscribes to ``labels`` (the segmenter's mono8
class ids) and ``labels_truth`` (ground truth: mono8, or rgb8/bgr8 with the label in channel 0),
matched by header stamp into a running confusion matrix; to ``nozzle_states``
(sensor_msgs/JointState, stamp = command time) and ``/odom`` (base_link's field x in
pose.position.x), recorded for the drive; and to ``/clock`` through ``use_sim_time``. The
scoring is :mod:`crop_weed_seg.sim.live_scoring` over :func:`crop_weed_seg.sim.scoring.score`,
the code ``crop-weed-seg simulate`` scores with.

Publishes ``/diagnostics`` at 1 Hz (steady clock: running mIoU, per-class IoU, frames matched /
missing / late, nozzle samples, weeds passed) and logs one progress line per wall second. The
drive has ended when odometry showed base_link at the drive's end and ``valve_latency + tail_s``
more seconds of the node clock passed (or the clock stopped for ``stall_timeout_s`` wall seconds
after the end): the node logs the final table, writes ``score.json`` (+ ``score.png`` with
matplotlib) into ``out_dir`` and, with ``exit_when_done``, exits 0. On SIGINT/SIGTERM before
that it writes what it has, marked incomplete. Missing, late and malformed messages are counted
and reported, never fatal; a missing or unreadable field file is (``fatal:``, exit 1).
"""

from __future__ import annotations

# First, before the imports below: SIGINT/SIGTERM during start-up end the process with exit
# code 0 (docs/RELIABILITY.md).
from crop_weed_seg.ros import clean_exit

clean_exit.install_if_program(__name__, "sim_scorer", "sim_scorer")

import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState

from crop_weed_seg.errors import ConfigError, InvalidFrameError
from crop_weed_seg.parameters.scorer import NODE_NAME, PARAMETERS, check
from crop_weed_seg.perception.image_conversion import image_to_array
from crop_weed_seg.ros.node_main import ManagedNode, run_node
from crop_weed_seg.ros.parameters import descriptor, format_value
from crop_weed_seg.sim.live_scoring import (
    LiveScorer,
    ScorerSettings,
    final_table,
    label_plane,
    write_report,
)
from crop_weed_seg.sim.scenario import load_field
from crop_weed_seg.stamps import header_stamp_ns

DIAGNOSTIC_NAME = f"{NODE_NAME}: score"
#: Counters whose rise turns diagnostics WARN.
PROBLEMS = ("frames_labels_missing", "frames_truth_missing", "frames_late",
            "frames_size_mismatch", "frames_bad_labels", "frames_bad_truth", "bad_nozzle_states",
            "bad_odometry", "out_of_order_states", "refused_states", "refused_odometry")


def _writable_folder(path: Path) -> None:
    """ConfigError unless ``path`` is (or can be made) a folder we can write in."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ConfigError(f"out_dir {path} is not a writable folder: {e.strerror or e}") \
            from None


class ScorerNode(ManagedNode):
    """The ``sim_scorer`` node. Raises ConfigError at construction when a parameter or the field
    file is unusable (the caller makes that fatal)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, spec.default, descriptor(spec))
        v = check({spec.name: self.get_parameter(spec.name).value for spec in PARAMETERS})
        self.field_file = Path(v["field_file"])
        self.out_dir = Path(v["out_dir"]) if v["out_dir"].strip() else None
        if self.out_dir is not None:
            _writable_folder(self.out_dir)
        self.exit_when_done = bool(v["exit_when_done"])
        scenario, fld = load_field(self.field_file)
        drive = scenario.plan(fld)
        self.scorer = LiveScorer(fld, scenario.build_boom(), drive, ScorerSettings(
            valve_latency_s=scenario.valve_latency_ms / 1000.0, tail_s=float(v["tail_s"]),
            dt_s=float(v["dt_s"]), max_pending_frames=int(v["max_pending_frames"]),
            match_horizon_s=float(v["match_horizon_s"]),
            max_nozzle_samples=int(v["max_nozzle_samples"]),
            stall_timeout_s=float(v["stall_timeout_s"])))
        self.finished = False
        self.report: dict[str, Any] | None = None
        self._problems_reported = 0

        images = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(v["image_qos_depth"]),
                            reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(Image, "labels", self._on_labels, images)
        self.create_subscription(Image, "labels_truth", self._on_truth, images)
        self.create_subscription(JointState, "nozzle_states", self._on_nozzle_states,
                                 QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200,
                                            reliability=ReliabilityPolicy.RELIABLE))
        # Best effort also accepts reliable odometry publishers.
        self.create_subscription(Odometry, "/odom", self._on_odometry,
                                 QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                                            reliability=ReliabilityPolicy.BEST_EFFORT))
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0, self._on_second, clock=steady)
        self.create_timer(0.1, self._check_end, clock=steady)
        self.get_logger().info(
            f"scoring the drive over {self.field_file}: base_link x {drive.start_x:.2f} -> "
            f"{self.scorer.end_x:.2f} m at {drive.speed_mps:g} m/s, {self.scorer.weeds_total} "
            f"weeds scored in x {drive.scored_span[0]:.2f}..{drive.scored_span[1]:.2f} m; "
            f"{self.resolve_topic_name('labels')} vs {self.resolve_topic_name('labels_truth')}, "
            f"{self.resolve_topic_name('nozzle_states')}; out_dir "
            f"{self.out_dir if self.out_dir is not None else '(none)'}")

    # ------------------------------------------------------------------------------- inputs
    def _now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    def _stamp_ns(self, msg: Any) -> int:
        t = header_stamp_ns(msg.header)
        return t if t else self._now_ns()

    def _on_image(self, msg: Image, truth: bool) -> None:
        if self.finished:
            return
        what = "labels_truth" if truth else "labels"
        try:
            array, _ = image_to_array(msg)
            plane = label_plane(str(msg.encoding), array)
        except InvalidFrameError as exc:
            self.scorer.on_bad_image(truth, f"{what}: {exc}")
            self.get_logger().warning(f"{what} ignored: {exc}", throttle_duration_sec=2.0)
            return
        stamp = header_stamp_ns(msg.header)
        if truth:
            self.scorer.on_truth(stamp, plane)
        else:
            self.scorer.on_labels(stamp, plane)

    def _on_labels(self, msg: Image) -> None:
        self._on_image(msg, truth=False)

    def _on_truth(self, msg: Image) -> None:
        self._on_image(msg, truth=True)

    def _on_nozzle_states(self, msg: JointState) -> None:
        if self.finished:
            return
        bad_before = self.scorer.counts["bad_nozzle_states"]
        if not self.scorer.on_nozzle_states(self._stamp_ns(msg), list(msg.name),
                                            list(msg.position)):
            why = self.scorer.last_problem if self.scorer.counts["bad_nozzle_states"] > \
                bad_before else "stamped before the last one, or beyond max_nozzle_samples"
            self.get_logger().warning(f"nozzle_states not used: {why}",
                                      throttle_duration_sec=2.0)

    def _on_odometry(self, msg: Odometry) -> None:
        if self.finished:
            return
        self.scorer.on_odometry(self._stamp_ns(msg), float(msg.pose.pose.position.x))

    # ------------------------------------------------------------------------------ outputs
    def _on_second(self) -> None:
        """Diagnostics, and a progress line while the drive lasts (the final figures after)."""
        now = self._now_ns()
        snap = self.scorer.snapshot(now)
        problems = sum(int(snap[k]) for k in PROBLEMS)
        level = DiagnosticStatus.WARN if problems > self._problems_reported else \
            DiagnosticStatus.OK
        self._problems_reported = problems
        if self.report is not None:
            s = self.report["score"]
            line = (f"drive scored ({'complete' if self.report['complete'] else 'incomplete'}): "
                    f"weeds hit {s['weeds_hit']}/{s['weeds_scored']}, crops hit "
                    f"{s['crops_hit']}/{s['crops_scored']}, mIoU "
                    f"{format_value(self.report['segmentation']['miou'])}")
        else:
            line = self.scorer.status_line(now)
            self.get_logger().info(line)
        snap.update(field_file=str(self.field_file), finished=self.finished)
        status = DiagnosticStatus(level=level, name=DIAGNOSTIC_NAME, message=line,
                                  hardware_id=socket.gethostname(),
                                  values=[KeyValue(key=k, value=format_value(val))
                                          for k, val in snap.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.publish_safely(self.pub_diagnostics, array)

    def _check_end(self) -> None:
        if self.finished:
            return
        reason = self.scorer.end.done(self._now_ns(), time.monotonic())
        if reason is None:
            return
        self._finish(complete=True, reason=reason)
        if self.exit_when_done:
            self.get_logger().info("drive scored: exiting (exit_when_done)")
            self.end_run()

    def _finish(self, *, complete: bool, reason: str) -> None:
        """Score the drive once, log the final table, write the report."""
        if self.finished:
            return
        self.finished = True
        report, timeline, sc = self.scorer.finish(complete=complete, reason=reason)
        self.report = report
        log = self.get_logger()
        for line in final_table(report).splitlines():
            log.info(line)
        if self.out_dir is None:
            return
        try:
            written, note = write_report(self.out_dir, report, fld=self.scorer.fld,
                                         boom=self.scorer.boom, timeline=timeline, sc=sc)
        except ConfigError as exc:
            log.error(f"score not written: {exc}")
            return
        log.info("wrote " + ", ".join(str(p) for p in written))
        if note:
            log.warning(note)

    def shutdown(self) -> bool:
        """A stop before the drive ended: score and write what there is, marked incomplete."""
        if not self.finished:
            self._finish(complete=False,
                         reason=f"stopped by {clean_exit.requested_signal() or 'shutdown'} "
                                "before the drive ended")
        return True


def main(args: list[str] | None = None) -> int:
    """Console script ``sim_scorer``. Exit 0 on SIGINT/SIGTERM or after the drive with
    ``exit_when_done``; 1 on a start-up error (missing field file, bad parameter)."""
    return run_node(ScorerNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
