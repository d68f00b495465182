"""The spray chain run on simulated frames.

Chain. :func:`perceive` renders frames and runs each through the node's frame processor
(:class:`~crop_weed_seg.perception.frame.FrameProcessor`: segment → targets → tracker);
:func:`plan` feeds the targets to the ``SprayPlanner`` when they would arrive (image stamp +
processing latency), steps time in ``dt_s`` and records the commanded nozzle states; the valves
open ``valve_delay_s`` after the command (the physical delay the planner must compensate).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.perception.frame import Frame, FrameProcessor, FrameSettings
from crop_weed_seg.perception.segmenter import SegmentationResult, Timings
from crop_weed_seg.sim.camera import SimCamera
from crop_weed_seg.sim.drive import Drive, Odometry, SimFrame, drive_frames
from crop_weed_seg.sim.timeline import Timeline
from crop_weed_seg.sim.world import SimField
from crop_weed_seg.spray.geometry import Boom
from crop_weed_seg.spray.pipeline import SpraySettings
from crop_weed_seg.spray.planner import PlannerConfig, SprayPlanner
from crop_weed_seg.spray.targets import TargetConfig


@dataclass
class Perception:
    """Per frame: (stamp [s], travel [m], target records) and timings."""

    frames: list[tuple[float, float, np.ndarray]]
    render_s: float
    segment_s: float
    chain_s: float
    mode: str


def _spray_settings(camera: SimCamera, boom: Boom, target_config: Any,
                    tracker_gate_m: float | None) -> SpraySettings:
    """The node's spray settings for this camera mount and boom. ``target_config``: None
    (defaults), SpraySettings (its target and tracking fields) or TargetConfig (the fields the
    node has as parameters; others must keep their defaults)."""
    base = SpraySettings()
    if isinstance(target_config, SpraySettings):
        base = target_config
    elif target_config is not None:
        shared = {f.name for f in dataclasses.fields(TargetConfig)} & set(base.__dataclass_fields__)
        default = TargetConfig()
        other = [f.name for f in dataclasses.fields(TargetConfig) if f.name not in shared
                 and getattr(target_config, f.name) != getattr(default, f.name)]
        if other:
            raise ConfigError(f"target_config sets {', '.join(other)}, which the node's frame "
                              "processor does not take (spray settings only)")
        base = dataclasses.replace(base, **{k: getattr(target_config, k) for k in shared})
    mount = camera.projector.mount
    return dataclasses.replace(
        base, camera_x_m=mount.x, camera_y_m=mount.y, camera_height_m=mount.height,
        camera_pitch_deg=mount.pitch_deg, camera_roll_deg=mount.roll_deg,
        camera_yaw_deg=mount.yaw_deg, hfov_deg=0.0, nozzle_count=boom.nozzle_count,
        nozzle_spacing_m=boom.nozzle_spacing_m, boom_center_y_m=boom.center_y,
        nozzle_offset_m=mount.x - boom.nozzle_x, default_speed_mps=-1.0,
        track_gate_m=base.track_gate_m if tracker_gate_m is None else tracker_gate_m)


def perceive(fld: SimField, camera: SimCamera, boom: Boom, drive: Drive, segmenter: Any = None,
             *, target_config: Any = None, odometry: Odometry | None = None, seed: int = 0,
             tracker_gate_m: float | None = None,
             on_frame: Callable[[SimFrame, np.ndarray, np.ndarray], None] | None = None
             ) -> Perception:
    """Render the drive and turn each frame into tracked targets with the node's frame
    processor: the camera's intrinsics are its CameraInfo, the reported odometry speed at each
    frame's stamp its odometry, the camera mount and boom its spray settings (travel for the
    tracker is integrated from that speed, as on the robot). ``segmenter`` None = truth mode
    (the ground-truth labels, confidence 1). ``on_frame(frame, labels, records)`` gets the labels
    the targets came from (the model's resolution)."""
    odo = odometry or Odometry(drive.speed_mps)
    settings = FrameSettings(spray=_spray_settings(camera, boom, target_config, tracker_gate_m),
                             max_speed_mps=math.inf)   # the simulator's speed is the truth
    processor = FrameProcessor(segmenter, settings)
    intr = camera.intrinsics
    processor.set_camera_info([intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0],
                              intr.distortion, intr.width, intr.height, intr.model)
    out = []
    t_render = t_seg = t_chain = 0.0
    frames = drive_frames(fld, camera, drive, seed)
    while True:
        t0 = time.perf_counter()
        fr = next(frames, None)
        t_render += time.perf_counter() - t0
        if fr is None:
            break
        processor.update_odometry(fr.stamp_s, odo.reported_speed(fr.stamp_s))
        frame = Frame(fr.rgb, "RGB", int(round(fr.stamp_s * 1e9)))
        if segmenter is None:
            conf = np.ones(fr.labels.shape, np.float32)
            truth = SegmentationResult(fr.labels, conf, {}, Timings(0.0, 0.0, 0.0), fr.labels,
                                       conf)
            result = processor.process_segmented(frame, truth)
        else:
            result = processor.process(frame, want_confidence=False)
        tm = result.timings
        t_seg += (tm.preprocess_ms + tm.infer_ms + tm.postprocess_ms) / 1e3
        t_chain += tm.targets_ms / 1e3
        out.append((fr.stamp_s, fr.travel_m, result.targets))
        if on_frame is not None:
            on_frame(fr, result.labels_model, result.targets)
    return Perception(out, t_render, t_seg, t_chain, "truth" if segmenter is None else "model")


def _default_planner(boom: Boom, planner_config: Any) -> Any:
    return SprayPlanner(boom, planner_config if planner_config is not None else PlannerConfig())


def plan(perception: Perception, boom: Boom, drive: Drive, *, latency_s: float = 0.0,
         planner_config: Any = None, planner: Any = None, valve_delay_s: float | None = None,
         odometry: Odometry | None = None, dt_s: float = 0.002) -> Timeline:
    """Feed the targets to the planner when they arrive (stamp + ``latency_s``) and record the
    nozzle states every ``dt_s``. The valves open ``valve_delay_s`` after the command (default:
    the planner config's ``valve_latency_s`` when it has one, else 0)."""
    pl = planner if planner is not None else _default_planner(boom, planner_config)
    if valve_delay_s is None:
        cfg = planner_config if planner_config is not None else getattr(pl, "config", None)
        valve_delay_s = float(getattr(cfg, "valve_latency_s", 0.0) or 0.0)
    odo = odometry or Odometry(drive.speed_mps)
    arrivals = sorted(((stamp + latency_s, stamp, recs) for stamp, _, recs in perception.frames),
                      key=lambda a: a[0])
    n = int(math.floor(drive.duration_s / dt_s)) + 1
    states = np.zeros((n, boom.nozzle_count), bool)
    try:
        with_now = "now_s" in inspect.signature(pl.add_targets).parameters
    except (TypeError, ValueError):
        with_now = False
    j = 0
    for i in range(n):
        t = i * dt_s
        pl.update_odometry(t, odo.reported_speed(t))
        while j < len(arrivals) and arrivals[j][0] <= t + 1e-9:
            if with_now:
                pl.add_targets(arrivals[j][1], arrivals[j][2], now_s=t)
            else:
                pl.add_targets(arrivals[j][1], arrivals[j][2])
            j += 1
        states[i] = np.asarray(pl.nozzle_states(t), bool)[:boom.nozzle_count]
    t_phys = np.arange(n) * dt_s + valve_delay_s
    return Timeline(t_phys, states, dt_s, drive.start_x, drive.speed_mps)
