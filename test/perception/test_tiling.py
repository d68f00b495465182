"""Large photos as overlapping, blended tiles (issue 17): the plan, the blending, and labels
at the photo's size in place; ``predict`` and ``eval`` through the CLI functions."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from crop_weed_seg.backends.base import InferenceOutput
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.perception.segmenter import Segmenter
from crop_weed_seg.perception.tiling import (
    AUTO_MIN_DOWNSCALE,
    DEFAULT_TILE_SCALE,
    Blender,
    Tile,
    TiledSegmenter,
    TilePlan,
    parse_tiles,
    plan_tiles,
    tiled_predictor,
)

from support import REPO

MODEL = REPO / "models" / "default"
INPUT = (384, 512)
SOIL, GREEN = (110, 80, 60), (50, 160, 40)


class GreenerThanRed:
    """Per-pixel stand-in for a network: crop (1) where green > red in the input tensor,
    confidence 0.9. Counts its calls."""

    name = "fake"
    detail = "per-pixel"

    def __init__(self) -> None:
        self.calls = 0

    def infer(self, tensor: np.ndarray) -> InferenceOutput:
        self.calls += 1
        labels = (tensor[0, 1] > tensor[0, 0]).astype(np.int32)
        return InferenceOutput(labels, np.full(labels.shape, 0.9, np.float32))

    def close(self) -> None:
        pass


def _covers_with_overlap(plan: TilePlan, hw: tuple[int, int], min_overlap: float) -> None:
    H, W = hw
    hits = np.zeros(hw, np.int32)
    for t in plan.tiles:
        assert 0 <= t.y0 < t.y1 <= H and 0 <= t.x0 < t.x1 <= W
        hits[t.y0:t.y1, t.x0:t.x1] += 1
    assert hits.min() >= 1
    ys = sorted({t.y0 for t in plan.tiles})
    xs = sorted({t.x0 for t in plan.tiles})
    th, tw = plan.tiles[0].y1 - plan.tiles[0].y0, plan.tiles[0].x1 - plan.tiles[0].x0
    for a, b in zip(ys, ys[1:]):
        assert th - (b - a) >= min_overlap * th - 1
    for a, b in zip(xs, xs[1:]):
        assert tw - (b - a) >= min_overlap * tw - 1
    assert len(plan.tiles) == plan.rows * plan.cols == len(ys) * len(xs)


def test_parse_tiles() -> None:
    assert parse_tiles("auto") == "auto" and parse_tiles("OFF") == "off"
    assert parse_tiles("3x4") == (3, 4) and parse_tiles((2, 2)) == (2, 2)
    for bad in ("3", "x3", "0x2", "3x3x3", "many", "100x1"):
        with pytest.raises(ConfigError, match="--tiles"):
            parse_tiles(bad)


@pytest.mark.parametrize("hw", [(480, 640), (720, 960), (1080, 1440), (384, 512), (512, 512),
                                (720, 1280)])
def test_auto_leaves_photos_near_the_input_size_whole(hw: tuple[int, int]) -> None:
    assert max(hw[0] / INPUT[0], hw[1] / INPUT[1]) <= max(AUTO_MIN_DOWNSCALE, DEFAULT_TILE_SCALE)
    plan = plan_tiles(hw, INPUT, "auto")
    assert plan.tiles == (Tile(0, hw[0], 0, hw[1]),)


@pytest.mark.parametrize("hw", [(2160, 2880), (2448, 3264), (3024, 4032), (1080, 1920),
                                (4000, 1000)])
def test_auto_tiles_large_photos_at_the_tile_scale(hw: tuple[int, int]) -> None:
    plan = plan_tiles(hw, INPUT, "auto")
    assert len(plan.tiles) > 1
    _covers_with_overlap(plan, hw, 0.125)
    t = plan.tiles[0]
    th, tw = t.y1 - t.y0, t.x1 - t.x0
    assert th == min(hw[0], round(INPUT[0] * DEFAULT_TILE_SCALE))
    assert tw == min(hw[1], round(INPUT[1] * DEFAULT_TILE_SCALE))


def test_a_fixed_grid_and_off() -> None:
    plan = plan_tiles((2448, 3264), INPUT, "3x3")
    assert (plan.rows, plan.cols) == (3, 3)
    _covers_with_overlap(plan, (2448, 3264), 0.12)
    assert plan_tiles((2448, 3264), INPUT, "off").tiles == (Tile(0, 2448, 0, 3264),)
    assert len(plan_tiles((2448, 3264), INPUT, "auto", tile_scale=1.0).tiles) > \
        len(plan_tiles((2448, 3264), INPUT, "auto", tile_scale=3.0).tiles)
    with pytest.raises(ConfigError, match="tile-scale"):
        plan_tiles((2448, 3264), INPUT, "auto", tile_scale=0)


def _two_tiles(conf_a: float, conf_b: float, blend: str) -> np.ndarray:
    """Labels of a 10x100 photo from two tiles (columns 0:60 say 1, 40:100 say 2)."""
    plan = TilePlan(1, 2, (Tile(0, 10, 0, 60), Tile(0, 10, 40, 100)))
    blender = Blender((10, 100), plan, 3, blend)
    blender.add(plan.tiles[0], np.full((10, 60), 1, np.uint8), np.full((10, 60), conf_a,
                                                                       np.float32))
    blender.add(plan.tiles[1], np.full((10, 60), 2, np.uint8), np.full((10, 60), conf_b,
                                                                       np.float32))
    labels, confidence = blender.result()
    assert confidence is not None and confidence.shape == (10, 100)
    assert np.all(confidence <= 1.0 + 1e-6) and np.all(confidence > 0)
    return labels[0]


def test_blending_cross_fades_the_overlap_and_trusts_the_confident_tile() -> None:
    row = _two_tiles(0.8, 0.8, "weighted")
    assert set(row[:40]) == {1} and set(row[60:]) == {2}       # outside the overlap: own tile
    assert list(row).index(2) == 50                             # equal confidence: the middle
    row = _two_tiles(0.5, 0.99, "weighted")                     # the confident tile reaches
    assert 40 < list(row).index(2) < 50                         # further into the overlap
    row = _two_tiles(0.5, 0.99, "centre")                       # hard seam: always the middle
    assert list(row).index(2) == 50 and set(row[:50]) == {1}


def _plants(h: int, w: int) -> np.ndarray:
    """Soil with discs all over, several across tile borders, and a thin 3-pixel stem line."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = SOIL
    rng = np.random.default_rng(7)
    for _ in range(40):
        cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                   int(rng.integers(15, 60)), GREEN, -1)
    cv2.line(img, (0, h // 3), (w - 1, h // 3 + 40), GREEN, 3)
    return img


def test_tiled_labels_match_the_plants_across_seams() -> None:
    """Tiles of exactly the input size (tile scale 1) and a per-pixel model: every tile is
    right wherever it looks, so the blend must be exact everywhere; any seam artefact or
    misplaced tile would show."""
    h, w = 2160, 2880
    img = _plants(h, w)
    truth = img[:, :, 1] > img[:, :, 0]
    for blend in ("weighted", "centre"):
        fake = GreenerThanRed()
        tiled = TiledSegmenter(Segmenter(MODEL, backend_instance=fake), "auto", tile_scale=1.0,
                               blend=blend)
        result = tiled.segment(img, "RGB", want_confidence=True)
        assert tiled.last_plan is not None and fake.calls == len(tiled.last_plan.tiles) > 1
        assert result.labels.shape == (h, w) and result.confidence.shape == (h, w)
        assert result.labels_model is None
        assert np.array_equal(result.labels == 1, truth), blend
        assert np.allclose(result.confidence, 0.9, atol=1e-4)
        assert sum(result.coverage.values()) == pytest.approx(1.0)


def test_tiles_keep_a_thin_stem_that_one_squeezed_input_loses() -> None:
    h, w = 2160, 2880
    img = _plants(h, w)
    truth = img[:, :, 1] > img[:, :, 0]
    band = slice(h // 3 - 20, h // 3 + 80)     # around the stem line, away from most discs

    def iou(tiles: str) -> float:
        tiled = TiledSegmenter(Segmenter(MODEL, backend_instance=GreenerThanRed()), tiles)
        pred = tiled.predict(img)[band] == 1
        return float((pred & truth[band]).sum() / (pred | truth[band]).sum())

    assert iou("auto") > iou("off") + 0.05


def test_a_photo_planned_as_one_tile_is_the_plain_segmenter_result() -> None:
    seg = Segmenter(MODEL, backend_instance=GreenerThanRed())
    img = _plants(720, 960)
    assert np.array_equal(TiledSegmenter(seg, "auto").predict(img), seg.predict(img))


def test_tiled_predictor_wraps_models_but_not_the_classical_baseline() -> None:
    pytest.importorskip("onnxruntime")
    assert isinstance(tiled_predictor(MODEL, tiles="2x2"), TiledSegmenter)
    assert not isinstance(tiled_predictor("classical", tiles="2x2"), TiledSegmenter)
    with pytest.raises(ConfigError):
        tiled_predictor(MODEL, tiles="lots")


def test_predict_files_tiles_a_large_photo_and_says_so(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from crop_weed_seg.image_files import read_label_image, write_image_atomic
    from crop_weed_seg.tools.predict_files import predict_files

    write_image_atomic(tmp_path / "in" / "big.jpg", _plants(2160, 2880))
    write_image_atomic(tmp_path / "in" / "small.png", _plants(480, 640))
    rows = predict_files(MODEL, [str(tmp_path / "in")], tmp_path / "out")
    grids = {Path(r["image"]).name: r["tiles"] for r in rows}
    assert grids["small.png"] == "1x1" and grids["big.jpg"] != "1x1"
    assert read_label_image(tmp_path / "out" / "labels" / "big.png").shape == (2160, 2880)
    rows = predict_files(MODEL, [str(tmp_path / "in" / "big.jpg")], tmp_path / "o2",
                         tiles="off")
    assert rows[0]["tiles"] == "1x1"


def test_cli_predict_and_eval_take_tiles(tiny_field: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``--tiles`` / ``--tile-scale`` on ``predict`` and ``eval`` (a forced grid works on
    small frames too); a bad value is a one-line error, exit 2."""
    pytest.importorskip("onnxruntime")
    import json

    from crop_weed_seg.tools.cli import main

    out = tmp_path / "p"
    assert main(["predict", str(tiny_field / "images"), "--model", str(MODEL), "--out",
                 str(out), "--tiles", "2x2", "--quiet"]) == 0
    rows = json.loads((out / "stats.json").read_text())["images"]
    assert rows and {r["tiles"] for r in rows} == {"2x2"}
    assert main(["eval", "--model", str(MODEL), "--data", str(tiny_field), "--tiles", "2x2",
                 "--tile-scale", "1.5", "--limit", "2", "--quiet"]) == 0
    assert "mIoU" in capsys.readouterr().out
    assert main(["eval", "--model", str(MODEL), "--data", str(tiny_field), "--tiles", "9",
                 "--quiet"]) == 2
    assert "--tiles must be auto, off or RxC" in capsys.readouterr().err
