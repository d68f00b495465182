"""Synthetic top-down field images with exact per-pixel labels (0 soil, 1 crop, 2 weed)."""

from crop_weed_seg.synthetic.field import PRESETS, SynthConfig, generate_sample, sample_seed

__all__ = ["PRESETS", "SynthConfig", "generate_sample", "sample_seed"]
