"""The node's bookkeeping without ROS: newest-frame mailbox, rates, percentiles, health."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from crop_weed_seg.ros.node_stats import OK, STALE, WARN, FrameStats, LatestFrameSlot, health


def test_slot_keeps_the_newest_and_counts_drops() -> None:
    slot: LatestFrameSlot[int] = LatestFrameSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True
    assert slot.take(0) == 3 and slot.dropped == 2
    assert slot.take(0) is None


def test_slot_wakes_a_waiting_worker_and_closes() -> None:
    slot: LatestFrameSlot[str] = LatestFrameSlot()
    got: list = []
    worker = threading.Thread(target=lambda: got.append(slot.take(30)))
    worker.start()
    slot.put("frame")
    worker.join(10)
    assert got == ["frame"]
    waiting = threading.Thread(target=lambda: got.append(slot.take(30)))
    waiting.start()
    slot.close()
    waiting.join(10)
    assert not waiting.is_alive() and got[-1] is None and slot.closed


def test_snapshot_rates_percentiles_and_bounded_windows() -> None:
    stats = FrameStats(window=50, rate_window_s=5.0)
    for i in range(200):
        t = 100.0 + i * 0.1           # 10 Hz in and out
        stats.frame_received(t)
        stats.frame_published(t, latency_ms=float(i % 10), preprocess_ms=1.0, infer_ms=20.0,
                              postprocess_ms=2.0)
    snap = stats.snapshot(100.0 + 199 * 0.1)
    assert snap["input_rate_hz"] == pytest.approx(10.0)
    assert snap["output_rate_hz"] == pytest.approx(10.0)
    assert snap["latency_p50_ms"] == pytest.approx(4.5)
    assert snap["latency_max_ms"] == 9.0
    assert snap["inference_ms"] == pytest.approx(20.0)
    expected_p95 = np.percentile(np.tile(np.arange(10.0), 5) - 20.0, 95)
    assert snap["overhead_p95_ms"] == pytest.approx(expected_p95)
    assert snap["frames_in"] == 200 and snap["frames_out"] == 200
    assert len(stats._latency) == 50 and len(stats._in_times) == 50  # nothing grows


def test_empty_snapshot_and_health_levels() -> None:
    stats = FrameStats()
    snap = stats.snapshot(0.0)
    assert snap["latency_p95_ms"] is None and snap["output_rate_hz"] == 0.0
    assert health(snap, 100.0, 2.0)[0] == STALE

    stats.frame_received(10.0)
    stats.frame_published(10.0, 30.0, 1.0, 20.0, 2.0)
    assert health(stats.snapshot(10.5), 100.0, 2.0)[0] == OK
    level, message = health(stats.snapshot(10.5), 25.0, 2.0)
    assert level == WARN and "latency p95 30 ms > budget 25 ms" in message
    level, message = health(stats.snapshot(13.0), 100.0, 2.0)
    assert level == STALE and "no image for 3.0 s" in message

    stats.frame_rejected("image encoding 'yuv' is not supported")
    level, message = health(stats.snapshot(10.5), 100.0, 2.0, rejected_before=0)
    assert level == WARN and "1 frame(s) rejected: image encoding 'yuv'" in message
    assert health(stats.snapshot(10.5), 100.0, 2.0, rejected_before=1)[0] == OK
