"""The classical baseline on hand-made scenes: brown soil, green crop discs on parallel rows,
green weed blobs between the rows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from crop_weed_seg.classes import CROP, SOIL, WEED
from crop_weed_seg.data.metrics import confusion_matrix, scores_from_confusion
from crop_weed_seg.errors import ConfigError, InvalidFrameError
from crop_weed_seg.perception.classical import (
    ClassicalConfig,
    ClassicalSegmenter,
    RowModel,
    detect_rows,
    excess_green,
    vegetation_mask,
)

SOIL_RGB = (120, 85, 60)
CROP_RGB = (60, 150, 45)
WEED_RGB = (95, 165, 55)


@dataclass
class Scene:
    rgb: np.ndarray
    truth: np.ndarray
    angle_deg: float
    spacing: float
    offsets: list[float]


def _noisy(image: np.ndarray, rng: np.random.Generator, sigma: float = 4.0) -> np.ndarray:
    noise = rng.normal(0.0, sigma, image.shape)
    return np.clip(image.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def make_rows_scene(angle_deg: float, *, spacing: float = 140.0,
                    size: tuple[int, int] = (512, 512), n_rows: int = 3, radius: int = 14,
                    pitch: float = 40.0, weeds: bool = True, seed: int = 0) -> Scene:
    """Crop discs every ``pitch`` px along ``n_rows`` rows ``spacing`` px apart, running at
    ``angle_deg`` (counter-clockwise on screen from +x, the RowModel convention), centred on
    the image; weed ellipses scattered near the midlines between neighbouring rows."""
    height, width = size
    rng = np.random.default_rng(seed)
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = SOIL_RGB
    truth = np.full((height, width), SOIL, np.uint8)
    a = math.radians(angle_deg)
    nx, ny = math.sin(a), math.cos(a)  # normal
    dx, dy = math.cos(a), -math.sin(a)  # along the row
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    half_len = math.hypot(width, height) / 2.0
    offsets = [(k - (n_rows - 1) / 2.0) * spacing for k in range(n_rows)]

    def point(offset: float, t: float) -> tuple[int, int]:
        return (int(round(cx + offset * nx + t * dx)), int(round(cy + offset * ny + t * dy)))

    for offset in offsets:
        for t in np.arange(-half_len + rng.uniform(0, pitch), half_len, pitch):
            cv2.circle(rgb, point(offset, t), radius, CROP_RGB, -1)
            cv2.circle(truth, point(offset, t), radius, CROP, -1)
    if weeds:
        for left, right in zip(offsets[:-1], offsets[1:]):
            middle = (left + right) / 2.0
            for _ in range(int(2 * half_len / 70)):
                x, y = point(middle + rng.uniform(-0.12, 0.12) * spacing,
                             rng.uniform(-half_len, half_len))
                if not (0 <= x < width and 0 <= y < height):
                    continue
                axes = (int(rng.integers(5, 10)), int(rng.integers(4, 7)))
                tilt = float(rng.uniform(0, 180))
                cv2.ellipse(rgb, (x, y), axes, tilt, 0, 360, WEED_RGB, -1)
                cv2.ellipse(truth, (x, y), axes, tilt, 0, 360, WEED, -1)
    return Scene(_noisy(rgb, rng), truth, angle_deg, spacing, offsets)


def soil_image(size: tuple[int, int] = (256, 320), seed: int = 1) -> np.ndarray:
    rgb = np.empty((*size, 3), np.uint8)
    rgb[:] = SOIL_RGB
    return _noisy(rgb, np.random.default_rng(seed), sigma=6.0)


def angle_error(a: float, b: float) -> float:
    """Difference of two row directions (mod 180) in degrees."""
    return abs((a - b + 90.0) % 180.0 - 90.0)


# ----------------------------------------------------------------------------------------------
# Row detection


@pytest.mark.parametrize("index", ["exg", "exhsv"])
@pytest.mark.parametrize("angle_deg", [90.0, 70.0, 0.0, 135.0])
def test_rows_are_found_at_the_planted_angle_spacing_and_offsets(angle_deg: float,
                                                                  index: str) -> None:
    scene = make_rows_scene(angle_deg)
    _, rows = ClassicalSegmenter(ClassicalConfig(index=index)).predict_with_rows(scene.rgb)
    assert rows.found
    assert angle_error(rows.angle_deg, angle_deg) <= 2.0
    assert rows.spacing_px == pytest.approx(scene.spacing, rel=0.10)
    assert len(rows.offsets_px) == len(scene.offsets)
    for found, planted in zip(rows.offsets_px, scene.offsets):
        assert found == pytest.approx(planted, abs=0.1 * scene.spacing)


def test_tilted_rows_about_20_degrees_from_vertical_are_found_either_way() -> None:
    for angle_deg in (70.0, 110.0):
        scene = make_rows_scene(angle_deg, spacing=120.0, seed=3)
        rows = detect_rows(vegetation_mask(scene.rgb))
        assert angle_error(rows.angle_deg, angle_deg) <= 2.0
        assert rows.spacing_px == pytest.approx(120.0, rel=0.10)


def test_two_rows_in_a_rectangular_image_are_found() -> None:
    scene = make_rows_scene(85.0, spacing=260.0, n_rows=2, size=(360, 640), seed=5)
    rows = detect_rows(vegetation_mask(scene.rgb))
    assert angle_error(rows.angle_deg, 85.0) <= 2.0
    assert rows.spacing_px == pytest.approx(260.0, rel=0.10)
    assert len(rows.offsets_px) == 2


def test_a_single_row_in_view_is_found_with_its_measured_width() -> None:
    scene = make_rows_scene(80.0, n_rows=1, radius=16, pitch=45.0, seed=2)
    rgb, truth = scene.rgb.copy(), scene.truth.copy()
    for centre in [(120, 100), (400, 200), (150, 400), (380, 420), (90, 260)]:
        cv2.ellipse(rgb, centre, (8, 5), 30, 0, 360, WEED_RGB, -1)
        cv2.ellipse(truth, centre, (8, 5), 30, 0, 360, WEED, -1)
    labels, rows = ClassicalSegmenter().predict_with_rows(rgb)
    assert angle_error(rows.angle_deg, 80.0) <= 2.0
    assert len(rows.offsets_px) == 1 and rows.offsets_px[0] == pytest.approx(0.0, abs=5.0)
    assert rows.spacing_px is None
    assert rows.row_half_width_px == pytest.approx(16.0, abs=8.0)
    scores = scores_from_confusion(confusion_matrix(truth, labels))
    assert scores.iou["crop"] > 0.8 and scores.iou["weed"] > 0.8


def test_weeds_close_to_rows_of_small_crops_are_weed() -> None:
    # band_fraction x spacing = 40 px, but the crop is only 6 px in radius: the band narrows
    scene = make_rows_scene(90.0, spacing=200.0, radius=6, pitch=30.0, weeds=False, seed=3)
    rgb, truth = scene.rgb.copy(), scene.truth.copy()
    cx = (rgb.shape[1] - 1) / 2.0
    for k, offset in enumerate(scene.offsets):
        for y in range(40 + 10 * k, 500, 90):
            x = int(round(cx + offset + (30 if k % 2 else -30)))
            cv2.circle(rgb, (x, y), 5, WEED_RGB, -1)
            cv2.circle(truth, (x, y), 5, WEED, -1)
    labels, rows = ClassicalSegmenter().predict_with_rows(rgb)
    assert rows.spacing_px == pytest.approx(200.0, rel=0.10)
    assert rows.row_half_width_px is not None and rows.row_half_width_px < 25.0
    scores = scores_from_confusion(confusion_matrix(truth, labels))
    assert scores.iou["crop"] > 0.8 and scores.iou["weed"] > 0.8


def test_scattered_plants_without_rows_report_no_rows() -> None:
    rng = np.random.default_rng(11)
    rgb = np.empty((512, 512, 3), np.uint8)
    rgb[:] = SOIL_RGB
    for _ in range(25):
        centre = (int(rng.integers(0, 512)), int(rng.integers(0, 512)))
        cv2.circle(rgb, centre, int(rng.integers(4, 30)), CROP_RGB, -1)
    rows = detect_rows(vegetation_mask(rgb))
    assert not rows.found
    assert rows.offsets_px == [] and rows.spacing_px is None


def test_closed_canopy_reports_no_rows_and_is_all_crop() -> None:
    rgb = np.empty((200, 240, 3), np.uint8)
    rgb[:] = CROP_RGB
    rgb = _noisy(rgb, np.random.default_rng(2), sigma=3.0)
    labels, rows = ClassicalSegmenter().predict_with_rows(rgb)
    assert not rows.found
    assert np.all(labels == CROP)


def test_empty_mask_reports_no_rows() -> None:
    rows = detect_rows(np.zeros((64, 64), bool))
    assert rows == RowModel(angle_deg=0.0, offsets_px=[], spacing_px=None,
                            row_half_width_px=None)


# ----------------------------------------------------------------------------------------------
# Classification


@pytest.mark.parametrize("index", ["exg", "exhsv"])
@pytest.mark.parametrize("angle_deg", [90.0, 70.0])
def test_disc_pixels_are_crop_and_between_row_blobs_are_weed(angle_deg: float,
                                                             index: str) -> None:
    scene = make_rows_scene(angle_deg)
    labels = ClassicalSegmenter(ClassicalConfig(index=index)).predict(scene.rgb)
    scores = scores_from_confusion(confusion_matrix(scene.truth, labels))
    assert scores.iou["soil"] > 0.95
    assert scores.iou["crop"] > 0.8
    assert scores.iou["weed"] > 0.8


def test_without_rows_large_components_are_crop_and_small_ones_weed() -> None:
    rgb = np.empty((400, 400, 3), np.uint8)
    rgb[:] = SOIL_RGB
    big = [(90, 80), (300, 260)]
    small = [(250, 70), (110, 320), (350, 370)]
    for centre in big:
        cv2.circle(rgb, centre, 35, CROP_RGB, -1)  # ~3800 px, 2.4 % of the image
    for centre in small:
        cv2.circle(rgb, centre, 6, WEED_RGB, -1)  # ~110 px
    labels, rows = ClassicalSegmenter().predict_with_rows(rgb)
    assert not rows.found
    for x, y in big:
        assert labels[y, x] == CROP
    for x, y in small:
        assert labels[y, x] == WEED
    assert labels[5, 5] == SOIL


def test_specks_smaller_than_min_component_area_are_soil() -> None:
    rgb = soil_image((100, 100))
    rgb[20:23, 20:23] = CROP_RGB  # the opening leaves a 5 px cross: below min_component_area
    rgb[70:80, 70:80] = CROP_RGB  # 100 px
    assert vegetation_mask(rgb)[21, 21]
    labels = ClassicalSegmenter().predict(rgb)
    assert labels[21, 21] == SOIL
    assert labels[75, 75] != SOIL
    assert ClassicalSegmenter(ClassicalConfig(min_component_area=5)).predict(rgb)[21, 21] != SOIL


def test_output_shape_and_dtype_equal_the_input_and_labels_are_valid() -> None:
    scene = make_rows_scene(80.0, spacing=100.0, size=(300, 420), seed=7)
    labels = ClassicalSegmenter().predict(scene.rgb)
    assert labels.shape == scene.rgb.shape[:2]
    assert labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {SOIL, CROP, WEED}


def test_prediction_is_deterministic_and_leaves_the_input_untouched() -> None:
    scene = make_rows_scene(70.0, seed=4)
    before = scene.rgb.copy()
    segmenter = ClassicalSegmenter()
    first, rows_first = segmenter.predict_with_rows(scene.rgb)
    second, rows_second = segmenter.predict_with_rows(scene.rgb)
    assert np.array_equal(first, second)
    assert rows_first == rows_second
    assert np.array_equal(scene.rgb, before)


def test_non_contiguous_input_is_accepted() -> None:
    scene = make_rows_scene(90.0)
    flipped = scene.rgb[:, ::-1]
    labels = ClassicalSegmenter().predict(flipped)
    assert labels.shape == flipped.shape[:2]
    assert np.array_equal(labels, ClassicalSegmenter().predict(np.ascontiguousarray(flipped)))


def test_segmenter_is_named_classical() -> None:
    assert ClassicalSegmenter.name == "classical"
    assert ClassicalSegmenter().name == "classical"


# ----------------------------------------------------------------------------------------------
# Vegetation mask


@pytest.mark.parametrize("index", ["exg", "exhsv"])
def test_soil_only_image_has_no_vegetation_and_is_all_soil(index: str) -> None:
    rgb = soil_image()
    assert not vegetation_mask(rgb, index).any()
    labels, rows = ClassicalSegmenter(ClassicalConfig(index=index)).predict_with_rows(rgb)
    assert np.all(labels == SOIL)
    assert not rows.found


@pytest.mark.parametrize("index", ["exg", "exhsv"])
def test_green_plants_on_soil_are_vegetation(index: str) -> None:
    rgb = soil_image((120, 160))
    cv2.circle(rgb, (50, 60), 20, CROP_RGB, -1)
    cv2.rectangle(rgb, (100, 20), (140, 100), WEED_RGB, -1)
    mask = vegetation_mask(rgb, index)
    truth = np.zeros(mask.shape, bool)
    cv2.circle(truth.view(np.uint8), (50, 60), 20, 1, -1)
    truth[20:101, 100:141] = True
    assert mask.dtype == bool and mask.shape == rgb.shape[:2]
    assert (mask & truth).sum() / (mask | truth).sum() > 0.95


def test_isolated_green_pixels_are_removed_as_speckle() -> None:
    rgb = soil_image((64, 64))
    rgb[10, 10] = CROP_RGB
    rgb[30, 40] = CROP_RGB
    assert not vegetation_mask(rgb).any()
    assert vegetation_mask(rgb, open_px=0)[10, 10]


def test_excess_green_of_pure_colours() -> None:
    rgb = np.array([[[0, 255, 0], [128, 128, 128], [255, 0, 0], [5, 10, 5]]], np.uint8)
    exg = excess_green(rgb)
    assert exg.dtype == np.float32
    assert exg[0, 0] == pytest.approx(2.0)
    assert exg[0, 1] == pytest.approx(0.0)
    assert exg[0, 2] == pytest.approx(-1.0)
    assert exg[0, 3] == pytest.approx(-1.0)  # too dark to have a chromaticity


# ----------------------------------------------------------------------------------------------
# Row model geometry


def test_row_model_geometry_for_vertical_rows() -> None:
    rows = RowModel(angle_deg=90.0, offsets_px=[-50.0, 50.0], spacing_px=100.0)
    assert rows.found
    nx, ny = rows.normal()
    assert nx == pytest.approx(1.0) and ny == pytest.approx(0.0, abs=1e-12)
    # 201 x 101 image: centre x = 100, so the rows run along x = 50 and x = 150
    segments = rows.segments(201, 101)
    assert len(segments) == 2
    (x0, y0), (x1, y1) = segments[0]
    assert x0 == pytest.approx(50.0) and x1 == pytest.approx(50.0)
    assert sorted([y0, y1]) == pytest.approx([-0.5, 100.5])
    distances = rows.distance_to_nearest_row(np.array([50, 60, 100]), np.array([0, 7, 50]),
                                             201, 101)
    assert distances == pytest.approx([0.0, 10.0, 50.0])


def test_row_model_without_rows_is_infinitely_far_and_draws_nothing() -> None:
    rows = RowModel(angle_deg=0.0)
    assert not rows.found
    assert rows.segments(10, 10) == []
    assert np.all(np.isinf(rows.distance_to_nearest_row(np.arange(3), np.arange(3), 10, 10)))


# ----------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("bad", [
    np.zeros((10, 10), np.uint8),
    np.zeros((10, 10, 4), np.uint8),
    np.zeros((10, 10, 3), np.float32),
    np.zeros((0, 10, 3), np.uint8),
])
def test_invalid_frames_raise_invalid_frame_error(bad: np.ndarray) -> None:
    with pytest.raises(InvalidFrameError):
        ClassicalSegmenter().predict(bad)


def test_unknown_index_and_out_of_range_parameters_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="exg"):
        vegetation_mask(soil_image((8, 8)), "ndvi")
    with pytest.raises(ConfigError):
        ClassicalConfig(index="ndvi")
    with pytest.raises(ConfigError):
        ClassicalConfig(band_fraction=0.6)
    with pytest.raises(ConfigError):
        ClassicalConfig(min_component_area=-1)


def test_config_is_frozen() -> None:
    config = ClassicalConfig()
    with pytest.raises(AttributeError):
        config.index = "exhsv"  # type: ignore[misc]
