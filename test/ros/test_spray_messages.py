"""``spray_targets`` clouds read back by field name; an unusable cloud is one InvalidFrameError
naming the problem (the planner node counts and drops it)."""

from __future__ import annotations

import array
from typing import Any

import pytest

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402

from crop_weed_seg.errors import InvalidFrameError  # noqa: E402
from crop_weed_seg.ros.spray_messages import cloud_from_records, records_from_cloud  # noqa: E402
from crop_weed_seg.spray.records import empty_targets  # noqa: E402


def test_a_cloud_reads_back_as_the_records_it_was_made_of() -> None:
    records = empty_targets(2)
    records["x"], records["lane"] = [1.0, 2.0], [0, 3]
    back = records_from_cloud(cloud_from_records(records, Time(sec=1), "base_link"))
    assert list(back["x"]) == [1.0, 2.0] and list(back["lane"]) == [0, 3]


def test_unusable_clouds_are_invalid_frames_naming_the_problem() -> None:
    def cloud() -> Any:
        return cloud_from_records(empty_targets(2), Time(sec=1), "base_link")

    big_endian = cloud()
    big_endian.is_bigendian = True
    short = cloud()
    short.data = array.array("B", bytes(10))
    no_lane = cloud()
    no_lane.fields = [f for f in no_lane.fields if f.name != "lane"]
    for msg, message in [(big_endian, "big-endian"), (short, "does not hold 2 points"),
                         (no_lane, "lacks the fields lane")]:
        with pytest.raises(InvalidFrameError, match=message):
            records_from_cloud(msg)
