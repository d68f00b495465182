"""``spray_planner``: the ROS 2 node that turns weed targets into nozzle commands (DESIGN.md §4).

Subscribes to ``spray_targets`` (sensor_msgs/PointCloud2, the layout of
:mod:`crop_weed_seg.spray.records`, read by field name) and ``odom`` (nav_msgs/Odometry: speed
= norm of twist.linear x/y, with the sign of x). Publishes ``nozzle_states``
(sensor_msgs/JointState: joints ``nozzle_00`` .., position 1.0 open / 0.0 shut, header stamp =
the node clock's now — a command time — and frame_id = ``target_frame``) at ``rate_hz`` and
``/diagnostics`` at 1 Hz on the steady clock. The planning itself is
:class:`~crop_weed_seg.spray.planner.SprayPlanner`.

Clocks. Planning runs on the node clock (sim time under ``use_sim_time``): target stamps,
odometry stamps (header stamp; receipt time when the stamp is zero) and the nozzle timer. The
stream of targets is also watched on the steady clock: it is stale when either clock has seen no
usable ``spray_targets`` for ``stale_timeout_s``. If the node clock stops (a paused or dead
simulator, a finished bag), the node-clock timer stops too; a steady-clock watchdog then keeps
publishing ``nozzle_states`` at ``rate_hz`` (stamp = the frozen clock), so the failure policy
still reaches the valves within ``stale_timeout_s``.

Threads. All callbacks run in one executor thread (``rclpy.spin``); a lock around the planner
keeps that true under a multi-threaded executor too. The work per message is small (no worker).
"""

from __future__ import annotations

# First, before the imports below: SIGINT/SIGTERM during start-up end the process with exit
# code 0 (docs/RELIABILITY.md).
from crop_weed_seg.ros import clean_exit

clean_exit.install_if_program(__name__, "spray_planner", "spray_planner")

import math
import socket
import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState, PointCloud2

from crop_weed_seg.errors import ConfigError, InvalidFrameError
from crop_weed_seg.parameters.planner import NODE_NAME, PARAMETERS, build
from crop_weed_seg.ros.node_main import ManagedNode, run_node
from crop_weed_seg.ros.parameters import descriptor, format_value
from crop_weed_seg.ros.spray_messages import records_from_cloud
from crop_weed_seg.spray.planner import SprayPlanner, nozzle_joint_names
from crop_weed_seg.stamps import header_stamp_ns, stamp_seconds

DIAGNOSTIC_NAME = f"{NODE_NAME}: nozzles"
#: Counters whose rise turns diagnostics ERROR.
BAD_INPUT = ("bad_odometry", "bad_clouds", "rejected_targets")
#: Counters whose rise turns diagnostics WARN (time jumped: stored windows were forgotten).
TIME_PROBLEMS = ("time_jumps", "future_frames")






def odometry_speed(msg: Odometry) -> float:
    """Ground speed [m/s]: norm of the linear twist in x/y, negative when x is (reversing)."""
    vx, vy = msg.twist.twist.linear.x, msg.twist.twist.linear.y
    return math.copysign(math.hypot(vx, vy), vx)


class SprayPlannerNode(ManagedNode):
    """The ``spray_planner`` node. Raises ConfigError/ParameterException at construction when a
    parameter is unusable (the caller makes that fatal)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for spec in PARAMETERS:
            default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
            self.declare_parameter(spec.name, default, descriptor(spec))
        self._values = {spec.name: self._param(spec.name) for spec in PARAMETERS}
        boom, config = build(self._values)
        self._lock = threading.Lock()
        self.planner = SprayPlanner(boom, config)
        self._names = nozzle_joint_names(boom.nozzle_count)
        self.counters = {"bad_clouds": 0, "wrong_frame": 0, "published": 0,
                         "watchdog_published": 0}
        self._bad_reported = 0
        self._time_reported = 0
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._last_targets_steady: float | None = None
        self._last_publish_steady = -math.inf
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.pub_states = self.create_publisher(
            JointState, "nozzle_states",
            QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                       reliability=ReliabilityPolicy.RELIABLE))
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(PointCloud2, "spray_targets", self._on_targets,
                                 QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                                            reliability=ReliabilityPolicy.RELIABLE))
        # Best effort also accepts reliable odometry publishers.
        self.create_subscription(Odometry, "odom", self._on_odometry,
                                 QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                                            reliability=ReliabilityPolicy.BEST_EFFORT))
        period = 1.0 / float(self._param("rate_hz"))
        self._period = period
        self.create_timer(period, self._on_tick)
        self.create_timer(period, self._on_watchdog, clock=self._steady)
        self.create_timer(1.0, self._publish_diagnostics, clock=self._steady)
        self.get_logger().info(
            f"planning {boom.nozzle_count} nozzles from {self.resolve_topic_name('spray_targets')}"
            f" in mode {config.mode} (failure policy {config.failure_policy}) at "
            f"{self._param('rate_hz')} Hz")

    # ---------------------------------------------------------------------------- parameters
    def _param(self, name: str) -> Any:
        value = self.get_parameter(name).value
        return list(value) if isinstance(value, (list, tuple)) or hasattr(value, "typecode") \
            else value

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        proposed = dict(self._values)
        proposed.update({p.name: (list(p.value) if hasattr(p.value, "__len__")
                                  and not isinstance(p.value, str) else p.value)
                         for p in params if p.name in proposed})
        try:
            boom, config = build(proposed)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        # This callback is the last check before rclpy stores the values, and Humble's rclpy
        # has no post-set callback: the accepted values take effect here.
        self._values = proposed
        with self._lock:
            self.planner.reconfigure(boom, config)
            self._names = nozzle_joint_names(boom.nozzle_count)
        return SetParametersResult(successful=True)

    @property
    def target_frame(self) -> str:
        return self._values["target_frame"]

    # ------------------------------------------------------------------------------- inputs
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_targets(self, msg: PointCloud2) -> None:
        if msg.header.frame_id != self.target_frame:
            self.counters["wrong_frame"] += 1
            self.counters["bad_clouds"] += 1
            self.get_logger().warning(
                f"spray_targets in frame {msg.header.frame_id!r}, expected "
                f"{self.target_frame!r}: ignored", throttle_duration_sec=2.0)
            return
        try:
            records = records_from_cloud(msg)
        except InvalidFrameError as exc:
            self.counters["bad_clouds"] += 1
            self.get_logger().warning(f"spray_targets ignored: {exc}", throttle_duration_sec=2.0)
            return
        with self._lock:
            before = self.planner.counters["accepted_messages"]
            stamp_s = stamp_seconds(header_stamp_ns(msg.header))
            self.planner.add_targets(stamp_s, records, self._now_s())
            if self.planner.counters["accepted_messages"] > before:
                self._last_targets_steady = time.monotonic()

    def _on_odometry(self, msg: Odometry) -> None:
        t = stamp_seconds(header_stamp_ns(msg.header))
        if t == 0.0:
            t = self._now_s()
        with self._lock:
            self.planner.update_odometry(t, odometry_speed(msg))

    # ------------------------------------------------------------------------------ outputs
    def _steady_stale(self) -> bool:
        last = self._last_targets_steady
        return last is None or \
            time.monotonic() - last > self.planner.config.stale_timeout_s

    def _publish_states(self) -> None:
        now = self.get_clock().now()
        t = now.nanoseconds * 1e-9
        with self._lock:
            self.planner.observe_clock(t)       # a jump back resets before anything is decided
            stale = self.planner.is_stale(t) or self._steady_stale()
            states = self.planner.nozzle_states(t, stale=stale)
            names = list(self._names)
        msg = JointState(name=names, position=[1.0 if s else 0.0 for s in states])
        msg.header.stamp = now.to_msg()
        msg.header.frame_id = self.target_frame
        if not self.publish_safely(self.pub_states, msg):
            return
        self._last_publish_steady = time.monotonic()
        self.counters["published"] += 1

    def _on_tick(self) -> None:
        self._publish_states()

    def _on_watchdog(self) -> None:
        """Publish when the node clock has stopped (its timer did not fire for 3 periods)."""
        if time.monotonic() - self._last_publish_steady > max(3.0 * self._period, 0.05):
            self._publish_states()
            self.counters["watchdog_published"] += 1

    def diagnostics_snapshot(self) -> dict[str, Any]:
        with self._lock:
            snap = self.planner.status()  # "stale" as last applied (either clock)
        snap.update(self.counters)
        snap["steady_targets_age_s"] = (None if self._last_targets_steady is None
                                        else time.monotonic() - self._last_targets_steady)
        snap["target_frame"] = self.target_frame
        snap["input_topic"] = self.resolve_topic_name("spray_targets")
        return snap

    def _publish_diagnostics(self) -> None:
        snap = self.diagnostics_snapshot()
        bad = sum(int(snap[k]) for k in BAD_INPUT)
        rose = bad > self._bad_reported
        self._bad_reported = bad
        jumps = sum(int(snap[k]) for k in TIME_PROBLEMS)
        jumped = jumps > self._time_reported
        self._time_reported = jumps
        if rose:
            level = DiagnosticStatus.ERROR
            message = "bad input: " + ", ".join(f"{k}={snap[k]}" for k in BAD_INPUT)
            if snap["last_odometry_problem"] and "bad_odometry" in message:
                message += f" (last odometry problem: {snap['last_odometry_problem']})"
        elif jumped:
            level = DiagnosticStatus.WARN
            message = (f"time jumped ({snap['last_time_problem']}): stored windows forgotten; "
                       + ", ".join(f"{k}={snap[k]}" for k in TIME_PROBLEMS))
        elif snap["applied"].startswith("failure_policy"):
            level = DiagnosticStatus.WARN
            why = " and ".join(reason for flag, reason in
                               ((snap["stale"], "spray_targets stale"),
                                (snap["odometry_lost"], "odometry lost")) if flag)
            message = (f"{why}: failure policy {snap['failure_policy']} applied "
                       f"(nozzles {'open' if snap['failure_policy'] == 'blanket' else 'shut'})")
        elif snap["applied"] == "standing":
            level = DiagnosticStatus.OK
            message = f"standing (speed below min_speed_mps {snap['min_speed_mps']}): nozzles shut"
        elif snap["applied"] == "no_odometry":
            level = DiagnosticStatus.WARN
            message = "no odometry yet: nozzles shut"
        else:
            level = DiagnosticStatus.OK
            message = f"mode {snap['mode']}, {snap['open_nozzles']} nozzles open"
        status = DiagnosticStatus(
            level=level, name=DIAGNOSTIC_NAME, message=message,
            hardware_id=socket.gethostname(),
            values=[KeyValue(key=k, value=format_value(v)) for k, v in snap.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.publish_safely(self.pub_diagnostics, array)


def main(args: list[str] | None = None) -> int:
    """Console script ``spray_planner``. Exit 0 on SIGINT/SIGTERM, 1 on a start-up error."""
    return run_node(SprayPlannerNode, NODE_NAME, args)

if __name__ == "__main__":
    sys.exit(main())
