"""Spray planning without ROS: windows from speed, latency and margin computed by hand, merging,
tracks, lanes, stale policy, modes, bad odometry, bounded memory, parameter table."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.parameters.planner import PARAMETERS, build, defaults, validate
from crop_weed_seg.spray import planner as planner_module
from crop_weed_seg.spray.geometry import Boom
from crop_weed_seg.spray.planner import PlannerConfig, SprayPlanner, merge_intervals
from crop_weed_seg.spray.records import empty_targets

BOOM = Boom(nozzle_count=12, nozzle_spacing_m=0.05, center_y=0.0, nozzle_x=-0.5)


def targets(*rows: dict) -> np.ndarray:
    out = empty_targets(len(rows))
    for rec, row in zip(out, rows):
        values = {"size_x": 0.04, "size_y": 0.01, "class_id": 2, "z": 0.0, **row}
        if "lane" not in row:
            values["lane"] = int(BOOM.lane_of(np.array([values["y"]]))[0])
        for key, value in values.items():
            rec[key] = value
    return out


def lane_y(lane: int) -> float:
    return float(BOOM.lane_center(lane))


def planner(**config) -> SprayPlanner:
    # One odometry update, extrapolated: no odometry timeout unless a test asks for one.
    p = SprayPlanner(BOOM, PlannerConfig(**{"stale_timeout_s": 100.0, "odom_timeout_s": 0.0,
                                            **config}))
    p.update_odometry(0.0, 1.0)
    return p


def open_times(p: SprayPlanner, lane: int, t0: float, t1: float, dt: float = 0.001,
               keep_fresh: bool = True) -> list[float]:
    times = []
    for t in np.arange(t0, t1, dt):
        if keep_fresh:
            p.add_targets(t, empty_targets(), t)
        if p.nozzle_states(float(t))[lane]:
            times.append(float(t))
    return times


def test_window_of_one_target_by_hand() -> None:
    # v = 1 m/s, latency 0.03 s, margin 0.02 m, nozzle_x = -0.5 m, x = 0.3 m, size_x = 0.04 m:
    # ground interval [0.26, 0.34]; open while t + 0.03 - 0.5 in it: 0.73 <= t <= 0.81.
    p = planner(valve_latency_s=0.03, margin_m=0.02)
    assert p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(4)}), 0.0) == 1
    (s_open, s_close), = p.windows(4)
    assert s_open == pytest.approx(0.26, abs=1e-6) and s_close == pytest.approx(0.34, abs=1e-6)
    times = open_times(p, 4, 0.0, 1.2)
    assert times[0] == pytest.approx(0.73, abs=1.5e-3)
    assert times[-1] == pytest.approx(0.81, abs=1.5e-3)
    assert not any(p.nozzle_states(t)[[0, 1, 2, 3, 5, 6]].any() for t in (0.75, 0.8))


def test_a_command_period_moves_the_decision_to_the_middle_of_its_hold() -> None:
    # The window of test_window_of_one_target_by_hand: 0.73 <= t <= 0.81 for a point test. A
    # command that stands 20 ms (50 Hz) is judged 10 ms ahead (1 cm at 1 m/s): it opens from
    # 0.72 s and closes as before (the last command inside the window holds to 0.81 + 0.02).
    def with_target(**config: float) -> SprayPlanner:
        p = planner(valve_latency_s=0.03, margin_m=0.02, **config)
        p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(4)}), 0.0)
        return p

    times = open_times(with_target(command_period_s=0.02), 4, 0.0, 1.2)
    assert times[0] == pytest.approx(0.72, abs=1.5e-3)
    assert times[-1] == pytest.approx(0.81, abs=1.5e-3)
    # stepped at the node's 50 Hz (commands 5 ms off the edges): open from the command at
    # 0.725 s, 5 ms before the window; a point test opens at 0.745 s, 15 ms (1.5 cm) late
    def stepped(p: SprayPlanner) -> list[float]:
        return [round(float(t), 3) for t in np.arange(0.005, 1.2, 0.02)
                if p.nozzle_states(float(t))[4]]

    assert stepped(with_target(command_period_s=0.02)) == [0.725, 0.745, 0.765, 0.785, 0.805]
    assert stepped(with_target()) == [0.745, 0.765, 0.785, 0.805]


def test_window_follows_speed_and_stamp() -> None:
    # v = 2 m/s from t = 0, image at t = 0.1 (s = 0.2): g = 0.5, interval [0.46, 0.54] m;
    # open while 2t + 2*0.05 - 0.5 in it: t in [0.43, 0.47].
    p = planner(valve_latency_s=0.05, margin_m=0.02)
    p.update_odometry(0.0, 2.0)
    p.add_targets(0.1, targets({"x": 0.3, "y": lane_y(0)}), 0.1)
    times = open_times(p, 0, 0.0, 1.0, dt=0.0005)
    assert times[0] == pytest.approx(0.43, abs=1e-3)
    assert times[-1] == pytest.approx(0.47, abs=1e-3)


def test_speed_change_integrates_piecewise() -> None:
    p = planner()
    p.update_odometry(1.0, 0.5)
    p.update_odometry(3.0, 0.0)
    assert p.travel(0.5) == pytest.approx(0.5)
    assert p.travel(2.0) == pytest.approx(1.5)
    assert p.travel(10.0) == pytest.approx(2.0)
    # out-of-order image stamps are placed with the history
    p.add_targets(0.5, targets({"x": 0.3, "y": lane_y(1), "size_x": 0.0}), 2.0)
    p.add_targets(2.0, targets({"x": 0.3, "y": lane_y(2), "size_x": 0.0}), 2.0)
    assert p.windows(1) == [pytest.approx((0.78, 0.82))]
    assert p.windows(2) == [pytest.approx((1.78, 1.82))]


def test_overlapping_targets_in_one_lane_merge() -> None:
    p = planner()
    p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(5)}, {"x": 0.35, "y": lane_y(5)},
                               {"x": 0.6, "y": lane_y(5)}), 0.0)
    assert p.windows(5) == [pytest.approx((0.26, 0.39)), pytest.approx((0.56, 0.64))]
    times = open_times(p, 5, 0.0, 1.3)
    gaps = [b - a for a, b in zip(times, times[1:]) if b - a > 0.002]
    assert len(gaps) == 1  # two windows, not three


def test_merge_intervals() -> None:
    assert merge_intervals([]) == []
    assert merge_intervals([(3, 4), (1, 2), (1.5, 2.5), (2.5, 2.6), (5, 4)]) == \
        [(1.0, 2.6), (3.0, 4.0)]
    assert merge_intervals([(0, math.nan), (0, 1)]) == [(0.0, 1.0)]


def test_target_spanning_two_lanes_opens_both() -> None:
    edge = BOOM.right_edge + 3 * BOOM.nozzle_spacing_m  # boundary of lanes 2 and 3
    p = planner()
    p.add_targets(0.0, targets({"x": 0.3, "y": edge, "size_y": 0.04}), 0.0)
    states = p.nozzle_states(0.77)
    assert list(np.flatnonzero(states)) == [2, 3]


def test_repeated_track_grows_to_the_union_of_its_views() -> None:
    p = planner()
    p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(6), "track_id": 9}), 0.0)
    # 0.1 s later (robot moved 0.1 m) the same weed is at x = 0.21: ground 0.31; one interval
    # that covers both views ([0.26, 0.34] and [0.27, 0.35])
    p.add_targets(0.1, targets({"x": 0.21, "y": lane_y(6), "track_id": 9}), 0.1)
    assert p.windows(6) == [pytest.approx((0.26, 0.35))]
    assert p.stored_intervals == 1
    # a partial view (a weed leaving the image) does not shrink it
    p.add_targets(0.12, targets({"x": 0.20, "y": lane_y(6), "size_x": 0.01,
                                 "track_id": 9}), 0.12)
    assert p.windows(6) == [pytest.approx((0.26, 0.35))]
    assert p.stored_intervals == 1


def test_lane_minus_one_other_classes_and_outside_boom_are_ignored() -> None:
    p = planner()
    p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(3), "lane": -1},
                               {"x": 0.3, "y": lane_y(4), "class_id": 1},
                               {"x": 0.3, "y": 5.0, "lane": 3}), 0.0)
    assert p.stored_intervals == 0
    assert p.counters["ignored_targets"] == 3
    assert not p.nozzle_states(0.77).any()


def test_old_and_future_stamps_are_rejected() -> None:
    p = planner(max_target_age_s=1.0)
    p.update_odometry(10.0, 1.0)
    assert p.add_targets(8.5, targets({"x": 0.3, "y": lane_y(1)}), 10.0) == 0
    assert p.add_targets(10.5, targets({"x": 0.3, "y": lane_y(1)},
                                       {"x": 0.4, "y": lane_y(1)}), 10.0) == 0
    assert p.counters["rejected_targets"] == 3
    assert p.add_targets(9.5, targets({"x": 0.3, "y": lane_y(1)}), 10.0) == 1
    assert p.add_targets(10.1, targets({"x": 0.3, "y": lane_y(2)}), 10.0) == 1


@pytest.mark.parametrize("policy", ["off", "blanket"])
def test_stale_targets_apply_the_failure_policy(policy: str) -> None:
    p = SprayPlanner(BOOM, PlannerConfig(failure_policy=policy, stale_timeout_s=0.5))
    p.update_odometry(0.0, 1.0)
    expected = policy == "blanket"
    assert p.is_stale(0.0) and (p.nozzle_states(0.0) == expected).all()  # nothing received yet
    assert p.applied() == f"failure_policy:{policy}"
    p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(4)}), 0.0)
    p.add_targets(0.4, empty_targets(), 0.4)  # empty messages keep the stream fresh
    assert not p.is_stale(0.75)
    states = p.nozzle_states(0.75)
    assert states[4] and states.sum() == 1 and p.applied() == "spot"
    assert (p.nozzle_states(0.95) == expected).all()
    assert p.status()["stale"] is True
    # a stamp that is too old does not refresh the stream
    p.add_targets(-10.0, empty_targets(), 1.0)
    assert p.is_stale(1.0)
    # the caller may override (the node's steady-clock watch)
    p.add_targets(1.0, empty_targets(), 1.0)
    assert (p.nozzle_states(1.0, stale=True) == expected).all()


@pytest.mark.parametrize("mode, expected", [("off", False), ("blanket", True)])
def test_modes_off_and_blanket(mode: str, expected: bool) -> None:
    p = planner(mode=mode)
    p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(4)}), 0.0)
    for t in (0.0, 0.77, 2.0):
        states = p.nozzle_states(t, stale=(t == 2.0))
        assert states.shape == (12,) and states.dtype == bool
        assert (states == expected).all()
    assert p.status()["applied"] == mode


def test_negative_and_nan_speed() -> None:
    p = planner()
    p.update_odometry(1.0, -0.5)          # reversing: counted, held (no backwards travel)
    assert p.counters["bad_odometry"] == 1
    assert p.travel(2.0) == pytest.approx(1.0) and p.speed() == 0.0
    p.update_odometry(2.0, math.nan)      # ignored: the hold continues
    p.update_odometry(math.inf, 1.0)
    assert p.counters["bad_odometry"] == 3
    assert p.travel(3.0) == pytest.approx(1.0)
    p.update_odometry(3.0, -0.005)        # standstill noise: not counted
    assert p.counters["bad_odometry"] == 3
    p.update_odometry(4.0, 1.0)
    assert p.travel(5.0) == pytest.approx(2.0)
    p.update_odometry(3.5, 1.0)           # a little late: ignored
    assert p.counters["late_odometry"] == 1 and p.travel(5.0) == pytest.approx(2.0)
    p.update_odometry(0.5, 1.0)           # clock jumped back (bag loop): start afresh
    assert p.counters["clock_resets"] == 1 and p.travel(0.5) == 0.0


def test_no_odometry_keeps_nozzles_shut_unless_a_default_speed_is_set() -> None:
    p = SprayPlanner(BOOM, PlannerConfig(stale_timeout_s=100.0))
    assert p.travel(1.0) is None
    p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(4)}), 0.0)
    assert p.counters["targets_without_odometry"] == 1 and p.stored_intervals == 0
    assert not p.nozzle_states(0.77).any() and p.applied() == "no_odometry"

    p = SprayPlanner(BOOM, PlannerConfig(stale_timeout_s=100.0, default_speed_mps=1.0))
    p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(4)}), 0.0)
    assert p.nozzle_states(0.77)[4]
    p.update_odometry(0.78, 1.0)  # odometry takes over without moving the stored windows
    assert p.nozzle_states(0.80)[4] and not p.nozzle_states(0.82)[4]


@pytest.mark.parametrize("policy", ["off", "blanket"])
def test_lost_odometry_applies_the_failure_policy_until_it_is_back(policy: str) -> None:
    # 1 m/s from t = 0; the weed's window is 0.73 <= t <= 0.81 (test above)
    p = planner(odom_timeout_s=0.5, failure_policy=policy)
    p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(4)}), 0.0)
    assert not p.nozzle_states(0.4).any() and p.applied() == "spot"
    lost = p.nozzle_states(0.75)                  # last odometry 0.75 s ago: lost
    assert (lost == (policy == "blanket")).all()
    assert p.applied() == f"failure_policy:{policy}" and p.status()["odometry_lost"] is True
    assert p.counters["odometry_timeouts"] == 1
    p.nozzle_states(0.76)
    assert p.counters["odometry_timeouts"] == 1   # one loss, counted once
    p.update_odometry(0.76, 1.0)                  # back: the plan applies again
    states = p.nozzle_states(0.77)
    assert states[4] and states.sum() == 1 and p.applied() == "spot"
    assert p.status()["odometry_lost"] is False
    p.nozzle_states(1.5)
    assert p.counters["odometry_timeouts"] == 2


def test_odometry_timeout_zero_extrapolates_the_last_speed() -> None:
    p = planner(odom_timeout_s=0.0)
    p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(4)}), 0.0)
    assert p.nozzle_states(0.77)[4] and p.counters["odometry_timeouts"] == 0


def _stopped_over_a_weed(**config) -> SprayPlanner:
    # 1 m/s until t = 0.78, then standing: the nozzle line stays inside the weed's window
    p = planner(**config)
    p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(4)}), 0.0)
    assert p.nozzle_states(0.77)[4]
    p.update_odometry(0.78, 0.0)
    return p


def test_a_standing_robot_does_not_keep_spraying() -> None:
    assert _stopped_over_a_weed(min_speed_mps=0.0).nozzle_states(5.0)[4]   # without the cut-off
    p = _stopped_over_a_weed()                                             # default 5 cm/s
    assert not p.nozzle_states(5.0).any() and p.applied() == "standing"
    p.update_odometry(5.0, 0.04)                  # creeping below the cut-off
    assert not p.nozzle_states(5.1).any()
    p.update_odometry(5.2, 1.0)                   # moving again: the rest of the window
    assert p.nozzle_states(5.21)[4] and p.applied() == "spot"
    # standing also overrides a blanket failure policy; the explicit blanket mode it does not
    q = _stopped_over_a_weed(failure_policy="blanket")
    assert not q.nozzle_states(200.0).any() and q.applied() == "standing"
    assert _stopped_over_a_weed(mode="blanket").nozzle_states(5.0).all()


def test_min_open_time_holds_a_short_window() -> None:
    p = planner(min_open_s=0.2)
    p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(4)}), 0.0)
    times = open_times(p, 4, 0.0, 1.3, dt=0.001)
    assert times[0] == pytest.approx(0.73, abs=1.5e-3)
    assert times[-1] == pytest.approx(0.93, abs=1.5e-3)


def test_memory_is_bounded() -> None:
    p = planner()
    rng = np.random.default_rng(3)
    for k in range(3000):  # 30 m at 1 m/s, 100 frames/s, 5 weeds per frame, half tracked
        t = k * 0.01
        p.update_odometry(t, 1.0)
        rows = [{"x": float(rng.uniform(0.0, 0.4)), "y": lane_y(int(rng.integers(12))),
                 "track_id": (k * 5 + j) if j % 2 else 0} for j in range(5)]
        p.add_targets(t, targets(*rows), t)
        p.nozzle_states(t)
    assert p.stored_intervals < 300  # only what lies between camera and nozzles
    assert len(p._times) <= planner_module.HISTORY_MAX

    p = planner()  # standing still, untracked repeats and a tracker that churns ids
    p.update_odometry(0.0, 0.0)
    for k in range(10000):
        p.add_targets(0.0, targets({"x": 0.3, "y": lane_y(k % 12), "track_id": k + 1},
                                   {"x": 0.3 + (k % 7) * 1e-3, "y": lane_y(3)}), 0.0)
    assert len(p._tracks) == planner_module.MAX_TRACKS
    assert len(p.windows(3)) <= 2
    assert p.counters["evicted_targets"] == 10000 - planner_module.MAX_TRACKS


def test_config_validation_names_the_field() -> None:
    for kwargs, field in [({"valve_latency_s": -0.1}, "valve_latency_s"),
                          ({"margin_m": math.nan}, "margin_m"),
                          ({"mode": "mist"}, "mode"),
                          ({"failure_policy": "spot"}, "failure_policy"),
                          ({"stale_timeout_s": 0.0}, "stale_timeout_s"),
                          ({"spray_classes": ()}, "spray_classes"),
                          ({"spray_classes": (2, -1)}, "spray_classes"),
                          ({"max_target_age_s": 0}, "max_target_age_s"),
                          ({"min_open_s": -1.0}, "min_open_s"),
                          ({"default_speed_mps": 0.0}, "default_speed_mps"),
                          ({"odom_timeout_s": -1.0}, "odom_timeout_s"),
                          ({"min_speed_mps": math.nan}, "min_speed_mps")]:
        with pytest.raises(ConfigError, match=field):
            PlannerConfig(**kwargs)
    assert PlannerConfig(spray_classes=[2, 3]).spray_classes == (2, 3)


def test_parameter_table() -> None:
    names = [p.name for p in PARAMETERS]
    assert len(names) == len(set(names))
    assert all(p.description for p in PARAMETERS)
    for name in ("nozzle_count", "nozzle_spacing_m", "boom_center_y_m", "nozzle_offset_m",
                 "camera_x_m", "valve_latency_s", "margin_m", "mode", "failure_policy",
                 "stale_timeout_s", "rate_hz", "spray_classes", "default_speed_mps",
                 "target_frame", "max_target_age_s", "odom_timeout_s", "min_speed_mps"):
        assert name in names
    boom, config = build(defaults())
    assert boom.nozzle_x == pytest.approx(-0.5) and boom.nozzle_count == 12
    # the command period is the node's rate (rate_hz), not a core setting: the core's default
    # is the point test of a planner stepped continuously (the simulator's 2 ms)
    assert config.command_period_s == pytest.approx(1 / 50)
    assert replace(config, command_period_s=0.0) == PlannerConfig()
    assert validate("spray_classes", [2, 3]) is None
    assert validate("spray_classes", []) is not None
    assert validate("mode", "mist") is not None and validate("nozzle_count", 0) is not None
    assert validate("use_sim_time", True) is None
    with pytest.raises(ConfigError, match="margin_m"):
        build({**defaults(), "margin_m": -1.0})
    assert build({**defaults(), "default_speed_mps": 0.7})[1].default_speed_mps == 0.7


def test_short_gaps_between_windows_are_bridged() -> None:
    # two weeds in lane 6, 1 cm apart after their margins: one window; 5 cm apart: two
    p = planner(bridge_gap_m=0.02)
    p.add_targets(0.0, targets({"x": 0.30, "y": lane_y(6), "size_x": 0.02},
                               {"x": 0.37, "y": lane_y(6), "size_x": 0.02},
                               {"x": 0.51, "y": lane_y(6), "size_x": 0.02}), 0.0)
    # intervals [0.27, 0.33], [0.34, 0.40], [0.48, 0.54]; the nozzle reaches x at t = x + 0.47
    opened = [bool(p.nozzle_states(t)[6]) for t in np.arange(0.70, 1.05, 0.005)]
    runs = np.diff(np.concatenate(([0], np.array(opened, int), [0])))
    assert (runs == 1).sum() == 2          # the 1 cm gap bridged, the 8 cm gap not
    q = planner(bridge_gap_m=0.0)
    q.add_targets(0.0, targets({"x": 0.30, "y": lane_y(6), "size_x": 0.02},
                               {"x": 0.37, "y": lane_y(6), "size_x": 0.02}), 0.0)
    opened = [bool(q.nozzle_states(t)[6]) for t in np.arange(0.70, 0.90, 0.005)]
    runs = np.diff(np.concatenate(([0], np.array(opened, int), [0])))
    assert (runs == 1).sum() == 2          # without bridging the valve closes in between
