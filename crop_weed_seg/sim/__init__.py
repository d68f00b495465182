"""Drive simulator: a ground-truth field strip, a camera driving over it, the spray chain, and a
score of what the nozzles actually hit (docs/SIMULATION.md).

Modules, in the order a drive uses them:

- :mod:`~crop_weed_seg.sim.world`: the field strip and its plants (``FieldConfig``,
  ``generate_field``, ``SimField``, ``Plant``).
- :mod:`~crop_weed_seg.sim.camera`: what the camera sees of the field (``SimCamera``).
- :mod:`~crop_weed_seg.sim.drive`: the robot's drive, odometry and rendered frames
  (``plan_drive``, ``Drive``, ``Odometry``, ``drive_frames``, ``SimFrame``).
- :mod:`~crop_weed_seg.sim.chain`: the per-frame perception chain and the planner run on it
  (``perceive``, ``Perception``, ``plan``).
- :mod:`~crop_weed_seg.sim.timeline`: physical nozzle states over time (``Timeline``,
  ``timeline_from_ground_windows``, ``oracle_timeline``).
- :mod:`~crop_weed_seg.sim.scoring`: weeds hit, crops hit, double sprays, sprayed share
  (``score``, ``Score``, ``spray_windows``).
- :mod:`~crop_weed_seg.sim.sweeps`: speed × frame rate × latency sweeps (``sweep``,
  ``SimResult``, ``latency_budget``).
- :mod:`~crop_weed_seg.sim.bag_writer`: a simulated drive as a rosbag2 with ground truth
  (``write_bag``).
"""

from crop_weed_seg.sim.bag_writer import write_bag
from crop_weed_seg.sim.camera import SimCamera
from crop_weed_seg.sim.chain import Perception, perceive, plan
from crop_weed_seg.sim.drive import Drive, Odometry, SimFrame, drive_frames, plan_drive
from crop_weed_seg.sim.scoring import Score, score, spray_windows
from crop_weed_seg.sim.sweeps import SimResult, latency_budget, sweep
from crop_weed_seg.sim.timeline import Timeline, oracle_timeline, timeline_from_ground_windows
from crop_weed_seg.sim.world import FieldConfig, Plant, SimField, generate_field

__all__ = [
    "Drive", "FieldConfig", "Odometry", "Perception", "Plant", "Score", "SimCamera", "SimField",
    "SimFrame", "SimResult", "Timeline", "drive_frames", "generate_field", "latency_budget",
    "oracle_timeline", "perceive", "plan", "plan_drive", "score", "spray_windows", "sweep",
    "timeline_from_ground_windows", "write_bag",
]
