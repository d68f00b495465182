"""``segmenter_node``: the ROS 2 node ``crop_weed_seg`` (DESIGN.md §4, §5, §8).

Subscribes to ``image`` (or ``<image>/compressed``) and ``camera_info``; publishes ``labels``
(mono8 class ids at camera resolution), ``labels_color`` (rgb8, the labels in the model card's
palette), ``confidence`` and ``overlay`` (these three only while subscribed; the overlay
rate-capped by image time) and ``/diagnostics`` at 1 Hz. Every output carries the input image's
header.

The per-frame chain is the core's :class:`~crop_weed_seg.perception.frame.FrameProcessor`;
this node converts messages into frames and camera state, and results into messages.

Threads: the subscription callback only drops the message into a one-frame mailbox
(:class:`~crop_weed_seg.ros.node_stats.LatestFrameSlot`); a worker thread takes the newest frame,
converts, processes and publishes. Frames that arrive while the worker is busy replace the
waiting one and are counted as dropped, so latency stays bounded. A frame that cannot be used
is logged (throttled), counted and skipped; the node keeps going.
"""

from __future__ import annotations

# First, before the imports below (seconds of rclpy, numpy, OpenCV, a backend): SIGINT/SIGTERM
# during start-up end the process with exit code 0 (docs/RELIABILITY.md).
from crop_weed_seg.ros import clean_exit

clean_exit.install_if_program(__name__, "crop_weed_seg", "segmenter_node")

import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import rclpy.utilities
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from crop_weed_seg.backends.base import BackendOptions
from crop_weed_seg.backends.engine_options import (
    cache_dir_from_node_parameters,
    from_node_parameters,
)
from crop_weed_seg.errors import InvalidFrameError
from crop_weed_seg.parameters.segmenter import NODE_NAME, PARAMETERS, check_all, validate
from crop_weed_seg.parameters.shared import consistency_problems
from crop_weed_seg.perception.frame import (
    FUTURE,
    TOO_OLD,
    FrameProcessor,
    FrameResult,
    FrameSettings,
    SprayHealth,
    confidence_mono8,
    decode_message,
    header_stamp_ns,
    labels_color_rgb8,
    overlay_bgr8,
    palette_rgb8,
    stamp_seconds,
)
from crop_weed_seg.perception.image_conversion import array_to_image
from crop_weed_seg.perception.segmenter import Segmenter
from crop_weed_seg.ros.node_main import ManagedNode, run_node
from crop_weed_seg.ros.node_stats import ERROR, OK, STALE, WARN, FrameStats, LatestFrameSlot, health
from crop_weed_seg.ros.parameters import descriptor, format_value
from crop_weed_seg.ros.spray_messages import cloud_from_records, markers_from_records
from crop_weed_seg.ros.tf_mount import tf2_source
from crop_weed_seg.spray.mount_tf import (
    CAMERA_X_WARN_M,
    MOUNT_PARAMETERS,
    RETRY_S,
    MountFromTransforms,
    TransformSource,
    describe,
    values_with_mount,
)

_LEVELS = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN,
           ERROR: DiagnosticStatus.ERROR, STALE: DiagnosticStatus.STALE}
DIAGNOSTIC_NAME = f"{NODE_NAME}: segmenter"
#: How long shutdown waits for the frame in progress [s].
WORKER_JOIN_S = 20.0


def default_model_dir() -> Path:
    """The shipped default model: the installed share directory (colcon), else the source
    tree's ``models/default`` (a development checkout or ``pip install -e``)."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            candidate = Path(get_package_share_directory("crop_weed_seg")) / "models" / "default"
            if (candidate / "model.yaml").is_file():
                return candidate
        except (PackageNotFoundError, OSError):  # not installed, or no AMENT_PREFIX_PATH
            pass
    except ImportError:
        pass
    return Path(__file__).resolve().parents[2] / "models" / "default"




class SegmenterNode(ManagedNode):
    """The ``crop_weed_seg`` node. Raises CropWeedSegError at construction when the model or a
    parameter is unusable (the caller makes that fatal)."""

    def __init__(self, segmenter: Segmenter | None = None,
                 transform_source: TransformSource | None = None, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, spec.default, descriptor(spec))
        values = self._values()
        check_all(values)
        # use_tf: the mount from TF (transform_source: a stand-in for tests); no tf2_ros is fatal
        self._camera_frame_seen = ""
        self._tf_mount: MountFromTransforms | None = None
        if self._param("use_tf"):
            self._tf_mount = MountFromTransforms(transform_source or tf2_source(self),
                                                 self._param("target_frame"),
                                                 self._param("camera_frame"))
        self.add_on_set_parameters_callback(self._on_set_parameters)

        model_dir = self._param("model_dir") or str(default_model_dir())
        engine = (from_node_parameters(values)   # TensorRT: the engine build-engine built
                  if self._param("backend") in ("auto", "tensorrt") else None)
        options = BackendOptions(device=self._param("device"),
                                 precision=engine.precision if engine else
                                 self._param("precision"),
                                 threads=self._param("threads") or None,
                                 cuda_graphs=self._param("cuda_graphs"),
                                 engine_cache_dir=cache_dir_from_node_parameters(values),
                                 allow_engine_build=self._param("allow_engine_build"),
                                 force_engine_rebuild=self._param("force_engine_rebuild"),
                                 engine=engine, progress=self._on_load_progress)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._load_progress = f"loading model {model_dir} on backend {self._param('backend')}"
        loaded = threading.Event()
        threading.Thread(target=self._report_loading, args=(loaded, model_dir),
                         name="load-status", daemon=True).start()
        try:
            self.segmenter = segmenter or Segmenter(model_dir, self._param("backend"), options)
        finally:
            loaded.set()
        contract = self.segmenter.contract
        self.model_info = {"model": contract.name, "model_version": str(contract.version),
                           "model_sha256": contract.onnx_sha256,
                           "backend": self.segmenter.backend.name,
                           "model_dir": str(contract.folder)}
        for attr in ("engine_key", "engine_status"):    # TensorRT: which engine, cache hit?
            if getattr(self.segmenter.backend, attr, None):
                self.model_info[attr] = str(getattr(self.segmenter.backend, attr))

        self._warm_up()
        self.stats = FrameStats()
        self._slot: LatestFrameSlot[tuple[Any, float]] = LatestFrameSlot()
        self._rejects_reported = 0
        self._spray_health = SprayHealth()
        self._last_overlay_stamp: float | None = None
        self.published = {"confidence": 0, "overlay": 0, "labels_color": 0}
        self.palette = palette_rgb8(contract.palette)
        self.camera_info: CameraInfo | None = None
        self.target_frame = self._param("target_frame")
        self.processor = FrameProcessor(self.segmenter, self._frame_settings(values))

        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST,
                             depth=self._param("output_qos_depth"),
                             reliability=ReliabilityPolicy.RELIABLE)
        self.pub_labels = self.create_publisher(Image, "labels", out_qos)
        self.pub_labels_color = self.create_publisher(Image, "labels_color", out_qos)
        self.pub_confidence = self.create_publisher(Image, "confidence", out_qos)
        self.pub_overlay = self.create_publisher(Image, "overlay", out_qos)
        self.pub_targets = self.create_publisher(PointCloud2, "spray_targets", out_qos)
        self.pub_markers = self.create_publisher(MarkerArray, "spray_markers", out_qos)

        in_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=self._param("input_qos_depth"),
            reliability=(ReliabilityPolicy.BEST_EFFORT
                         if self._param("input_qos_reliability") == "best_effort"
                         else ReliabilityPolicy.RELIABLE))
        self.compressed = self._param("input_transport") == "compressed"
        if self.compressed:
            # image_transport's naming: the compressed topic hangs below the (remapped) base.
            self.input_topic = self.resolve_topic_name("image") + "/compressed"
            self.create_subscription(CompressedImage, self.input_topic, self._on_image, in_qos)
        else:
            self.input_topic = self.resolve_topic_name("image")
            self.create_subscription(Image, self.input_topic, self._on_image, in_qos)
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, in_qos)
        self.create_subscription(Odometry, "odom", self._on_odom,
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))

        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0, self._publish_diagnostics, clock=self._steady)
        if self._tf_mount is not None:
            self.create_timer(RETRY_S, self._poll_tf_mount, clock=self._steady)
        self._worker = threading.Thread(target=self._work, name="segmenter", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"segmenting {self.input_topic} with model {contract.name} "
            f"({contract.onnx_sha256[:12]}) on {self.model_info['backend']}")

    def _on_load_progress(self, message: str) -> None:
        self._load_progress = message
        self.get_logger().info(message)

    def _report_loading(self, loaded: threading.Event, model_dir: str) -> None:
        """/diagnostics every second while the model loads (a TensorRT engine build takes
        minutes): WARN with the latest progress line."""
        start = time.monotonic()
        while not loaded.wait(1.0):
            status = DiagnosticStatus(
                level=DiagnosticStatus.WARN, name=DIAGNOSTIC_NAME, hardware_id=socket.gethostname(),
                message=f"starting ({time.monotonic() - start:.0f} s): {self._load_progress}",
                values=[KeyValue(key="model_dir", value=model_dir),
                        KeyValue(key="backend", value=str(self._param("backend"))),
                        KeyValue(key="progress", value=self._load_progress)])
            array = DiagnosticArray(status=[status])
            array.header.stamp = self.get_clock().now().to_msg()
            try:
                if not self.publish_safely(self.pub_diagnostics, array):
                    return
            except Exception:  # noqa: BLE001 — torn down while loading
                return

    def _warm_up(self) -> None:
        """One inference before subscribing: the first run of a backend allocates and tunes
        (ONNX Runtime: tens of ms; TensorRT: more), which would otherwise delay the first
        camera frame and make the node drop the frames behind it."""
        h, w = self.segmenter.contract.input.size
        self.segmenter.segment(np.zeros((h, w, 3), np.uint8), "RGB", want_confidence=True)

    # ---------------------------------------------------------------------------- parameters
    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _values(self) -> dict[str, Any]:
        """Every parameter of the table as currently stored."""
        return {spec.name: self._param(spec.name) for spec in PARAMETERS}

    def _on_set_parameters(self, params: list[Any]) -> SetParametersResult:
        for p in params:
            reason = validate(p.name, p.value)
            if reason is None and self._tf_mount is not None and \
                    p.name in MOUNT_PARAMETERS and p.name != "camera_x_m":
                reason = f"{p.name} comes from TF while use_tf is true"
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        # The last check before rclpy stores the values (descriptors were applied before this
        # callback): the frame settings are built here, once per change, from the new values.
        processor = getattr(self, "processor", None)
        if processor is not None:
            values = self._values()
            values.update({p.name: p.value for p in params})
            combined = consistency_problems(values)
            if combined:
                return SetParametersResult(successful=False, reason="; ".join(combined))
            processor.configure(self._frame_settings(values))
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------------------- inputs
    def _on_image(self, msg: Any) -> None:
        now = time.monotonic()
        self._camera_frame_seen = msg.header.frame_id
        self.stats.frame_received(now)
        self._slot.put((msg, now))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_info = msg
        self._camera_frame_seen = msg.header.frame_id
        try:
            self.processor.set_camera_info(msg.k, msg.d, msg.width, msg.height,
                                           msg.distortion_model)
        except InvalidFrameError as exc:
            self.get_logger().warning(f"camera_info refused, the last good one is kept: "
                                      f"{exc}", throttle_duration_sec=5.0)

    def _on_odom(self, msg: Odometry) -> None:
        v = msg.twist.twist.linear
        if not self.processor.update_odometry(stamp_seconds(header_stamp_ns(msg.header)),
                                              v.x, v.y):
            self.get_logger().warning(f"odometry ignored: {self.processor.odometry_problem}",
                                      throttle_duration_sec=5.0)

    # ------------------------------------------------------------------------------- worker
    def _work(self) -> None:
        while not self._slot.closed:
            item = self._slot.take(timeout=0.2)
            if item is None:
                continue
            msg, _ = item
            try:
                self._process(msg)
            except InvalidFrameError as exc:
                self.stats.frame_rejected(str(exc))
                self.get_logger().warning(f"frame skipped: {exc}", throttle_duration_sec=2.0)
            except Exception as exc:  # noqa: BLE001 — one bad frame must not stop the node
                if self._slot.closed or not rclpy.utilities.ok(context=self.context):
                    return
                reason = f"{type(exc).__name__}: {exc}"
                self.stats.frame_failed(reason)
                self.get_logger().error(f"frame failed: {reason}", throttle_duration_sec=2.0)

    def _process(self, msg: Any) -> None:
        frame = decode_message(msg, self.compressed)
        want_conf = self.pub_confidence.get_subscription_count() > 0
        result = self.processor.process(frame, want_confidence=want_conf,
                                        clock_ns=lambda: self.get_clock().now().nanoseconds)
        self._log_spray(result)

        t1 = time.perf_counter()
        header = msg.header
        self.pub_labels.publish(array_to_image(result.labels, "mono8", header))
        if self.pub_labels_color.get_subscription_count() > 0:
            self.pub_labels_color.publish(array_to_image(
                labels_color_rgb8(result.labels, self.palette), "rgb8", header))
            self.published["labels_color"] += 1
        if want_conf and result.confidence is not None:
            self.pub_confidence.publish(array_to_image(confidence_mono8(result.confidence),
                                                       "mono8", header))
            self.published["confidence"] += 1
        if self.pub_overlay.get_subscription_count() > 0 and self._overlay_due(header):
            blend = overlay_bgr8(frame.array, frame.order, result.labels,
                                 float(self._param("overlay_alpha")))
            self.pub_overlay.publish(array_to_image(blend, "bgr8", header))
            self.published["overlay"] += 1
        self._publish_targets(header, result)
        publish_ms = (time.perf_counter() - t1) * 1e3

        latency_ms = (self.get_clock().now() - Time.from_msg(header.stamp)).nanoseconds / 1e6
        tm = result.timings
        self.stats.frame_published(time.monotonic(), latency_ms,
                                   tm.decode_ms + tm.preprocess_ms, tm.infer_ms,
                                   tm.postprocess_ms + tm.targets_ms + publish_ms)

    def _log_spray(self, result: FrameResult) -> None:
        """Throttled warnings for what kept a frame's targets off or out of place."""
        log = self.get_logger()
        if result.time_jump is not None:
            log.warning(f"time jumped ({result.time_jump}): tracking and travel start afresh",
                        throttle_duration_sec=1.0)
        if result.refused == FUTURE:
            log.warning(f"{result.problem}: no spray targets from it, tracking reset",
                        throttle_duration_sec=5.0)
        elif result.refused == TOO_OLD:
            log.warning(f"{result.problem}: no spray targets from it", throttle_duration_sec=5.0)
        elif result.geometry == "none":
            log.warning("no ground geometry (no camera_info, hfov_deg 0, or a size mismatch): "
                        "targets have no position or lane", throttle_duration_sec=10.0)

    def _publish_targets(self, header: Any, result: FrameResult) -> None:
        """``spray_targets`` for every processed frame (empty when none, or when the frame is
        too old to spray from), ``spray_markers`` while subscribed."""
        records = result.targets
        if self._tf_mount is not None and self._tf_mount.mount is None:
            records = records[:0]       # no mount from TF yet: spray nothing rather than amiss
        self.pub_targets.publish(cloud_from_records(records, header.stamp, self.target_frame))
        if self.pub_markers.get_subscription_count() > 0:
            boom = self.processor.settings.spray.boom() if result.geometry != "none" else None
            self.pub_markers.publish(markers_from_records(records, boom, header.stamp,
                                                          self.target_frame))

    def _overlay_due(self, header: Any) -> bool:
        """Rate cap by image time, so bag replays give the same overlays at any speed."""
        stamp = stamp_seconds(header_stamp_ns(header))
        last = self._last_overlay_stamp
        period = 1.0 / float(self._param("overlay_max_rate_hz"))
        if last is None or stamp < last or stamp - last >= period - 1e-6:
            self._last_overlay_stamp = stamp
            return True
        return False

    # ------------------------------------------------------------------------ mount from TF
    def _frame_settings(self, values: dict[str, Any]) -> FrameSettings:
        """The frame settings of parameter values, with the mount from TF when use_tf has one
        (the boom stays where the parameters put it: :func:`values_with_mount`)."""
        tf = self._tf_mount
        if tf is not None and tf.mount is not None:
            values = values_with_mount(values, tf.mount)
        return FrameSettings.from_values(values)

    def _poll_tf_mount(self) -> None:
        """Steady timer (use_tf): look the mount up when due; a change reconfigures the frame
        chain from the next frame on and is logged."""
        tf = self._tf_mount
        if tf is None or not tf.poll(time.monotonic(), self._camera_frame_seen):
            return
        log = self.get_logger()
        if tf.mount is None:
            log.error(f"camera mount from TF dropped, spray_targets stay empty: {tf.problem}")
        else:
            log.info(f"camera mount from TF ({tf.target_frame} -> {tf.frame}): "
                     f"{describe(tf.mount)}")
            warning = self._tf_warning()
            if warning:
                log.warning(warning)
        self.processor.configure(self._frame_settings(self._values()))

    def _tf_warning(self) -> str | None:
        """Why the TF mount is missing, or a camera x far from camera_x_m; None otherwise."""
        tf = self._tf_mount
        if tf is None:
            return None
        if tf.mount is None:
            return f"no camera mount from TF, spray_targets empty: {tf.problem}"
        dx = tf.mount.x - float(self._param("camera_x_m"))
        if abs(dx) > CAMERA_X_WARN_M:
            return (f"TF puts the camera at x={tf.mount.x:.3f} m, camera_x_m is "
                    f"{self._param('camera_x_m'):.3f}: the nozzle line (camera_x_m - "
                    f"nozzle_offset_m, both nodes) may be {dx:+.3f} m off; set camera_x_m")
        return None

    # -------------------------------------------------------------------------- diagnostics
    def diagnostics_snapshot(self) -> dict[str, Any]:
        snap = self.stats.snapshot(time.monotonic())
        snap["dropped_frames"] = self._slot.dropped
        snap["confidence_published"] = self.published["confidence"]
        snap["overlay_published"] = self.published["overlay"]
        snap["labels_color_published"] = self.published["labels_color"]
        snap.update(self.processor.snapshot())
        return snap

    def _publish_diagnostics(self) -> None:
        snap = self.diagnostics_snapshot()
        level, message = health(snap, float(self._param("latency_budget_ms")),
                                float(self._param("stale_timeout_s")), self._rejects_reported)
        self._rejects_reported = snap["rejected_frames"] + snap["failed_frames"]
        spray_warning = self._spray_health.check(snap, self.processor.geometry_problem)
        if level == OK and spray_warning is not None:
            level, message = WARN, spray_warning
        tf_warning = self._tf_warning()
        if level == OK and tf_warning is not None:
            level, message = WARN, tf_warning
        values = dict(snap)
        values.update(self._tf_mount.snapshot() if self._tf_mount is not None
                      else {"mount_source": "parameters"})
        values.update(self.model_info)
        values.update(input_topic=self.input_topic,
                      camera_info_received=self.camera_info is not None,
                      latency_budget_ms=self._param("latency_budget_ms"))
        status = DiagnosticStatus(
            level=_LEVELS[level], name=DIAGNOSTIC_NAME, message=message,
            hardware_id=socket.gethostname(),
            values=[KeyValue(key=k, value=format_value(v)) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.publish_safely(self.pub_diagnostics, array)

    def shutdown(self) -> bool:
        """Stop the worker (waits for the frame in progress) and release the backend; also for
        a node whose construction a signal aborted. False when the worker did not stop."""
        slot = getattr(self, "_slot", None)
        worker = getattr(self, "_worker", None)
        if slot is not None:
            slot.close()
        stopped = True
        if worker is not None and worker.is_alive():
            worker.join(timeout=WORKER_JOIN_S)
            stopped = not worker.is_alive()
            if not stopped:
                self.get_logger().error(f"worker still busy after {WORKER_JOIN_S:.0f} s")
        segmenter = getattr(self, "segmenter", None)
        if segmenter is not None and stopped:
            segmenter.close()
        return stopped




def main(args: list[str] | None = None) -> int:
    """Console script ``segmenter_node``. Exit 0 on SIGINT/SIGTERM, 1 on a start-up error."""
    return run_node(SegmenterNode, NODE_NAME, args)

if __name__ == "__main__":
    sys.exit(main())
