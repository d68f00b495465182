"""Test harness for the segmenter node over real ROS 2 (Fast DDS): the node in a subprocess, a
probe node in the test process that publishes frames and collects outputs and diagnostics.

Synchronisation is by messages (a frame's ``labels`` answer, a diagnostics message that shows a
counter), always with a deadline; never by sleeping.
"""

from __future__ import annotations

import array
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image, PointCloud2

from crop_weed_seg.perception.image_conversion import array_to_image, image_to_array
from crop_weed_seg.ros.segmenter_node import DIAGNOSTIC_NAME

from support.ros import python_module_command, ros_env, spin_until

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def stamp(sec: int, nanosec: int = 0) -> Time:
    return Time(sec=sec, nanosec=nanosec)


def key(t: Any) -> tuple[int, int]:
    return (t.sec, t.nanosec)


def fill(msg: Any, payload: bytes) -> Any:
    msg.data = array.array("B", payload)  # the fast path of rclpy's sequence<uint8>
    return msg


class NodeProcess:
    """A node (default ``segmenter_node``) in a subprocess (``python -m module``) with its
    output in a file."""

    def __init__(self, workdir: Path, namespace: str, *ros_args: str,
                 module: str = "crop_weed_seg.ros.segmenter_node") -> None:
        self.log = workdir / f"{module.rsplit('.', 1)[-1]}{namespace.replace('/', '_')}.log"
        self.namespace = namespace
        cmd = python_module_command(module, "--ros-args", "-r", f"__ns:={namespace}", *ros_args)
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env=ros_env())

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log_file.close()
        return self.proc.returncode

    def stop_cleanly(self, sig: int = signal.SIGINT) -> str:
        """Stop the node and assert a clean exit (code 0, no traceback); return its output."""
        code = self.stop(sig)
        out = self.output()
        assert code == 0, f"{self.log.name}: exit code {code} on signal {sig}:\n{out}"
        assert "Traceback" not in out, out
        return out


class Probe:
    """Publishes frames to ``<ns>/image`` and keeps what the node sends back, by stamp."""

    def __init__(self, context: Any, namespace: str, compressed: bool = False,
                 image_topic: str | None = None, input_qos: QoSProfile = RELIABLE) -> None:
        self.node = Node("probe" + namespace.replace("/", "_"), context=context)
        self.ns = namespace
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        topic = image_topic or f"{namespace}/image" + ("/compressed" if compressed else "")
        self.image_pub = self.node.create_publisher(CompressedImage if compressed else Image,
                                                    topic, input_qos)
        self.labels: dict[tuple[int, int], Image] = {}
        self.confidence: dict[tuple[int, int], Image] = {}
        self.overlay: dict[tuple[int, int], Image] = {}
        self.labels_color: dict[tuple[int, int], Image] = {}
        self.diagnostics: list[Any] = []
        self.targets: dict[tuple[int, int], PointCloud2] = {}
        self.node.create_subscription(Image, f"{namespace}/labels", self._keep(self.labels),
                                      RELIABLE)
        self.node.create_subscription(PointCloud2, f"{namespace}/spray_targets",
                                      self._keep(self.targets), RELIABLE)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.clock_pub = self.node.create_publisher(Clock, "/clock", 10)

    @staticmethod
    def _keep(store: dict) -> Callable[[Any], None]:
        def callback(msg: Any) -> None:
            store[key(msg.header.stamp)] = msg
        return callback

    def subscribe(self, name: str) -> None:
        """Subscribe to ``confidence``, ``overlay`` or ``labels_color``."""
        self.node.create_subscription(Image, f"{self.ns}/{name}", self._keep(getattr(self, name)),
                                      RELIABLE)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == DIAGNOSTIC_NAME and status.hardware_id and \
                    dict((kv.key, kv.value) for kv in status.values).get("input_topic", "") \
                    .startswith(self.ns + "/"):
                self.diagnostics.append((msg.header.stamp, status))

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        return spin_until(self.executor, predicate, timeout)

    def wait_for_node(self, timeout: float = 60.0) -> None:
        ok = self.spin_until(lambda: self.image_pub.get_subscription_count() > 0
                             and self.node.count_publishers(f"{self.ns}/labels") > 0, timeout)
        assert ok, f"segmenter node under {self.ns} did not come up within {timeout} s"

    def send(self, msg: Any) -> None:
        self.image_pub.publish(msg)

    def send_and_wait(self, msg: Any, timeout: float = 30.0, resend_after: float = 3.0) -> Image:
        """Publish one frame and wait for its ``labels``. The node's input is best effort by
        default, so a frame may be lost on the way (most often the first one after discovery):
        it is published again every ``resend_after`` seconds until answered."""
        k = key(msg.header.stamp)
        deadline = time.monotonic() + timeout
        while True:
            self.send(msg)
            wait = min(resend_after, deadline - time.monotonic())
            if self.spin_until(lambda: k in self.labels, wait):
                return self.labels[k]
            assert time.monotonic() < deadline, \
                f"no labels for the frame stamped {k} within {timeout} s"

    def latest_values(self, condition: Callable[[dict[str, str]], bool] = lambda v: True,
                      timeout: float = 10.0) -> tuple[Any, Any, dict[str, str]]:
        """Wait for a diagnostics message that satisfies ``condition``; (stamp, status, values)."""
        start = len(self.diagnostics)

        def found() -> bool:
            return any(condition(_values(s)) for _, s in self.diagnostics[start:])
        assert self.spin_until(found, timeout), \
            f"no diagnostics matching the condition within {timeout} s; last: " \
            f"{_values(self.diagnostics[-1][1]) if self.diagnostics else None}"
        stamp_, status = next((t, s) for t, s in reversed(self.diagnostics[start:])
                              if condition(_values(s)))
        return stamp_, status, _values(status)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=0)
        self.node.destroy_node()


def _values(status: Any) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def frame_message(rgb: np.ndarray, sec: int, frame_id: str = "camera_optical_frame",
                  encoding: str = "rgb8") -> Image:
    data = rgb if encoding == "rgb8" else rgb[:, :, ::-1].copy()
    msg = array_to_image(data, encoding)
    msg.header.stamp = stamp(sec)
    msg.header.frame_id = frame_id
    return msg


def labels_array(msg: Image) -> np.ndarray:
    arr, order = image_to_array(msg)
    assert order == "MONO"
    return np.asarray(arr)

