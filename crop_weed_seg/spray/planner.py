"""Spray planning without ROS: weed targets -> per-nozzle open/close windows (DESIGN.md §4).

Ground-fixed frame
    The robot drives straight along x of ``target_frame`` (x forward, y left). The planner
    integrates its along-track travel ``s(t)`` [m] from speed updates
    (:meth:`SprayPlanner.update_odometry`) with a zero-order hold: the speed ``v_k`` reported
    at ``t_k`` holds until the next update, ``s(t) = s_k + v_k·(t − t_k)`` for
    ``t_k <= t < t_{k+1}``; after the newest update it is extrapolated with the newest speed,
    before the oldest kept update with the oldest speed. A ground point seen at ``x`` in an
    image stamped ``τ`` has the along-track ground coordinate ``g = s(τ) + x``, which does not
    change as the robot moves. Out-of-order image stamps are fine while the kept odometry
    history (at least 30 s and ``2·max_target_age_s``, at most 20 000 updates) covers them.

Spray interval of a target
    A target (centroid ``x``, along-track size ``size_x``, stamp ``τ``) becomes the ground
    interval ``[g − size_x/2 − margin_m, g + size_x/2 + margin_m]`` on every lane whose
    footprint overlaps ``[y − size_y/2, y + size_y/2]`` (:meth:`Boom.lanes_between`).

Open and close times
    The nozzle line is at ``x = boom.nozzle_x`` (negative: behind the camera). A valve
    commanded at ``t`` acts at ``t + valve_latency_s``, when the nozzle line is over the ground
    coordinate ``p(t) = s(t) + v(t)·valve_latency_s + nozzle_x`` (``v(t)`` = current speed).
    A lane is commanded open while ``[p(t), p(t) + v(t)·command_period_s / 2]`` meets any of
    its intervals (overlapping intervals merge by themselves). A command stands until the next
    one (the node's period is ``1 / rate_hz``), so it is judged halfway through the ground its
    nozzle covers meanwhile: a valve opens at most half a period early or late, which the
    margin absorbs. A point test (``command_period_s`` = 0, the simulator's 2 ms steps) opened
    up to a whole period late: at 50 Hz and 1 m/s up to 2 cm, the whole margin, and in the
    closed loop (`make sim`) 93.2 % weeds hit against 97.0 % with the half period. The formulas
    below are for ``command_period_s`` = 0. At constant speed ``v > 0`` and ``s(τ) = s_τ``::

        t_open  = τ + (x − size_x/2 − margin_m − nozzle_x) / v − valve_latency_s
        t_close = τ + (x + size_x/2 + margin_m − nozzle_x) / v − valve_latency_s

    i.e. the valve opens ``valve_latency_s`` before the front edge (less the margin) reaches
    the nozzle line and is open for ``(size_x + 2·margin_m) / v`` seconds. Example: v = 1 m/s,
    latency 0.03 s, margin 0.02 m, nozzle_x = −0.5 m, target x = 0.3 m, size_x = 0.04 m at
    τ = 0: interval [0.26, 0.34] m, open for 0.73 s < t <= 0.81 s. ``min_open_s`` > 0 keeps
    a lane open at least that long once it opened (valves that must not chatter).
    ``bridge_gap_m`` keeps a lane open across a gap shorter than that between two of its
    windows (pieces of one weed, neighbouring weeds): a valve that would close for a few
    millimetres gains nothing and would give the weed a second dose.

Targets
    Only classes in ``spray_classes``; lane −1 (and lanes outside the boom) are ignored. A
    nonzero ``track_id`` that is already stored grows that track's interval to the union of
    all its views (a weed entering or leaving the image is seen only in part, often in the
    newest image), so a weed seen in many frames is one interval and sprayed once. Untracked targets
    (track_id 0) are merged into per-lane interval lists at once, which keeps memory bounded
    even while the robot stands still. Intervals that the nozzle line has passed are dropped;
    hard caps (:data:`MAX_TRACKS`, :data:`MAX_UNTRACKED_PER_LANE`) evict the rest, counted.
    A whole call is rejected (its targets counted in ``rejected_targets``) when its stamp is
    older than ``max_target_age_s`` or more than ``max_future_s`` ahead of now; a call from the
    future also forgets the stored windows (``future_frames``): the time base is broken.

Time jumps
    The planner's clock (``now`` of :meth:`add_targets` and :meth:`nozzle_states`) or the
    odometry stamps going back by more than :data:`CLOCK_JUMP_BACK_S` (a bag that loops, a
    simulator reset) reset the planner: odometry, stored windows and stale timer. Target stamps
    going back that far forget the stored windows. Each event counts once in ``time_jumps``
    (odometry jumps also in ``clock_resets``). Without this, views of a weed from both sides of
    the jump were joined into one long window.

Unknown speed
    Before the first odometry update the planner uses ``default_speed_mps``; when it is None
    (the default) targets cannot be placed on the ground: they are dropped and counted
    (``targets_without_odometry``) and in ``spot`` mode every nozzle stays shut. Negative speeds
    (reversing) beyond :data:`REVERSE_TOLERANCE_MPS` are counted in ``bad_odometry`` and held
    as speed 0 (travel is never integrated backwards); NaN/Inf updates and implausible ones
    (faster than ``max_speed_mps``) are counted and ignored (``last_odometry_problem`` says why),
    so a stream of them makes the odometry *lost* after ``odom_timeout_s``.
    Odometry that stops for longer than ``odom_timeout_s`` after it had started is *lost*: the
    travel would be extrapolated with a speed nobody confirms, so ``failure_policy`` decides
    until the next update (``odometry_timeouts`` counts the losses; 0 disables the check).

Standing still
    In ``spot`` mode every nozzle is shut while the known speed is below ``min_speed_mps``: a
    robot that stops with a weed under a nozzle must not keep dosing that spot (and a stopped
    robot must not blanket-spray one patch under ``failure_policy`` ``blanket``). The explicit
    ``blanket`` mode is the operator's command and is not cut off.

Modes and failure policy
    ``off``: every nozzle shut. ``blanket``: every nozzle open. ``spot``: as planned above,
    unless the target stream is stale (no accepted :meth:`add_targets` call, empty ones
    included, for ``stale_timeout_s``, or none yet) or the odometry is lost: then
    ``failure_policy`` decides, ``off`` (all shut) or ``blanket`` (all open).

Times are seconds of one clock (the ROS node clock in the node). The planner is not
thread-safe; the ROS node serialises calls.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.spray.geometry import Boom

MODES = ("spot", "off", "blanket")
FAILURE_POLICIES = ("off", "blanket")

#: Default of ``max_future_s``: a target stamp may be this far ahead of the planner's now
#: (clock skew between machines, /clock arriving after the images).
FUTURE_TOLERANCE_S = 0.2
#: Default of ``max_speed_mps``: faster odometry is implausible.
MAX_SPEED_MPS = 10.0
#: Speeds in [−this, 0) count as standing still, not as reversing (odometry noise).
REVERSE_TOLERANCE_MPS = 0.01
#: An odometry update, a target stamp or the planner's clock this much older than the newest
#: one means time jumped back (a bag replay that looped, a simulator reset): the planner resets.
#: Smaller steps back are ignored (``late_odometry``) or placed from the odometry history.
CLOCK_JUMP_BACK_S = 1.0
#: Odometry history: at least this long, at most this many updates.
HISTORY_S = 30.0
HISTORY_MAX = 20000
#: Caps that bound memory whatever the input.
MAX_TRACKS = 4096
MAX_UNTRACKED_PER_LANE = 1024


@dataclass(frozen=True)
class PlannerConfig:
    """Spray planning settings (see the module docstring for their effect)."""

    valve_latency_s: float = 0.03
    margin_m: float = 0.02
    mode: str = "spot"
    failure_policy: str = "off"
    stale_timeout_s: float = 0.5
    spray_classes: tuple[int, ...] = (2,)
    max_target_age_s: float = 5.0
    min_open_s: float = 0.0
    bridge_gap_m: float = 0.02
    default_speed_mps: float | None = None
    odom_timeout_s: float = 1.0
    min_speed_mps: float = 0.05
    max_future_s: float = FUTURE_TOLERANCE_S
    max_speed_mps: float = MAX_SPEED_MPS
    #: How long a command stands until the next one [s] (the node: 1 / rate_hz); a command is
    #: judged halfway through the ground it covers (module docstring; 0: point test).
    command_period_s: float = 0.0

    def __post_init__(self) -> None:
        def number(name: str, low: float, high: float, low_open: bool = False) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value > high \
                    or (value <= low if low_open else value < low):
                bound = f"> {low}" if low_open else f">= {low}"
                raise ConfigError(f"{name}={value!r} must be a number {bound} and <= {high}")

        number("valve_latency_s", 0.0, 10.0)
        number("margin_m", 0.0, 10.0)
        number("stale_timeout_s", 0.0, 3600.0, low_open=True)
        number("max_target_age_s", 0.0, 3600.0, low_open=True)
        number("min_open_s", 0.0, 60.0)
        number("bridge_gap_m", 0.0, 10.0)
        number("odom_timeout_s", 0.0, 3600.0)
        number("min_speed_mps", 0.0, 100.0)
        number("max_future_s", 0.0, 60.0)
        number("max_speed_mps", 0.0, 100.0, low_open=True)
        number("command_period_s", 0.0, 1.0)
        if self.default_speed_mps is not None:
            number("default_speed_mps", 0.0, 100.0, low_open=True)
            if self.default_speed_mps > self.max_speed_mps:
                raise ConfigError(f"default_speed_mps={self.default_speed_mps!r} must not "
                                  f"exceed max_speed_mps={self.max_speed_mps!r}")
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r} must be one of {', '.join(MODES)}")
        if self.failure_policy not in FAILURE_POLICIES:
            raise ConfigError(f"failure_policy={self.failure_policy!r} must be one of "
                              f"{', '.join(FAILURE_POLICIES)}")
        classes = self.spray_classes
        if isinstance(classes, (str, bytes)) or not isinstance(classes, Iterable):
            raise ConfigError(f"spray_classes={classes!r} must be a sequence of class ids")
        classes = tuple(classes)
        if not classes or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool)
                                  and 0 <= int(c) <= 65535 for c in classes):
            raise ConfigError(f"spray_classes={classes!r} must be one or more class ids "
                              "in 0..65535")
        object.__setattr__(self, "spray_classes", tuple(int(c) for c in classes))


def nozzle_joint_names(count: int) -> list[str]:
    """The joints of ``nozzle_states`` (sensor_msgs/JointState): ``nozzle_00`` .. (zero-padded
    to at least two digits; lane 0 is the right-most nozzle)."""
    width = max(2, len(str(count - 1)))
    return [f"nozzle_{i:0{width}d}" for i in range(count)]


def merge_intervals(intervals: Iterable[tuple[float, float]], gap: float = 0.0
                    ) -> list[tuple[float, float]]:
    """Sorted union of closed intervals; touching or overlapping intervals, and those less than
    ``gap`` apart, become one. Empty (s_open > s_close) or non-finite intervals are left out."""
    items = sorted((float(a), float(b)) for a, b in intervals
                   if math.isfinite(a) and math.isfinite(b) and a <= b)
    merged: list[tuple[float, float]] = []
    for a, b in items:
        if merged and a <= merged[-1][1] + gap:
            if b > merged[-1][1]:
                merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


@dataclass
class _Track:
    s_open: float
    s_close: float
    lanes: range
    stamp: float


class SprayPlanner:
    """Schedules nozzles from weed targets and odometry (module docstring)."""

    def __init__(self, boom: Boom, config: PlannerConfig | None = None) -> None:
        self.boom = boom
        self.config = config or PlannerConfig()
        self._times: list[float] = []      # odometry update times (ascending)
        self._travel: list[float] = []     # s at those times
        self._speeds: list[float] = []     # speed from that time on
        self._untracked: list[list[tuple[float, float]]] = [[] for _ in range(boom.nozzle_count)]
        self._tracks: dict[int, _Track] = {}
        self._hold_until = np.full(boom.nozzle_count, -math.inf)
        self._last_states = np.zeros(boom.nozzle_count, bool)
        self._last_targets: float | None = None   # receipt time of the last accepted call
        self._now = -math.inf                     # newest time the planner has been told
        self._stale = True
        self._odometry_lost = False
        self._standing = False
        self.counters = {"accepted_messages": 0, "accepted_targets": 0, "ignored_targets": 0,
                         "rejected_messages": 0, "rejected_targets": 0,
                         "targets_without_odometry": 0, "evicted_targets": 0,
                         "odometry_updates": 0, "bad_odometry": 0, "late_odometry": 0,
                         "clock_resets": 0, "odometry_timeouts": 0, "time_jumps": 0,
                         "future_frames": 0}
        self.last_odometry_problem = ""
        self.last_time_problem = ""
        self._clock = -math.inf                   # newest planner clock (now) seen
        self._newest_stamp: float | None = None   # newest target stamp seen

    # ----------------------------------------------------------------------- configuration
    def reconfigure(self, boom: Boom | None = None, config: PlannerConfig | None = None) -> None:
        """New settings. A boom whose lanes moved (count, spacing or centre) forgets the stored
        targets, whose lanes no longer mean the same; a new ``nozzle_x`` keeps them (they are
        stored on the ground). New margins apply to targets added from now on."""
        if config is not None:
            self.config = config
        if boom is not None:
            lanes_moved = (boom.nozzle_count, boom.nozzle_spacing_m, boom.center_y) != \
                (self.boom.nozzle_count, self.boom.nozzle_spacing_m, self.boom.center_y)
            self.boom = boom
            if lanes_moved:
                self.clear_targets()

    def clear_targets(self) -> None:
        n = self.boom.nozzle_count
        self._untracked = [[] for _ in range(n)]
        self._tracks.clear()
        self._hold_until = np.full(n, -math.inf)
        self._last_states = np.zeros(n, bool)

    def reset(self) -> None:
        """Forget odometry, targets and the stale timer (the clock jumped back)."""
        self._times.clear()
        self._travel.clear()
        self._speeds.clear()
        self.clear_targets()
        self._last_targets = None
        self._now = -math.inf
        self._clock = -math.inf
        self._newest_stamp = None

    def _time_jump(self, reason: str) -> None:
        self.counters["time_jumps"] += 1
        self.last_time_problem = reason
        self.reset()

    def observe_clock(self, t: float) -> None:
        """The planner's clock read ``t``: a jump back beyond :data:`CLOCK_JUMP_BACK_S` resets."""
        if not math.isfinite(t):
            return
        if t < self._clock - CLOCK_JUMP_BACK_S:
            self._time_jump(f"clock jumped back {self._clock - t:.3f} s")
        self._clock = max(self._clock, t)

    # ---------------------------------------------------------------------------- odometry
    @property
    def has_odometry(self) -> bool:
        return bool(self._times)

    def update_odometry(self, t: float, speed_mps: float) -> bool:
        """Speed ``speed_mps`` from time ``t`` on. False when the update was not used."""
        if not (math.isfinite(t) and math.isfinite(speed_mps)):
            self.counters["bad_odometry"] += 1
            self.last_odometry_problem = f"odometry is not finite (stamp {t}, speed {speed_mps})"
            return False
        if abs(speed_mps) > self.config.max_speed_mps:
            self.counters["bad_odometry"] += 1
            self.last_odometry_problem = (f"odometry speed {speed_mps:.4g} m/s is beyond "
                                          f"max_speed_mps {self.config.max_speed_mps:g}: "
                                          "implausible")
            return False
        if self._times and t < self._times[-1]:
            if t < self._times[-1] - CLOCK_JUMP_BACK_S:
                self.counters["clock_resets"] += 1
                self._time_jump(f"odometry stamps jumped back {self._times[-1] - t:.3f} s")
            else:
                self.counters["late_odometry"] += 1
                return False
        speed = float(speed_mps)
        if speed < 0.0:
            if speed < -REVERSE_TOLERANCE_MPS:
                self.counters["bad_odometry"] += 1
                self.last_odometry_problem = f"odometry says the robot reverses ({speed:.3f} m/s)"
            speed = 0.0
        # Without odometry so far, travel() continues the default-speed frame so that targets
        # placed with it stay valid (0 without a default speed).
        travel = self.travel(t)
        s = travel if travel is not None else 0.0
        if self._times and t == self._times[-1]:
            self._travel[-1], self._speeds[-1] = s, speed
        else:
            self._times.append(float(t))
            self._travel.append(s)
            self._speeds.append(speed)
        self._trim_history()
        self._now = max(self._now, t)
        self.counters["odometry_updates"] += 1
        return True

    def _trim_history(self) -> None:
        keep_s = max(HISTORY_S, 2.0 * self.config.max_target_age_s)
        newest = self._times[-1]
        cut = bisect.bisect_left(self._times, newest - keep_s) - 1  # keep one sample before
        cut = max(cut, len(self._times) - HISTORY_MAX, 0)
        if cut > 0 and (cut >= 256 or len(self._times) > HISTORY_MAX):
            del self._times[:cut], self._travel[:cut], self._speeds[:cut]

    def _sample(self, t: float) -> int | None:
        """Index of the odometry update in force at ``t`` (the oldest one before history)."""
        if not self._times:
            return None
        return self._index(t)

    def _index(self, t: float) -> int:
        """:meth:`_sample` when there is odometry."""
        return max(bisect.bisect_right(self._times, t) - 1, 0)

    def travel(self, t: float) -> float | None:
        """Along-track travel ``s(t)`` [m]; None without odometry or a default speed."""
        k = self._sample(t)
        if k is None:
            default = self.config.default_speed_mps
            return default * t if default is not None else None
        return self._travel[k] + self._speeds[k] * (t - self._times[k])

    def speed(self, t: float | None = None) -> float | None:
        """Speed [m/s] in force at ``t`` (default: the newest); None when unknown."""
        if not self._times:
            return self.config.default_speed_mps
        return self._speeds[-1] if t is None else self._speeds[self._index(t)]

    def nozzle_position(self, t: float) -> float | None:
        """Ground coordinate under the nozzle line when a command given at ``t`` takes effect."""
        s, speed = self.travel(t), self.speed(t)
        if s is None or speed is None:  # both known or both unknown
            return None
        return s + speed * self.config.valve_latency_s + self.boom.nozzle_x

    # ----------------------------------------------------------------------------- targets
    def add_targets(self, stamp_s: float, records: np.ndarray, now_s: float | None = None
                    ) -> int:
        """Targets (:data:`~crop_weed_seg.spray.records.TARGET_DTYPE`) seen in the image
        stamped ``stamp_s``, received at ``now_s`` (default: the newest time the planner has
        seen). Returns how many were stored. An accepted call, empty or not, resets the stale
        timer; a rejected one (too old, from the future) does not."""
        if now_s is not None:
            self.observe_clock(float(now_s))
        now = self._now if now_s is None else float(now_s)
        if not math.isfinite(now):
            now = float(stamp_s)
        self._now = max(self._now, now)
        cfg = self.config
        n = len(records)
        if math.isfinite(stamp_s):
            newest = self._newest_stamp
            if newest is not None and stamp_s < newest - CLOCK_JUMP_BACK_S:
                self.counters["time_jumps"] += 1
                self.last_time_problem = f"target stamps jumped back {newest - stamp_s:.3f} s"
                self.clear_targets()
                newest = None
            if stamp_s > now + cfg.max_future_s:
                self.counters["future_frames"] += 1
                self.last_time_problem = (f"targets stamped {stamp_s - now:.3f} s ahead of the "
                                          f"clock (max_future_s {cfg.max_future_s:g})")
                self.clear_targets()
            else:
                self._newest_stamp = stamp_s if newest is None else max(newest, stamp_s)
        if not math.isfinite(stamp_s) or stamp_s < now - cfg.max_target_age_s \
                or stamp_s > now + cfg.max_future_s:
            self.counters["rejected_messages"] += 1
            self.counters["rejected_targets"] += n
            return 0
        self._last_targets = now
        self.counters["accepted_messages"] += 1
        if n == 0:
            return 0
        base = self.travel(stamp_s)
        if base is None:
            self.counters["targets_without_odometry"] += n
            return 0
        stored = 0
        spray = np.isin(records["class_id"], cfg.spray_classes) & (records["lane"] >= 0)
        self.counters["ignored_targets"] += int(n - spray.sum())
        for rec in records[spray]:
            x, sx, y, sy = (float(rec[k]) for k in ("x", "size_x", "y", "size_y"))
            if not all(math.isfinite(v) for v in (x, sx, y, sy)):
                self.counters["rejected_targets"] += 1
                continue
            sx, sy = abs(sx), abs(sy)
            lanes = self.boom.lanes_between(y - sy / 2.0, y + sy / 2.0)
            if len(lanes) == 0:
                self.counters["ignored_targets"] += 1
                continue
            g = base + x
            s_open, s_close = g - sx / 2.0 - cfg.margin_m, g + sx / 2.0 + cfg.margin_m
            track_id = int(rec["track_id"])
            if track_id:
                self._store_track(track_id, _Track(s_open, s_close, lanes, float(stamp_s)))
            else:
                for lane in lanes:
                    self._untracked[lane] = merge_intervals(
                        self._untracked[lane] + [(s_open, s_close)])
                    self._cap_untracked(lane)
            stored += 1
        self.counters["accepted_targets"] += stored
        return stored

    def _store_track(self, track_id: int, new: _Track) -> None:
        old = self._tracks.get(track_id)
        if old is not None:
            # every view of the weed counts: a weed entering or leaving the image is seen only
            # in part, and the newest view is often such a part
            new = _Track(min(old.s_open, new.s_open), max(old.s_close, new.s_close),
                         range(min(old.lanes.start, new.lanes.start),
                               max(old.lanes.stop, new.lanes.stop)),
                         max(old.stamp, new.stamp))
            del self._tracks[track_id]  # re-insert: dict order = order of the last update
        self._tracks[track_id] = new
        while len(self._tracks) > MAX_TRACKS:
            del self._tracks[next(iter(self._tracks))]  # least recently updated
            self.counters["evicted_targets"] += 1

    def _cap_untracked(self, lane: int) -> None:
        excess = len(self._untracked[lane]) - MAX_UNTRACKED_PER_LANE
        if excess > 0:  # keep the nearest ones; the farthest were seen last and come again
            del self._untracked[lane][-excess:]
            self.counters["evicted_targets"] += excess

    def _drop_passed(self, position: float) -> None:
        for items in self._untracked:
            k = 0
            while k < len(items) and items[k][1] < position:
                k += 1
            if k:
                del items[:k]
        for track_id in [i for i, tr in self._tracks.items() if tr.s_close < position]:
            del self._tracks[track_id]

    def windows(self, lane: int) -> list[tuple[float, float]]:
        """The stored ground intervals (s_open, s_close) of ``lane``, merged and sorted."""
        tracked = [(tr.s_open, tr.s_close) for tr in self._tracks.values() if lane in tr.lanes]
        return merge_intervals(self._untracked[lane] + tracked)

    @property
    def stored_intervals(self) -> int:
        return sum(len(items) for items in self._untracked) + len(self._tracks)

    def odometry_lost(self, t: float) -> bool:
        """Odometry had started and its newest update is more than ``odom_timeout_s`` old."""
        timeout = self.config.odom_timeout_s
        return timeout > 0 and bool(self._times) and t - self._times[-1] > timeout

    # ------------------------------------------------------------------------------ output
    def is_stale(self, t: float) -> bool:
        """No accepted :meth:`add_targets` call for ``stale_timeout_s`` (or none yet)."""
        return self._last_targets is None or t - self._last_targets > self.config.stale_timeout_s

    def nozzle_states(self, t: float, stale: bool | None = None) -> np.ndarray:
        """Commanded state of every nozzle at ``t`` (True = open). ``stale`` overrides the
        planner's own stale test (the node also watches the target stream on a steady clock)."""
        self.observe_clock(t)
        self._now = max(self._now, t)
        cfg = self.config
        n = self.boom.nozzle_count
        self._stale = self.is_stale(t) if stale is None else bool(stale)
        lost = self.odometry_lost(t)
        if lost and not self._odometry_lost:
            self.counters["odometry_timeouts"] += 1
        self._odometry_lost = lost
        speed = self.speed(t)
        self._standing = speed is not None and speed < cfg.min_speed_mps
        position, travel = self.nozzle_position(t), self.travel(t)
        if position is not None and travel is not None:  # both known or both unknown
            # Drop what the nozzle line itself has passed (not the latency-projected position,
            # which moves back when the robot slows down).
            self._drop_passed(travel + self.boom.nozzle_x)
        if cfg.mode != "spot":
            states = np.full(n, cfg.mode == "blanket")
        elif self._standing:
            states = np.zeros(n, bool)
        elif self._stale or lost:
            states = np.full(n, cfg.failure_policy == "blanket")
        elif position is None:
            states = np.zeros(n, bool)
        else:
            states = np.zeros(n, bool)
            # a command stands until the next one: judge it at the middle of the ground its
            # nozzle line covers meanwhile, so it opens at most half a period early or late
            ahead = position + (speed or 0.0) * cfg.command_period_s / 2.0
            for lane, items in enumerate(self._untracked):
                states[lane] = any(a <= ahead and position <= b for a, b in items)
            for tr in self._tracks.values():
                if tr.s_open <= ahead and position <= tr.s_close:
                    states[tr.lanes.start:tr.lanes.stop] = True
            if cfg.bridge_gap_m > 0:   # stay open across short gaps between two windows
                for closed in np.flatnonzero(~states):
                    w = self.windows(int(closed))
                    states[closed] = any(a[1] < position < b[0] and b[0] - a[1] < cfg.bridge_gap_m
                                       for a, b in zip(w, w[1:]))
            if cfg.min_open_s > 0:
                opened = states & ~self._last_states
                self._hold_until[opened] = t + cfg.min_open_s
                states |= t < self._hold_until
        self._last_states = states
        return states.copy()

    def applied(self) -> str:
        """What decides the nozzles now (as of the last :meth:`nozzle_states` call): the mode,
        ``standing`` (below ``min_speed_mps``), ``failure_policy:<p>`` (targets stale or
        odometry lost), or ``no_odometry``."""
        if self.config.mode != "spot":
            return self.config.mode
        if self._standing:
            return "standing"
        if self._stale or self._odometry_lost:
            return f"failure_policy:{self.config.failure_policy}"
        if not self.has_odometry and self.config.default_speed_mps is None:
            return "no_odometry"
        return "spot"

    def status(self, t: float | None = None) -> dict[str, Any]:
        """Key figures for diagnostics (as of the last :meth:`nozzle_states` call)."""
        t = self._now if t is None else t
        travel = self.travel(t) if math.isfinite(t) else None
        status: dict[str, Any] = {
            "mode": self.config.mode, "failure_policy": self.config.failure_policy,
            "min_speed_mps": self.config.min_speed_mps,
            "stale": self._stale, "odometry_lost": self._odometry_lost,
            "applied": self.applied(),
            "stored_intervals": self.stored_intervals, "tracks": len(self._tracks),
            "open_nozzles": int(self._last_states.sum()),
            "odometry": self.has_odometry, "speed_mps": self.speed(),
            "travel_m": travel,
            "last_targets_age_s": (None if self._last_targets is None or not math.isfinite(t)
                                   else t - self._last_targets),
            "max_speed_mps": self.config.max_speed_mps,
            "last_odometry_problem": self.last_odometry_problem,
            "last_time_problem": self.last_time_problem,
        }
        status.update(self.counters)
        return status
