"""Scoring a drive over ROS without ROS: one scoring code for both simulators (a timeline with
explicit base positions scores like the linear one), labels matched by stamp into a running
confusion matrix (missing, late, size-mismatched frames), the nozzle recorder that rebuilds
``plan``'s timeline from command and odometry samples, end detection and the report files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from crop_weed_seg.data.metrics import confusion_matrix, scores_from_confusion
from crop_weed_seg.errors import ConfigError, InvalidFrameError
from crop_weed_seg.sim import Timeline, oracle_timeline, perceive, plan, score, spray_windows
from crop_weed_seg.sim.live_scoring import (
    EndDetector,
    LiveConfusion,
    LiveScorer,
    NozzleRecorder,
    ScorerSettings,
    final_table,
    label_plane,
    nozzle_vector,
    write_report,
)
from crop_weed_seg.sim.scenario import BoomSpec, CameraSpec, Scenario
from crop_weed_seg.sim.scoring import Score
from crop_weed_seg.sim.world import FieldConfig
from crop_weed_seg.spray.geometry import Boom
from crop_weed_seg.spray.planner import nozzle_joint_names

NS = 10**9
MS = 10**6
SCENARIO = Scenario(field=FieldConfig(length_m=3.0, width_m=0.6, gsd_mm=2.0), seed=5,
                    camera=CameraSpec(width=160, height=120, height_m=0.5),
                    boom=BoomSpec(nozzles=6, spacing_m=0.1))


@pytest.fixture(scope="module")
def drive_setup():
    fld = SCENARIO.build_field()
    boom = SCENARIO.build_boom()
    drive = SCENARIO.plan(fld)
    perception = perceive(fld, SCENARIO.build_camera(), boom, drive, None, seed=SCENARIO.seed)
    timeline = plan(perception, boom, drive, planner_config=SCENARIO.planner_config())
    return fld, boom, drive, timeline


def assert_same_score(a: Score, b: Score, area_rel: float) -> None:
    """Every count and every plant's sprayed fraction equal; areas within ``area_rel``."""
    for f in dataclasses.fields(Score):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if f.name in ("sprayed_area_m2", "blanket_area_m2"):
            assert va == pytest.approx(vb, rel=area_rel, abs=1e-12), f.name
        elif f.name in ("weed_fraction", "crop_fraction"):
            assert va.keys() == vb.keys(), f.name
            for k in va:
                assert va[k] == pytest.approx(vb[k], abs=1e-12), (f.name, k)
        else:
            assert va == vb, f.name


# ------------------------------------------------------------------ one scoring code for both

def test_explicit_base_x_scores_like_the_linear_timeline(drive_setup) -> None:
    fld, boom, drive, planned = drive_setup
    for linear in (planned, oracle_timeline(fld, boom, drive)):
        explicit = dataclasses.replace(linear, base_x=linear.start_x + linear.speed_mps * linear.t)
        a = score(fld, boom, linear, drive.scored_span)
        b = score(fld, boom, explicit, drive.scored_span)
        assert a.weeds_scored > 3 and a.weeds_hit > 0
        # the same plants hit with the same sprayed fractions; the sprayed area is summed from
        # positions added in another order, so it may differ in the last bits only
        assert_same_score(a, b, area_rel=1e-12)
        assert np.allclose([w[1:] for w in spray_windows(boom, linear)],
                           [w[1:] for w in spray_windows(boom, explicit)], rtol=0, atol=1e-12)


def test_explicit_base_x_is_where_the_nozzles_were() -> None:
    boom = Boom(4, 0.1, 0.0, -0.5)
    t = np.arange(0.0, 1.0, 0.01)
    states = np.zeros((len(t), 4), bool)
    states[10:30, 1] = True                     # open for 0.2 s
    base = np.where(t < 0.2, 2.0 * t, 0.4)      # drives at 2 m/s, stands still from t = 0.2 s
    tl = Timeline(t, states, 0.01, 0.0, 1.0, base_x=base)
    (lane, x0, x1), = spray_windows(boom, tl)
    assert lane == 1 and x0 == pytest.approx(0.2 - 0.5) and x1 == pytest.approx(0.4 - 0.5)
    with pytest.raises(ValueError, match="base_x"):
        Timeline(t, states, 0.01, 0.0, 1.0, base_x=base[:-1])


# --------------------------------------------------------------------------- segmentation

def _truth(seed: int, shape: tuple[int, int] = (12, 16)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3, shape).astype(np.uint8)


def _predicted(truth: np.ndarray, wrong: int) -> np.ndarray:
    pred = truth.copy()
    pred.reshape(-1)[:wrong] = (pred.reshape(-1)[:wrong] + 1) % 3
    return pred


def test_labels_and_truth_match_by_stamp_in_either_order() -> None:
    lc = LiveConfusion(max_pending=8, horizon_s=1.0)
    expected = np.zeros((3, 3), np.int64)
    for k in range(6):
        truth, pred = _truth(k), _predicted(_truth(k), wrong=5 * k)
        stamp = k * 100 * MS
        if k % 2:
            assert lc.add_truth(stamp, truth) == "pending"
            assert lc.add_labels(stamp, pred) == "matched"
        else:
            assert lc.add_labels(stamp, pred) == "pending"
            assert lc.add_truth(stamp, truth) == "matched"
        expected += confusion_matrix(truth, pred)
    assert lc.counts["matched"] == 6 and lc.pending == (0, 0)
    assert np.array_equal(lc.accumulator.matrix, expected)
    assert lc.scores().miou == pytest.approx(scores_from_confusion(expected).miou)
    assert lc.scores().miou < 1.0


def test_missing_late_and_mismatched_frames_are_counted_not_scored() -> None:
    lc = LiveConfusion(max_pending=8, horizon_s=1.0)
    lc.add_truth(0, _truth(0))                          # its labels come far too late
    lc.add_labels(100 * MS, _truth(1))                  # labels without truth
    assert lc.add_truth(200 * MS, _truth(2)) == "pending"
    assert lc.add_labels(200 * MS, _truth(2, (6, 8))) == "size_mismatch"
    bad = _truth(3)
    bad[0, 0] = 7
    lc.add_truth(300 * MS, _truth(3))
    assert lc.add_labels(300 * MS, bad) == "bad_labels"
    lc.add_truth(1500 * MS, _truth(4))                  # 1.5 s: frames 0 and 0.1 s expire
    assert lc.counts["labels_missing"] == 1 and lc.counts["truth_missing"] == 1
    assert lc.add_labels(0, _truth(0)) == "late"       # after its truth expired
    assert lc.add_labels(50 * MS, _truth(0)) == "late"  # older than the horizon
    assert lc.add_labels(1500 * MS, _truth(4)) == "matched"
    lc.add_truth(1600 * MS, _truth(5))
    lc.flush()                                          # the end: still waiting = missing
    assert lc.counts == {"matched": 1, "labels_missing": 2, "truth_missing": 1, "late": 2,
                         "size_mismatch": 1, "bad_labels": 1, "bad_truth": 0, "duplicates": 0}
    assert lc.accumulator.images == 1
    assert lc.scores().miou == pytest.approx(1.0)


def test_pending_buffers_are_bounded() -> None:
    lc = LiveConfusion(max_pending=4, horizon_s=100.0)
    for k in range(50):
        lc.add_truth(k * MS, _truth(k))
        assert max(lc.pending) <= 4
    assert lc.counts["labels_missing"] == 46
    assert lc.add_labels(10 * MS, _truth(10)) == "late"
    assert lc.add_labels(49 * MS, _truth(49)) == "matched"


def test_label_planes_from_mono8_rgb8_and_bgr8() -> None:
    ids = _truth(0)
    rgb = np.stack([ids, np.zeros_like(ids), np.full_like(ids, 9)], axis=2)
    assert np.array_equal(label_plane("mono8", ids), ids)
    assert np.array_equal(label_plane("rgb8", rgb), ids)
    assert np.array_equal(label_plane("bgr8", rgb), ids)
    assert label_plane("rgb8", rgb).flags.c_contiguous
    with pytest.raises(InvalidFrameError, match="mono16"):
        label_plane("mono16", ids.astype(np.uint16))
    with pytest.raises(InvalidFrameError, match="expected"):
        label_plane("rgb8", ids)


# ------------------------------------------------------------------------------- nozzles

def test_nozzle_vectors_from_joint_states() -> None:
    names = nozzle_joint_names(12)
    assert names[0] == "nozzle_00" and names[-1] == "nozzle_11"
    assert list(nozzle_vector(names, [1.0] + [0.0] * 11, 12)) == [True] + [False] * 11
    shuffled = list(reversed(names))
    assert list(nozzle_vector(shuffled, [1.0] + [0.0] * 11, 12)) == [False] * 11 + [True]
    assert list(nozzle_vector([], [0.0, 1.0], 2)) == [False, True]
    for bad_names, positions in ((names[:11], [0.0] * 11), (["a"] * 12, [0.0] * 12),
                                 (names, [float("nan")] + [0.0] * 11)):
        with pytest.raises(InvalidFrameError):
            nozzle_vector(bad_names, positions, 12)


def _feed(rec: NozzleRecorder, timeline: Timeline, drive, t0_ns: int, latency_s: float,
          every: int = 1) -> None:
    """The commands of ``timeline`` (physical t − latency) from t0, and 50 Hz odometry of a
    robot at start_x from t0 on (as field_sim drives it)."""
    cmd_ns = t0_ns + np.round((timeline.t - latency_s) * NS).astype(np.int64)
    for i in range(0, len(timeline.t), every):
        assert rec.add_states(int(cmd_ns[i]), timeline.open[i])
    end_s = timeline.t[-1] + 0.1
    for j in range(-5, int(end_s / 0.02) + 2):
        x = drive.start_x + drive.speed_mps * max(j, 0) * 0.02
        assert rec.add_odometry(t0_ns + j * 20 * MS, x)


def test_recorder_rebuilds_the_planned_timeline_and_its_score(drive_setup) -> None:
    fld, boom, drive, planned = drive_setup
    latency = SCENARIO.valve_latency_ms / 1000.0
    rec = NozzleRecorder(boom.nozzle_count)
    _feed(rec, planned, drive, 7 * NS, latency)
    rebuilt = rec.timeline(latency, 0.002)
    assert len(rebuilt.t) == len(planned.t) and rec.note == ""
    assert np.array_equal(rebuilt.open, planned.open)
    assert rebuilt.base_x is not None
    assert np.allclose(rebuilt.base_x, planned.start_x + planned.speed_mps * planned.t,
                       rtol=0, atol=1e-9)
    expect = score(fld, boom, planned, drive.scored_span)
    got = score(fld, boom, rebuilt, drive.scored_span)
    assert expect.weeds_hit > 0
    assert_same_score(got, expect, area_rel=1e-9)
    # commands at the planner's 50 Hz only: held in between, the same weeds hit
    rec50 = NozzleRecorder(boom.nozzle_count)
    _feed(rec50, planned, drive, 7 * NS, latency, every=10)
    coarse = score(fld, boom, rec50.timeline(latency, 0.002), drive.scored_span)
    assert abs(coarse.weeds_hit - expect.weeds_hit) <= 1
    assert coarse.sprayed_area_m2 == pytest.approx(expect.sprayed_area_m2, rel=0.1)


def test_recorder_bounds_order_and_empty_timelines() -> None:
    rec = NozzleRecorder(2, max_samples=3)
    assert rec.timeline(0.03).t.size == 0                  # nothing yet: empty, no error
    assert rec.add_states(10, [True, False]) and rec.add_states(20, [False, False])
    assert rec.add_states(20, [True, True])                # same stamp: replaces
    assert not rec.add_states(15, [True, True])            # back in time: refused
    assert rec.add_states(30, [False, True])
    assert not rec.add_states(40, [False, True])           # beyond max_samples
    assert rec.counts["out_of_order_states"] == 1 and rec.counts["refused_states"] == 1
    assert rec.state_samples == 3
    with pytest.raises(InvalidFrameError):
        rec.add_states(50, [True])
    with pytest.raises(InvalidFrameError):
        rec.add_odometry(50, float("inf"))
    rec.add_odometry(0, 0.0)
    assert rec.timeline(0.0).t.size == 0                   # one odometry sample: no positions
    rec.add_odometry(100, 1.0)
    tl = rec.timeline(0.0, dt_s=10e-9)
    assert tl.open.tolist() == [[True, False], [True, True], [False, True]]
    assert tl.base_x == pytest.approx([0.1, 0.2, 0.3])


def test_a_very_long_drive_is_resampled_coarser() -> None:
    rec = NozzleRecorder(1, max_timeline_samples=1000)
    rec.add_states(0, [True])
    rec.add_states(100 * NS, [False])
    rec.add_odometry(0, 0.0)
    rec.add_odometry(100 * NS, 100.0)
    tl = rec.timeline(0.0, 0.002)
    assert len(tl.t) <= 1000 and "resampled" in rec.note


# ----------------------------------------------------------------------------------- end

def test_end_after_the_drive_end_plus_latency_and_tail() -> None:
    end = EndDetector(end_x=5.0, valve_latency_s=0.03, tail_s=1.0, stall_timeout_s=5.0)
    end.update_odometry(1 * NS, 4.0)
    assert end.done(2 * NS, wall_s=0.0) is None
    end.update_odometry(2 * NS, 5.0)
    assert end.reached_ns == 2 * NS
    assert end.done(3 * NS, wall_s=1.0) is None            # 1.0 s < latency + tail
    assert end.done(3 * NS + 30 * MS, wall_s=2.0) == "drive end"


def test_end_when_the_clock_stops_after_the_drive_end() -> None:
    end = EndDetector(end_x=5.0, valve_latency_s=0.03, tail_s=1.0, stall_timeout_s=5.0)
    end.update_odometry(2 * NS, 5.0 - 1e-9)                # rounding: at the end
    assert end.done(2 * NS + 500 * MS, wall_s=10.0) is None
    assert end.done(2 * NS + 500 * MS, wall_s=14.0) is None
    assert "clock stopped 0.50 s after the drive end" in str(end.done(2 * NS + 500 * MS, 15.0))
    never = EndDetector(end_x=5.0, valve_latency_s=0.03, tail_s=1.0, stall_timeout_s=5.0)
    never.update_odometry(1 * NS, 4.9)                     # stopped short of the end
    assert never.done(1 * NS, 0.0) is None and never.done(1 * NS, 100.0) is None


# ---------------------------------------------------------------------- scorer and report

def _scorer(drive_setup) -> LiveScorer:
    fld, boom, drive, _ = drive_setup
    return LiveScorer(fld, boom, drive,
                      ScorerSettings(valve_latency_s=SCENARIO.valve_latency_ms / 1000.0))


def test_live_scorer_reports_an_oracle_drive(drive_setup, tmp_path: Path) -> None:
    fld, boom, drive, _ = drive_setup
    ls = _scorer(drive_setup)
    oracle = oracle_timeline(fld, boom, drive)
    latency = ls.settings.valve_latency_s
    t0 = 2 * NS
    names = nozzle_joint_names(boom.nozzle_count)
    for t, row in zip(np.round((oracle.t - latency) * NS).astype(np.int64) + t0, oracle.open):
        assert ls.on_nozzle_states(int(t), names, [float(v) for v in row])
    assert not ls.on_nozzle_states(t0, names[:2], [0.0, 1.0])
    passed = []
    for j in range(-5, int((drive.duration_s + 0.5) / 0.02)):
        ls.on_odometry(t0 + j * 20 * MS, drive.start_x + drive.speed_mps * max(j, 0) * 0.02)
        passed.append(ls.weeds_passed())
    assert passed == sorted(passed) and passed[0] == 0 and passed[-1] == ls.weeds_total > 0
    assert not ls.on_odometry(t0, float("nan"))
    truth = _truth(1)
    ls.on_truth(t0, truth)
    ls.on_labels(t0, _predicted(truth, 20))
    ls.on_truth(t0 + 66 * MS, truth)                       # its labels never come
    snap = ls.snapshot(t0 + NS)
    assert snap["frames_matched"] == 1 and snap["bad_nozzle_states"] == 1
    assert snap["bad_odometry"] == 1 and snap["end_reached"]
    assert "frames 1 (0 missing)" in ls.status_line(t0 + NS)
    report, timeline, sc = ls.finish(complete=True, reason="drive end")
    assert sc.weeds_scored == ls.weeds_total and sc.weeds_hit == sc.weeds_scored
    assert report["complete"] and report["frames"]["labels_missing"] == 1
    expected_miou = scores_from_confusion(confusion_matrix(truth, _predicted(truth, 20))).miou
    assert report["segmentation"]["miou"] == pytest.approx(expected_miou)
    table = final_table(report)
    assert "weeds   scored" in table and "100.0 %" in table and "1 without labels" in table
    written, note = write_report(tmp_path / "out", report, fld=fld, boom=boom,
                                 timeline=timeline, sc=sc)
    assert note == "" and [p.name for p in written] == ["score.json", "score.png"]
    data = json.loads((tmp_path / "out" / "score.json").read_text())
    assert data["score"]["weeds_hit"] == sc.weeds_hit and data["plot"] == "score.png"
    assert (tmp_path / "out" / "score.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_without_matplotlib_the_report_is_json_only(drive_setup, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import crop_weed_seg.data.plots as plots

    def no_matplotlib():    # FAKE: the runtime install, where matplotlib is missing
        raise ConfigError("PNG plots need matplotlib, which the runtime install leaves out")
    monkeypatch.setattr(plots, "pyplot", no_matplotlib)
    ls = _scorer(drive_setup)
    report, timeline, sc = ls.finish(complete=False, reason="stopped by SIGINT")
    assert not report["complete"] and sc.weeds_hit == 0
    assert any("no nozzle timeline" in n for n in report["notes"])
    written, note = write_report(tmp_path, report, fld=ls.fld, boom=ls.boom, timeline=timeline,
                                 sc=sc)
    assert [p.name for p in written] == ["score.json"] and "matplotlib" in note
    data = json.loads((tmp_path / "score.json").read_text())
    assert data["plot"] is None and any("matplotlib" in n for n in data["notes"])
    assert not (tmp_path / "score.png").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="output folder"):
        write_report(blocker / "sub", report)
