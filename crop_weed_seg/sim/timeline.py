"""Physical nozzle timelines: what the valves did during a simulated drive (from the chain's
planner, from hand-made ground windows, or from a planner with perfect knowledge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from crop_weed_seg.classes import WEED
from crop_weed_seg.sim.drive import Drive
from crop_weed_seg.sim.world import SimField
from crop_weed_seg.spray.geometry import Boom


@dataclass
class Timeline:
    """Physical nozzle states: ``open[i, lane]`` during [t[i], t[i] + dt) with base_link at
    field x = start_x + travel[i]; travel is linear in t at ``speed_mps``.

    ``base_x`` (optional, one field x per sample): base_link's position at t[i] from another
    source (odometry of a drive over ROS); when given it replaces start_x + speed·t, the sample
    i then sweeps [base_x[i], base_x[i + 1]) (the last one extends by its predecessor's step),
    and ``start_x`` / ``speed_mps`` are informative only."""

    t: np.ndarray
    open: np.ndarray
    dt: float
    start_x: float
    speed_mps: float
    base_x: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.base_x is not None:
            self.base_x = np.asarray(self.base_x, np.float64)
            if self.base_x.shape != (len(self.open),):
                raise ValueError(f"Timeline.base_x has shape {self.base_x.shape}, expected "
                                 f"({len(self.open)},): one position per sample")

    @property
    def travel(self) -> np.ndarray:
        if self.base_x is not None:
            return self.base_x - self.start_x
        return self.speed_mps * self.t


def timeline_from_ground_windows(boom: Boom, speed_mps: float, start_x: float, duration_s: float,
                                 windows: Sequence[tuple[int, float, float]],
                                 dt: float = 0.002) -> Timeline:
    """A timeline whose lane ``lane`` is open while its nozzle line is over field x in
    [x0, x1) for each (lane, x0, x1) window (hand-made timelines for tests and what-ifs)."""
    t = np.arange(0.0, duration_s, dt)
    nozzle = start_x + speed_mps * t + boom.nozzle_x
    states = np.zeros((len(t), boom.nozzle_count), bool)
    for lane, x0, x1 in windows:
        states[:, lane] |= (nozzle + speed_mps * dt > x0 + 1e-12) & (nozzle < x1 - 1e-12)
    return Timeline(t, states, dt, start_x, speed_mps)


def oracle_timeline(fld: SimField, boom: Boom, drive: Drive, margin_m: float = 0.0,
                    dt: float = 0.002) -> Timeline:
    """The timeline of a planner with perfect knowledge: every lane is open exactly while its
    nozzle line is over the weed pixels in that lane (± ``margin_m``). The upper bound for a
    chain, and a check of the scoring."""
    g = fld.gsd_m
    col_lane = boom.lane_of(fld.y_of_col(np.arange(fld.labels.shape[1])))
    windows = []
    for p in fld.plants:
        if p.class_id != WEED:
            continue
        lanes = col_lane[p.col0:p.col0 + p.mask.shape[1]]
        rows = np.arange(p.mask.shape[0]) + p.row0
        for lane in np.unique(lanes[lanes >= 0]):
            hit = p.mask[:, lanes == lane].any(axis=1)
            if hit.any():
                xs = fld.x_of_row(rows[hit])
                windows.append((int(lane), float(xs.min() - g / 2 - margin_m),
                                float(xs.max() + g / 2 + margin_m)))
    return timeline_from_ground_windows(boom, drive.speed_mps, drive.start_x, drive.duration_s,
                                        windows, dt)
