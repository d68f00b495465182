"""Soak test: segmenter_node and spray_planner for a long time at camera rate, measured from
outside like any consumer (docs/RELIABILITY.md has the recorded run).

    .venv/bin/python scripts/soak.py --minutes 60 --out out/soak        # make soak

Publishes 640x480 rgb8 frames at 30 Hz (best effort, stamped now, a bundled sample with
weeds), camera_info at 1 Hz and odometry at 50 Hz into namespace /soak; the planner reads the
segmenter's spray_targets. Records:

- RSS of both node processes every minute, and its slope [MB/h] (least squares);
- latency (labels received here minus image stamp) p50/p95 per 10 minutes (drift);
- dropped share: frames sent but never answered with labels, and the node's own
  ``dropped_frames`` (replaced in its one-frame mailbox by a newer frame) from /diagnostics;
- Fast DDS shared-memory files in /dev/shm before, during and after the run (a clean exit must
  leave nothing), then ``--killed-runs`` starts of both nodes killed with SIGKILL (what they
  leave behind) and what :mod:`crop_weed_seg.ros.shm_cleanup` removes afterwards.

Writes ``soak.json`` and ``soak.md`` into ``--out`` and prints the Markdown. Exit code 0 when
both nodes ran to the end and exited with 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crop_weed_seg.ros.dds_profile import PROFILE_VARIABLES, set_default_profile  # noqa: E402

NS = "/soak"


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def shm_state() -> dict[str, Any]:
    from crop_weed_seg.ros.shm_cleanup import segments
    segs = segments()
    files = [p for p in Path("/dev/shm").iterdir() if "fastdds" in p.name or
             "fastrtps" in p.name]
    return {"files": len(files), "segments": len(segs),
            "segment_mb": round(sum(s.size for s in segs) / 1e6, 1)}


def slope_per_hour(times_s: list[float], values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    return float(np.polyfit(np.asarray(times_s) / 3600.0, np.asarray(values), 1)[0])


def node_env(domain: int) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_LOCALHOST_ONLY", None)
    set_default_profile(env, REPO / "config" / "fastdds_large_images.xml")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def start_nodes(out: Path, env: dict[str, str], tag: str) -> list[subprocess.Popen]:
    procs = []
    for module, args in (("segmenter_node", ["-p", "backend:=onnxruntime"]),
                         ("spray_planner_node", [])):
        log = (out / f"{module}{tag}.log").open("w")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", f"crop_weed_seg.ros.{module}", "--ros-args", "-r",
             f"__ns:={NS}", *args], stdout=log, stderr=subprocess.STDOUT, env=env))
    return procs


def killed_runs(out: Path, env: dict[str, str], runs: int, up_s: float) -> dict[str, Any]:
    """Start both nodes and SIGKILL them ``runs`` times: what is left in /dev/shm, and what
    the cleanup removes."""
    from crop_weed_seg.ros.shm_cleanup import remove_zombie_segments, zombie_segments
    before = shm_state()
    for i in range(runs):
        procs = start_nodes(out, env, f"_killed{i}")
        deadline = time.monotonic() + up_s
        while time.monotonic() < deadline:
            logs = [(out / f"{m}_killed{i}.log").read_text() for m in
                    ("segmenter_node", "spray_planner_node")]
            if "segmenting " in logs[0] and "planning " in logs[1]:
                break
            time.sleep(0.2)
        for p in procs:
            p.kill()
            p.wait()
    after = shm_state()
    zombies = zombie_segments(min_age_s=0.0)
    removed, freed = remove_zombie_segments(min_age_s=0.0)
    return {"runs": runs, "before": before, "after_killed": after,
            "zombies_found": len(zombies), "removed": removed,
            "freed_mb": round(freed / 1e6, 1), "after_cleanup": shm_state()}


def soak(args: argparse.Namespace) -> dict[str, Any]:
    import rclpy
    import rclpy.context
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2

    from crop_weed_seg.image_files import read_rgb
    from crop_weed_seg.perception.image_conversion import array_to_image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    domain = args.domain or 1 + os.getpid() % 100
    env = node_env(domain)
    shm_before = shm_state()
    procs = start_nodes(out, env, "")
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                           *PROFILE_VARIABLES)})
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("soak_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    pub_img = node.create_publisher(Image, f"{NS}/image", qos_profile_sensor_data)
    pub_info = node.create_publisher(CameraInfo, f"{NS}/camera_info", qos_profile_sensor_data)
    pub_odom = node.create_publisher(Odometry, f"{NS}/odom", 10)
    sent: dict[int, float] = {}          # stamp ns -> monotonic send time
    latencies: list[tuple[float, float]] = []   # (elapsed s, ms)
    answered = set()
    counts = {"targets": 0, "nozzle_states": 0, "open": 0}
    diag: dict[str, dict[str, str]] = {}

    def on_labels(msg: Image) -> None:
        k = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        if k in sent and k not in answered:
            answered.add(k)
            latencies.append((time.monotonic() - t_start, (time.time_ns() - k) / 1e6))

    def on_targets(msg: PointCloud2) -> None:
        counts["targets"] += msg.width

    def on_states(msg: JointState) -> None:
        counts["nozzle_states"] += 1
        counts["open"] += int(sum(1 for v in msg.position if v > 0.5))

    def on_diag(msg: DiagnosticArray) -> None:
        for st in msg.status:
            values = {kv.key: kv.value for kv in st.values}
            if values.get("input_topic", "").startswith(NS + "/"):
                diag[st.name] = {"message": st.message, **values}
    node.create_subscription(Image, f"{NS}/labels", on_labels, reliable)
    node.create_subscription(PointCloud2, f"{NS}/spray_targets", on_targets, reliable)
    node.create_subscription(JointState, f"{NS}/nozzle_states", on_states, reliable)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)

    rgb = read_rgb(REPO / "samples" / "field" / "images" / "field_000000.png")
    frame = array_to_image(np.ascontiguousarray(rgb), "rgb8")
    frame.header.frame_id = "camera_optical_frame"
    info = CameraInfo(width=rgb.shape[1], height=rgb.shape[0], distortion_model="plumb_bob")
    f = 600.0
    info.k = [f, 0.0, (rgb.shape[1] - 1) / 2, 0.0, f, (rgb.shape[0] - 1) / 2, 0.0, 0.0, 1.0]
    info.d = [0.0] * 5

    deadline = time.monotonic() + 300.0
    while time.monotonic() < deadline and not (pub_img.get_subscription_count() > 0 and
                                               node.count_publishers(f"{NS}/nozzle_states")):
        executor.spin_once(timeout_sec=0.1)
    t_start = time.monotonic()
    duration = args.minutes * 60.0
    rss: dict[str, list[tuple[float, float]]] = {"segmenter_node": [], "spray_planner": []}
    shm_during: list[dict[str, Any]] = []
    next_frame = next_odom = next_info = t_start
    next_sample = t_start
    period, odom_period = 1.0 / args.rate, 1.0 / 50.0
    while True:
        now = time.monotonic()
        elapsed = now - t_start
        if elapsed >= duration or any(p.poll() is not None for p in procs):
            break
        if now >= next_sample:
            for name, p in zip(rss, procs):
                value = rss_mb(p.pid)
                if value is not None:
                    rss[name].append((elapsed, value))
            shm_during.append(shm_state())
            p95 = (np.percentile([ms for _, ms in latencies[-1800:]], 95) if latencies
                   else float("nan"))
            print(f"[{elapsed / 60:5.1f} min] sent {len(sent)} answered {len(answered)} "
                  f"rss {[round(v[-1][1], 1) for v in rss.values() if v]} MB "
                  f"latency p95 {p95:.1f} ms",
                  flush=True)
            next_sample += args.sample_s
        if now >= next_frame:
            stamp_ns = time.time_ns()
            frame.header.stamp.sec, frame.header.stamp.nanosec = divmod(stamp_ns, 10**9)
            pub_img.publish(frame)
            sent[stamp_ns] = now
            next_frame += period
            if next_frame < now:                 # fell behind: do not burst
                next_frame = now + period
        if now >= next_odom:
            odom = Odometry()
            odom.header.stamp.sec, odom.header.stamp.nanosec = divmod(time.time_ns(), 10**9)
            odom.twist.twist.linear.x = 1.0
            pub_odom.publish(odom)
            next_odom = max(next_odom + odom_period, now)
        if now >= next_info:
            info.header.stamp.sec, info.header.stamp.nanosec = divmod(time.time_ns(), 10**9)
            pub_info.publish(info)
            next_info += 1.0
        executor.spin_once(timeout_sec=max(0.0, min(next_frame, next_odom) - time.monotonic()))
    ran_s = time.monotonic() - t_start
    alive = [p.poll() is None for p in procs]
    # the last answers and diagnostics
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    codes = []
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        try:
            codes.append(p.wait(60))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(p.wait())
    executor.shutdown(timeout_sec=0)
    node.destroy_node()
    context.try_shutdown()
    shm_after = shm_state()

    warmup = min(300.0, ran_s / 4.0)
    window_s = args.window_min * 60.0
    windows = []
    k = 0
    while k * window_s < ran_s - 1e-6:
        ms = [v for t, v in latencies if k * window_s <= t < (k + 1) * window_s]
        if ms and min((k + 1) * window_s, ran_s) - k * window_s >= window_s / 2:
            windows.append({"from_min": round(k * window_s / 60, 1),
                            "to_min": round(min((k + 1) * window_s, ran_s) / 60, 1),
                            "frames": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
                            "p95_ms": round(float(np.percentile(ms, 95)), 1)})
        k += 1
    seg_diag = next((v for n, v in diag.items() if "segmenter" in n), {})
    pl_diag = next((v for n, v in diag.items() if "nozzles" in n), {})
    result = {
        "machine": f"{platform.node()}: {os.cpu_count()} cores, {platform.platform()}",
        "load_average_at_end": os.getloadavg(),
        "minutes": round(ran_s / 60, 2), "rate_hz": args.rate, "size": "640x480 rgb8",
        "frames_sent": len(sent), "frames_answered": len(answered),
        "unanswered_share": round(1 - len(answered) / max(len(sent), 1), 4),
        "node_dropped_frames": seg_diag.get("dropped_frames"),
        "node_frames_in": seg_diag.get("frames_in"),
        "node_failed_frames": seg_diag.get("failed_frames"),
        "node_rejected_frames": seg_diag.get("rejected_frames"),
        "targets_received": counts["targets"], "nozzle_states": counts["nozzle_states"],
        "open_share": round(counts["open"] / max(1, counts["nozzle_states"] * 12), 4),
        "rss_mb": {n: [round(v, 1) for _, v in s] for n, s in rss.items()},
        # slope after the warm-up (the first inferences allocate), least squares
        "rss_warmup_s": warmup,
        "rss_slope_mb_per_h": {n: (round(sl, 2) if (sl := slope_per_hour(
            [t for t, _ in s if t >= warmup], [v for t, v in s if t >= warmup])) is not None
            else None) for n, s in rss.items()},
        "latency_windows": windows,
        "alive_at_end": alive, "exit_codes": codes,
        "shm_before": shm_before, "shm_during_max": max(
            shm_during, key=lambda s: s["segment_mb"]) if shm_during else None,
        "shm_after": shm_after,
        "segmenter_diagnostics": seg_diag, "planner_diagnostics": pl_diag,
    }
    if args.killed_runs:
        result["killed_runs"] = killed_runs(out, env, args.killed_runs, up_s=300.0)
    return result


def markdown(r: dict[str, Any]) -> str:
    lines = [f"Soak: {r['minutes']} min at {r['rate_hz']} Hz {r['size']} through segmenter_node "
             f"and spray_planner ({r['machine']}; load average at the end "
             f"{', '.join(f'{v:.1f}' for v in r['load_average_at_end'])}).", "",
             "| measure | value |", "|---|---|",
             f"| frames sent / answered with labels | {r['frames_sent']} / "
             f"{r['frames_answered']} (unanswered {100 * r['unanswered_share']:.2f} %) |",
             f"| node: frames_in / dropped_frames (replaced by newer) / failed / rejected | "
             f"{r['node_frames_in']} / {r['node_dropped_frames']} / "
             f"{r['node_failed_frames']} / {r['node_rejected_frames']} |",
             f"| spray targets received / nozzle_states / open share | "
             f"{r['targets_received']} / {r['nozzle_states']} / {r['open_share']} |"]
    for name, values in r["rss_mb"].items():
        if values:
            lines.append(f"| RSS {name} first / last / max [MB], slope after "
                         f"{r['rss_warmup_s'] / 60:.1f} min | {values[0]} / {values[-1]} / "
                         f"{max(values)}, {r['rss_slope_mb_per_h'][name]} MB/h |")
    for w in r["latency_windows"]:
        lines.append(f"| latency {w['from_min']}-{w['to_min']} min p50 / p95 [ms] | "
                     f"{w['p50_ms']} / {w['p95_ms']} ({w['frames']} frames) |")
    lines.append(f"| exit codes (SIGINT at the end) | {r['exit_codes']} |")
    lines.append(f"| Fast DDS /dev/shm before / max during / after | "
                 f"{r['shm_before']} / {r['shm_during_max']} / {r['shm_after']} |")
    k = r.get("killed_runs")
    if k:
        lines.append(f"| {k['runs']} starts killed with SIGKILL: /dev/shm after | "
                     f"{k['after_killed']} |")
        lines.append(f"| shm_cleanup: removed | {k['removed']} segments, {k['freed_mb']} MB; "
                     f"after: {k['after_cleanup']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second")
    parser.add_argument("--sample-s", type=float, default=60.0, help="RSS sample period [s]")
    parser.add_argument("--window-min", type=float, default=10.0,
                        help="latency percentile window [min]")
    parser.add_argument("--killed-runs", type=int, default=3,
                        help="starts killed with SIGKILL after the soak (0: none)")
    parser.add_argument("--domain", type=int, default=0, help="ROS_DOMAIN_ID (0: from pid)")
    parser.add_argument("--out", default="out/soak")
    args = parser.parse_args(argv)
    result = soak(args)
    out = Path(args.out)
    (out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (out / "soak.md").write_text(text)
    print(text)
    ok = all(result["alive_at_end"]) and result["exit_codes"] == [0, 0]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
