"""Synthetic field generator: determinism, label/render consistency, config errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from crop_weed_seg.classes import CROP, SOIL, WEED
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.image_files import read_label_image, read_rgb
from crop_weed_seg.synthetic import PRESETS, generate_sample
from crop_weed_seg.synthetic.dataset_writer import write_dataset
from crop_weed_seg.synthetic.plants import WEED_MORPHOLOGIES

SMALL = replace(PRESETS["train"], height=160, width=192)
#: No camera effects at all: what is drawn is what is seen.
CLEAN = replace(SMALL, cast_shadow_prob=0.0, motion_blur_prob=0.0, defocus_prob=0.0,
                jpeg_prob=0.0, read_noise=(0.0, 0.0), shot_noise=(0.0, 0.0),
                weed_free_prob=0.0, weeds_per_m2=(80.0, 120.0))


def exg(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(np.float32) / (rgb.astype(np.float32).sum(axis=2, keepdims=True) + 1e-3)
    return 2 * c[:, :, 1] - c[:, :, 0] - c[:, :, 2]


def test_generator_is_deterministic_for_a_seed_and_index() -> None:
    a = generate_sample(SMALL, seed=7, index=3)
    b = generate_sample(SMALL, seed=7, index=3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_generator_differs_between_seeds_and_indices() -> None:
    base = generate_sample(SMALL, seed=7, index=3)[0]
    assert not np.array_equal(base, generate_sample(SMALL, seed=8, index=3)[0])
    assert not np.array_equal(base, generate_sample(SMALL, seed=7, index=4)[0])


def test_generator_outputs_have_the_requested_shape_and_label_set() -> None:
    rgb, labels, meta = generate_sample(SMALL, seed=1, index=0)
    assert rgb.shape == (160, 192, 3) and rgb.dtype == np.uint8
    assert labels.shape == (160, 192) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {SOIL, CROP, WEED}
    json.dumps(meta)  # serialisable


def test_labels_match_what_was_rendered_without_camera_effects() -> None:
    """Every labelled plant pixel is green and soil pixels are not (ExG), frame after frame."""
    for index in range(4):
        rgb, labels, meta = generate_sample(CLEAN, seed=11, index=index)
        index_map = exg(rgb)
        veg = labels > 0
        assert veg.any() and (~veg).any()
        assert np.mean(index_map[veg] > 0.05) > 0.97, meta
        assert np.mean(index_map[~veg] < 0.05) > 0.97, meta


def test_weed_frames_hold_weed_pixels_and_crop_rows_hold_crop_pixels() -> None:
    for index in range(4):
        _, labels, meta = generate_sample(CLEAN, seed=5, index=index)
        if meta["crops_in_view"] > 0:  # a crop centred in the frame always shows
            assert (labels == CROP).any()
        if (labels == CROP).any():
            assert meta["crops"] > 0
        if meta["weeds"] > 3:
            assert (labels == WEED).any()


def test_train_preset_never_draws_the_heldout_morphology_or_light() -> None:
    train, heldout = PRESETS["train"], PRESETS["heldout"]
    unseen = set(heldout.weed_morphologies) - set(train.weed_morphologies)
    assert unseen == {"trifoliate"}
    assert len(train.weed_morphologies) >= 4 and len(train.crop_morphologies) >= 2
    lo = min(r[0] for r in train.color_temperature_k)
    hi = max(r[1] for r in train.color_temperature_k)
    for a, b in heldout.color_temperature_k:
        assert b < lo or a > hi
    kinds: set[str] = set()
    for index in range(12):
        sample = generate_sample(replace(heldout, height=128, width=128), 3, index)
        kinds |= set(sample[2]["plants"])
    assert "trifoliate" in kinds


def test_every_weed_morphology_draws_weed_pixels() -> None:
    for name in WEED_MORPHOLOGIES:
        cfg = replace(CLEAN, weed_morphologies=(name,), weeds_per_m2=(400.0, 400.0))
        _, labels, meta = generate_sample(cfg, seed=2, index=0)
        assert meta["plants"].get(name, 0) > 0
        assert (labels == WEED).sum() > 20, name


def test_unknown_morphology_is_a_config_error_listing_valid_names() -> None:
    with pytest.raises(ConfigError, match="unknown weed morphology 'cactus'.*grass"):
        replace(SMALL, weed_morphologies=("cactus",)).validate()


def test_written_dataset_is_the_same_with_one_or_two_workers(tmp_path: Path) -> None:
    write_dataset(tmp_path / "a", SMALL, seed=4, count=3, workers=1)
    write_dataset(tmp_path / "b", SMALL, seed=4, count=3, workers=2)
    for stem in ("field_000000", "field_000002"):
        assert np.array_equal(read_rgb(tmp_path / "a/images" / f"{stem}.png"),
                              read_rgb(tmp_path / "b/images" / f"{stem}.png"))
        assert np.array_equal(read_label_image(tmp_path / "a/labels" / f"{stem}.png"),
                              read_label_image(tmp_path / "b/labels" / f"{stem}.png"))
    rgb, labels, _ = generate_sample(SMALL, 4, 2)
    assert np.array_equal(read_label_image(tmp_path / "a/labels/field_000002.png"), labels)
    info = json.loads((tmp_path / "a/synth.json").read_text())
    assert info["seed"] == 4 and info["count"] == 3
    assert len((tmp_path / "a/frames.jsonl").read_text().splitlines()) == 3
