"""Benchmark of the running node over real ROS topics (docs/BENCHMARKS.md, not a test).

    python -m crop_weed_seg.tools.node_benchmark --size 640x480 --rate 30 --duration 30

Starts ``segmenter_node`` in a subprocess (the package's Fast DDS profile in its environment),
publishes ``bgr8`` frames at ``--rate`` Hz stamped with the wall clock, with a ``camera_info``
for each (so spray targets are made on the ground, as on a robot), and receives ``labels`` in
this process. Reports labels/s, latency (labels received minus image stamp: the whole path
through DDS, conversion, inference and publishing), and from the node's ``/diagnostics`` its
inference time and its overhead (per frame: publish time minus stamp minus inference, i.e. DDS
in, waiting for the worker, conversion, pre/postprocessing, publishing), and the node's resident
memory sampled every second. The first ``--warmup`` seconds are not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import rclpy.utilities
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from crop_weed_seg.image_files import read_rgb
from crop_weed_seg.perception.image_conversion import array_to_image
from crop_weed_seg.ros.dds_profile import PROFILE_VARIABLES, set_default_profile

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "config" / "fastdds_large_images.xml"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _frame(width: int, height: int) -> np.ndarray:
    import cv2
    sample = sorted((REPO / "samples" / "field" / "images").glob("*.png"))[0]
    rgb = read_rgb(sample)
    return np.ascontiguousarray(cv2.resize(rgb, (width, height))[:, :, ::-1])


def run(width: int, height: int, rate: float, duration: float, warmup: float,
        backend: str) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(dict.fromkeys(PROFILE_VARIABLES, str(PROFILE)))
    set_default_profile(os.environ, PROFILE)
    node_proc = subprocess.Popen(
        [sys.executable, "-m", "crop_weed_seg.ros.segmenter_node", "--ros-args",
         "-r", "__ns:=/bench", "-p", f"backend:={backend}", "-p", "latency_budget_ms:=1000.0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rclpy.init()
    node = rclpy.create_node("node_benchmark")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    received: list[tuple[float, float]] = []   # (receive wall time, stamp)
    diag: list[dict[str, str]] = []
    try:
        pub = node.create_publisher(Image, "/bench/image", qos_profile_sensor_data)
        info_pub = node.create_publisher(CameraInfo, "/bench/camera_info",
                                         qos_profile_sensor_data)

        def on_labels(msg: Image) -> None:
            received.append((time.time(), msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

        def on_diag(msg: DiagnosticArray) -> None:
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                if values.get("input_topic") == "/bench/image" and values.get("inference_ms"):
                    diag.append(values)

        node.create_subscription(Image, "/bench/labels", on_labels,
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
        deadline = time.monotonic() + 90
        while pub.get_subscription_count() == 0 or node.count_publishers("/bench/labels") == 0:
            if time.monotonic() > deadline or node_proc.poll() is not None:
                raise RuntimeError("segmenter_node did not come up within 90 s")
            executor.spin_once(timeout_sec=0.05)

        bgr = _frame(width, height)
        msg = array_to_image(bgr, "bgr8")
        msg.header.frame_id = "camera"
        # a camera whose ground footprint is about 1 mm/px at 0.8 m, so spray targets are
        # extracted on the ground as on a robot
        f = 800.0 * width / 640.0
        info = CameraInfo(width=width, height=height, distortion_model="plumb_bob",
                          k=[f, 0.0, (width - 1) / 2, 0.0, f, (height - 1) / 2, 0.0, 0.0, 1.0],
                          d=[0.0] * 5)
        period = 1.0 / rate
        start = time.monotonic()
        next_t = start
        sent = 0
        rss: list[tuple[float, float]] = []
        next_rss = start
        while time.monotonic() - start < warmup + duration:
            now = time.monotonic()
            if now >= next_t:
                wall = time.time()
                msg.header.stamp.sec = int(wall)
                msg.header.stamp.nanosec = int((wall % 1.0) * 1e9)
                pub.publish(msg)
                info.header.stamp = msg.header.stamp
                info_pub.publish(info)
                sent += now - start >= warmup
                next_t += period
            if now >= next_rss:
                rss.append((now - start, _rss_mb(node_proc.pid)))
                next_rss += 1.0
            executor.spin_once(timeout_sec=max(0.0, min(next_t, next_rss) - time.monotonic()))
        end_wall = time.time()
        t_end = time.monotonic()
        while time.monotonic() - t_end < 1.0:   # late answers of the last frames
            executor.spin_once(timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.utilities.try_shutdown()
        node_proc.send_signal(signal.SIGINT)
        node_proc.wait(20)

    window_start = end_wall - duration
    lat = np.array([(r - s) * 1e3 for r, s in received if s >= window_start])
    last = diag[-1] if diag else {}  # the node's windows: the last 600 frames

    def node_value(name: str) -> float | None:
        return float(last[name]) if last.get(name) else None
    rss_run = [m for t, m in rss if t >= warmup]
    return {
        "size": f"{width}x{height}", "rate_hz": rate, "duration_s": duration,
        "backend": backend, "frames_sent": int(sent), "labels_received": int(lat.size),
        "labels_per_s": lat.size / duration,
        "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
        "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else None,
        "latency_max_ms": float(lat.max()) if lat.size else None,
        "node_preprocess_ms": node_value("preprocess_ms"),
        "node_inference_ms": node_value("inference_ms"),
        "node_postprocess_ms": node_value("postprocess_ms"),
        "node_latency_p95_ms": node_value("latency_p95_ms"),
        "node_overhead_p50_ms": node_value("overhead_p50_ms"),
        "node_overhead_p95_ms": node_value("overhead_p95_ms"),
        "node_dropped_frames": node_value("dropped_frames"),
        "node_geometry": last.get("geometry"),
        "node_targets_last_frame": node_value("targets_last_frame"),
        "rss_mb_first": rss_run[0] if rss_run else None,
        "rss_mb_last": rss_run[-1] if rss_run else None,
        "rss_mb_max": max(rss_run) if rss_run else None,
        "rss_mb_every_10s": [round(m, 1) for t, m in rss if t >= warmup][::10],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", action="append", default=None,
                        help="WxH, repeatable (default 640x480 and 1280x720)")
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = []
    for size in args.size or ["640x480", "1280x720"]:
        w, h = (int(v) for v in size.lower().split("x"))
        result = run(w, h, args.rate, args.duration, args.warmup, args.backend)
        results.append(result)
        print(json.dumps(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
