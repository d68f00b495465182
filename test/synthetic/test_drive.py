"""The simulated drive: deterministic, overlapping frames like a camera moving forward."""

from __future__ import annotations

import numpy as np
import pytest

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.synthetic import PRESETS
from crop_weed_seg.synthetic.drive import drive_config, render_drive, render_drive_strip

H, W, STEP, N = 96, 128, 12, 6


@pytest.fixture(scope="module")
def drive() -> list[tuple[np.ndarray, np.ndarray]]:
    return render_drive(PRESETS["train"], 5, N, H, W, STEP)


def test_frames_have_the_asked_shape_and_types(drive):
    assert len(drive) == N
    for rgb, labels in drive:
        assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
        assert labels.shape == (H, W) and labels.dtype == np.uint8
        assert set(np.unique(labels)) <= {0, 1, 2}


def test_deterministic_for_a_seed(drive):
    again = render_drive(PRESETS["train"], 5, N, H, W, STEP)
    for (a_rgb, a_lab), (b_rgb, b_lab) in zip(drive, again):
        np.testing.assert_array_equal(a_rgb, b_rgb)
        np.testing.assert_array_equal(a_lab, b_lab)
    other = render_drive(PRESETS["train"], 6, N, H, W, STEP)
    assert not np.array_equal(drive[0][0], other[0][0])


def test_consecutive_frames_overlap_like_a_forward_drive(drive):
    """New ground enters at the top: what frame k shows moves STEP rows down in frame k+1."""
    for (rgb0, lab0), (rgb1, lab1) in zip(drive, drive[1:]):
        np.testing.assert_array_equal(lab1[STEP:], lab0[: H - STEP])
        np.testing.assert_array_equal(rgb1[STEP:], rgb0[: H - STEP])
        assert not np.array_equal(lab1, lab0) or not np.array_equal(rgb1, rgb0)


def test_strip_and_speed():
    strip = render_drive_strip(PRESETS["heldout"], 1, 40, 480, 640, 60, gsd_mm=1.0)
    assert strip.rgb.shape == (480 + 39 * 60, 640, 3)
    assert strip.metres_per_pixel == pytest.approx(0.001)
    assert strip.speed_m_s(10.0) == pytest.approx(0.6)
    assert strip.meta["gsd_mm"] == pytest.approx(1.0)
    assert abs(strip.meta["row_angle_deg"]) < 15  # rows along the direction of travel
    assert strip.top_row(0) == strip.rgb.shape[0] - 480 and strip.top_row(39) == 0
    # crop plants all along the strip, not only in its middle
    crop_rows = (strip.labels == 1).any(axis=1)
    for k in (0, 20, 39):
        assert (strip.frame(k)[1] == 1).any(), f"frame {k} has no crop"
    assert crop_rows[:480].any() and crop_rows[-480:].any()


def test_drive_config_turns_off_strip_wide_effects():
    cfg = drive_config(PRESETS["train"], 10, 100, 120, 20)
    assert (cfg.height, cfg.width) == (100 + 9 * 20, 120)
    assert cfg.across_rows_prob == 0 and cfg.motion_blur_prob == 0
    assert cfg.jpeg_prob == 0 and cfg.cast_shadow_prob == 0
    assert cfg.gsd_mm == (1.0, 1.0)


@pytest.mark.parametrize("kwargs", [dict(frames=0), dict(step_px=100), dict(step_px=-1)])
def test_bad_drive_options(kwargs):
    args = dict(frames=5, height=100, width=120, step_px=10) | kwargs
    with pytest.raises(ConfigError):
        render_drive(PRESETS["train"], 0, **args)
