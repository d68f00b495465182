"""The simulated drive as a rosbag2 (``crop_weed_seg.sim.bag_writer``): written through
``crop_weed_seg.bags.rosbag_io``, it appears only once complete (the bag's content is checked in
test_simulator.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crop_weed_seg.errors import BagError
from crop_weed_seg.sim import FieldConfig, SimCamera, generate_field, write_bag
from crop_weed_seg.spray.geometry import Boom

pytest.importorskip("rosbags")

FIELD = FieldConfig(length_m=1.0, width_m=0.6, gsd_mm=4.0)


def test_bag_folder_is_complete_with_its_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "drive"
    truth = write_bag(out, generate_field(FIELD, seed=1), SimCamera.default(), Boom(),
                      speed_mps=1.0, frame_rate_hz=10.0, max_frames=2)
    assert truth["drive"]["frames"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["drive.mcap", "ground_truth.json",
                                                     "metadata.yaml"]
    assert [p.name for p in tmp_path.iterdir()] == ["drive"]  # no temporary folder left


def test_existing_folder_is_a_bag_error(tmp_path: Path) -> None:
    out = tmp_path / "drive"
    out.mkdir()
    with pytest.raises(BagError, match="exists"):
        write_bag(out, generate_field(FIELD, seed=1), SimCamera.default(), Boom(),
                  speed_mps=1.0, frame_rate_hz=10.0, max_frames=1)
    assert list(out.iterdir()) == []
