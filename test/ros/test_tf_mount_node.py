"""``use_tf``: the segmenter node takes its camera mount from TF. tf2_ros is not installable
here (it comes with a system ROS 2, not the pip wheels), so the node-side code is driven
through its ``TransformSource`` interface by a FAKE source, over real rclpy (Fast DDS): no
targets until the mount is found, then targets placed by the TF mount with the boom where the
parameters put it, the re-check, refused mount parameters, diagnostics. Without tf2_ros,
``use_tf: true`` is a fatal start-up error; with tf2_ros (a system ROS), a test runs the real
listener against a static transform."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from support import REPO

pytest.importorskip("rclpy")

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from crop_weed_seg.image_files import read_rgb  # noqa: E402
from crop_weed_seg.ros.segmenter_node import DIAGNOSTIC_NAME, SegmenterNode  # noqa: E402
from crop_weed_seg.ros.spray_messages import records_from_cloud  # noqa: E402
from crop_weed_seg.spray.geometry import (  # noqa: E402
    Boom,
    CameraIntrinsics,
    CameraMount,
    GroundProjector,
)
from crop_weed_seg.spray.mount_tf import (  # noqa: E402
    RigidTransform,
    TransformUnavailable,
    transform_from_mount,
)

from support.nodes import RELIABLE, NodeProcess, frame_message, key, stamp  # noqa: E402
from support.ros import ros_domain_id, spin_until  # noqa: E402

NS = "/tfn"
CAMERA_FRAME = "left_camera_color_optical_frame"
INTRINSICS = CameraIntrinsics(640, 480, 800.0, 800.0, 319.5, 239.5)
# camera_x_m 0.9 and nozzle_offset_m 1.3 (parameters): the nozzle line at x = -0.4
MOUNT = CameraMount(0.9, 0.05, 0.8, pitch_deg=10.0, roll_deg=5.0, yaw_deg=15.0)
MOVED = CameraMount(0.95, 0.05, 0.8, pitch_deg=10.0, roll_deg=-5.0, yaw_deg=15.0)
BOOM = Boom(12, 0.05, 0.0, 0.9 - 1.3)


class FakeTransformSource:
    """FAKE ``TransformSource`` standing in for tf2_ros (not installable here): answers with
    ``transform``, or raises TransformUnavailable while it is None; keeps every lookup."""

    def __init__(self) -> None:
        self.transform: RigidTransform | None = None
        self.calls: list[tuple[str, str, float | None]] = []

    def lookup(self, target_frame: str, camera_frame: str,
               stamp_s: float | None) -> RigidTransform:
        self.calls.append((target_frame, camera_frame, stamp_s))
        if self.transform is None:
            raise TransformUnavailable(f"FAKE: {target_frame} -> {camera_frame} not there yet")
        return self.transform


class Rig:
    """The node (in this process, FAKE transform source) and a probe node, one executor."""

    def __init__(self, context: Context, source: FakeTransformSource) -> None:
        overrides = [Parameter("use_tf", value=True), Parameter("backend", value="onnxruntime"),
                     Parameter("camera_x_m", value=0.9), Parameter("nozzle_offset_m", value=1.3),
                     Parameter("default_speed_mps", value=1.0),
                     Parameter("stale_timeout_s", value=30.0),
                     Parameter("latency_budget_ms", value=60000.0),  # a busy test machine
                     Parameter("input_qos_reliability", value="reliable"),
                     Parameter("input_qos_depth", value=10)]
        self.node = SegmenterNode(transform_source=source, context=context, namespace=NS,
                                  parameter_overrides=overrides)
        self.probe = rclpy.create_node("tf_probe", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self.image_pub = self.probe.create_publisher(Image, f"{NS}/image", RELIABLE)
        self.info_pub = self.probe.create_publisher(CameraInfo, f"{NS}/camera_info", RELIABLE)
        self.labels: set[tuple[int, int]] = set()
        self.targets: dict[tuple[int, int], PointCloud2] = {}
        self.status: list[Any] = []
        self.probe.create_subscription(Image, f"{NS}/labels",
                                       lambda m: self.labels.add(key(m.header.stamp)), RELIABLE)
        self.probe.create_subscription(
            PointCloud2, f"{NS}/spray_targets",
            lambda m: self.targets.__setitem__(key(m.header.stamp), m), RELIABLE)
        self.probe.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        self.status += [s for s in msg.status if s.name == DIAGNOSTIC_NAME]

    def spin_until(self, predicate: Any, timeout: float) -> bool:
        return spin_until(self.executor, predicate, timeout)

    def camera_info(self) -> None:
        info = CameraInfo(width=640, height=480, distortion_model="plumb_bob")
        info.header.frame_id = CAMERA_FRAME
        info.k = [800.0, 0.0, 319.5, 0.0, 800.0, 239.5, 0.0, 0.0, 1.0]
        info.d = [0.0] * 5
        self.info_pub.publish(info)

    def targets_of(self, rgb: np.ndarray, timeout: float = 30.0) -> np.ndarray:
        """Publish a fresh frame (and camera_info); the records of its spray_targets."""
        msg = frame_message(rgb, sec=0, frame_id=CAMERA_FRAME)
        msg.header.stamp = stamp(*divmod(time.time_ns(), 1_000_000_000))
        k = key(msg.header.stamp)
        self.camera_info()
        self.image_pub.publish(msg)
        assert self.spin_until(lambda: k in self.targets, timeout), "no spray_targets"
        return records_from_cloud(self.targets[k])

    def values(self, condition: Any, timeout: float = 15.0) -> tuple[Any, dict[str, str]]:
        start = len(self.status)

        def found() -> bool:
            return any(condition({kv.key: kv.value for kv in s.values})
                       for s in self.status[start:])
        assert self.spin_until(found, timeout), \
            f"no diagnostics as expected; last: {self.status[-1] if self.status else None}"
        status = next(s for s in reversed(self.status[start:])
                      if condition({kv.key: kv.value for kv in s.values}))
        return status, {kv.key: kv.value for kv in status.values}

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=0)
        self.node.shutdown()
        self.node.destroy_node()
        self.probe.destroy_node()


@pytest.fixture()
def context() -> Iterator[Context]:
    ctx = Context()
    kwargs: dict[str, Any] = {}
    try:
        from rclpy.signals import SignalHandlerOptions
        kwargs["signal_handler_options"] = SignalHandlerOptions.NO
    except ImportError:
        pass
    rclpy.init(context=ctx, domain_id=ros_domain_id(), **kwargs)
    yield ctx
    ctx.try_shutdown()


def _mount_x(node: SegmenterNode) -> float | None:
    tf = node._tf_mount
    return tf.mount.x if tf is not None and tf.mount is not None else None


def _weeds() -> np.ndarray:
    return read_rgb(sorted((REPO / "samples" / "field" / "images").glob("*.png"))[0])


def _placed_by(recs: np.ndarray, mount: CameraMount) -> bool:
    xy = GroundProjector(INTRINSICS, mount).pixels_to_ground(np.column_stack((recs["u"],
                                                                              recs["v"])))
    # 1 mm: a tilted camera's blob centroid on the ground is not exactly the projection of its
    # pixel centroid (perspective); another mount is off by centimetres to decimetres
    return bool(np.allclose(xy, np.column_stack((recs["x"], recs["y"])), atol=1e-3))


def test_mount_from_a_transform_source_places_the_targets(context: Context) -> None:
    source = FakeTransformSource()
    rig = Rig(context, source)
    weeds = _weeds()
    try:
        assert rig.spin_until(lambda: rig.image_pub.get_subscription_count() > 0
                              and rig.info_pub.get_subscription_count() > 0, 30.0)
        # no transform yet: labels, but empty spray_targets, looked up with the images' frame
        recs = rig.targets_of(weeds)
        assert len(recs) == 0
        assert rig.spin_until(lambda: ("base_link", CAMERA_FRAME, None) in source.calls, 10.0)
        status, values = rig.values(lambda v: v.get("tf_lookup_failures", "0") != "0")
        assert status.level == status.WARN and "no camera mount from TF" in status.message
        assert values["mount_source"] == "tf" and values["mount"] == "none"
        assert "FAKE" in values["tf_problem"]

        # the transform appears: targets placed by the TF mount, the boom where it was
        source.transform = transform_from_mount(MOUNT)
        assert rig.spin_until(lambda: rig.node._tf_mount is not None
                              and rig.node._tf_mount.mount is not None, 10.0)
        recs = rig.targets_of(weeds)
        assert len(recs) > 0 and _placed_by(recs, MOUNT)
        assert not _placed_by(recs, CameraMount(0.9, 0.0, 0.8))      # not the parameter mount
        assert np.array_equal(recs["lane"], BOOM.lane_of(recs["y"]))
        assert np.allclose(recs["time_to_nozzle"], recs["x"] - BOOM.nozzle_x, atol=1e-5)
        status, values = rig.values(lambda v: v.get("mount", "none") != "none")
        assert values["tf_frames"] == f"base_link -> {CAMERA_FRAME}"
        assert values["mount"].startswith("x=0.900 y=0.050 height=0.800 m, roll=5.00 "
                                          "pitch=10.00 yaw=15.00")

        # the five mount parameters are TF's now; camera_x_m (the boom's reference) is not
        refused = rig.node.set_parameters([Parameter("camera_pitch_deg", value=3.0)])[0]
        assert not refused.successful and "comes from TF" in refused.reason
        assert rig.node.set_parameters([Parameter("camera_x_m", value=0.9)])[0].successful

        # a recalibration: seen at the next re-check, applied from the next frame; TF's x now
        # differs from camera_x_m by 5 cm: warned, and the nozzle line stays at -0.4
        source.transform = transform_from_mount(MOVED)
        assert rig.spin_until(lambda: _mount_x(rig.node) == pytest.approx(0.95), 30.0)
        recs = rig.targets_of(weeds)
        assert len(recs) > 0 and _placed_by(recs, MOVED)
        assert np.allclose(recs["time_to_nozzle"], recs["x"] - BOOM.nozzle_x, atol=1e-5)
        status, values = rig.values(lambda v: v.get("tf_mount_changes") == "2")
        assert status.level == status.WARN and "TF puts the camera at x=0.950" in status.message
    finally:
        rig.close()


def test_a_transform_that_is_no_optical_frame_gives_no_targets(context: Context) -> None:
    source = FakeTransformSource()
    source.transform = RigidTransform((0.9, 0.0, 0.8), (0.0, 0.0, 0.0, 1.0))  # lens looks up
    rig = Rig(context, source)
    try:
        assert rig.spin_until(lambda: rig.image_pub.get_subscription_count() > 0, 30.0)
        recs = rig.targets_of(_weeds())
        assert len(recs) == 0
        status, values = rig.values(lambda v: "optical frame" in v.get("tf_problem", ""))
        assert status.level == status.WARN and values["mount"] == "none"
    finally:
        rig.close()


@pytest.mark.skipif(importlib.util.find_spec("tf2_ros") is not None,
                    reason="tf2_ros is importable: use_tf starts")
def test_use_tf_without_tf2_ros_is_fatal_with_a_clear_message(tmp_path: Path) -> None:
    proc = NodeProcess(tmp_path, "/notf", "-p", "use_tf:=true", "-p", "backend:=onnxruntime")
    code = proc.proc.wait(120)
    out = proc.output()
    proc.stop()
    assert code == 1, out
    assert "fatal: use_tf is true but tf2_ros cannot be imported" in out
    assert "set use_tf false" in out and "Traceback" not in out


@pytest.mark.skipif(importlib.util.find_spec("tf2_ros") is None,
                    reason="tf2_ros comes with a system ROS 2 install (not on PyPI)")
def test_the_tf2_listener_reads_a_static_transform(tmp_path: Path, context: Context) -> None:
    """On a system ROS: a real static transform, the node in a subprocess with use_tf."""
    tf2_ros: Any = importlib.import_module("tf2_ros")
    from geometry_msgs.msg import TransformStamped

    proc = NodeProcess(tmp_path, "/tfreal", "-p", "use_tf:=true", "-p", "backend:=onnxruntime",
                       "-p", f"camera_frame:={CAMERA_FRAME}", "-p", "camera_x_m:=0.9")
    probe = rclpy.create_node("tf_static_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    seen: list[dict[str, str]] = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", lambda m: seen.extend(
        {kv.key: kv.value for kv in s.values} for s in m.status if s.name == DIAGNOSTIC_NAME),
        50)
    t = transform_from_mount(MOUNT)
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = "base_link", CAMERA_FRAME
    msg.header.stamp = probe.get_clock().now().to_msg()
    (msg.transform.translation.x, msg.transform.translation.y,
     msg.transform.translation.z) = t.translation
    (msg.transform.rotation.x, msg.transform.rotation.y, msg.transform.rotation.z,
     msg.transform.rotation.w) = t.rotation
    broadcaster = tf2_ros.StaticTransformBroadcaster(probe)
    broadcaster.sendTransform(msg)
    try:
        assert spin_until(executor, lambda: any(v.get("mount", "none").startswith(
            "x=0.900 y=0.050 height=0.800 m, roll=5.00 pitch=10.00 yaw=15.00") for v in seen),
            90.0), f"no TF mount in the diagnostics: {seen[-1:]}\n{proc.output()}"
    finally:
        executor.shutdown(timeout_sec=0)
        probe.destroy_node()
        proc.stop_cleanly()
