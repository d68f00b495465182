"""Bookkeeping of a frame-processing loop, without ROS: the newest-frame mailbox, rates,
latency percentiles and the health verdict the node publishes on ``/diagnostics``.

Everything here is bounded: the mailbox holds one frame, every window is a ``deque`` with a
``maxlen``. Times are plain floats in seconds: ``steady`` times come from ``time.monotonic`` (rates,
staleness), latencies are computed by the caller from ROS times and given in milliseconds.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar("T")

OK, WARN, ERROR, STALE = "OK", "WARN", "ERROR", "STALE"


class LatestFrameSlot(Generic[T]):
    """A one-item mailbox between a subscription callback and a worker thread.

    ``put`` replaces a frame the worker has not taken yet and counts it as dropped, so the
    worker always gets the newest frame and latency stays bounded when frames arrive faster
    than they are processed.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when an unprocessed older frame was dropped for it."""
        with self._cond:
            dropped = self._item is not None
            if dropped:
                self.dropped += 1
            self._item = item
            self._cond.notify()
            return dropped

    def take(self, timeout: float | None = None) -> T | None:
        """The newest frame, waiting up to ``timeout`` s; None on timeout or when closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake a waiting ``take`` for good (shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


def _rate(times: deque[float], now: float, window_s: float) -> float:
    """Events per second over the last ``window_s`` seconds (or since the first event)."""
    recent = [t for t in times if now - t <= window_s]
    if len(recent) < 2:
        return 0.0
    span = max(now - recent[0], recent[-1] - recent[0])
    return (len(recent) - 1) / span if span > 0 else 0.0


@dataclass
class FrameStats:
    """Counters and rolling windows of one processing loop. Thread-safe."""

    window: int = 600          # samples kept for percentiles and means
    rate_window_s: float = 5.0
    frames_in: int = 0
    frames_out: int = 0
    rejected: int = 0
    failed: int = 0
    last_reject: str = ""
    last_input_steady: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._in_times: deque[float] = deque(maxlen=self.window)
        self._out_times: deque[float] = deque(maxlen=self.window)
        self._latency: deque[float] = deque(maxlen=self.window)
        self._overhead: deque[float] = deque(maxlen=self.window)
        self._stages: deque[tuple[float, float, float]] = deque(maxlen=self.window)

    def frame_received(self, steady: float) -> None:
        with self._lock:
            self.frames_in += 1
            self.last_input_steady = steady
            self._in_times.append(steady)

    def frame_rejected(self, reason: str) -> None:
        """A frame that could not be used (bad encoding, size, data, model output)."""
        with self._lock:
            self.rejected += 1
            self.last_reject = reason

    def frame_failed(self, reason: str) -> None:
        """An unexpected error while processing a frame (a bug or a runtime failure)."""
        with self._lock:
            self.failed += 1
            self.last_reject = reason

    def frame_published(self, steady: float, latency_ms: float, preprocess_ms: float,
                        infer_ms: float, postprocess_ms: float) -> None:
        with self._lock:
            self.frames_out += 1
            self._out_times.append(steady)
            self._latency.append(latency_ms)
            self._overhead.append(latency_ms - infer_ms)
            self._stages.append((preprocess_ms, infer_ms, postprocess_ms))

    def snapshot(self, now_steady: float) -> dict[str, Any]:
        """Numbers for ``/diagnostics``: rates [Hz], latency percentiles and stage means [ms].
        The overhead is each frame's latency minus its inference time: transport to the node,
        waiting for the worker, conversion, pre/postprocessing and publishing."""
        with self._lock:
            lat = np.asarray(self._latency, np.float64)
            overhead = np.asarray(self._overhead, np.float64)
            stages = np.asarray(self._stages, np.float64).reshape(-1, 3)
            snap: dict[str, Any] = {
                "frames_in": self.frames_in, "frames_out": self.frames_out,
                "rejected_frames": self.rejected, "failed_frames": self.failed,
                "last_reject_reason": self.last_reject,
                "input_rate_hz": _rate(self._in_times, now_steady, self.rate_window_s),
                "output_rate_hz": _rate(self._out_times, now_steady, self.rate_window_s),
                "seconds_since_last_frame": (None if self.last_input_steady is None
                                             else now_steady - self.last_input_steady),
            }
        if lat.size:
            p50, p95 = np.percentile(lat, [50, 95])
            o50, o95 = np.percentile(overhead, [50, 95])
            snap.update(latency_p50_ms=float(p50), latency_p95_ms=float(p95),
                        latency_max_ms=float(lat.max()), overhead_p50_ms=float(o50),
                        overhead_p95_ms=float(o95))
        else:
            snap.update(latency_p50_ms=None, latency_p95_ms=None, latency_max_ms=None,
                        overhead_p50_ms=None, overhead_p95_ms=None)
        means = stages.mean(axis=0) if stages.size else (None, None, None)
        snap.update(preprocess_ms=means[0], inference_ms=means[1], postprocess_ms=means[2])
        return snap


def health(snap: dict[str, Any], latency_budget_ms: float, stale_timeout_s: float,
           rejected_before: int = 0) -> tuple[str, str]:
    """(level, message) for a snapshot: STALE without input for ``stale_timeout_s``, WARN when
    the latency p95 exceeds the budget or frames were rejected since ``rejected_before``."""
    since = snap["seconds_since_last_frame"]
    if since is None:
        return STALE, "no image received yet"
    if since > stale_timeout_s:
        return STALE, f"no image for {since:.1f} s (stale_timeout_s {stale_timeout_s:g})"
    problems = []
    p95 = snap["latency_p95_ms"]
    if p95 is not None and p95 > latency_budget_ms:
        problems.append(f"latency p95 {p95:.0f} ms > budget {latency_budget_ms:g} ms")
    new_rejects = snap["rejected_frames"] + snap["failed_frames"] - rejected_before
    if new_rejects > 0:
        problems.append(f"{new_rejects} frame(s) rejected: {snap['last_reject_reason']}")
    if problems:
        return WARN, "; ".join(problems)
    return OK, f"segmenting at {snap['output_rate_hz']:.1f} Hz"
