"""Latency and throughput of the Segmenter per backend and input size (``crop-weed-seg bench``).

Frames are synthetic field images rendered at each camera size (a few distinct ones, cycled),
so preprocessing and postprocessing see realistic content. Wall-clock timing with
``time.perf_counter`` per stage; on CUDA the backend's ``infer`` returns host arrays, so its time
includes the device work and the copies.
"""

from __future__ import annotations

import resource
from dataclasses import asdict, dataclass, replace

import numpy as np

from crop_weed_seg.backends import BackendOptions
from crop_weed_seg.perception.segmenter import Segmenter
from crop_weed_seg.synthetic import PRESETS, generate_sample

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((480, 640), (720, 1280), (1080, 1920))


@dataclass(frozen=True)
class BenchResult:
    """One (backend, input size) measurement; times in ms, memory in MiB."""

    backend: str
    detail: str
    input: tuple[int, int]
    frames: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    fps: float
    preprocess_ms: float
    infer_ms: float
    postprocess_ms: float
    peak_rss_mib: float

    def to_json(self) -> dict[str, object]:
        doc = asdict(self)
        doc["input"] = list(self.input)
        return doc


def bench_frames(size: tuple[int, int], count: int = 4, seed: int = 12345) -> list[np.ndarray]:
    cfg = replace(PRESETS["heldout"], height=size[0], width=size[1])
    return [generate_sample(cfg, seed, i)[0] for i in range(count)]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def bench_segmenter(segmenter: Segmenter, size: tuple[int, int], frames: int = 100,
                    warmup: int = 10, want_confidence: bool = False) -> BenchResult:
    """Time ``frames`` calls of ``segment`` at ``size`` after ``warmup`` untimed ones."""
    images = bench_frames(size)
    for i in range(warmup):
        segmenter.segment(images[i % len(images)], "RGB", want_confidence)
    pre, inf, post, total = [], [], [], []
    for i in range(frames):
        t = segmenter.segment(images[i % len(images)], "RGB", want_confidence).timings
        pre.append(t.preprocess_ms)
        inf.append(t.infer_ms)
        post.append(t.postprocess_ms)
        total.append(t.total_ms)
    arr = np.array(total)
    return BenchResult(
        backend=segmenter.backend.name, detail=segmenter.backend.detail, input=size,
        frames=frames, p50_ms=float(np.percentile(arr, 50)), p95_ms=float(np.percentile(arr, 95)),
        p99_ms=float(np.percentile(arr, 99)), mean_ms=float(arr.mean()),
        fps=float(1000.0 / arr.mean()), preprocess_ms=float(np.median(pre)),
        infer_ms=float(np.median(inf)), postprocess_ms=float(np.median(post)),
        peak_rss_mib=_peak_rss_mib())


def run_benchmark(model: str, backends: list[str],
                  sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES, frames: int = 100,
                  warmup: int = 10, options: BackendOptions = BackendOptions()
                  ) -> list[BenchResult]:
    results = []
    for name in backends:
        segmenter = Segmenter(model, name, options)
        try:
            for size in sizes:
                results.append(bench_segmenter(segmenter, size, frames, warmup))
        finally:
            segmenter.close()
    return results
