#!/usr/bin/env python3
"""Gazebo acceptance run: the simulation loop in Gazebo Harmonic, driven over ROS, scored.

    python3 scripts/gazebo_acceptance.py [--distance-m 10] [--field-file config/sim_field.json]
        [--out out/gazebo_acceptance] [--headless true|server|false] [--model DIR]
        [--backend B] [--timeout-s 900]

Needs Gazebo Harmonic and ros_gz on ROS 2 Jazzy (``sudo apt install ros-jazzy-ros-gz``), this
package built and sourced (``colcon build``; ``source install/setup.bash``) and a GPU or Mesa for
``ogre2`` (README, "Simulation"). It

1. writes a world whose planned drive is ``--distance-m`` long (``crop-weed-seg gazebo-world``:
   the field file's scenario, its field length set from the camera's footprint) into
   ``OUT/world``;
2. starts ``ros2 launch crop_weed_seg sim.launch.py simulator:=gazebo world:=OUT/world/world.sdf
   out_dir:=OUT/score exit_when_done:=true`` (``headless:=`` as ``--headless``; log:
   ``OUT/launch.log``);
3. waits for ``/clock`` and the first labelled frame (``labels`` from the segmenter);
4. drives the robot over ``cmd_vel`` at the scenario's speed until ``/odom`` shows it past the
   drive's end, then stops it;
5. waits for the scorer's ``OUT/score/score.json`` and prints a Markdown report: the checks
   (clock, frames, frame ids, label values, matching stamps, odometry) and the score.

Exit 0 when every check passed, 1 when one failed, 2 when Gazebo, ros_gz, ROS 2 or this
package is not installed (the message says what to install).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FIELD_FILE = REPO / "config" / "sim_field.json"
EXIT_OK, EXIT_FAILED, EXIT_UNAVAILABLE = 0, 1, 2
OPTICAL_FRAME = "camera_optical_frame"
INSTALL_HINT = ("On Ubuntu 24.04 with ROS 2 Jazzy: sudo apt install ros-jazzy-ros-gz (it brings "
                "Gazebo Harmonic); see README, \"Simulation\" (Humble: Gazebo Fortress or Garden "
                "with the matching ros_gz, with caveats).")


@dataclass
class Check:
    """One acceptance check: ``passed`` None means not reached (counts as failed)."""

    name: str
    passed: bool | None
    detail: str


# --- pure helpers (tested without Gazebo) ------------------------------------------------------

def missing_prerequisites(which: Callable[[str], str | None] = shutil.which,
                          run: Callable[..., Any] = subprocess.run) -> list[str]:
    """What is missing to run the Gazebo loop here, one line each ([] when nothing)."""
    problems = []
    if which("gz") is None:
        problems.append("`gz` (Gazebo's command line) is not on PATH: Gazebo Harmonic is not "
                        "installed or not sourced. " + INSTALL_HINT)
    else:
        proc = run(["gz", "sim", "--versions"], capture_output=True, text=True, timeout=60,
                   check=False)
        if proc.returncode != 0:
            problems.append("`gz sim --versions` failed: gz tools are there but not gz-sim. "
                            + INSTALL_HINT)
    if which("ros2") is None:
        problems.append("`ros2` is not on PATH: source /opt/ros/<distro>/setup.bash and this "
                        "workspace's install/setup.bash.")
    else:
        for package, why in (("ros_gz_bridge", "ros_gz (the Gazebo bridge) is not installed. "
                              + INSTALL_HINT),
                             ("tf2_ros", "tf2_ros is not installed (ros-<distro>-tf2-ros)."),
                             ("crop_weed_seg", "crop_weed_seg is not built/sourced: colcon "
                              "build, then source install/setup.bash.")):
            proc = run(["ros2", "pkg", "prefix", package], capture_output=True, text=True,
                       timeout=60, check=False)
            if proc.returncode != 0:
                problems.append(f"ROS package {package}: {why}")
    try:
        import rclpy  # noqa: F401
    except ImportError as exc:
        problems.append(f"rclpy is not importable ({exc}): run with the ROS Python "
                        "(/usr/bin/python3 after sourcing ROS).")
    return problems


def speed_command(x: float, end_x: float, speed: float) -> float:
    """The cmd_vel speed for base_link at field x: the scenario's speed up to the drive's end,
    then 0."""
    return speed if x < end_x else 0.0


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; ``|`` in cells is escaped."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def checks_table(checks: Sequence[Check]) -> str:
    mark = {True: "PASS", False: "**FAIL**", None: "**not reached**"}
    return format_table(("check", "result", "detail"),
                        [(c.name, mark[c.passed], c.detail) for c in checks])


def exit_code(checks: Sequence[Check]) -> int:
    return EXIT_OK if checks and all(c.passed for c in checks) else EXIT_FAILED


def score_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The scorer's score.json as (figure, value) rows."""
    score = doc.get("score", doc)

    def pct(key: str) -> str:
        v = score.get(key)
        return "–" if v is None or v != v else f"{100 * float(v):.1f} %"

    rows = [("weeds scored", str(score.get("weeds_scored", "–"))),
            ("weed hit rate", pct("weed_hit_rate")),
            ("crops scored", str(score.get("crops_scored", "–"))),
            ("crop hit rate", pct("crop_hit_rate")),
            ("double sprays", str(score.get("double_sprays", "–"))),
            ("sprayed / blanket", pct("sprayed_ratio"))]
    miou = (doc.get("segmentation") or {}).get("miou")
    if isinstance(miou, (int, float)) and miou == miou:
        rows.append(("mIoU (labels vs labels_truth)", f"{float(miou):.3f}"))
    frames = doc.get("frames") or {}
    if "matched" in frames:
        rows.append(("frames matched (labels with labels_truth)", str(frames["matched"])))
    for note in doc.get("notes") or []:
        rows.append(("note", str(note)))
    return rows


def wait_for_json(path: Path, timeout_s: float, alive: Callable[[], bool],
                  poll_s: float = 0.5) -> dict[str, Any] | None:
    """The JSON document at ``path`` once it is there and whole (a writer may not be done),
    or None after ``timeout_s`` or once ``alive()`` turns false with no document."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            doc = json.loads(path.read_text())
            return doc if isinstance(doc, dict) else None
        except (FileNotFoundError, json.JSONDecodeError):
            if not alive() and not path.is_file():
                return None
        time.sleep(poll_s)
    return None


def score_is_complete(doc: dict[str, Any]) -> bool:
    """The scorer's report says the drive was scored to its end (``complete``)."""
    return doc.get("complete") is True


# --- the run (needs ROS and Gazebo) ------------------------------------------------------------

@dataclass
class Observed:
    """What the probe node saw."""

    clock_s: float | None = None
    labels: int = 0
    image: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)
    truth_values: set[int] = field(default_factory=set)
    truth_frames_with_both: int = 0
    image_stamps: set[int] = field(default_factory=set)
    truth_stamps: set[int] = field(default_factory=set)
    odom_frames: tuple[str, str] | None = None
    first_x: float | None = None
    x: float | None = None


def _stamp_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def probe_and_drive(args: argparse.Namespace, scenario: Any, drive: Any, checks: list[Check],
                    context: Any = None) -> None:
    """Steps 3 and 4 (module docstring) with a probe node; appends the checks. ``context``: an
    initialised rclpy Context to use (default: a new one, shut down at the end)."""
    import numpy as np
    import rclpy
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image

    seen = Observed()
    own = context is None
    if own:
        context = Context()
        rclpy.init(args=None, context=context)
    node = rclpy.create_node("gazebo_acceptance", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        def on_clock(msg: Any) -> None:
            seen.clock_s = msg.clock.sec + msg.clock.nanosec * 1e-9

        def on_image(msg: Any) -> None:
            seen.image = {"frame_id": msg.header.frame_id, "encoding": msg.encoding,
                          "size": (msg.width, msg.height)}
            seen.image_stamps.add(_stamp_ns(msg))

        def on_truth(msg: Any) -> None:
            seen.truth = {"frame_id": msg.header.frame_id, "encoding": msg.encoding,
                          "size": (msg.width, msg.height)}
            seen.truth_stamps.add(_stamp_ns(msg))
            data = np.frombuffer(bytes(msg.data), np.uint8)
            channels = {"mono8": 1, "rgb8": 3, "bgr8": 3}.get(msg.encoding)
            if channels and data.size == msg.height * msg.step:
                rows = data.reshape(msg.height, msg.step)[:, :msg.width * channels]
                values = set(np.unique(rows.reshape(msg.height, msg.width, channels)[:, :, 0])
                             .tolist())
                seen.truth_values |= values
                seen.truth_frames_with_both += int({1, 2} <= values)

        def on_labels(msg: Any) -> None:
            seen.labels += 1

        def on_odom(msg: Any) -> None:
            seen.odom_frames = (msg.header.frame_id, msg.child_frame_id)
            seen.x = float(msg.pose.pose.position.x)
            if seen.first_x is None:
                seen.first_x = seen.x

        node.create_subscription(Clock, "/clock", on_clock, qos_profile_sensor_data)
        node.create_subscription(Image, "/image", on_image, qos_profile_sensor_data)
        node.create_subscription(Image, "/labels_truth", on_truth, qos_profile_sensor_data)
        node.create_subscription(Image, "/labels", on_labels, qos_profile_sensor_data)
        node.create_subscription(Odometry, "/odom", on_odom, qos_profile_sensor_data)
        cmd = node.create_publisher(Twist, "/cmd_vel", 10)

        def spin_until(done: Callable[[], bool], seconds: float) -> float | None:
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                executor.spin_once(timeout_sec=0.1)
                if done():
                    return time.monotonic() - t0
            return None

        took = spin_until(lambda: seen.clock_s is not None, args.startup_timeout_s)
        checks.append(Check("/clock from Gazebo", took is not None,
                            f"after {took:.1f} s" if took is not None else
                            f"none within {args.startup_timeout_s:.0f} s (see launch.log)"))
        if took is None:
            return
        took = spin_until(lambda: seen.labels > 0, args.startup_timeout_s)
        checks.append(Check("first labelled frame (segmenter labels)", took is not None,
                            f"after {took:.1f} s more" if took is not None else
                            f"none within {args.startup_timeout_s:.0f} s"))
        if took is None:
            return
        end_x = drive.end_x
        t0, last = time.monotonic(), 0.0
        twist = Twist()
        while time.monotonic() - t0 < args.timeout_s:
            executor.spin_once(timeout_sec=0.02)
            if time.monotonic() - last >= 0.1:
                twist.linear.x = speed_command(seen.x if seen.x is not None else drive.start_x,
                                               end_x + 0.05, scenario.speed_mps)
                cmd.publish(twist)
                last = time.monotonic()
                if twist.linear.x == 0.0:
                    break
        for _ in range(5):
            twist.linear.x = 0.0
            cmd.publish(twist)
            executor.spin_once(timeout_sec=0.05)
        w, h = scenario.camera.width, scenario.camera.height
        checks.append(Check("drive over cmd_vel reached the end", seen.x is not None
                            and seen.x >= end_x,
                            f"odometry x {seen.first_x} -> {seen.x} m, drive "
                            f"{drive.start_x:.3f} -> {end_x:.3f} m"))
        checks.append(Check("odometry frames and start", seen.odom_frames == ("odom", "base_link")
                            and seen.first_x is not None
                            and abs(seen.first_x - drive.start_x) < 0.05,
                            f"frames {seen.odom_frames}, first x {seen.first_x}"))
        checks.append(Check("image: frame id, encoding, size",
                            seen.image == {"frame_id": OPTICAL_FRAME, "encoding": "rgb8",
                                           "size": (w, h)}, str(seen.image)))
        checks.append(Check("labels_truth: frame id, size", seen.truth.get("frame_id") ==
                            OPTICAL_FRAME and seen.truth.get("size") == (w, h), str(seen.truth)))
        checks.append(Check("labels_truth values are classes; crops and weeds seen",
                            seen.truth_values <= {0, 1, 2} and seen.truth_frames_with_both > 0,
                            f"values {sorted(seen.truth_values)}, "
                            f"{seen.truth_frames_with_both} frame(s) with both 1 and 2"))
        matched = len(seen.truth_stamps & seen.image_stamps)
        share = matched / max(1, len(seen.truth_stamps))
        checks.append(Check("labels_truth stamps match image stamps", share >= 0.9,
                            f"{matched} of {len(seen.truth_stamps)} ({100 * share:.0f} %)"))
    finally:
        executor.shutdown()
        node.destroy_node()
        if own:
            rclpy.shutdown(context=context)


def _stop(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """Stop the launch and whatever it started (its own session: gz sim, the bridge, nodes):
    SIGINT, then SIGKILL after ``grace_s``; also when the launch itself has exited already."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        return   # nothing of the session is left
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--distance-m", type=float, default=10.0,
                        help="length of the scored drive [m] (default %(default)s)")
    parser.add_argument("--field-file", type=Path, default=DEFAULT_FIELD_FILE,
                        help="field file with the scenario (default config/sim_field.json)")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "gazebo_acceptance",
                        help="folder for the world, the launch log and the score")
    parser.add_argument("--headless", choices=("true", "server", "false"), default="true",
                        help="true: EGL headless rendering (default); server: rendering on "
                             "$DISPLAY (run the script under xvfb-run where EGL fails); "
                             "false: with Gazebo's GUI")
    parser.add_argument("--model", default="", help="segmenter model folder (default shipped)")
    parser.add_argument("--backend", default="", help="segmenter backend (default auto)")
    parser.add_argument("--startup-timeout-s", type=float, default=300.0,
                        help="wait this long for /clock, then for the first labelled frame")
    parser.add_argument("--timeout-s", type=float, default=900.0,
                        help="wall-clock limit of the drive and of the scorer's end")
    args = parser.parse_args(argv)

    problems = missing_prerequisites()
    if problems:
        for line in problems:
            print(f"gazebo_acceptance: cannot run: {line}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if str(REPO) not in sys.path and (REPO / "crop_weed_seg").is_dir():
        sys.path.insert(0, str(REPO))
    from crop_weed_seg.errors import CropWeedSegError
    from crop_weed_seg.sim.gazebo_world import (
        field_length_for_drive,
        with_overrides,
        write_gazebo_world,
    )
    from crop_weed_seg.sim.scenario import read_field_file

    out = args.out.resolve()
    try:
        scenario = read_field_file(args.field_file).scenario
        scenario = with_overrides(scenario,
                                  length_m=field_length_for_drive(scenario, args.distance_m))
        print(f"== writing the world ({scenario.field.length_m:.2f} m field) to "
              f"{out / 'world'}", file=sys.stderr)
        fld = scenario.build_field()
        world = write_gazebo_world(out / "world", scenario, fld)
        drive = scenario.plan(fld)
    except CropWeedSegError as exc:
        print(f"gazebo_acceptance: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    score_dir = out / "score"
    shutil.rmtree(score_dir, ignore_errors=True)
    command = ["ros2", "launch", "crop_weed_seg", "sim.launch.py", "simulator:=gazebo",
               f"world:={world.world}", f"out_dir:={score_dir}", "exit_when_done:=true",
               f"headless:={args.headless}"]
    command += [f"{k}:={v}" for k, v in (("model_dir", args.model), ("backend", args.backend))
                if v]
    print("== " + " ".join(command), file=sys.stderr)
    checks: list[Check] = []
    doc: dict[str, Any] | None = None
    with open(out / "launch.log", "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            probe_and_drive(args, scenario, drive, checks)
            score_path = score_dir / "score.json"
            drove = any(c.name.startswith("drive over cmd_vel") for c in checks)
            if drove:   # the scorer ends the run once the robot is past the drive's end
                doc = wait_for_json(score_path, args.timeout_s, lambda: proc.poll() is None)
            checks.append(Check("scorer wrote a complete score", doc is not None
                                and score_is_complete(doc),
                                f"{score_path}, end: {doc.get('end_reason')}" if doc is not None
                                else f"no {score_path} (see {out / 'launch.log'})" if drove
                                else "not waited for: the drive did not run"))
            if doc is not None:
                scored = (doc.get("score") or {}).get("weeds_scored", 0)
                checks.append(Check("weeds were scored", isinstance(scored, int) and scored > 0,
                                    f"{scored} weeds in the scored span"))
        finally:
            _stop(proc)
    print(f"### crop_weed_seg Gazebo acceptance: {drive.duration_s * drive.speed_mps:.2f} m at "
          f"{scenario.speed_mps:g} m/s, {world.crops} crops, {world.weeds} weeds\n")
    print(checks_table(checks) + "\n")
    if doc is not None:
        print(format_table(("figure", "Gazebo run"), score_rows(doc)) + "\n")
    code = exit_code(checks)
    print("**Result: " + ("all checks passed**" if code == EXIT_OK else "FAILED**"))
    return code


if __name__ == "__main__":
    sys.exit(main())
