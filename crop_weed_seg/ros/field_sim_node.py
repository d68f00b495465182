"""``field_sim``: a simulated robot driving a camera over a generated field, on real ROS 2
(issue 16; docs/SIMULATION.md). It runs anywhere: no Gazebo, the drive simulator's field and
camera model (crop_weed_seg/sim/).

Publishes what a robot's drivers would, with the same names, types and frame ids as the Gazebo
bridge: ``image`` (sensor_msgs/Image rgb8, frame ``camera_optical_frame``), ``camera_info``
(same header), ``labels_truth`` (mono8 class id per pixel, same header), ``/odom``
(nav_msgs/Odometry ``odom`` -> ``base_link``: pose.position.x = field x of base_link,
twist.linear.x = ground speed), ``/tf`` (``odom -> base_link`` with every odometry message),
``/tf_static`` (``base_link -> camera_optical_frame``, the scenario's mount; transient local like
a static broadcaster), ``/clock`` (sim time) and ``/diagnostics`` (1 Hz, steady clock).
Subscribes to ``cmd_vel`` (geometry_msgs/Twist, linear.x along the row) in drive mode
``cmd_vel``. The field and camera come from the field file (``field_file``); what is published
when is :class:`~crop_weed_seg.sim.live.LiveDrive`.

Clocks. This node is the clock: every stamp is the sim time it computes, never ``now()``, and it
does not follow ``/clock`` itself (``use_sim_time`` changes nothing here). A steady-clock timer
advances sim time by ``real_time_factor`` sim seconds per wall second and publishes every event
up to it, in time order. When the computer cannot keep up (rendering, a loaded CPU), sim time
slows down rather than bursting: at most :data:`MAX_BURST_S` sim seconds are published per step,
and such steps are counted (``slowed_steps``).

End. With ``exit_when_done`` the node exits with code 0 once the run is done (drive end +
``tail_s``); otherwise clock and odometry go on until the node is stopped. ``tf2_msgs`` is part of
every ROS 2 installation but not of the PyPI wheels: without it ``/tf`` and ``/tf_static`` are
not published (one warning says so) and everything else is.
"""

from __future__ import annotations

# First, before the imports below: SIGINT/SIGTERM during start-up end the process with exit
# code 0 (docs/RELIABILITY.md).
from crop_weed_seg.ros import clean_exit

clean_exit.install_if_program(__name__, "field_sim", "field_sim")

import socket
import sys
import time
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TransformStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.parameters.field_sim import NODE_NAME, PARAMETERS, check
from crop_weed_seg.perception.image_conversion import array_to_image
from crop_weed_seg.ros.node_main import ManagedNode, run_node
from crop_weed_seg.ros.parameters import descriptor, format_value
from crop_weed_seg.sim.live import (
    BASE_FRAME,
    CAMERA_FRAME,
    ODOM_FRAME,
    CameraInfoNumbers,
    ClockTick,
    Event,
    LiveDrive,
    LiveFrame,
    LiveSettings,
    MountTransform,
    OdomSample,
    camera_info_numbers,
    mount_transform,
    open_field,
    stamp_ns,
)
from crop_weed_seg.stamps import split_ns

DIAGNOSTIC_NAME = f"{NODE_NAME}: drive"
#: Most sim time published in one step [s]; further behind, sim time slows down instead.
MAX_BURST_S = 0.25
#: Shortest wall period of the step timer [s].
MIN_STEP_PERIOD_S = 0.002


def tf_message_type() -> Any:
    """``tf2_msgs/TFMessage``, or None where tf2_msgs is not installed (the PyPI wheels)."""
    try:
        from tf2_msgs.msg import TFMessage  # type: ignore  # not installed here
    except ImportError:
        return None
    return TFMessage


def to_time(ns: int) -> Time:
    sec, nanosec = split_ns(ns)
    return Time(sec=sec, nanosec=nanosec)


def header(ns: int, frame_id: str) -> Header:
    return Header(stamp=to_time(ns), frame_id=frame_id)


def camera_info_message(numbers: CameraInfoNumbers) -> CameraInfo:
    """CameraInfo without header (set per frame)."""
    return CameraInfo(width=numbers.width, height=numbers.height,
                      distortion_model=numbers.distortion_model, d=list(numbers.d),
                      k=list(numbers.k), r=list(numbers.r), p=list(numbers.p))


def transform_message(transform: MountTransform, stamp_ns: int) -> TransformStamped:
    msg = TransformStamped(header=header(stamp_ns, transform.parent),
                           child_frame_id=transform.child)
    t, q = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z = transform.translation
    q.x, q.y, q.z, q.w = transform.rotation_xyzw
    return msg


def odometry_messages(sample: OdomSample) -> tuple[Odometry, TransformStamped]:
    """``/odom`` and the matching ``odom -> base_link`` transform of an odometry sample."""
    msg = Odometry(header=header(sample.stamp_ns, ODOM_FRAME), child_frame_id=BASE_FRAME)
    msg.pose.pose.position.x = float(sample.x)
    msg.pose.pose.orientation.w = 1.0
    msg.twist.twist.linear.x = float(sample.speed_mps)
    tf = transform_message(MountTransform(ODOM_FRAME, BASE_FRAME, (float(sample.x), 0.0, 0.0),
                                          (0.0, 0.0, 0.0, 1.0)), sample.stamp_ns)
    return msg, tf


class FieldSimNode(ManagedNode):
    """The ``field_sim`` node. Raises ConfigError/ParameterException at construction when a
    parameter or the field file is unusable (the caller makes that fatal)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.counters = {"frames_published": 0, "odom_published": 0, "clock_published": 0,
                         "cmd_vel_applied": 0, "bad_cmd_vel": 0, "ignored_cmd_vel": 0,
                         "slowed_steps": 0}
        self._bad_reported = 0
        self._wall0: float | None = None
        self._sim0 = 0.0
        self._done_logged = False
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, spec.default, descriptor(spec))
        v = check({spec.name: self.get_parameter(spec.name).value for spec in PARAMETERS})
        self.values = v
        settings = LiveSettings(
            drive_mode=v["drive_mode"], real_time_factor=float(v["real_time_factor"]),
            clock_rate_hz=float(v["clock_rate_hz"]), odom_rate_hz=float(v["odom_rate_hz"]),
            start_delay_s=float(v["start_delay_s"]), tail_s=float(v["tail_s"])).validate()
        self.get_logger().info("generating the field of "
                               + (v["field_file"] or "the default scenario"))
        scenario, fld = open_field(v["field_file"])
        self.live = LiveDrive(scenario, fld, settings)
        self.rtf = settings.real_time_factor
        self.wait_for_subscribers = bool(v["wait_for_subscribers"])
        self.exit_when_done = bool(v["exit_when_done"])
        self._info = camera_info_message(camera_info_numbers(self.live.camera))

        frames = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                            reliability=ReliabilityPolicy.RELIABLE)
        self.pub_image = self.create_publisher(Image, "image", frames)
        self.pub_info = self.create_publisher(CameraInfo, "camera_info", frames)
        self.pub_truth = self.create_publisher(Image, "labels_truth", frames)
        self.pub_odom = self.create_publisher(
            Odometry, "/odom", QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                                          reliability=ReliabilityPolicy.RELIABLE))
        self.pub_clock = self.create_publisher(
            ClockMsg, "/clock", QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                                           reliability=ReliabilityPolicy.RELIABLE))
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._tf_type = tf_message_type()
        self.pub_tf: Any = None
        if self._tf_type is None:
            self.get_logger().warning(
                "tf2_msgs is not installed (the PyPI ROS wheels lack it; every ROS 2 "
                "installation has it): /tf and /tf_static are not published")
        else:
            self.pub_tf = self.create_publisher(
                self._tf_type, "/tf", QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                                                 reliability=ReliabilityPolicy.RELIABLE))
            self.pub_tf_static = self.create_publisher(
                self._tf_type, "/tf_static",
                QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                           reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL))
            self.publish_safely(self.pub_tf_static, self._tf_type(
                transforms=[transform_message(mount_transform(scenario.camera), 0)]))
        # Best effort also accepts reliable cmd_vel publishers (teleop, nav2, a test).
        self.create_subscription(Twist, "cmd_vel", self._on_cmd_vel,
                                 QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                                            reliability=ReliabilityPolicy.BEST_EFFORT))
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        period = max(MIN_STEP_PERIOD_S, 1.0 / (settings.clock_rate_hz * self.rtf))
        self.create_timer(period, self._on_step, clock=steady)
        self.create_timer(1.0, self._publish_diagnostics, clock=steady)
        if self.get_parameter("use_sim_time").value:
            self.get_logger().info("use_sim_time is set: field_sim is the clock itself, its "
                                   "timing and stamps do not depend on it")
        d = self.live.drive
        frames_text = (f"{self.live.frame_count} frames" if self.live.scripted
                       else "frames until the drive end")
        self.get_logger().info(
            f"field {fld.length_m:g} m x {fld.width_m:g} m (seed {scenario.seed}), drive "
            f"{v['drive_mode']}: base_link x {self.live.start_x:.3f} -> {self.live.end_x:.3f} m"
            + (f" at {d.speed_mps:g} m/s" if self.live.scripted else "")
            + f", {frames_text} at {scenario.frame_rate_hz:g} fps from sim t = "
            f"{settings.start_delay_s:g} s, real_time_factor {self.rtf:g}"
            + ("; waiting for subscribers of image and labels_truth"
               if self.wait_for_subscribers else ""))

    # --------------------------------------------------------------------------------- input
    def _on_cmd_vel(self, msg: Twist) -> None:
        if self.live.scripted:
            self.counters["ignored_cmd_vel"] += 1
            self.get_logger().warning("cmd_vel ignored: drive_mode is scripted",
                                      throttle_duration_sec=5.0)
            return
        try:
            self.live.command(msg.linear.x)
        except ConfigError as exc:
            self.counters["bad_cmd_vel"] += 1
            self.get_logger().warning(f"cmd_vel skipped: {exc}", throttle_duration_sec=2.0)
            return
        self.counters["cmd_vel_applied"] += 1

    # ---------------------------------------------------------------------------- stepping
    def _subscribers_missing(self) -> bool:
        return self.pub_image.get_subscription_count() == 0 or \
            self.pub_truth.get_subscription_count() == 0

    def _on_step(self) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        if self._wall0 is None:
            if self.wait_for_subscribers and self._subscribers_missing():
                return
            self._wall0, self._sim0 = now, self.live.now_s
            self.get_logger().info("drive started")
        target = self._sim0 + (now - self._wall0) * self.rtf
        if target - self.live.now_s > MAX_BURST_S:
            target = self.live.now_s + MAX_BURST_S
            self._wall0, self._sim0 = now, target
            self.counters["slowed_steps"] += 1
        for event in self.live.advance(target):
            if not self._publish(event):
                return
        if self.live.done and not self._done_logged:
            self._done_logged = True
            self.get_logger().info(
                f"drive done at sim t = {self.live.now_s:.3f} s: {self.frames_text()}, "
                f"base_link at x {self.live.position():.3f} m"
                + (f"; sim time fell behind real_time_factor {self.rtf:g} in "
                   f"{self.counters['slowed_steps']} steps (rendering or a busy CPU)"
                   if self.counters["slowed_steps"] else "")
                + ("; exiting (exit_when_done)" if self.exit_when_done
                   else "; clock and odometry go on until stopped"))
            if self.exit_when_done:
                self.end_run()

    def frames_text(self) -> str:
        n = self.counters["frames_published"]
        total = self.live.frame_count
        return f"{n} frames published" + (f" of {total}" if total is not None else "")

    def _publish(self, event: Event) -> bool:
        if isinstance(event, ClockTick):
            ok = self.publish_safely(self.pub_clock, ClockMsg(clock=to_time(event.stamp_ns)))
            self.counters["clock_published"] += ok
        elif isinstance(event, OdomSample):
            odom, tf = odometry_messages(event)
            ok = self.publish_safely(self.pub_odom, odom)
            if ok and self.pub_tf is not None:
                ok = self.publish_safely(self.pub_tf, self._tf_type(transforms=[tf]))
            self.counters["odom_published"] += ok
        else:
            ok = self._publish_frame(event)
        return ok

    def _publish_frame(self, frame: LiveFrame) -> bool:
        hd = header(frame.stamp_ns, CAMERA_FRAME)
        image = array_to_image(frame.rgb, "rgb8", hd)
        truth = array_to_image(frame.labels, "mono8", hd)
        self._info.header = hd
        ok = (self.publish_safely(self.pub_image, image)
              and self.publish_safely(self.pub_info, self._info)
              and self.publish_safely(self.pub_truth, truth))
        self.counters["frames_published"] += ok
        return ok

    # ---------------------------------------------------------------------------- reporting
    def diagnostics_snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = dict(self.counters)
        snap.update({
            "drive_mode": self.values["drive_mode"], "field_file": self.values["field_file"],
            "sim_time_s": self.live.now_s, "base_x_m": self.live.position(),
            "speed_mps": self.live.speed_mps, "frame_count": self.live.frame_count,
            "drive_end_x_m": self.live.end_x, "drive_end_s": self.live.drive_end_s,
            "done": self.live.done, "started": self._wall0 is not None,
            "real_time_factor": self.rtf})
        return snap

    def _publish_diagnostics(self) -> None:
        snap = self.diagnostics_snapshot()
        bad = int(snap["bad_cmd_vel"])
        rose, self._bad_reported = bad > self._bad_reported, bad
        if rose:
            level, message = DiagnosticStatus.WARN, f"bad cmd_vel skipped: {bad} so far"
        elif not snap["started"]:
            level, message = DiagnosticStatus.OK, "waiting for subscribers of image and " \
                "labels_truth"
        elif snap["done"]:
            level, message = DiagnosticStatus.OK, f"drive done: {self.frames_text()}"
        else:
            level, message = DiagnosticStatus.OK, (
                f"sim t {snap['sim_time_s']:.2f} s, x {snap['base_x_m']:.3f} m, "
                f"{self.frames_text()}")
        status = DiagnosticStatus(
            level=level, name=DIAGNOSTIC_NAME, message=message, hardware_id=socket.gethostname(),
            values=[KeyValue(key=k, value=format_value(val)) for k, val in snap.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = to_time(stamp_ns(self.live.now_s))
        self.publish_safely(self.pub_diagnostics, array)

    def shutdown(self) -> bool:
        """Log where the drive stopped (a node whose construction was aborted has no drive)."""
        if hasattr(self, "live") and not self._done_logged:
            self.get_logger().info(
                f"stopped at sim t = {self.live.now_s:.3f} s: {self.frames_text()}")
        return True


def main(args: list[str] | None = None) -> int:
    """Console script ``field_sim``. Exit 0 on SIGINT/SIGTERM or when the run is done
    (``exit_when_done``), 1 on a start-up error (one ``fatal:`` line)."""
    return run_node(FieldSimNode, NODE_NAME, args)


if __name__ == "__main__":
    sys.exit(main())
