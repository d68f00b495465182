"""Scoring a drive that runs over ROS (the ``sim_scorer`` node's core, ROS-free).

The node hands every message to a :class:`LiveScorer`; the scoring is :func:`~crop_weed_seg.sim.
scoring.score`, the one ``simulate`` uses, so both simulators score alike.

- **Segmentation** (:class:`LiveConfusion`): predicted ``labels`` and ground-truth
  ``labels_truth`` are matched by header stamp (ns) into a running confusion matrix
  (:mod:`crop_weed_seg.data.metrics`: per-class IoU, mIoU). Unmatched messages wait in a bounded
  buffer per side: one whose partner has not come within ``horizon_s`` of the newest stamp seen,
  or that is pushed out by ``max_pending`` newer ones, is counted missing (``labels_missing``:
  a truth frame no label answered — the segmenter dropped it; ``truth_missing``: labels without
  truth). A message whose stamp's window had already closed is ``late`` (not scored; its partner
  was counted missing). Labels and truth of different sizes are ``size_mismatch``; class ids out
  of range are ``bad_labels`` / ``bad_truth``. None of these stops the run.
- **Nozzles** (:class:`NozzleRecorder`): command samples (stamp, open per nozzle: the planner's
  ``nozzle_states``) and odometry samples (stamp, base_link x) are kept for the drive (bounded:
  ``max_samples`` each, later ones are refused and counted). At the end :meth:`NozzleRecorder.
  timeline` resamples them like :func:`~crop_weed_seg.sim.chain.plan`: every ``dt_s`` from the
  first command, the last command held, physical time = command time + valve latency, base_link
  x interpolated from odometry at the physical time (samples outside the odometry's time range
  are left out); the result is a :class:`~crop_weed_seg.sim.timeline.Timeline` with ``base_x``.
- **End** (:class:`EndDetector`): the drive has ended once odometry showed base_link at or past
  the drive's end and ``valve_latency + tail_s`` more seconds of the node clock (sim time)
  passed, or once the clock has not advanced for ``stall_timeout_s`` wall seconds after that (a
  simulator that stopped its clock at the end).
- **Report** (:meth:`LiveScorer.report`, :func:`write_report`): score.json (written atomically)
  and a plot score.png when matplotlib is installed (the runtime install has none: then the
  JSON only, and the report says so).

Stamps are integer nanoseconds throughout (the messages' own); wall times are seconds of a
monotonic clock.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from crop_weed_seg.classes import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, VEGETATION, WEED
from crop_weed_seg.data.metrics import ConfusionAccumulator, SegmentationScores
from crop_weed_seg.errors import ConfigError, InvalidFrameError
from crop_weed_seg.image_files import write_bytes_atomic
from crop_weed_seg.sim.drive import Drive
from crop_weed_seg.sim.scoring import Score, is_scored, score, spray_windows
from crop_weed_seg.sim.timeline import Timeline
from crop_weed_seg.sim.world import SimField
from crop_weed_seg.spray.geometry import Boom
from crop_weed_seg.spray.planner import nozzle_joint_names

NS = 1_000_000_000
#: Encodings a labels image may have: class ids in mono8, or in channel 0 of rgb8/bgr8 (Gazebo's
#: segmentation camera repeats the label in every channel).
LABEL_ENCODINGS = ("mono8", "rgb8", "bgr8")
#: Odometry counts as at the drive's end this close before it [m] (rounding of the simulator).
END_TOLERANCE_M = 1e-6


def label_plane(encoding: str, array: np.ndarray) -> np.ndarray:
    """The class ids of a labels image as a contiguous (H, W) uint8 copy: mono8 as it is, rgb8
    and bgr8 their channel 0. InvalidFrameError for another encoding or layout."""
    if encoding not in LABEL_ENCODINGS:
        raise InvalidFrameError(f"labels encoding {encoding!r}: expected one of "
                                f"{', '.join(LABEL_ENCODINGS)}")
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise InvalidFrameError(f"{encoding} labels of dtype {a.dtype}: expected uint8")
    if encoding == "mono8":
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if a.ndim != 2:
            raise InvalidFrameError(f"mono8 labels of shape {a.shape}: expected (H, W)")
    else:
        if a.ndim != 3 or a.shape[2] != 3:
            raise InvalidFrameError(f"{encoding} labels of shape {a.shape}: expected (H, W, 3)")
        a = a[:, :, 0]
    return np.array(a, dtype=np.uint8, order="C", copy=True)


def nozzle_vector(names: Sequence[str], positions: Sequence[float], count: int) -> np.ndarray:
    """Open (position > 0.5) per nozzle from a JointState's names and positions: in the order of
    :func:`nozzle_joint_names` when names are given (any order), else positionally.
    InvalidFrameError when they do not describe exactly ``count`` nozzles."""
    pos = np.asarray(list(positions), np.float64)
    if pos.shape != (count,):
        raise InvalidFrameError(f"nozzle_states has {pos.size} positions, the boom has "
                                f"{count} nozzles")
    if not np.all(np.isfinite(pos)):
        raise InvalidFrameError("nozzle_states holds a non-finite position")
    names = list(names)
    if names:
        expected = nozzle_joint_names(count)
        if names != expected:
            if sorted(names) != sorted(expected):
                shown = ", ".join(names[:3]) + (", .." if len(names) > 3 else "")
                raise InvalidFrameError(f"nozzle_states joints [{shown}] are not "
                                        f"{expected[0]} .. {expected[-1]}")
            order = {name: i for i, name in enumerate(names)}
            pos = pos[[order[name] for name in expected]]
    return pos > 0.5


# ------------------------------------------------------------------------------ segmentation

MAX_LISTED = 16
FRAME_COUNTERS = ("matched", "labels_missing", "truth_missing", "late", "size_mismatch",
                  "bad_labels", "bad_truth", "duplicates")


class LiveConfusion:
    """Predicted labels against ground truth, matched by stamp (module docstring). Memory: at
    most ``max_pending`` images per side."""

    LABELS, TRUTH = 0, 1

    def __init__(self, num_classes: int = NUM_CLASSES, max_pending: int = 32,
                 horizon_s: float = 2.0) -> None:
        if max_pending < 1 or not horizon_s > 0:
            raise ConfigError(f"LiveConfusion: max_pending {max_pending} must be >= 1 and "
                              f"horizon_s {horizon_s} positive")
        self.num_classes = num_classes
        self.max_pending = int(max_pending)
        self.horizon_ns = int(round(horizon_s * NS))
        self.accumulator = ConfusionAccumulator(num_classes)
        self.counts = {k: 0 for k in FRAME_COUNTERS}
        self._pending: tuple[dict[int, np.ndarray], dict[int, np.ndarray]] = ({}, {})
        self._newest: int | None = None
        self._closed_through: int | None = None   # newest stamp whose window has closed
        self.received = [0, 0]
        #: The first MAX_LISTED stamps [ns] of truth frames no label answered (and of labels
        #: without truth): which frames the segmenter dropped.
        self.missing_stamps: tuple[list[int], list[int]] = ([], [])

    def add_labels(self, stamp_ns: int, labels: np.ndarray) -> str:
        """A predicted labels image; returns what became of it: matched, pending, late,
        duplicate (replaces the pending one), expired (pushed out at once: counted missing),
        size_mismatch or bad_labels / bad_truth."""
        return self._add(self.LABELS, int(stamp_ns), labels)

    def add_truth(self, stamp_ns: int, truth: np.ndarray) -> str:
        """A ground-truth labels image (see :meth:`add_labels`)."""
        return self._add(self.TRUTH, int(stamp_ns), truth)

    def count_bad(self, side: int) -> None:
        """A message of ``side`` that could not be read at all (the node's conversion failed)."""
        self.counts["bad_labels" if side == self.LABELS else "bad_truth"] += 1

    def _add(self, side: int, stamp: int, image: np.ndarray) -> str:
        self.received[side] += 1
        if self._is_closed(stamp):
            self.counts["late"] += 1
            return "late"
        other = self._pending[1 - side]
        if stamp in other:
            partner = other.pop(stamp)
            labels, truth = (image, partner) if side == self.LABELS else (partner, image)
            return self._compare(labels, truth)
        mine = self._pending[side]
        outcome = "pending"
        if stamp in mine:
            self.counts["duplicates"] += 1
            outcome = "duplicate"
        mine[stamp] = image
        if self._newest is None or stamp > self._newest:
            self._newest = stamp
        self._expire()
        return outcome if stamp in mine else "expired"   # older than every pending one, counted

    def _is_closed(self, stamp: int) -> bool:
        return (self._closed_through is not None and stamp <= self._closed_through) or \
            (self._newest is not None and stamp < self._newest - self.horizon_ns)

    def _close(self, side: int, stamp: int) -> None:
        del self._pending[side][stamp]
        self.counts["labels_missing" if side == self.TRUTH else "truth_missing"] += 1
        if len(self.missing_stamps[side]) < MAX_LISTED:
            self.missing_stamps[side].append(stamp)
        if self._closed_through is None or stamp > self._closed_through:
            self._closed_through = stamp

    def _expire(self) -> None:
        assert self._newest is not None
        for side in (self.LABELS, self.TRUTH):
            buf = self._pending[side]
            while buf:
                oldest = min(buf)
                if len(buf) > self.max_pending or oldest < self._newest - self.horizon_ns:
                    self._close(side, oldest)
                else:
                    break

    def _compare(self, labels: np.ndarray, truth: np.ndarray) -> str:
        if labels.shape != truth.shape:
            self.counts["size_mismatch"] += 1
            return "size_mismatch"
        if labels.size and int(labels.max()) >= self.num_classes:
            self.counts["bad_labels"] += 1
            return "bad_labels"
        bad_truth = (truth >= self.num_classes) & (truth != IGNORE_INDEX) & (truth != VEGETATION)
        if bad_truth.any():
            self.counts["bad_truth"] += 1
            return "bad_truth"
        self.accumulator.add(truth, labels)
        self.counts["matched"] += 1
        return "matched"

    def flush(self) -> None:
        """The end of the run: every message still waiting for its partner is missing."""
        for side in (self.LABELS, self.TRUTH):
            for stamp in sorted(self._pending[side]):
                self._close(side, stamp)

    @property
    def pending(self) -> tuple[int, int]:
        return len(self._pending[0]), len(self._pending[1])

    def scores(self) -> SegmentationScores:
        return self.accumulator.scores()


# ---------------------------------------------------------------------------------- nozzles

class _Samples:
    """Append-only (stamp_ns, value row) storage in numpy arrays that double as they fill,
    up to ``limit`` rows."""

    def __init__(self, width: int, dtype: Any, limit: int) -> None:
        self.limit = int(limit)
        self.n = 0
        self.stamps = np.zeros(min(1024, self.limit), np.int64)
        self.values = np.zeros((len(self.stamps), width), dtype)

    def append(self, stamp: int, value: Any) -> None:
        if self.n == len(self.stamps):
            size = min(2 * len(self.stamps), self.limit)
            self.stamps = np.resize(self.stamps, size)
            self.values = np.resize(self.values, (size, self.values.shape[1]))
        self.stamps[self.n] = stamp
        self.values[self.n] = value
        self.n += 1

    @property
    def full(self) -> bool:
        return self.n >= self.limit


class NozzleRecorder:
    """Nozzle commands and odometry of one drive, resampled at the end into a
    :class:`Timeline` (module docstring). Stamps must not go back: an earlier stamp than the
    last one is refused and counted (``out_of_order_*``); an equal one replaces the last sample.
    Beyond ``max_samples`` per stream samples are refused and counted (``refused_*``)."""

    def __init__(self, nozzle_count: int, max_samples: int = 200_000,
                 max_timeline_samples: int = 5_000_000) -> None:
        if nozzle_count < 1 or max_samples < 2:
            raise ConfigError(f"NozzleRecorder: nozzle_count {nozzle_count} must be >= 1 and "
                              f"max_samples {max_samples} >= 2")
        self.nozzle_count = int(nozzle_count)
        self.max_timeline_samples = int(max_timeline_samples)
        self._states = _Samples(self.nozzle_count, bool, max_samples)
        self._odometry = _Samples(1, np.float64, max_samples)
        self.counts = {"out_of_order_states": 0, "out_of_order_odometry": 0,
                       "refused_states": 0, "refused_odometry": 0}
        self.note = ""      # what the last timeline() had to change (dt raised), or ""

    @property
    def state_samples(self) -> int:
        return self._states.n

    @property
    def odometry_samples(self) -> int:
        return self._odometry.n

    @property
    def latest_x(self) -> float | None:
        o = self._odometry
        return float(o.values[o.n - 1, 0]) if o.n else None

    def add_states(self, stamp_ns: int, states: Sequence[bool] | np.ndarray) -> bool:
        """A nozzle command (open per nozzle) at command time ``stamp_ns``; whether it was kept."""
        row = np.asarray(states, bool).reshape(-1)
        if row.size != self.nozzle_count:
            raise InvalidFrameError(f"{row.size} nozzle states for a boom of "
                                    f"{self.nozzle_count} nozzles")
        return self._add(self._states, "states", int(stamp_ns), row)

    def add_odometry(self, stamp_ns: int, x: float) -> bool:
        """base_link's field x at ``stamp_ns``; whether it was kept."""
        if not math.isfinite(x):
            raise InvalidFrameError(f"odometry x {x} is not finite")
        return self._add(self._odometry, "odometry", int(stamp_ns), float(x))

    def _add(self, samples: _Samples, what: str, stamp: int, value: Any) -> bool:
        if samples.n and stamp < samples.stamps[samples.n - 1]:
            self.counts[f"out_of_order_{what}"] += 1
            return False
        if samples.n and stamp == samples.stamps[samples.n - 1]:
            samples.values[samples.n - 1] = value
            return True
        if samples.full:
            self.counts[f"refused_{what}"] += 1
            return False
        samples.append(stamp, value)
        return True

    def timeline(self, valve_latency_s: float, dt_s: float = 0.002) -> Timeline:
        """The physical nozzle timeline (module docstring); ``t`` is seconds since the first
        command. Empty (no samples) without commands or with fewer than two odometry samples.
        When the drive would need more than ``max_timeline_samples`` steps of ``dt_s``, the
        step is raised to fit (said in :attr:`note`)."""
        if not dt_s > 0 or not valve_latency_s >= 0:
            raise ConfigError(f"timeline: dt_s {dt_s} must be positive and valve_latency_s "
                              f"{valve_latency_s} not negative")
        self.note = ""
        empty = Timeline(np.zeros(0), np.zeros((0, self.nozzle_count), bool), dt_s, 0.0, 0.0,
                         base_x=np.zeros(0))
        s, o = self._states, self._odometry
        if s.n == 0 or o.n < 2:
            return empty
        stamps, states = s.stamps[:s.n], s.values[:s.n]
        o_t, o_x = o.stamps[:o.n], o.values[:o.n, 0]
        lat_ns = int(round(valve_latency_s * NS))
        # commands whose physical time lies within the odometry's time range
        first = max(int(stamps[0]), int(o_t[0]) - lat_ns)
        last = min(int(stamps[-1]), int(o_t[-1]) - lat_ns)
        dt_ns = max(1, int(round(dt_s * NS)))
        if last < first:
            return empty
        if (last - first) // dt_ns + 1 > self.max_timeline_samples:
            dt_ns = -(-(last - first) // (self.max_timeline_samples - 1))
            self.note = (f"the drive spans {(last - first) / NS:.1f} s: resampled every "
                         f"{dt_ns / 1e6:.3f} ms instead of {dt_s * 1e3:g} ms")
        # the grid starts on the first command's stamp so that commands on a dt grid keep it
        k0 = -(-(first - int(stamps[0])) // dt_ns)
        k1 = (last - int(stamps[0])) // dt_ns
        if k1 < k0:
            return empty
        grid = int(stamps[0]) + np.arange(k0, k1 + 1, dtype=np.int64) * dt_ns
        idx = np.searchsorted(stamps, grid, side="right") - 1
        phys = grid + lat_ns
        ref = int(o_t[0])
        base_x = np.interp((phys - ref) / NS, (o_t - ref) / NS, o_x)
        t = (phys - int(stamps[0])) / NS
        speed = float((base_x[-1] - base_x[0]) / (t[-1] - t[0])) if len(t) > 1 else 0.0
        return Timeline(t, states[idx].copy(), dt_ns / NS, float(base_x[0]), speed,
                        base_x=base_x)


# -------------------------------------------------------------------------------------- end

class EndDetector:
    """When the drive is over (module docstring). ``end_x``: base_link's field x at the
    drive's end (``start_x + duration·speed`` of the scenario's drive)."""

    def __init__(self, end_x: float, valve_latency_s: float, tail_s: float,
                 stall_timeout_s: float = 5.0) -> None:
        self.end_x = float(end_x)
        self.wait_ns = int(round((valve_latency_s + tail_s) * NS))
        self.stall_timeout_s = float(stall_timeout_s)
        self.reached_ns: int | None = None
        self._clock_ns: int | None = None
        self._clock_advanced_wall: float | None = None

    def update_odometry(self, stamp_ns: int, x: float) -> None:
        if self.reached_ns is None and x >= self.end_x - END_TOLERANCE_M:
            self.reached_ns = int(stamp_ns)

    def update_clock(self, now_ns: int, wall_s: float) -> None:
        """The node clock (sim time) read at wall time ``wall_s``."""
        if self._clock_ns is None or now_ns > self._clock_ns:
            self._clock_ns = int(now_ns)
            self._clock_advanced_wall = wall_s

    def done(self, now_ns: int, wall_s: float) -> str | None:
        """Why the drive is over, or None while it is not."""
        self.update_clock(now_ns, wall_s)
        if self.reached_ns is None:
            return None
        if now_ns >= self.reached_ns + self.wait_ns:
            return "drive end"
        assert self._clock_advanced_wall is not None
        if wall_s - self._clock_advanced_wall >= self.stall_timeout_s:
            return (f"clock stopped {max(0, now_ns - self.reached_ns) / NS:.2f} s after the "
                    f"drive end (waited {self.stall_timeout_s:g} s)")
        return None


# ----------------------------------------------------------------------------------- scorer

@dataclass(frozen=True)
class ScorerSettings:
    valve_latency_s: float
    tail_s: float = 1.0
    dt_s: float = 0.002
    max_pending_frames: int = 32
    match_horizon_s: float = 2.0
    max_nozzle_samples: int = 200_000
    stall_timeout_s: float = 5.0


class LiveScorer:
    """Everything the scorer node keeps about one drive over ``fld`` (module docstring)."""

    def __init__(self, fld: SimField, boom: Boom, drive: Drive, settings: ScorerSettings) -> None:
        self.fld, self.boom, self.drive, self.settings = fld, boom, drive, settings
        self.confusion = LiveConfusion(NUM_CLASSES, settings.max_pending_frames,
                                       settings.match_horizon_s)
        self.recorder = NozzleRecorder(boom.nozzle_count, settings.max_nozzle_samples)
        self.end_x = drive.end_x
        self.end = EndDetector(self.end_x, settings.valve_latency_s, settings.tail_s,
                               settings.stall_timeout_s)
        self.counts = {"bad_nozzle_states": 0, "bad_odometry": 0}
        self._weed_x_max = sorted(p.x_max for p in fld.plants if p.class_id == WEED
                                  and is_scored(p, boom, drive.scored_span))
        self.last_problem = ""

    # -- inputs ---------------------------------------------------------------------------
    def on_labels(self, stamp_ns: int, labels: np.ndarray) -> str:
        return self.confusion.add_labels(stamp_ns, labels)

    def on_truth(self, stamp_ns: int, truth: np.ndarray) -> str:
        return self.confusion.add_truth(stamp_ns, truth)

    def on_bad_image(self, truth: bool, problem: str) -> None:
        self.confusion.count_bad(LiveConfusion.TRUTH if truth else LiveConfusion.LABELS)
        self.last_problem = problem

    def on_nozzle_states(self, stamp_ns: int, names: Sequence[str],
                         positions: Sequence[float]) -> bool:
        """A nozzle_states message; False when it was bad (counted) or refused."""
        try:
            states = nozzle_vector(names, positions, self.boom.nozzle_count)
        except InvalidFrameError as exc:
            self.counts["bad_nozzle_states"] += 1
            self.last_problem = str(exc)
            return False
        return self.recorder.add_states(stamp_ns, states)

    def on_odometry(self, stamp_ns: int, x: float) -> bool:
        try:
            kept = self.recorder.add_odometry(stamp_ns, x)
        except InvalidFrameError as exc:
            self.counts["bad_odometry"] += 1
            self.last_problem = str(exc)
            return False
        if kept:
            self.end.update_odometry(stamp_ns, x)
        return kept

    # -- progress -------------------------------------------------------------------------
    @property
    def weeds_total(self) -> int:
        return len(self._weed_x_max)

    def weeds_passed(self) -> int:
        """Scored weeds the nozzle line has passed completely (by the latest odometry)."""
        x = self.recorder.latest_x
        return 0 if x is None else bisect.bisect_right(self._weed_x_max, x + self.boom.nozzle_x)

    def snapshot(self, now_ns: int) -> dict[str, Any]:
        """The figures for ``/diagnostics`` (flat, by name)."""
        seg = self.confusion.scores()
        snap: dict[str, Any] = {"sim_time_s": now_ns / NS, "x_m": self.recorder.latest_x,
                                "end_x_m": self.end_x, "miou": seg.miou}
        snap.update({f"iou_{name}": seg.iou.get(name, math.nan) for name in CLASS_NAMES})
        snap.update({f"frames_{k}": v for k, v in self.confusion.counts.items()})
        snap["labels_received"], snap["truth_received"] = self.confusion.received
        snap["nozzle_samples"] = self.recorder.state_samples
        snap["odometry_samples"] = self.recorder.odometry_samples
        snap.update(self.recorder.counts)
        snap.update(self.counts)
        snap["weeds_passed"] = self.weeds_passed()
        snap["weeds_total"] = self.weeds_total
        snap["end_reached"] = self.end.reached_ns is not None
        snap["last_problem"] = self.last_problem
        return snap

    def status_line(self, now_ns: int) -> str:
        """One line of progress: ``t=12.3 s sim  x=8.1 m  frames 180 (3 missing)  mIoU 0.71``."""
        x = self.recorder.latest_x
        c = self.confusion.counts
        miou = self.confusion.scores().miou
        return (f"t={now_ns / NS:.1f} s sim  x={'?' if x is None else f'{x:.1f}'} m  "
                f"frames {c['matched']} ({c['labels_missing']} missing"
                f"{', %d late' % c['late'] if c['late'] else ''})  "
                f"mIoU {'–' if math.isnan(miou) else f'{miou:.2f}'}  "
                f"nozzle samples {self.recorder.state_samples}  "
                f"weeds passed {self.weeds_passed()}/{self.weeds_total}")

    # -- the end --------------------------------------------------------------------------
    def finish(self, *, complete: bool, reason: str) -> tuple[dict[str, Any], Timeline, Score]:
        """Score the drive: (report, timeline, score). Flushes the label buffers."""
        self.confusion.flush()
        timeline = self.recorder.timeline(self.settings.valve_latency_s, self.settings.dt_s)
        sc = score(self.fld, self.boom, timeline, self.drive.scored_span)
        return self.report(sc, timeline, complete=complete, reason=reason), timeline, sc

    def report(self, sc: Score, timeline: Timeline, *, complete: bool,
               reason: str) -> dict[str, Any]:
        seg = self.confusion.scores()
        notes = []
        if self.recorder.note:
            notes.append(self.recorder.note)
        refused = self.recorder.counts["refused_states"] + self.recorder.counts["refused_odometry"]
        if refused:
            notes.append(f"{refused} nozzle/odometry samples refused beyond max_nozzle_samples "
                         f"{self.settings.max_nozzle_samples}: the score covers the drive's "
                         "first part only")
        if len(timeline.t) == 0:
            notes.append("no nozzle timeline (no nozzle_states, or fewer than two odometry "
                         "samples during them): every scored weed counts as missed")
        d = self.drive
        return {
            "complete": bool(complete and not refused), "end_reason": reason,
            "score": sc.to_json(),
            "segmentation": {"miou": seg.miou, "iou": dict(seg.iou),
                             "pixel_accuracy": seg.pixel_accuracy,
                             "confusion": seg.confusion.astype(int).tolist()},
            "frames": {**self.confusion.counts, "labels_received": self.confusion.received[0],
                       "truth_received": self.confusion.received[1],
                       "labels_missing_stamps_s": [
                           t / NS for t in self.confusion.missing_stamps[LiveConfusion.TRUTH]],
                       "truth_missing_stamps_s": [
                           t / NS for t in self.confusion.missing_stamps[LiveConfusion.LABELS]]},
            "nozzles": {"samples": self.recorder.state_samples,
                        "odometry_samples": self.recorder.odometry_samples,
                        **self.recorder.counts, **self.counts,
                        "timeline_samples": int(len(timeline.t)), "timeline_dt_s": timeline.dt},
            "drive": {"start_x_m": d.start_x, "end_x_m": self.end_x, "speed_mps": d.speed_mps,
                      "frame_rate_hz": d.frame_rate_hz, "scored_span_m": list(d.scored_span),
                      "valve_latency_s": self.settings.valve_latency_s,
                      "reached_end": self.end.reached_ns is not None},
            "notes": notes,
        }


# ---------------------------------------------------------------------------------- outputs

def _pct(v: float) -> str:
    return "–" if v != v else f"{100 * v:.1f} %"


def final_table(report: dict[str, Any]) -> str:
    """The final score as a few aligned lines (the node logs it)."""
    s, seg, fr = report["score"], report["segmentation"], report["frames"]
    ious = ", ".join(f"{k} {'–' if v != v else f'{v:.3f}'}" for k, v in seg["iou"].items())
    miou = seg["miou"]
    lines = [
        f"final score ({'complete' if report['complete'] else 'INCOMPLETE'}: "
        f"{report['end_reason']})",
        f"  weeds   scored {s['weeds_scored']:5d}   hit {s['weeds_hit']:5d}   rate "
        f"{_pct(s['weed_hit_rate']):>8}",
        f"  crops   scored {s['crops_scored']:5d}   hit {s['crops_hit']:5d}   rate "
        f"{_pct(s['crop_hit_rate']):>8}",
        f"  double sprays      {s['double_sprays']}",
        f"  sprayed / blanket  {_pct(s['sprayed_ratio'])} ({s['sprayed_area_m2']:.3f} of "
        f"{s['blanket_area_m2']:.3f} m²)",
        f"  mIoU {'–' if miou != miou else f'{miou:.3f}'} ({ious}) over {fr['matched']} "
        f"frames; {fr['labels_missing']} without labels, {fr['truth_missing']} without truth, "
        f"{fr['late']} late, {fr['size_mismatch']} size mismatches, "
        f"{fr['bad_labels'] + fr['bad_truth']} bad",
    ]
    lines += [f"  note: {n}" for n in report.get("notes", [])]
    return "\n".join(lines)


def write_report(out_dir: Path, report: dict[str, Any], *, fld: SimField | None = None,
                 boom: Boom | None = None, timeline: Timeline | None = None,
                 sc: Score | None = None) -> tuple[list[Path], str]:
    """Write ``score.json`` and (with fld, boom, timeline and sc, and matplotlib installed)
    ``score.png`` into ``out_dir``, each atomically. Returns (paths written, a note: why there
    is no plot, or ""). ConfigError when the folder cannot be written."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the output folder {out_dir}: {e.strerror or e}") \
            from None
    written: list[Path] = []
    note = ""
    report = dict(report)
    png = out_dir / "score.png"
    if fld is not None and boom is not None and timeline is not None and sc is not None:
        try:
            plot_score(png, fld, boom, timeline, sc, report)
            written.append(png)
            report["plot"] = png.name
        except Exception as e:  # noqa: BLE001 — matplotlib missing (ConfigError) or failing:
            # the plot is optional, the score is not
            note = f"no score.png: {e if isinstance(e, ConfigError) else repr(e)}"
            report["plot"] = None
            report.setdefault("notes", []).append(note)
    path = out_dir / "score.json"
    try:
        write_bytes_atomic(path, (json.dumps(report, indent=1) + "\n").encode())
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None
    written.insert(0, path)
    return written, note


def plot_score(path: Path, fld: SimField, boom: Boom, timeline: Timeline, sc: Score,
               report: dict[str, Any]) -> Path:
    """The drive as a PNG at ``path`` (written atomically): the sprayed footprint per lane over
    the field strip with every scored weed (hit / missed) and crop (sprayed / not), and the
    per-class IoU. ConfigError without matplotlib (:func:`crop_weed_seg.data.plots.pyplot`)."""
    from crop_weed_seg.data.plots import pyplot, save_figure

    plt = pyplot()
    span = sc.span
    fig, (ax, ax_iou) = plt.subplots(1, 2, figsize=(13.0, 3.6), dpi=110,
                                     gridspec_kw={"width_ratios": [6, 1]})
    lanes: dict[int, list[tuple[float, float]]] = {}
    for lane, x0, x1 in spray_windows(boom, timeline):
        lanes.setdefault(lane, []).append((x0, x1 - x0))
    for lane, bars in lanes.items():
        y0 = boom.right_edge + lane * boom.nozzle_spacing_m
        ax.broken_barh(bars, (y0, boom.nozzle_spacing_m), facecolors="tab:blue", alpha=0.3)
    for p in fld.plants:
        if p.class_id == WEED and p.id in sc.weed_fraction:
            hit = sc.weed_fraction[p.id] >= 0.9
            ax.plot(p.x, p.y, "o", ms=4, color="tab:green" if hit else "tab:red")
        elif p.id in sc.crop_fraction:
            hit = sc.crop_fraction[p.id] > 0.1
            ax.plot(p.x, p.y, "x", ms=4, color="tab:orange" if hit else "0.5")
    for x in span:
        ax.axvline(x, color="k", lw=0.8, ls="--")
    ax.set_xlim(0.0, fld.length_m)
    ax.set_ylim(boom.right_edge - 0.05, boom.right_edge + boom.width + 0.05)
    ax.set_xlabel("field x [m]")
    ax.set_ylabel("y [m]")
    s = report["score"]
    ax.set_title(f"weeds hit {s['weeds_hit']}/{s['weeds_scored']} ({_pct(s['weed_hit_rate'])}), "
                 f"crops hit {s['crops_hit']}/{s['crops_scored']}, double sprays "
                 f"{s['double_sprays']}, sprayed {_pct(s['sprayed_ratio'])} of blanket "
                 "(green: weed hit, red: missed, orange x: crop sprayed)", fontsize=8)
    iou = report["segmentation"]["iou"]
    names = list(iou)
    ax_iou.bar(range(len(names)), [0.0 if v != v else v for v in iou.values()],
               color=["tab:brown", "tab:green", "tab:red"][:len(names)])
    ax_iou.set_xticks(range(len(names)), names, fontsize=8)
    ax_iou.set_ylim(0, 1)
    miou = report["segmentation"]["miou"]
    ax_iou.set_title(f"IoU (mIoU {'–' if miou != miou else f'{miou:.2f}'})", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path
