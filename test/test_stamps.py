"""One stamp conversion for every layer (crop_weed_seg.stamps)."""

from __future__ import annotations

from types import SimpleNamespace

from crop_weed_seg.stamps import header_stamp_ns, split_ns, stamp_seconds


def test_split_and_join_round_trip_also_before_1970() -> None:
    for t in (0, 1, 1_780_308_000_123_456_789, -1, -1_500_000_000):
        sec, nsec = split_ns(t)
        assert 0 <= nsec < 1_000_000_000 and sec * 1_000_000_000 + nsec == t
        header = SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nsec))
        assert header_stamp_ns(header) == t
    assert split_ns(-1) == (-1, 999_999_999)


def test_seconds_are_sec_plus_nanosec_as_odometry_headers_give_them() -> None:
    assert stamp_seconds(1_780_308_000_123_456_789) == 1_780_308_000 + 123_456_789 * 1e-9
    assert stamp_seconds(2_500_000_000) == 2.5
