"""Scoring a simulated drive: weeds hit, crops hit, double sprays, sprayed share of a blanket
spray.

Scoring (:func:`score`), on the plants whose bounding box lies fully inside the scored span along
x, and across: weeds whose bounding box lies inside the boom, crops whose centre does (a crop row
near the boom edge would otherwise drop out; parts outside the boom count as unsprayed): the
physical spray footprint of lane ``i`` is, for every time step
the valve was open, the ground interval its nozzle line swept (x from ``start_x + travel(t) +
boom.nozzle_x``) times the lane's lateral band [right_edge + i·spacing, + spacing). A weed is
HIT when at least ``weed_hit_fraction`` (0.9) of its full mask area lies inside the footprint;
weeds below ``min_weed_area_m2`` are not scored. A crop plant is HIT when more than
``crop_hit_fraction`` (0.1) of its mask area was sprayed. A DOUBLE SPRAY is a scored weed that two
or more separate open windows (maximal runs of "open") of the same lane touch. Sprayed area is the
footprint area inside the scored span; blanket area is boom width × span length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crop_weed_seg.classes import CROP, WEED
from crop_weed_seg.sim.timeline import Timeline
from crop_weed_seg.sim.world import Plant, SimField
from crop_weed_seg.spray.geometry import Boom


@dataclass
class Score:
    weeds_scored: int
    weeds_hit: int
    crops_scored: int
    crops_hit: int
    double_sprays: int
    sprayed_area_m2: float
    blanket_area_m2: float
    span: tuple[float, float]
    weed_fraction: dict[int, float] = field(default_factory=dict, repr=False)
    crop_fraction: dict[int, float] = field(default_factory=dict, repr=False)
    weeds_stem_hit: int = 0
    crops_stem_hit: int = 0

    @property
    def weed_stem_hit_rate(self) -> float:
        """Share of scored weeds whose stem (the plant's centre point) was sprayed."""
        return self.weeds_stem_hit / self.weeds_scored if self.weeds_scored else float("nan")

    @property
    def crop_stem_hit_rate(self) -> float:
        """Share of scored crops whose stem (growing point) was sprayed."""
        return self.crops_stem_hit / self.crops_scored if self.crops_scored else float("nan")

    @property
    def weed_hit_rate(self) -> float:
        return self.weeds_hit / self.weeds_scored if self.weeds_scored else float("nan")

    @property
    def crop_hit_rate(self) -> float:
        return self.crops_hit / self.crops_scored if self.crops_scored else float("nan")

    @property
    def sprayed_ratio(self) -> float:
        return self.sprayed_area_m2 / self.blanket_area_m2 if self.blanket_area_m2 else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {"weeds_scored": self.weeds_scored, "weeds_hit": self.weeds_hit,
                "weed_hit_rate": self.weed_hit_rate, "crops_scored": self.crops_scored,
                "crops_hit": self.crops_hit, "crop_hit_rate": self.crop_hit_rate,
                "weeds_stem_hit": self.weeds_stem_hit,
                "weed_stem_hit_rate": self.weed_stem_hit_rate,
                "crops_stem_hit": self.crops_stem_hit,
                "crop_stem_hit_rate": self.crop_stem_hit_rate,
                "double_sprays": self.double_sprays, "sprayed_area_m2": self.sprayed_area_m2,
                "blanket_area_m2": self.blanket_area_m2, "sprayed_ratio": self.sprayed_ratio,
                "span_m": list(self.span)}


def spray_windows(boom: Boom, timeline: Timeline) -> list[tuple[int, float, float]]:
    """(lane, x0, x1): the field-x interval each maximal open run of each lane swept. The
    nozzle line's position comes from ``timeline.base_x`` when the timeline has one (a drive
    whose positions come from odometry), else from start_x + speed·t."""
    out = []
    nx = timeline.start_x + boom.nozzle_x
    edge: np.ndarray | None = None     # nozzle line at each sample's start, and the last end
    if timeline.base_x is not None and len(timeline.base_x):
        bx = timeline.base_x
        last_step = float(bx[-1] - bx[-2]) if len(bx) >= 2 else 0.0
        edge = np.append(bx, bx[-1] + last_step) + boom.nozzle_x
    for lane in range(timeline.open.shape[1]):
        o = timeline.open[:, lane].astype(np.int8)
        edges = np.diff(np.concatenate(([0], o, [0])))
        starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
        for a, b in zip(starts, ends):
            if edge is not None:
                x0, x1 = edge[a], edge[b]
            else:
                x0 = nx + timeline.speed_mps * timeline.t[a]
                x1 = nx + timeline.speed_mps * (timeline.t[b - 1] + timeline.dt)
            out.append((lane, float(min(x0, x1)), float(max(x0, x1))))
    return out


def is_scored(p: Plant, boom: Boom, span: tuple[float, float],
              min_weed_area_m2: float = 1e-4) -> bool:
    """Whether :func:`score` scores plant ``p`` (module docstring: inside the span along x;
    weeds inside the boom across and not too small, crops with their centre inside it)."""
    if not (p.x_min >= span[0] and p.x_max <= span[1]):
        return False
    y_lo, y_hi = boom.right_edge, boom.right_edge + boom.width
    inside = p.y_min >= y_lo and p.y_max <= y_hi
    if (p.class_id == WEED and not inside) or not y_lo <= p.y <= y_hi:
        return False
    return not (p.class_id == WEED and p.area_m2 < min_weed_area_m2)


def score(fld: SimField, boom: Boom, timeline: Timeline, span: tuple[float, float], *,
          weed_hit_fraction: float = 0.9, crop_hit_fraction: float = 0.1,
          min_weed_area_m2: float = 1e-4) -> Score:
    """Score a physical nozzle timeline against the field's plants (module docstring)."""
    windows = spray_windows(boom, timeline)
    h, w = fld.labels.shape
    win_id = np.zeros((h, boom.nozzle_count), np.int32)  # window id sprayed per mosaic row/lane
    lane_of_id = [-1]
    for k, (lane, x0, x1) in enumerate(windows, start=1):
        # rows whose centre x lies in [x0, x1)
        ra = int(math.floor(float(fld.row_of_x(x1)))) + 1
        rb = int(math.floor(float(fld.row_of_x(x0))))
        if float(fld.x_of_row(rb)) < x0 - 1e-12:
            rb -= 1
        ra, rb = max(ra, 0), min(rb, h - 1)
        if rb >= ra:
            win_id[ra:rb + 1, lane] = k
        lane_of_id.append(lane)
    lane_of_id_arr = np.asarray(lane_of_id, np.int32)
    col_lane = boom.lane_of(fld.y_of_col(np.arange(w))).astype(np.int32)
    res = Score(0, 0, 0, 0, 0, 0.0, 0.0, (float(span[0]), float(span[1])))
    for p in fld.plants:
        if not is_scored(p, boom, span, min_weed_area_m2):
            continue
        mh, mw = p.mask.shape
        lanes = col_lane[p.col0:p.col0 + mw]
        ids = win_id[p.row0:p.row0 + mh][:, np.clip(lanes, 0, None)]
        ids = np.where((lanes >= 0)[None, :] & p.mask, ids, 0)
        frac = float(np.count_nonzero(ids)) / max(int(p.mask.sum()), 1)
        stem_row = int(np.clip(np.round(float(fld.row_of_x(p.x))), 0, h - 1))
        stem_lane = int(boom.lane_of(np.array([p.y]))[0])
        stem = stem_lane >= 0 and win_id[stem_row, stem_lane] > 0
        if p.class_id == WEED:
            res.weeds_stem_hit += int(stem)
            res.weeds_scored += 1
            res.weed_fraction[p.id] = frac
            if frac >= weed_hit_fraction:
                res.weeds_hit += 1
            used = np.unique(ids[ids > 0])
            if used.size >= 2 and np.bincount(lane_of_id_arr[used]).max() >= 2:
                res.double_sprays += 1
        elif p.class_id == CROP:
            res.crops_stem_hit += int(stem)
            res.crops_scored += 1
            res.crop_fraction[p.id] = frac
            if frac > crop_hit_fraction:
                res.crops_hit += 1
    sprayed = 0.0
    for _lane, x0, x1 in windows:
        sprayed += max(0.0, min(x1, span[1]) - max(x0, span[0])) * boom.nozzle_spacing_m
    res.sprayed_area_m2 = sprayed
    res.blanket_area_m2 = max(0.0, span[1] - span[0]) * boom.width
    return res
