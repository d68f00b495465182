"""Large photos as overlapping tiles, so thin plants keep enough pixels (issue 17).

Squeezing an 8-megapixel photo into one 384x512 input is a 6x downscale: seedlings and grass
blades a few pixels wide vanish. Here a photo much larger than the model input is cut into
overlapping tiles of the model's aspect ratio, each ``tile_scale`` times the input size per
side (so each is downscaled by ``tile_scale``; the default, 3, is the best of those measured
in docs/TILING.md for the shipped model), every tile goes through :meth:`Segmenter.segment`
(the same preprocessing as any frame, so a tile of another aspect ratio is fitted, not
stretched) and the tiles' outputs are blended back into one label map at the photo's size.
A photo's ground resolution is unknown here (no camera model for files), so the tile scale
is a setting, not derived from the model card.

Blending: a model gives labels and the winning class's softmax probability p per pixel, not
every class's probability. Each tile contributes a probability vector (p for its label,
(1 - p) / (n - 1) for each other class) weighted by a ramp that falls linearly from 1 to 0
across the overlap towards the tile's inner edges (edges on the photo's border keep weight 1);
the blended label is the arg-max of the weighted sum. Across an overlap two tiles cross-fade,
so the seam follows neither tile's border, and a clearly confident tile can overrule a hesitant
one near its edge.

Used by ``predict`` and ``eval`` (``--tiles auto|off|RxC``, ``--tile-scale``); the ROS node
does not tile (one inference per camera frame).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from crop_weed_seg.backends import BackendOptions
from crop_weed_seg.classes import CLASS_NAMES
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.perception.predictor import Predictor
from crop_weed_seg.perception.segmenter import (
    SegmentationResult,
    Segmenter,
    Timings,
    load_predictor,
)

#: Each tile covers this many model inputs per side (each is downscaled by this factor).
#: docs/TILING.md has the measurements behind the value (Peanut photos upsampled 3x, shipped
#: model): re-measure with scripts/measure_tiling.py when the default model changes.
DEFAULT_TILE_SCALE = 3.0
#: ``auto`` tiles a photo only when fitting it whole into the model input would shrink it by
#: more than this factor (per side); below, the photo is segmented whole.
AUTO_MIN_DOWNSCALE = 1.5
#: Neighbouring tiles overlap by at least this share of a tile's side.
DEFAULT_OVERLAP = 0.125

TileSpec = Union[str, tuple[int, int]]
#: ``weighted``: confidence-weighted cross-fade over the overlaps (the default);
#: ``centre``: each pixel takes the label of the tile it lies deepest inside (hard seams at the
#: middle of the overlaps; compared in docs/TILING.md).
BLENDS = ("weighted", "centre")


@dataclass(frozen=True)
class Tile:
    """Rows ``y0:y1`` and columns ``x0:x1`` of the photo."""

    y0: int
    y1: int
    x0: int
    x1: int


@dataclass(frozen=True)
class TilePlan:
    rows: int
    cols: int
    tiles: tuple[Tile, ...]

    @property
    def grid(self) -> str:
        return f"{self.rows}x{self.cols}"


def parse_tiles(text: str | tuple[int, int]) -> TileSpec:
    """``auto``, ``off`` or ``RxC`` (rows x columns, e.g. ``3x3``) → ``"auto"``, ``"off"`` or
    (R, C). Raises ConfigError for anything else."""
    if isinstance(text, tuple):
        rows, cols = text
    else:
        value = str(text).strip().lower()
        if value in ("auto", "off"):
            return value
        try:
            rows, cols = (int(v) for v in value.split("x"))
        except ValueError:
            raise ConfigError(f"--tiles must be auto, off or RxC (e.g. 3x3), got {text!r}") \
                from None
    if not (1 <= rows <= 64 and 1 <= cols <= 64):
        raise ConfigError(f"--tiles {rows}x{cols}: rows and columns must be 1..64")
    return rows, cols


def _positions(length: int, tile: int, count: int) -> list[int]:
    """``count`` start offsets of tiles of size ``tile`` spread evenly over ``length``."""
    if count == 1:
        return [(length - tile) // 2]
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _axis(length: int, tile: int, overlap: float) -> tuple[int, int]:
    """(tile count, tile size) along one axis for tiles of at most ``tile`` pixels that
    overlap by at least ``overlap`` of a tile."""
    tile = max(1, min(tile, length))
    if tile >= length:
        return 1, length
    step = max(1, int(tile * (1.0 - overlap)))
    return 1 + math.ceil((length - tile) / step), tile


def plan_tiles(frame_hw: tuple[int, int], input_hw: tuple[int, int], tiles: TileSpec = "auto",
               tile_scale: float | None = None, overlap: float = DEFAULT_OVERLAP) -> TilePlan:
    """The tiles for a photo of ``frame_hw`` and a model input of ``input_hw`` (both H, W).

    ``off``: one tile, the whole photo. ``auto``: the whole photo unless fitting it into the
    input would shrink it by more than AUTO_MIN_DOWNSCALE and by more than ``tile_scale``;
    else a grid of tiles of the input's aspect ratio, ``tile_scale`` times its size, evenly
    spread with at least ``overlap`` between neighbours. ``(R, C)``: R x C equal tiles
    covering the photo with ``overlap`` (of a tile) between neighbours; their aspect ratio is
    whatever the grid gives (each is fitted into the input, not stretched).
    """
    H, W = frame_hw
    h, w = input_hw
    if not 0.0 <= overlap < 0.5:
        raise ConfigError(f"tile overlap must be in [0, 0.5), got {overlap}")
    scale = DEFAULT_TILE_SCALE if tile_scale is None else float(tile_scale)
    if not scale > 0:
        raise ConfigError(f"--tile-scale must be > 0, got {tile_scale}")
    spec = parse_tiles(tiles)
    whole = TilePlan(1, 1, (Tile(0, H, 0, W),))
    if spec == "off":
        return whole
    if isinstance(spec, str):                      # auto
        downscale = max(H / h, W / w)
        if downscale <= max(AUTO_MIN_DOWNSCALE, scale):
            return whole
        rows, th = _axis(H, round(h * scale), overlap)
        cols, tw = _axis(W, round(w * scale), overlap)
    else:
        rows, cols = min(spec[0], H), min(spec[1], W)
        th = min(H, math.ceil(H / (rows - (rows - 1) * overlap)))
        tw = min(W, math.ceil(W / (cols - (cols - 1) * overlap)))
    ys, xs = _positions(H, th, rows), _positions(W, tw, cols)
    return TilePlan(rows, cols, tuple(Tile(y, y + th, x, x + tw) for y in ys for x in xs))


def _ramp(start: int, stop: int, lo_inner: bool, hi_inner: bool, width: int) -> np.ndarray:
    """Weights along one axis of a tile: 1 inside, falling linearly to ~0 over ``width``
    pixels towards an inner edge (one shared with a neighbouring tile)."""
    n = stop - start
    pos = np.arange(n, dtype=np.float32) + 0.5
    weight = np.ones(n, np.float32)
    if width > 0:
        if lo_inner:
            weight = np.minimum(weight, pos / width)
        if hi_inner:
            weight = np.minimum(weight, (n - pos) / width)
    return weight


class Blender:
    """Blends per-tile labels and confidences (each at its tile's size) into one map of the
    photo's size; ``blend`` is ``weighted`` or ``centre`` (see BLENDS and the module doc)."""

    def __init__(self, frame_hw: tuple[int, int], plan: TilePlan, num_classes: int,
                 blend: str = "weighted") -> None:
        if blend not in BLENDS:
            raise ConfigError(f"blend must be one of {BLENDS}, got {blend!r}")
        self.hw = frame_hw
        self.n = num_classes
        self.blend = blend
        H, W = frame_hw
        self.votes = np.zeros((num_classes, H, W), np.float32)
        self.total = np.zeros((H, W), np.float32)   # weighted: sum of weights; centre: depth
        ys = sorted({t.y0 for t in plan.tiles})
        xs = sorted({t.x0 for t in plan.tiles})
        th = plan.tiles[0].y1 - plan.tiles[0].y0
        tw = plan.tiles[0].x1 - plan.tiles[0].x0
        # cross-fade over the narrowest overlap between neighbours along each axis
        self.ramp_y = max(0, min((th - (b - a) for a, b in zip(ys, ys[1:])), default=0))
        self.ramp_x = max(0, min((tw - (b - a) for a, b in zip(xs, xs[1:])), default=0))
        self.deep = max(H, W)

    def add(self, tile: Tile, labels: np.ndarray, confidence: np.ndarray) -> None:
        H, W = self.hw
        region = (slice(tile.y0, tile.y1), slice(tile.x0, tile.x1))
        edges = (tile.y0 > 0, tile.y1 < H, tile.x0 > 0, tile.x1 < W)   # inner edges
        if self.blend == "centre":
            # depth inside the tile (to its nearest inner edge): the deepest tile wins
            wy = _ramp(tile.y0, tile.y1, edges[0], edges[1], self.deep) * self.deep
            wx = _ramp(tile.x0, tile.x1, edges[2], edges[3], self.deep) * self.deep
            depth = np.minimum(wy[:, None], wx[None, :])
            best = self.total[region]
            deeper = depth > best
            best[deeper] = depth[deeper]
            for c in range(self.n):
                plane = self.votes[c][region]
                plane[deeper] = np.where(labels[deeper] == c, confidence[deeper], 0.0)
            return
        wy = _ramp(tile.y0, tile.y1, edges[0], edges[1], self.ramp_y)
        wx = _ramp(tile.x0, tile.x1, edges[2], edges[3], self.ramp_x)
        weight = wy[:, None] * wx[None, :]
        rest = weight * (1.0 - confidence) / max(1, self.n - 1)   # each class that did not win
        top = weight * confidence - rest                         # extra for the winning class
        self.total[region] += weight
        for c in range(self.n):
            plane = self.votes[c][region]
            plane += rest
            plane += np.where(labels == c, top, np.float32(0.0))

    def result(self, want_confidence: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """(labels (H, W) uint8, confidence (H, W) float32 or None)."""
        labels = self.votes.argmax(axis=0).astype(np.uint8)
        if not want_confidence:
            return labels, None
        best = self.votes.max(axis=0)
        if self.blend == "centre":
            return labels, best
        return labels, (best / np.maximum(self.total, 1e-12)).astype(np.float32)


class TiledSegmenter:
    """A :class:`Segmenter` that cuts large photos into blended tiles (see the module doc).

    ``tiles``: ``auto``, ``off`` or (rows, cols) / ``"RxC"``; ``tile_scale``: each tile's
    size in model inputs per side (None: DEFAULT_TILE_SCALE). A photo planned as one tile goes
    through the segmenter unchanged (the same result as without tiling).
    """

    def __init__(self, segmenter: Segmenter, tiles: TileSpec = "auto",
                 tile_scale: float | None = None, overlap: float = DEFAULT_OVERLAP,
                 blend: str = "weighted") -> None:
        if blend not in BLENDS:
            raise ConfigError(f"blend must be one of {BLENDS}, got {blend!r}")
        self.blend = blend
        self.segmenter = segmenter
        self.contract = segmenter.contract
        self.name = segmenter.name
        self.tiles = parse_tiles(tiles)
        self.tile_scale = tile_scale
        self.overlap = overlap
        plan_tiles((1000, 1000), self.contract.input.size, self.tiles, tile_scale, overlap)
        self.last_plan: TilePlan | None = None

    def close(self) -> None:
        self.segmenter.close()

    def plan(self, frame_hw: tuple[int, int]) -> TilePlan:
        return plan_tiles(frame_hw, self.contract.input.size, self.tiles, self.tile_scale,
                          self.overlap)

    def segment(self, frame: np.ndarray, channel_order: str = "RGB",
                want_confidence: bool = True) -> SegmentationResult:
        """Like :meth:`Segmenter.segment`; the ``*_model`` maps are None for a tiled photo
        and timings add up over the tiles."""
        plan = self.plan(frame.shape[:2])
        self.last_plan = plan
        if len(plan.tiles) == 1 and plan.tiles[0] == Tile(0, frame.shape[0], 0, frame.shape[1]):
            return self.segmenter.segment(frame, channel_order, want_confidence)
        blender = Blender(frame.shape[:2], plan, self.contract.num_classes, self.blend)
        pre = inf = post = 0.0
        for tile in plan.tiles:
            part = np.ascontiguousarray(frame[tile.y0:tile.y1, tile.x0:tile.x1])
            result = self.segmenter.segment(part, channel_order, want_confidence=True)
            assert result.confidence is not None
            t0 = time.perf_counter()
            blender.add(tile, result.labels, result.confidence)
            pre += result.timings.preprocess_ms
            inf += result.timings.infer_ms
            post += result.timings.postprocess_ms + (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        labels, confidence = blender.result(want_confidence)
        n = self.contract.num_classes
        counts = np.bincount(labels.reshape(-1), minlength=n)[:n]
        coverage = {name: float(c) / labels.size for name, c in zip(CLASS_NAMES, counts)}
        post += (time.perf_counter() - t0) * 1e3
        return SegmentationResult(labels, confidence, coverage, Timings(pre, inf, post))

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Labels of an RGB photo (the Predictor interface used by eval)."""
        return self.segment(rgb, "RGB", want_confidence=False).labels


def tiled_predictor(model: str | Path, backend: str = "auto",
                    options: BackendOptions = BackendOptions(), tiles: TileSpec = "auto",
                    tile_scale: float | None = None) -> Predictor:
    """What ``eval`` and ``predict`` score with: a model folder → a :class:`TiledSegmenter`
    (``tiles`` auto/off/RxC); ``classical`` → the classical baseline (never tiled)."""
    spec = parse_tiles(tiles)
    if tile_scale is not None and not tile_scale > 0:
        raise ConfigError(f"--tile-scale must be > 0, got {tile_scale}")
    predictor = load_predictor(model, backend, options)
    if isinstance(predictor, Segmenter):
        return TiledSegmenter(predictor, spec, tile_scale)
    return predictor
