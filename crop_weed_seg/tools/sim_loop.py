"""``make sim``: the closed loop on a real ROS graph with simulated time, scored, and compared
with ``crop-weed-seg simulate`` on the same field.

    python -m crop_weed_seg.tools.sim_loop [--field-file config/sim_field.json] [--out out/sim]

Starts four processes, all in the root namespace and on ``/clock``: ``field_sim`` (drives the
scenario's camera over its generated field, the clock source), ``segmenter_node`` and
``spray_planner`` (``use_sim_time``, geometry from the scenario) and ``sim_scorer`` (labels
against ground truth, nozzle states against the field's plants, with the same scoring code as
``simulate``). The scorer prints a line per second and a final table, writes
``OUT/score.json`` (+ ``score.png`` when matplotlib is installed) and exits when the drive has
ended. Then the same scenario runs through ``simulate``'s in-process chain (every frame, no
DDS) and both are printed side by side. Exit 0 when the loop ran and its weed-hit and crop-hit
rates agree with ``simulate`` within ``--tolerance-points`` (default 3); 1 otherwise.

Simulated time runs at ``--real-time-factor`` of the wall clock (default 0.5) so that the
segmenter keeps up on a small CPU: dropped frames are the one thing the two runs may differ in
(the segmenter's diagnostics count them; they are reported).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from crop_weed_seg.errors import CropWeedSegError
from crop_weed_seg.image_files import write_bytes_atomic
from crop_weed_seg.ros.dds_profile import set_default_profile
from crop_weed_seg.sim.scenario import Scenario, load_field
from crop_weed_seg.sim.world import SimField

REPO = Path(__file__).resolve().parents[2]
DEFAULT_FIELD_FILE = REPO / "config" / "sim_field.json"
PROFILE = REPO / "config" / "fastdds_large_images.xml"
#: The planner's command rate and /clock's rate in the loop [Hz, sim time] (see commands()).
PLANNER_RATE_HZ = 500.0


def ros_value(value: Any) -> str:
    """A parameter value as ``-p name:=value`` text that ROS parses back as the same type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(ros_value(v) for v in value) + "]"
    return str(value)


def node_command(module: str, parameters: dict[str, Any]) -> list[str]:
    cmd = [sys.executable, "-m", module, "--ros-args"]
    for name, value in parameters.items():
        cmd += ["-p", f"{name}:={ros_value(value)}"]
    return cmd


def commands(field_file: Path, scenario: Scenario, out: Path, *, model: str, backend: str,
             real_time_factor: float, planner_rate_hz: float = PLANNER_RATE_HZ
             ) -> dict[str, list[str]]:
    """The four node command lines of the loop, by name (started in this order)."""
    geometry = scenario.node_parameters()
    segmenter = {"use_sim_time": True, "backend": backend,
                 "input_qos_reliability": "reliable", "input_qos_depth": 5,
                 **geometry["segmenter_node"]}
    if model:
        segmenter["model_dir"] = str(Path(model).resolve())
    return {
        "sim_scorer": node_command("crop_weed_seg.ros.scorer_node", {
            "use_sim_time": True, "field_file": str(field_file), "out_dir": str(out),
            "exit_when_done": True}),
        # simulate steps its planner every 2 ms; the loop runs the planner (and /clock) at
        # 500 Hz sim time by default so that only DDS timing differs (docs/SIMULATION.md: the
        # planner's command rate).
        "spray_planner": node_command("crop_weed_seg.ros.spray_planner_node", {
            "use_sim_time": True, "rate_hz": planner_rate_hz, **geometry["spray_planner"]}),
        "segmenter_node": node_command("crop_weed_seg.ros.segmenter_node", segmenter),
        "field_sim": node_command("crop_weed_seg.ros.field_sim_node", {
            "field_file": str(field_file), "real_time_factor": real_time_factor,
            "wait_for_subscribers": True, "exit_when_done": True,
            "clock_rate_hz": max(PLANNER_RATE_HZ, planner_rate_hz),
            # /clock must outlast the scorer's own tail after the drive end (valve latency +
            # its tail_s of 1 s), or the scorer would wait for time that never comes.
            "tail_s": 3.0}),
    }


def simulate_reference(scenario: Scenario, model: str, backend: str,
                       fld: SimField | None = None) -> dict[str, Any]:
    """The same drive through ``simulate``'s in-process chain (no extra latency); ``fld``: the
    scenario's field when already generated."""
    from crop_weed_seg.perception.segmenter import Segmenter
    from crop_weed_seg.sim import sweep

    fld = scenario.build_field() if fld is None else fld
    segmenter = Segmenter(Path(model) if model else REPO / "models" / "default", backend)
    result = sweep(fld, scenario.build_camera(), scenario.build_boom(),
                   speeds=[scenario.speed_mps], frame_rates=[scenario.frame_rate_hz],
                   latencies_s=[0.0], segmenter=segmenter,
                   planner_config=scenario.planner_config(), seed=scenario.seed)[0]
    return {"score": result.score.to_json(), "frames": result.frames}


def _pct(v: Any) -> str:
    return "–" if v is None or v != v else f"{100 * float(v):5.1f} %"


def comparison_table(loop: dict[str, Any], reference: dict[str, Any]) -> str:
    a, b = loop["score"], reference["score"]
    rows = [("weeds scored", a["weeds_scored"], b["weeds_scored"]),
            ("weed hit rate", _pct(a["weed_hit_rate"]), _pct(b["weed_hit_rate"])),
            ("crops scored", a["crops_scored"], b["crops_scored"]),
            ("crop hit rate", _pct(a["crop_hit_rate"]), _pct(b["crop_hit_rate"])),
            ("double sprays", a["double_sprays"], b["double_sprays"]),
            ("sprayed / blanket", _pct(a["sprayed_ratio"]), _pct(b["sprayed_ratio"]))]
    frames = loop.get("frames", {})
    lines = ["| | make sim (ROS, DDS, sim time) | simulate (in-process) |", "|---|---:|---:|"]
    lines += [f"| {name} | {x} | {y} |" for name, x, y in rows]
    lines.append(f"| frames labelled | {frames.get('matched', '?')} of "
                 f"{frames.get('truth_received', '?')} | {reference['frames']} of "
                 f"{reference['frames']} |")
    missing = frames.get("labels_missing_stamps_s") or []
    if missing:
        lines.append("")
        lines.append(f"Frames without labels in make sim (dropped by the segmenter for a newer "
                     f"one, or lost): stamps {', '.join(f'{t:.3f}' for t in missing)} s")
    return "\n".join(lines)


def disagreement_points(loop: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key in ("weed_hit_rate", "crop_hit_rate"):
        a, b = loop["score"][key], reference["score"][key]
        out[key] = abs(float(a) - float(b)) * 100.0 if a == a and b == b else 0.0
    return out


def _echo(stream: IO[str] | None, log: IO[str], echo: IO[str] | None) -> None:
    """Copy the scorer's output to its log and to ``echo`` line by line, as it comes."""
    if stream is None:
        return
    for line in stream:
        log.write(line)
        if echo is not None:
            print(line.rstrip("\n"), file=echo, flush=True)


def _stop(procs: dict[str, subprocess.Popen], grace_s: float = 20.0) -> dict[str, int | None]:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {name: proc.returncode for name, proc in procs.items()}


def run_loop(field_file: Path, out: Path, *, model: str = "", backend: str = "auto",
             real_time_factor: float = 0.5, planner_rate_hz: float = PLANNER_RATE_HZ,
             timeout_s: float = 900.0, echo: IO[str] | None = sys.stdout,
             scenario: Scenario | None = None) -> dict[str, Any]:
    """Run the four nodes until the scorer exits; returns its score.json. Logs per node in
    ``out``; the scorer's output is echoed to ``echo`` as it comes. ``scenario``: the field
    file's, when already read (else it is read and its field checked here)."""
    if scenario is None:
        scenario, _ = load_field(field_file)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    set_default_profile(env, PROFILE)   # 640x480 frames over shared memory
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env["PYTHONUNBUFFERED"] = "1"
    score_path = out / "score.json"
    score_path.unlink(missing_ok=True)
    procs: dict[str, subprocess.Popen] = {}
    logs: dict[str, IO[str]] = {}
    try:
        for name, cmd in commands(field_file.resolve(), scenario, out.resolve(), model=model,
                                  backend=backend, real_time_factor=real_time_factor,
                                  planner_rate_hz=planner_rate_hz).items():
            logs[name] = (out / f"{name}.log").open("w")
            if name == "sim_scorer":
                procs[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, text=True, bufsize=1,
                                               env=env)
            else:
                procs[name] = subprocess.Popen(cmd, stdout=logs[name], stderr=subprocess.STDOUT,
                                               env=env)
        scorer = procs["sim_scorer"]
        echo_thread = threading.Thread(target=_echo, args=(scorer.stdout, logs["sim_scorer"],
                                                           echo), daemon=True)
        echo_thread.start()
        deadline = time.monotonic() + timeout_s
        while scorer.poll() is None:
            for name, proc in procs.items():
                if name not in ("sim_scorer", "field_sim") and proc.poll() is not None:
                    raise CropWeedSegError(f"{name} exited with {proc.returncode} during the "
                                           f"drive; see {out / (name + '.log')}")
            if time.monotonic() > deadline:
                raise CropWeedSegError(f"the loop did not end within {timeout_s:.0f} s; logs in "
                                       f"{out}")
            time.sleep(0.1)
        echo_thread.join(10.0)
        if scorer.returncode != 0:
            raise CropWeedSegError(f"sim_scorer exited with {scorer.returncode}; see "
                                   f"{out / 'sim_scorer.log'}")
    finally:
        codes = _stop(procs)
        for log in logs.values():
            log.close()
    bad = {n: c for n, c in codes.items() if c not in (0, None)}
    if bad:
        raise CropWeedSegError("nodes did not exit cleanly: " + ", ".join(
            f"{n} {c} ({out / (n + '.log')})" for n, c in bad.items()))
    try:
        report: dict[str, Any] = json.loads(score_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CropWeedSegError(f"the scorer wrote no readable {score_path}: {e}") from None
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--field-file", type=Path, default=DEFAULT_FIELD_FILE,
                        help="scenario / field file (default: config/sim_field.json)")
    parser.add_argument("--out", type=Path, default=Path("out/sim"),
                        help="logs, score.json, comparison.json (default: out/sim)")
    parser.add_argument("--model", default="", help="model folder (default: the shipped one)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--real-time-factor", type=float, default=0.5,
                        help="simulated seconds per wall second (default 0.5)")
    parser.add_argument("--planner-rate-hz", type=float, default=PLANNER_RATE_HZ,
                        help="spray_planner's rate_hz in the loop (default 500: simulate "
                             "steps its planner every 2 ms; a robot's default is 50)")
    parser.add_argument("--tolerance-points", type=float, default=3.0,
                        help="allowed weed/crop hit-rate difference to simulate [points]")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the in-process simulate run")
    parser.add_argument("--timeout-s", type=float, default=900.0)
    args = parser.parse_args(argv)
    if not args.real_time_factor > 0:
        print(f"error: --real-time-factor {args.real_time_factor} must be positive",
              file=sys.stderr)
        return 2
    try:
        print(f"make sim: field_sim -> segmenter_node -> spray_planner -> sim_scorer on "
              f"{args.field_file} (sim time at {args.real_time_factor:g}x wall time)", flush=True)
        scenario, fld = load_field(args.field_file)
        loop = run_loop(args.field_file, args.out, model=args.model, backend=args.backend,
                        real_time_factor=args.real_time_factor,
                        planner_rate_hz=args.planner_rate_hz, timeout_s=args.timeout_s,
                        scenario=scenario)
        if args.no_compare:
            return 0
        print("simulate on the same field, speed and frame rate (in-process, every frame)...",
              flush=True)
        reference = simulate_reference(scenario, args.model, args.backend, fld)
    except CropWeedSegError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    table = comparison_table(loop, reference)
    diff = disagreement_points(loop, reference)
    write_bytes_atomic(args.out / "comparison.json", json.dumps(
        {"make_sim": loop, "simulate": reference, "difference_points": diff}, indent=1).encode())
    print(table, flush=True)
    worst = max(diff.values())
    if worst > args.tolerance_points:
        print(f"error: make sim and simulate differ by {worst:.1f} points (weed hit "
              f"{diff['weed_hit_rate']:.1f}, crop hit {diff['crop_hit_rate']:.1f}; allowed "
              f"{args.tolerance_points:g})", file=sys.stderr)
        return 1
    print(f"agreement: weed hit within {diff['weed_hit_rate']:.1f} points, crop hit within "
          f"{diff['crop_hit_rate']:.1f} points (allowed {args.tolerance_points:g})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
