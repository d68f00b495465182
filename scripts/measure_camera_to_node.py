"""Camera frames through the real segmenter node, counted (issue 15; docs/DDS.md's question:
do 640x480 frames reach the node on this distribution's Fast DDS as on Kilted's?).

    .venv/bin/python scripts/measure_camera_to_node.py --out out/camera_kilted.json
    .venv-jazzy/bin/python scripts/measure_camera_to_node.py --out out/camera_jazzy.json

Runs in the interpreter it is started with, so the venv chooses the ROS wheels (Kilted in
``.venv``, Jazzy in ``.venv-jazzy``). Three processes, as on a robot:

- a camera stand-in, ``test/support/image_flood.py``: ``--frames`` bgr8 frames of ``--size`` at
  each ``--rates`` Hz with sensor-data QoS (best effort), frame ``i`` with ``frame_id = "i"``;
- ``segmenter_node`` (``python -m crop_weed_seg.ros.segmenter_node``) with its default
  parameters;
- this process, which counts the ``labels`` (reliable subscription, by ``frame_id``) and reads
  the node's ``/diagnostics`` counters.

Profile cases (``--cases``), each a fresh node and camera in their own namespace:

- ``shipped``: what the package does by default. The node's environment gets
  ``config/fastdds_large_images.xml`` by ``crop_weed_seg.ros.dds_profile.set_default_profile``
  (the variable this environment's Fast DDS reads, as the launch file's
  ``fastdds_profile:=auto`` sets it on a sourced distribution) and the camera the same, as the
  README tells for camera drivers;
- ``node-only``: the node as above, the camera started without a profile;
- ``none``: neither (Fast DDS's built-in transports).

This process never has a profile (it only subscribes). Per case and rate it reports the
frames sent, the frames the node received (its ``frames_in``: what DDS delivered), the frames it
dropped for a newer one (its newest-frame policy under CPU load: not a DDS loss), and the labels
that arrived here. Writes JSON (``--out``, atomically) and prints a Markdown table. Exit code 0
when every run completed (whatever the counts), 1 when a node or camera failed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Iterator

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crop_weed_seg.image_files import write_bytes_atomic  # noqa: E402
from crop_weed_seg.ros.dds_profile import (  # noqa: E402
    PROFILE_VARIABLES,
    profile_variables,
    set_default_profile,
)

PROFILE = REPO / "config" / "fastdds_large_images.xml"
CAMERA = REPO / "test" / "support" / "image_flood.py"
CASES = ("shipped", "node-only", "none")


@dataclass
class Run:
    """One camera -> node -> here run."""

    case: str
    rate_hz: float
    width: int
    height: int
    sent: int = 0
    node_frames_in: int | None = None
    node_dropped: int | None = None
    node_rejected: int | None = None
    labels: int = 0
    #: the first 20 frame indices without labels (lost on the way or dropped by the node)
    unanswered: list[int] = field(default_factory=list)
    seconds: float = 0.0
    node_profile: dict[str, str] = field(default_factory=dict)
    camera_profile: dict[str, str] = field(default_factory=dict)
    error: str = ""


def wheel_versions() -> dict[str, str]:
    """The ROS wheels that decide the result: rclpy, the RMW, Fast DDS."""
    found = {}
    for name in ("ros-rclpy", "ros-rmw-fastrtps-cpp", "ros-fastdds", "ros-fastrtps"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def base_env(domain_id: int) -> dict[str, str]:
    """This environment without any Fast DDS profile, in ``domain_id``, discovery on this host."""
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env.pop("ROS_LOCALHOST_ONLY", None)
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               RMW_IMPLEMENTATION="rmw_fastrtps_cpp")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def with_profile(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the package's default profile handling applied."""
    out = dict(env)
    set_default_profile(out, PROFILE)
    return out


def _lines(stream: IO[str], sink: "queue.Queue[str | None]") -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))
    sink.put(None)


@contextlib.contextmanager
def node_process(namespace: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """segmenter_node under ``namespace``; SIGINT (then SIGKILL after 20 s) on exit."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crop_weed_seg.ros.segmenter_node", "--ros-args",
             "-r", f"__ns:={namespace}"], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def measure(run: Run, frames: int, domain_id: int, workdir: Path, timeout: float) -> Run:
    """One run; fills ``run`` in (``error`` says what went wrong, if anything)."""
    import rclpy
    import rclpy.utilities
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    namespace = f"/measure_{run.case.replace('-', '_')}_{int(run.rate_hz)}hz_{os.getpid()}"
    env = base_env(domain_id)
    node_env = env if run.case == "none" else with_profile(env)
    camera_env = with_profile(env) if run.case == "shipped" else env
    run.node_profile = {k: node_env[k] for k in PROFILE_VARIABLES if k in node_env}
    run.camera_profile = {k: camera_env[k] for k in PROFILE_VARIABLES if k in camera_env}
    labels: set[int] = set()
    diagnostics: list[tuple[float, dict[str, str]]] = []
    deadline = time.monotonic() + timeout

    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    try:
        node = rclpy.create_node(f"measure_counter_{os.getpid()}", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)

        def on_labels(msg: Image) -> None:
            with contextlib.suppress(ValueError):
                labels.add(int(msg.header.frame_id))

        def on_diagnostics(msg: DiagnosticArray) -> None:
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                if values.get("input_topic") == f"{namespace}/image" and "frames_in" in values:
                    diagnostics.append((time.monotonic(), values))

        node.create_subscription(Image, f"{namespace}/labels", on_labels,
                                 QoSProfile(depth=max(frames, 10),
                                            reliability=ReliabilityPolicy.RELIABLE))
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
        with node_process(namespace, node_env, workdir / f"{namespace[1:]}.log") as proc:
            camera = subprocess.Popen(
                [sys.executable, str(CAMERA), "--width", str(run.width), "--height",
                 str(run.height), "--encoding", "bgr8", "--count", str(frames), "--rate",
                 str(run.rate_hz), "--topic", f"{namespace}/image",
                 "--match-timeout", str(timeout)],
                env=camera_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True)
            assert camera.stdin is not None and camera.stdout is not None
            said: "queue.Queue[str | None]" = queue.Queue()
            threading.Thread(target=_lines, args=(camera.stdout, said), daemon=True).start()
            lines: list[str] = []

            def drain() -> None:
                with contextlib.suppress(queue.Empty):
                    while (line := said.get_nowait()) is not None:
                        lines.append(line)

            try:
                # 1. the camera matched the node, and the node's labels matched us
                while not ("MATCHED" in lines and node.count_publishers(f"{namespace}/labels")):
                    if time.monotonic() > deadline or proc.poll() is not None \
                            or camera.poll() is not None:
                        run.error = (f"no match within {timeout:.0f} s (node rc={proc.poll()}, "
                                     f"camera rc={camera.poll()}, camera said {lines})")
                        return run
                    executor.spin_once(timeout_sec=0.05)
                    drain()
                camera.stdin.write("GO\n")
                camera.stdin.flush()
                started = time.monotonic()
                # 2. until the camera has sent everything and no labels came for 3 s
                last_change, seen = time.monotonic(), -1
                while time.monotonic() < deadline:
                    executor.spin_once(timeout_sec=0.05)
                    drain()
                    if len(labels) != seen:
                        last_change, seen = time.monotonic(), len(labels)
                    done = any(x.startswith("SENT") for x in lines)
                    if len(labels) >= frames or (done and time.monotonic() - last_change > 3.0):
                        break
                run.seconds = time.monotonic() - started
                # the camera's "SENT <count> in <s> s" (it may come after the last label)
                while not any(x.startswith("SENT") for x in lines) and \
                        time.monotonic() < deadline and camera.poll() is None:
                    executor.spin_once(timeout_sec=0.05)
                    drain()
                drain()
                run.sent = next((int(x.split()[1]) for x in lines if x.startswith("SENT")), 0)
                # 3. the node's counters, from a diagnostics message published after the end
                quiet_since = time.monotonic()
                while time.monotonic() < deadline and \
                        not any(t > quiet_since + 0.05 for t, _ in diagnostics):
                    executor.spin_once(timeout_sec=0.05)
                final = [v for t, v in diagnostics if t > quiet_since + 0.05]
                if final:
                    run.node_frames_in = int(final[-1]["frames_in"])
                    run.node_dropped = int(final[-1].get("dropped_frames", "0") or 0)
                    run.node_rejected = int(final[-1].get("rejected_frames", "0") or 0)
                else:
                    run.error = "no diagnostics from the node after the run"
            finally:
                with contextlib.suppress(OSError):
                    camera.stdin.close()
                try:
                    camera.wait(20)
                except subprocess.TimeoutExpired:
                    camera.kill()
                    camera.wait(5)
            if camera.returncode != 0 and not run.error:
                run.error = f"camera exited with {camera.returncode}"
            if proc.poll() is not None and not run.error:
                run.error = f"segmenter_node ended during the run (rc={proc.returncode})"
        run.labels = len(labels)
        run.unanswered = [i for i in range(run.sent) if i not in labels][:20]
        executor.shutdown(timeout_sec=0)
        node.destroy_node()
    finally:
        rclpy.utilities.try_shutdown(context=context)
    return run


def markdown(runs: list[Run], wheels: dict[str, str]) -> str:
    head = ", ".join(f"{k} {v}" for k, v in wheels.items())
    rows = [f"ROS wheels: {head}", "",
            "| case | rate | sent | node received | node dropped (newest-frame) | labels here |",
            "|---|---|---|---|---|---|"]
    for r in runs:
        cells = [r.case, f"{r.rate_hz:g} Hz", str(r.sent), str(r.node_frames_in),
                 str(r.node_dropped), str(r.labels)]
        rows.append("| " + " | ".join(cells) + " |" + (f" error: {r.error}" if r.error else ""))
    return "\n".join(rows)


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size {text!r}: expected WIDTHxHEIGHT") from None
    return width, height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=_size, default=(640, 480), help="WIDTHxHEIGHT")
    parser.add_argument("--rates", type=float, nargs="+", default=[15.0, 30.0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per run")
    parser.add_argument("--out", type=Path, help="JSON file to write")
    args = parser.parse_args(argv)
    if not CAMERA.is_file():
        print(f"fatal: the camera stand-in {CAMERA} is missing", file=sys.stderr)
        return 2
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        print(f"fatal: rclpy is not importable in {sys.executable} ({exc}): run this with "
              f"the venv of the ROS wheels to measure", file=sys.stderr)
        return 2
    wheels = wheel_versions()
    width, height = args.size
    domain_id = 101 + os.getpid() % 100  # beside the tests' 1..100
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="measure_camera_") as tmp:
        for case in args.cases:
            for rate in args.rates:
                run = measure(Run(case, rate, width, height), args.frames, domain_id,
                              Path(tmp), args.timeout)
                print(f"{case} {rate:g} Hz: {asdict(run)}", flush=True)
                runs.append(run)
                if run.error:
                    logs = sorted(Path(tmp).glob("*.log"))
                    if logs:
                        print(logs[-1].read_text()[-2000:], file=sys.stderr)
    table = markdown(runs, wheels)
    print(table)
    if args.out:
        result = {
            "python": sys.executable, "machine": platform.machine(), "node": platform.node(),
            "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(),
            "profile_variables_read_here": list(profile_variables({})),
            "wheels": wheels, "frames": args.frames,
            "runs": [asdict(r) for r in runs], "markdown": table}
        write_bytes_atomic(args.out, (json.dumps(result, indent=2) + "\n").encode())
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
