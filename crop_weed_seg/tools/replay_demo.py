"""``make run``: the node's main job on a real ROS graph, with a bundled bag as the camera.

    python -m crop_weed_seg.tools.replay_demo [--bag test/fixtures/sample_bag] [--out out]

Starts ``segmenter_node`` in a subprocess (namespace ``/camera``, compressed input, sim time),
replays the bag through real ROS topics at its recorded rate with ``/clock``, subscribes to
``labels``, ``overlay`` and ``/diagnostics`` like any other consumer, prints one line per second
(frames in/out, latency p50/p95 from image stamp to ``labels`` received here, weed and crop
pixel share), writes some overlays to ``out/`` and exits 0 when the bag has ended and every
frame was answered.

The latency is measured against the player's schedule: a frame stamped ``t`` was published at
the monotonic time the player scheduled for ``t``, so ``receive time - scheduled time`` is the
whole path (DDS in, node, DDS out) without mixing clocks.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from crop_weed_seg.errors import CropWeedSegError
from crop_weed_seg.image_files import write_bytes_atomic
from crop_weed_seg.perception.image_conversion import image_to_array
from crop_weed_seg.ros.dds_profile import set_default_profile

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BAG = REPO / "test" / "fixtures" / "sample_bag"
PROFILE = REPO / "config" / "fastdds_large_images.xml"
NAMESPACE = "/camera"


def _stamp_ns(header: Any) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


class Collector:
    """What comes back from the node, per frame stamp. Bounded by the bag's length."""

    def __init__(self, player: Any, out: Path, max_overlays: int) -> None:
        self.player = player
        self.out = out
        self.max_overlays = max_overlays
        self.lock = threading.Lock()
        self.sent: dict[int, float] = {}          # stamp ns -> monotonic publish time
        self.latency_ms: dict[int, float] = {}
        self.coverage: dict[int, tuple[float, float]] = {}  # stamp -> (crop share, weed share)
        self.overlays_written: list[Path] = []
        self.last_overlay_s = -1
        self.diagnostics: dict[str, str] = {}

    def on_publish(self, topic: str, bag_ns: int, pass_index: int, when: float) -> None:
        if topic.endswith("/compressed") and "image" in topic:
            with self.lock:
                self.sent[bag_ns] = when

    def on_labels(self, msg: Any) -> None:
        received = time.monotonic()
        ns = _stamp_ns(msg.header)
        labels = np.frombuffer(msg.data, np.uint8)
        counts = np.bincount(labels, minlength=3)[:3] / max(1, labels.size)
        with self.lock:
            due = self.sent.get(ns)
            if due is not None:
                self.latency_ms[ns] = (received - due) * 1e3
            self.coverage[ns] = (float(counts[1]), float(counts[2]))

    def on_overlay(self, msg: Any) -> None:
        import cv2

        second = msg.header.stamp.sec
        if len(self.overlays_written) >= self.max_overlays or second == self.last_overlay_s:
            return
        self.last_overlay_s = second
        bgr, _ = image_to_array(msg)
        ok, png = cv2.imencode(".png", np.ascontiguousarray(bgr))
        if ok:
            path = self.out / f"overlay_{second}_{msg.header.stamp.nanosec:09d}.png"
            write_bytes_atomic(path, png.tobytes())
            self.overlays_written.append(path)

    def on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if values.get("input_topic", "").startswith(NAMESPACE + "/"):
                self.diagnostics = dict(values, level=str(status.level), message=status.message)

    def dropped(self) -> int:
        """Frames the node reports as dropped for newer ones (its latest diagnostics)."""
        return int(self.diagnostics.get("dropped_frames", "0") or 0)

    def line(self, elapsed: float, since: float) -> str:
        with self.lock:
            recent = [ns for ns in self.latency_ms
                      if self.sent.get(ns, 0.0) >= since]
            lat = np.array([self.latency_ms[ns] for ns in self.latency_ms])
            cov = np.array([self.coverage[ns] for ns in recent]) if recent else None
            n_in, n_out = len(self.sent), len(self.latency_ms)
        text = f"[{elapsed:5.1f} s] frames in {n_in:3d} out {n_out:3d}"
        if lat.size:
            p50, p95 = np.percentile(lat, [50, 95])
            text += f" | latency p50 {p50:5.1f} ms p95 {p95:5.1f} ms"
        if cov is not None:
            text += f" | crop {100 * cov[:, 0].mean():4.1f} % weed {100 * cov[:, 1].mean():4.2f} %"
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bag", type=Path, default=DEFAULT_BAG)
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--model", default="", help="model folder (default: the shipped one)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--rate", type=float, default=1.0, help="playback rate factor")
    parser.add_argument("--overlays", type=int, default=4, help="overlay PNGs to write")
    args = parser.parse_args(argv)

    # Before the first DDS participant of this process: large outputs over shared memory.
    set_default_profile(os.environ, PROFILE)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import rclpy
    import rclpy.utilities
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    # With the ROS imports above (bag_player imports rclpy at module level), after the DDS
    # environment is set.
    from crop_weed_seg.tools.bag_player import BagPlayer

    args.out.mkdir(parents=True, exist_ok=True)
    node_cmd = [sys.executable, "-m", "crop_weed_seg.ros.segmenter_node", "--ros-args",
                "-r", f"__ns:={NAMESPACE}", "-p", "input_transport:=compressed",
                "-p", "use_sim_time:=true", "-p", f"backend:={args.backend}",
                "-p", "input_qos_reliability:=reliable", "-p", "input_qos_depth:=5"]
    if args.model:
        node_cmd += ["-p", f"model_dir:={Path(args.model).resolve()}"]
    print("starting segmenter_node: " + " ".join(node_cmd[1:]), flush=True)
    log_path = args.out / "segmenter_node.log"
    log = log_path.open("w")
    node_proc = subprocess.Popen(node_cmd, stdout=log, stderr=subprocess.STDOUT)

    rclpy.init()
    node = rclpy.create_node("replay_demo")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    code = 0
    player = None
    try:
        player = BagPlayer(args.bag, node=node, rate=args.rate, clock_hz=100.0,
                           wait_for_subscribers=120.0, ack_timeout=0.0,
                           wait_topics=[f"{NAMESPACE}/image/compressed"])
        collector = Collector(player, args.out, args.overlays)
        player.on_publish = collector.on_publish
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(Image, f"{NAMESPACE}/labels", collector.on_labels, reliable)
        node.create_subscription(Image, f"{NAMESPACE}/overlay", collector.on_overlay, reliable)
        node.create_subscription(DiagnosticArray, "/diagnostics", collector.on_diagnostics, 10)
        images = [out for name, out in player.topics.items() if name.endswith("/compressed")
                  and "image" in name]
        seconds = (player.bag_end_ns - player.bag_start_ns) / 1e9
        print(f"playing {args.bag} ({seconds:.1f} s, topics: "
              f"{', '.join(player.topics.values())}) once the node subscribes", flush=True)

        failure: list[BaseException] = []

        def play() -> None:
            try:
                player.play()
            except BaseException as exc:  # noqa: BLE001 — reported by the main thread
                failure.append(exc)
        thread = threading.Thread(target=play, name="bag_player", daemon=True)
        thread.start()
        start = time.monotonic()
        next_line = None
        done_at = None
        while True:
            executor.spin_once(timeout_sec=0.05)
            if node_proc.poll() is not None:
                raise CropWeedSegError(f"segmenter_node exited with {node_proc.returncode}; "
                                       f"see {log_path}")
            now = time.monotonic()
            if player.start_monotonic is not None and done_at is None:
                if next_line is None:
                    next_line = player.start_monotonic + 1.0
                if now >= next_line:
                    print(collector.line(now - player.start_monotonic, next_line - 1.0),
                          flush=True)
                    next_line += 1.0
            if failure:
                raise failure[0]
            if not thread.is_alive() and done_at is None:
                done_at = now
            if done_at is not None:
                # every frame is answered, or the node says it dropped it for a newer one
                accounted = len(collector.latency_ms) + collector.dropped()
                if accounted >= sum(player.counts[t] for t in images) or now - done_at > 15.0:
                    break
            if now - start > 600:
                raise CropWeedSegError("replay did not finish within 10 minutes")
        expected = sum(player.counts[t] for t in images)
        answered, dropped = len(collector.latency_ms), collector.dropped()
        assert player.start_monotonic is not None  # set when the bag started playing
        print(collector.line(time.monotonic() - player.start_monotonic, 0.0) + " (all)",
              flush=True)
        diag = collector.diagnostics
        print(f"node: backend {diag.get('backend', '?')}, model {diag.get('model', '?')} "
              f"({diag.get('model_sha256', '')[:12]}), inference {diag.get('inference_ms', '?')} "
              f"ms, dropped {diag.get('dropped_frames', '?')}, rejected "
              f"{diag.get('rejected_frames', '?')}", flush=True)
        print(f"{answered}/{expected} frames answered, {dropped} dropped by the node for newer "
              f"ones; overlays: "
              f"{', '.join(str(p) for p in collector.overlays_written) or 'none'}; "
              f"node log: {log_path}", flush=True)
        if answered + dropped < expected:
            print(f"error: {expected - answered - dropped} frame(s) got no labels and were not "
                  "counted as dropped", file=sys.stderr)
            code = 1
    except CropWeedSegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    finally:
        if player is not None:
            player.stop()
            player.close()
        node.destroy_node()
        rclpy.utilities.try_shutdown()
        if node_proc.poll() is None:
            node_proc.send_signal(signal.SIGINT)
            try:
                node_proc.wait(20)
            except subprocess.TimeoutExpired:
                node_proc.kill()
        log.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
