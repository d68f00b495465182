"""Helpers for the cross-process DDS tests: a frame flood from ``image_flood.py`` to here.

``flood(...)`` starts ``test/support/image_flood.py`` in a subprocess, subscribes to its topic
here with ``qos_profile_sensor_data`` and counts the frames that arrive. Both processes get a
test-unique ``ROS_DOMAIN_ID``, ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and, when ``profile``
is given, ``FASTDDS_DEFAULT_PROFILES_FILE``; without it the variable is removed from both
environments.

Caveat: Fast DDS reads ``FASTDDS_DEFAULT_PROFILES_FILE`` once per process, when the first
participant is created. In this (pytest) process the variable therefore only counts when no
participant existed before; the receiving side does not need the profile anyway (the publisher's
shared-memory segment is what carries the data), so results do not depend on test order.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from crop_weed_seg.ros.dds_profile import profile_overrides

from support import REPO

PROFILE = REPO / "config" / "fastdds_large_images.xml"
FLOOD_SCRIPT = Path(__file__).resolve().parent / "image_flood.py"


def dds_env(domain_id: int, profile: Path | None) -> dict[str, str | None]:
    """The environment variables (None = unset) both sides of a flood run with."""
    return {
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOCALHOST_ONLY": None,  # deprecated; would conflict with the discovery range
        **profile_overrides(profile),
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
    }


def child_env(overrides: dict[str, str | None]) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@contextlib.contextmanager
def patched_environ(overrides: dict[str, str | None]) -> Iterator[None]:
    """Set/unset variables in ``os.environ`` and restore the previous values afterwards."""
    saved = {key: os.environ.get(key) for key in overrides}
    try:
        for key, value in overrides.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class FloodResult:
    width: int
    height: int
    count: int
    received: set[int] = field(default_factory=set)
    corrupt: int = 0
    publisher_lines: list[str] = field(default_factory=list)
    publisher_stderr: str = ""
    returncode: int | None = None
    seconds: float = 0.0

    @property
    def fraction(self) -> float:
        return len(self.received) / self.count

    def summary(self) -> str:
        return (f"{self.width}x{self.height}: {len(self.received)}/{self.count} frames received, "
                f"{self.corrupt} corrupt, {self.seconds:.1f} s, publisher rc={self.returncode}, "
                f"publisher said {self.publisher_lines}, stderr tail: "
                f"{self.publisher_stderr[-1500:]!r}")


def _reader(stream, lines: "queue.Queue[str | None]") -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def flood(width: int, height: int, *, count: int = 100, rate: float = 25.0,
          profile: Path | None = PROFILE, domain_id: int | None = None,
          timeout: float = 60.0, encoding: str = "bgr8") -> FloodResult:
    """Publish ``count`` frames from a subprocess and count those received here."""
    import numpy as np
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    if domain_id is None:
        domain_id = 1 + os.getpid() % 100
    overrides = dds_env(domain_id, profile)
    topic = f"image_flood_{os.getpid()}_{width}x{height}"
    result = FloodResult(width, height, count)
    start = time.monotonic()
    deadline = start + timeout
    channels = 3 if encoding == "bgr8" else 1

    def on_image(msg: Image) -> None:
        index = int(msg.header.frame_id)
        data = np.frombuffer(msg.data, dtype=np.uint8)
        ok = (msg.width == width and msg.height == height and msg.encoding == encoding
              and data.size == width * height * channels
              and int.from_bytes(data[:4].tobytes(), "little") == index)
        if ok:
            result.received.add(index)
        else:
            result.corrupt += 1

    with patched_environ(overrides):
        context = rclpy.Context()
        rclpy.init(context=context)
        proc = None
        try:
            node = rclpy.create_node(f"image_flood_sink_{os.getpid()}", context=context)
            sub = node.create_subscription(Image, topic, on_image, qos_profile_sensor_data)
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            proc = subprocess.Popen(
                [sys.executable, str(FLOOD_SCRIPT), "--width", str(width), "--height",
                 str(height), "--encoding", encoding, "--count", str(count), "--rate",
                 str(rate), "--topic", topic, "--match-timeout", str(timeout)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, env=child_env(overrides))
            lines: "queue.Queue[str | None]" = queue.Queue()
            threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
            stderr_chunks: list[str] = []
            err_thread = threading.Thread(
                target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)
            err_thread.start()

            def poll_lines() -> bool:
                """Drain publisher stdout; False once it has closed."""
                while True:
                    try:
                        line = lines.get_nowait()
                    except queue.Empty:
                        return True
                    if line is None:
                        return False
                    result.publisher_lines.append(line)

            # 1. both sides matched: publisher says MATCHED, our subscription sees it.
            alive = True
            while time.monotonic() < deadline and alive:
                alive = poll_lines()
                if ("MATCHED" in result.publisher_lines and sub.get_publisher_count() >= 1):
                    break
                executor.spin_once(timeout_sec=0.05)
            else:
                raise AssertionError("publisher and subscriber did not match: "
                                     + result.summary())
            proc.stdin.write("GO\n")
            proc.stdin.flush()
            # 2. spin until every frame arrived, or the publisher is done and 2 s have passed.
            sent_at = None
            while time.monotonic() < deadline and len(result.received) < count:
                executor.spin_once(timeout_sec=0.05)
                alive = poll_lines() and alive
                if sent_at is None and (any(x.startswith("SENT") for x in result.publisher_lines)
                                        or not alive):
                    sent_at = time.monotonic()
                if sent_at is not None and time.monotonic() - sent_at > 2.0:
                    break
            proc.stdin.close()
            result.returncode = proc.wait(timeout=max(5.0, deadline - time.monotonic()))
            err_thread.join(timeout=5)
            poll_lines()
            result.publisher_stderr = "".join(stderr_chunks)
            executor.shutdown()
            node.destroy_node()
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            rclpy.try_shutdown(context=context)
    result.seconds = time.monotonic() - start
    return result


def xml_errors(text: str) -> list[str]:
    """Lines of Fast DDS output that report a problem with an XML profile."""
    return [line for line in text.splitlines() if "XML" in line and "rror" in line]
