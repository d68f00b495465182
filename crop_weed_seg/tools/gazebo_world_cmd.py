"""``crop-weed-seg gazebo-world OUT``: a Gazebo Harmonic world (SDFormat 1.11) of a simulated
field in the folder OUT: ``world.sdf``, its textures and mesh, and ``field.json`` (scenario,
drive and every plant, for the scorer). What is in it: :mod:`crop_weed_seg.sim.gazebo_world`.

The field comes from ``--field-file`` (a field file, e.g. ``config/sim_field.json``; default: the
default scenario), with ``--length-m``, ``--seed``, ``--speed`` and ``--frame-rate`` replacing
its settings. Without overrides a field file that lists plants must regenerate exactly them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from crop_weed_seg.sim.gazebo_world import WorldOptions, with_overrides, write_gazebo_world
from crop_weed_seg.sim.scenario import Scenario, load_field, read_field_file

HELP = "Gazebo Harmonic world of a simulated field, field.json"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "gazebo-world", help=HELP,
        description="Write a Gazebo Harmonic world (SDFormat 1.11) of a simulated field into "
                    "OUT: world.sdf, its textures and mesh, and field.json (scenario, drive and "
                    "every plant) for the scorer. Run it with: ros2 launch crop_weed_seg "
                    "sim.launch.py simulator:=gazebo world:=OUT/world.sdf")
    p.add_argument("out", type=Path, metavar="OUT",
                   help="folder to write (new, empty, or an earlier world: replaced)")
    p.add_argument("--field-file", type=Path, default=None,
                   help="field file with the scenario (default: the default scenario)")
    p.add_argument("--length-m", type=float, default=None, help="field length [m]")
    p.add_argument("--seed", type=int, default=None, help="field seed")
    p.add_argument("--speed", type=float, default=None, help="robot speed [m/s]")
    p.add_argument("--frame-rate", type=float, default=None, help="camera frame rate [Hz]")
    p.add_argument("--tile-m", type=float, default=WorldOptions.tile_m,
                   help="ground tile length along the field [m] (default %(default)s)")
    return p


def run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    overrides = {"length_m": args.length_m, "seed": args.seed, "speed_mps": args.speed,
                 "frame_rate_hz": args.frame_rate}
    fld = None
    if args.field_file is None:
        scenario = Scenario()
    elif any(v is not None for v in overrides.values()):
        scenario = read_field_file(args.field_file).scenario
    else:
        scenario, fld = load_field(args.field_file)
    scenario = with_overrides(scenario, **overrides)
    world = write_gazebo_world(args.out, scenario, fld, WorldOptions(tile_m=args.tile_m))
    print(f"wrote {world.world}: {scenario.field.length_m:g} x {scenario.field.width_m:g} m "
          f"field (seed {scenario.seed}) in {world.tiles} ground tiles, {world.crops} crops and "
          f"{world.weeds} weeds as labelled models"
          + (f" ({world.hidden_plants} hidden plants have none)" if world.hidden_plants else "")
          + f", robot at x = {world.start_x:.3f} m; field file {world.field_file} "
          f"({time.monotonic() - t0:.1f} s)")
    print("run it: ros2 launch crop_weed_seg sim.launch.py simulator:=gazebo "
          f"world:={world.world.resolve()}")
    return 0
