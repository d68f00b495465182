"""``crop-weed-seg simulate``: drive over a simulated field, run the spray chain, score the hits.

Writes ``results.json`` (and optionally a bag of the first configuration) under ``--out``, a
Markdown table (``--table``) and a plot (``--plot``) of weed hit rate against extra latency.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from crop_weed_seg.data.plots import pyplot, save_figure
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.image_files import write_bytes_atomic
from crop_weed_seg.perception.segmenter import Segmenter
from crop_weed_seg.sim import FieldConfig, latency_budget, sweep, write_bag
from crop_weed_seg.sim.scenario import (
    BoomSpec,
    CameraSpec,
    Scenario,
    load_field,
)

HELP = "simulated drive: weed/crop hit rates, double sprays, sprayed area"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser("simulate", help=HELP)
    p.add_argument("--out", type=Path, required=True, help="output folder (results.json, bag)")
    p.add_argument("--field-file", type=Path,
                   help="scenario / field file (config/sim_field.json, gazebo-world's "
                        "field.json): field, seed, camera, boom, valve latency and margin from "
                        "it, speed and frame rate too unless given; the options for those are "
                        "then ignored")
    p.add_argument("--length-m", type=float, default=30.0, help="field strip length [m]")
    p.add_argument("--width-m", type=float, default=1.0, help="field strip width [m]")
    p.add_argument("--gsd-mm", type=float, default=1.0, help="orthomosaic resolution [mm/px]")
    p.add_argument("--weeds-per-m2", type=float, default=20.0, help="weed density")
    p.add_argument("--weed-touching-crop", type=float, default=0.15,
                   help="share of weeds placed touching a crop plant")
    p.add_argument("--weed-in-row", type=float, default=0.25,
                   help="share of weeds placed in a crop row (the rest anywhere)")
    p.add_argument("--preset", default="train", help="synthetic preset for plant looks")
    p.add_argument("--speed", type=float, action="append", help="ground speed [m/s], repeatable "
                   "(default 0.5 1 2 3)")
    p.add_argument("--fps", type=float, action="append",
                   help="frame rate [Hz], repeatable (default 10 15 30)")
    p.add_argument("--latency-ms", type=float, action="append",
                   help="extra processing latency [ms], repeatable (default 0 100 200 300 400)")
    default_model = Path(__file__).resolve().parents[2] / "models" / "default"
    p.add_argument("--model", default=str(default_model),
                   help="model folder (default: the shipped model), or 'truth' to use the "
                        "ground-truth labels instead of a model")
    p.add_argument("--backend", default="auto", help="backend for --model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--camera-height-m", type=float, default=0.8)
    p.add_argument("--pitch-deg", type=float, default=0.0)
    p.add_argument("--hfov-deg", type=float, default=60.0)
    p.add_argument("--image-size", default="640x480", help="camera WxH")
    p.add_argument("--exposure-ms", type=float, default=2.0, help="exposure (motion blur)")
    p.add_argument("--nozzles", type=int, default=12)
    p.add_argument("--nozzle-spacing-m", type=float, default=0.05)
    p.add_argument("--nozzle-offset-m", type=float, default=0.5,
                   help="nozzle line behind the camera's optical centre [m]")
    p.add_argument("--valve-latency-ms", type=float, default=30.0)
    p.add_argument("--margin-m", type=float, default=0.02, help="planner spray margin [m]")
    p.add_argument("--min-hit-rate", type=float, default=0.95,
                   help="weed hit rate the latency budget must keep")
    p.add_argument("--bag", action="store_true", help="also write a bag of the first speed/fps")
    p.add_argument("--table", type=Path, help="Markdown table to write")
    p.add_argument("--plot", type=Path, help="PNG plot to write")
    return p


def _fmt(v: float, pct: bool = True) -> str:
    if v != v:  # NaN
        return "–"
    return f"{100 * v:.1f} %" if pct else f"{v:.2f}"


def relative_budget(rows: list[dict[str, Any]], points: float = 1.0) -> dict[str, Any]:
    """Per speed@fps: the largest tested extra latency up to which the weed hit rate stays
    within ``points`` percentage points of its value without extra latency."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(f"{r['speed_mps']:g}@{r['fps']:g}", []).append(r)
    out: dict[str, Any] = {}
    for k, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["latency_ms"])
        base = rs[0]["weed_hit_rate"]
        best = None
        for r in rs:
            if r["weed_hit_rate"] < base - points / 100.0:
                break
            best = r["latency_ms"]
        out[k] = best
    return out


def markdown_table(rows: list[dict[str, Any]], budget: dict[str, Any], header: str,
                   threshold: float = 0.95) -> str:
    lines = [header, "",
             "| speed [m/s] | fps | extra latency [ms] | weeds | weed hit | weed stem hit | "
             "crop hit | crop stem hit | double sprays | sprayed / blanket |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['speed_mps']:g} | {r['fps']:g} | {r['latency_ms']:g} | {r['weeds']} "
                     f"| {_fmt(r['weed_hit_rate'])} | {_fmt(r['weed_stem_hit_rate'])} "
                     f"| {_fmt(r['crop_hit_rate'])} | {_fmt(r['crop_stem_hit_rate'])} "
                     f"| {r['double_sprays']} | {_fmt(r['sprayed_ratio'])} |")
    relative = relative_budget(rows)
    lines += ["", "Latency budget: the largest tested extra latency whose weed hit rate (and "
              "those of all smaller ones) stays at or above "
              f"{100 * threshold:.0f} %, and the largest that stays within 1 point of the "
              "rate without extra latency:", "",
              f"| speed [m/s] | fps | budget for ≥ {100 * threshold:.0f} % [ms] | "
              "budget within 1 point [ms] |", "|---:|---:|---:|---:|"]
    for key, val in budget.items():
        speed, fps = key.split("@")
        rel = relative.get(key)
        lines.append(f"| {speed} | {fps} | {'none' if val is None else f'{val:g}'} | "
                     f"{'none' if rel is None else f'{rel:g}'} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path, threshold: float) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    groups: dict[tuple[float, float], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["speed_mps"], r["fps"]), []).append(r)
    speeds = sorted({k[0] for k in groups})
    rates = sorted({k[1] for k in groups})
    colours = plt.get_cmap("viridis")
    styles = ["-", "--", ":", "-."]
    for (speed, fps), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["latency_ms"])
        ax.plot([r["latency_ms"] for r in rs], [100 * r["weed_hit_rate"] for r in rs],
                marker="o", color=colours(speeds.index(speed) / max(1, len(speeds) - 1) * 0.9),
                ls=styles[rates.index(fps) % len(styles)], label=f"{speed:g} m/s, {fps:g} fps")
    ax.axhline(100 * threshold, color="k", ls="--", lw=1)
    ax.set_xlabel("extra processing latency [ms]")
    ax.set_ylabel("weed hit rate [%]")
    ax.set_title("Simulated drive: weeds hit vs latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """The scenario the options describe (``--field-file`` is read by :func:`run`)."""
    w, h = (int(v) for v in args.image_size.lower().split("x"))
    return Scenario(
        field=FieldConfig(length_m=args.length_m, width_m=args.width_m, gsd_mm=args.gsd_mm,
                          preset=args.preset, weeds_per_m2=args.weeds_per_m2,
                          weed_touching_crop_prob=args.weed_touching_crop,
                          weed_in_row_prob=args.weed_in_row),
        seed=args.seed,
        camera=CameraSpec(width=w, height=h, hfov_deg=args.hfov_deg,
                          height_m=args.camera_height_m, pitch_deg=args.pitch_deg,
                          exposure_ms=args.exposure_ms),
        boom=BoomSpec(nozzles=args.nozzles, spacing_m=args.nozzle_spacing_m,
                      nozzle_offset_m=args.nozzle_offset_m),
        valve_latency_ms=args.valve_latency_ms, margin_m=args.margin_m)


def run(args: argparse.Namespace) -> int:
    try:
        t0 = time.perf_counter()
        if args.field_file:
            scenario, fld = load_field(args.field_file)
        else:
            scenario = scenario_from_args(args)
            fld = scenario.build_field()
        t_field = time.perf_counter() - t0
        speeds = args.speed or ([scenario.speed_mps] if args.field_file else [0.5, 1.0, 2.0, 3.0])
        rates = args.fps or ([scenario.frame_rate_hz] if args.field_file else [10.0, 15.0, 30.0])
        latencies = sorted(args.latency_ms or [0.0, 100.0, 200.0, 300.0, 400.0])
        camera = scenario.build_camera()
        boom = scenario.build_boom()
        planner_config = scenario.planner_config()
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cam = scenario.camera
    w, h = cam.width, cam.height
    segmenter = None
    if args.model != "truth":
        segmenter = Segmenter(Path(args.model), args.backend)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"field {fld.length_m:.1f} x {fld.width_m:.2f} m: {fld.meta['crops']} crops, "
          f"{fld.meta['weeds']} weeds ({t_field:.1f} s)")

    def progress(r: Any) -> None:
        s = r.score
        print(f"{r.speed_mps:g} m/s {r.frame_rate_hz:g} fps +{r.latency_s * 1000:g} ms: weed hit "
              f"{_fmt(s.weed_hit_rate)} of {s.weeds_scored}, crop hit {_fmt(s.crop_hit_rate)}, "
              f"double {s.double_sprays}, sprayed {_fmt(s.sprayed_ratio)} of blanket "
              f"({r.frames} frames, render {r.timings_s['render_s']:.1f} s, segment "
              f"{r.timings_s['segment_s']:.1f} s)", flush=True)

    results = sweep(fld, camera, boom, speeds=speeds, frame_rates=rates,
                    latencies_s=[v / 1000.0 for v in latencies], segmenter=segmenter,
                    planner_config=planner_config, seed=scenario.seed, progress=progress)
    rows = [r.row() for r in results]
    budget = {f"{k[0]:g}@{k[1]:g}": (None if v is None else round(v * 1000.0, 1))
              for k, v in latency_budget(results, args.min_hit_rate).items()}
    report = {"field": fld.meta, "model": args.model, "rows": rows,
              "latency_budget_ms": budget, "min_hit_rate": args.min_hit_rate,
              "camera": {"size": [w, h], "hfov_deg": cam.hfov_deg,
                         "height_m": cam.height_m, "pitch_deg": cam.pitch_deg,
                         "exposure_ms": cam.exposure_ms},
              "boom": {"nozzles": boom.nozzle_count, "spacing_m": boom.nozzle_spacing_m,
                       "nozzle_x": boom.nozzle_x},
              "planner": {"valve_latency_ms": scenario.valve_latency_ms,
                          "margin_m": scenario.margin_m}}
    write_bytes_atomic(args.out / "results.json",
                       json.dumps(report, indent=1, default=str).encode())
    if args.bag:
        write_bag(args.out / "bag", fld, camera, boom, speed_mps=speeds[0],
                  frame_rate_hz=rates[0], seed=scenario.seed)
    header = (f"Simulated drive: {fld.length_m:.0f} m × {fld.width_m:.2f} m field "
              f"(seed {scenario.seed}, {fld.meta['weeds']} weeds, {fld.meta['crops']} crops), "
              f"{'ground-truth labels' if segmenter is None else 'model ' + Path(args.model).name}"
              f"{'' if segmenter is None else ' (' + segmenter.contract.onnx_sha256[:12] + ')'}, "
              f"{w}x{h} camera at {cam.height_m} m, pitch {cam.pitch_deg}°, "
              f"{boom.nozzle_count} nozzles × {boom.nozzle_spacing_m} m, valve latency "
              f"{scenario.valve_latency_ms:g} ms, margin {scenario.margin_m} m.")
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(args.table,
                           markdown_table(rows, budget, header, args.min_hit_rate).encode())
    if args.plot:
        plot(rows, args.plot, args.min_hit_rate)
    print(f"latency budget for weed hit >= {100 * args.min_hit_rate:.0f} %: {budget}")
    return 0

