"""Speed × frame rate × latency sweeps of the simulated chain, and the latency budget they give."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from crop_weed_seg.sim.camera import SimCamera
from crop_weed_seg.sim.chain import perceive, plan
from crop_weed_seg.sim.drive import plan_drive
from crop_weed_seg.sim.scoring import Score, score
from crop_weed_seg.sim.timeline import Timeline
from crop_weed_seg.sim.world import SimField
from crop_weed_seg.spray.geometry import Boom


@dataclass
class SimResult:
    speed_mps: float
    frame_rate_hz: float
    latency_s: float
    mode: str
    frames: int
    targets: int
    score: Score
    timeline: Timeline = field(repr=False)
    timings_s: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        s = self.score
        return {"speed_mps": self.speed_mps, "fps": self.frame_rate_hz,
                "latency_ms": round(self.latency_s * 1000.0, 1), "mode": self.mode,
                "frames": self.frames, "targets": self.targets, "weeds": s.weeds_scored,
                "weed_hit_rate": s.weed_hit_rate, "crop_hit_rate": s.crop_hit_rate,
                "weed_stem_hit_rate": s.weed_stem_hit_rate,
                "crop_stem_hit_rate": s.crop_stem_hit_rate,
                "double_sprays": s.double_sprays, "sprayed_ratio": s.sprayed_ratio,
                **{k: round(v, 3) for k, v in self.timings_s.items()}}


def sweep(fld: SimField, camera: SimCamera, boom: Boom, *, speeds: Sequence[float] = (0.5, 1, 2, 3),
          frame_rates: Sequence[float] = (10, 15, 30), latencies_s: Sequence[float] = (0.0,),
          segmenter: Any = None, target_config: Any = None, planner_config: Any = None,
          seed: int = 0, valve_delay_s: float | None = None,
          score_kw: dict[str, Any] | None = None,
          progress: Callable[[SimResult], None] | None = None) -> list[SimResult]:
    """Every speed × frame rate × latency. Frames are rendered and segmented once per
    (speed, frame rate); only planning and scoring repeat per latency."""
    results = []
    for v in speeds:
        for f in frame_rates:
            drive = plan_drive(fld, camera, boom, float(v), float(f))
            per = perceive(fld, camera, boom, drive, segmenter, target_config=target_config,
                           seed=seed)
            for lat in latencies_s:
                t0 = time.perf_counter()
                tl = plan(per, boom, drive, latency_s=float(lat), planner_config=planner_config,
                          valve_delay_s=valve_delay_s)
                t1 = time.perf_counter()
                sc = score(fld, boom, tl, drive.scored_span, **(score_kw or {}))
                r = SimResult(float(v), float(f), float(lat), per.mode, len(per.frames),
                              sum(len(x) for _, _, x in per.frames), sc, tl,
                              {"render_s": per.render_s, "segment_s": per.segment_s,
                               "chain_s": per.chain_s, "plan_s": t1 - t0,
                               "score_s": time.perf_counter() - t1})
                results.append(r)
                if progress is not None:
                    progress(r)
    return results


def latency_budget(results: Sequence[SimResult], min_weed_hit_rate: float = 0.95
                   ) -> dict[tuple[float, float], float | None]:
    """Per (speed, frame rate): the largest extra latency [s] whose weed hit rate is at least
    ``min_weed_hit_rate`` with every smaller tested latency passing too; None when even the
    smallest fails."""
    out: dict[tuple[float, float], float | None] = {}
    groups: dict[tuple[float, float], list[SimResult]] = {}
    for r in results:
        groups.setdefault((r.speed_mps, r.frame_rate_hz), []).append(r)
    for key, rs in groups.items():
        best = None
        for r in sorted(rs, key=lambda r: r.latency_s):
            if r.score.weed_hit_rate >= min_weed_hit_rate:
                best = r.latency_s
            else:
                break
        out[key] = best
    return out
