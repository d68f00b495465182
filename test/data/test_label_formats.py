"""CVAT segmentation-mask exports and LabelMe JSON folders: detection, decoding, class maps,
splits and the errors (each naming its file). The exports are the tiny hand-made ones under
test/fixtures/label_formats/ (test/fixtures/label_formats/make_label_formats.py writes them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from crop_weed_seg.data.class_map import ClassMap
from crop_weed_seg.data.datasets import detect_layout, open_dataset, open_source
from crop_weed_seg.errors import ConfigError, DatasetError
from crop_weed_seg.tools.cli import main

from support import FIXTURES

DATA = FIXTURES / "label_formats"
CVAT = DATA / "cvat"
LABELME = DATA / "labelme"
SOIL, CROP, WEED, VEG, IGNORE = 0, 1, 2, 3, 255


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _labels(root: Path, **kwargs: object) -> dict[str, np.ndarray]:
    data = open_dataset(root, **kwargs)  # type: ignore[arg-type]
    out = {}
    for i, sample in enumerate(data.samples):
        rgb, labels = data[i]
        assert rgb.shape == (30, 40, 3) and labels.shape == (30, 40) and labels.dtype == np.uint8
        out[sample.stem] = labels
    return out


# --- CVAT ------------------------------------------------------------------------------------


def _cvat_expected() -> dict[str, np.ndarray]:
    a = np.zeros((30, 40), np.uint8)
    a[4:14, 4:14] = CROP      # peanut
    a[16:26, 22:36] = WEED    # grass
    a[2:8, 28:38] = VEG       # plant
    a[24:28, 2:6] = IGNORE    # stone
    b = np.zeros((30, 40), np.uint8)  # the palette PNG
    b[0:10, 0:20] = WEED
    b[3:7, 3:7] = CROP
    b[20:30, 30:40] = VEG
    return {"field_a": a, "field_b": b}


def test_cvat_export_is_detected_and_decoded_through_classes_yaml() -> None:
    assert detect_layout(CVAT) == "cvat"
    data = open_dataset(CVAT)
    assert data.layout == "cvat"
    assert [s.image_path.name for s in data.samples] == ["field_a.jpg", "field_b.png"]
    labels = _labels(CVAT)
    for stem, expected in _cvat_expected().items():
        np.testing.assert_array_equal(labels[stem], expected, err_msg=stem)


def test_cvat_splits_are_the_image_set_files() -> None:
    assert [s.stem for s in open_dataset(CVAT, split="train").samples] == ["field_a"]
    assert [s.stem for s in open_source(f"{CVAT}:val").samples] == ["field_b"]
    with pytest.raises(ConfigError, match="train, val.*'test'"):
        open_dataset(CVAT, split="test")


def test_cvat_takes_a_class_map_given_explicitly(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("classes:\n  peanut: ignore\n  grass: crop\n  plant: weed\n  stone: soil\n"
                     "  background: vegetation\n")
    a = _labels(CVAT, classes=other)["field_a"]
    assert (a[5, 5], a[20, 30], a[4, 30], a[25, 3], a[0, 0]) == (IGNORE, CROP, WEED, SOIL, VEG)


def test_cvat_class_missing_from_the_class_map_names_labelmap_txt() -> None:
    with pytest.raises(DatasetError, match=r"labelmap\.txt: class 'peanut' has no entry"):
        open_dataset(CVAT, classes=ClassMap())


def test_cvat_colour_not_in_labelmap_names_the_mask_and_colour(tmp_path: Path) -> None:
    root = _copy(CVAT, tmp_path)
    mask_path = root / "SegmentationClass/field_a.png"
    mask = cv2.imread(str(mask_path))
    assert mask is not None
    mask[0, 0] = (9, 8, 7)  # BGR
    cv2.imwrite(str(mask_path), mask)
    data = open_dataset(root)
    with pytest.raises(DatasetError, match=r"field_a\.png: 1 pixels have colours .*\(7,8,9\) x1"):
        data[0]


def test_cvat_missing_mask_and_missing_image_name_the_file(tmp_path: Path) -> None:
    root = _copy(CVAT, tmp_path)
    (root / "SegmentationClass/field_b.png").unlink()
    assert [s.stem for s in open_dataset(root).samples] == ["field_a"]  # no mask: not listed
    with pytest.raises(DatasetError, match=r"field_b\.png: image has no CVAT mask; expected "
                                           r".*SegmentationClass/field_b\.png"):
        open_dataset(root, split="val")
    (root / "JPEGImages/field_a.jpg").unlink()
    with pytest.raises(DatasetError, match=r"SegmentationClass/field_a\.png: mask has no image"):
        open_dataset(root)
    with pytest.raises(DatasetError, match=r"train\.txt: lists 'field_a' but no image"):
        open_dataset(root, split="train")


def test_cvat_malformed_labelmap_line_names_the_file(tmp_path: Path) -> None:
    root = _copy(CVAT, tmp_path)
    with (root / "labelmap.txt").open("a") as f:
        f.write("weedy:12,34::\n")
    with pytest.raises(DatasetError, match=r"labelmap\.txt: line 7 'weedy:12,34::'"):
        open_dataset(root)


# --- LabelMe ---------------------------------------------------------------------------------


def test_labelme_folder_is_detected_and_shapes_land_on_the_right_pixels() -> None:
    assert detect_layout(LABELME) == "labelme"
    data = open_dataset(LABELME)
    assert data.layout == "labelme"
    assert data.samples[1].image_path == LABELME / "pics/field_d.png"
    labels = _labels(LABELME)
    c = labels["field_c"]
    # polygon: the triangle (2,2) (18,2) (2,18), edges included
    assert c[5, 5] == c[2, 18] == c[18, 2] == CROP and c[17, 17] == SOIL
    # rectangle rows 4-12 x cols 24-36 (corners given in either order) ...
    assert c[4, 24] == c[12, 36] == c[6, 28] == WEED and c[3, 24] == c[13, 36] == SOIL
    # ... with a background rectangle rows 7-9 x cols 28-32 drawn later: a hole
    assert c[7, 28] == c[8, 30] == c[9, 32] == SOIL and c[10, 30] == WEED
    # circle centred (x 10, y 23) through (14, 23)
    assert c[23, 10] == c[23, 14] == c[19, 10] == c[27, 10] == VEG
    assert c[23, 15] == c[18, 10] == c[20, 13] == SOIL
    # line (20,28)-(38,28), 3 px wide: rows 27-29, ends 1 px longer
    assert (c[26:30, 25] == [SOIL, WEED, WEED, WEED]).all()
    assert c[28, 19] == c[28, 39] == WEED and c[28, 18] == SOIL
    # the point at (35, 20) paints nothing
    assert c[20, 35] == SOIL
    # rectangle 117 - hole 15 + line 3x21 = 165 weed pixels
    assert np.bincount(c.ravel(), minlength=4).tolist() == [833, 153, 165, 49]
    d = labels["field_d"]
    # the grass square drawn after the peanut rectangle lies on top of it
    assert d[5, 5] == d[14, 14] == d[20, 5] == CROP
    assert d[15, 15] == d[20, 20] == d[25, 25] == WEED and d[21, 5] == d[4, 5] == SOIL
    # the stone linestrip (35,25)-(35,2)-(30,2) is ignore
    assert d[10, 34] == d[10, 36] == d[26, 35] == d[1, 29] == d[3, 31] == IGNORE
    assert d[10, 33] == d[27, 35] == d[2, 28] == SOIL


def test_labelme_unlabelled_target_comes_from_the_class_map(tmp_path: Path) -> None:
    cmap = tmp_path / "c.yaml"
    cmap.write_text("classes:\n  peanut: crop\n  grass: weed\n  plant: vegetation\n"
                    "  stone: ignore\nunlabelled: ignore\n")
    c = _labels(LABELME, classes=cmap)["field_c"]
    assert c[0, 0] == IGNORE and c[8, 30] == SOIL and c[5, 5] == CROP


def test_labelme_has_no_splits() -> None:
    with pytest.raises(ConfigError, match="LabelMe folder has no splits"):
        open_dataset(LABELME, split="train")


def test_labelme_class_missing_from_the_class_map_names_the_json() -> None:
    data = open_dataset(LABELME, classes=ClassMap())
    with pytest.raises(DatasetError, match=r"field_c\.json: shape 0: class 'peanut' has no entry"):
        data.load_label(0)


def test_labelme_missing_image_names_the_json_and_the_path(tmp_path: Path) -> None:
    root = _copy(LABELME, tmp_path)
    (root / "pics/field_d.png").unlink()
    with pytest.raises(DatasetError, match=r"field_d\.json: its imagePath .*pics/field_d\.png "
                                           r"does not exist"):
        open_dataset(root)


def test_labelme_malformed_or_foreign_json_names_the_file(tmp_path: Path) -> None:
    root = _copy(LABELME, tmp_path)
    (root / "field_d.json").write_text('{"shapes": [')
    with pytest.raises(DatasetError, match=r"field_d\.json: cannot read LabelMe annotation"):
        open_dataset(root)
    (root / "field_d.json").write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(DatasetError, match=r"field_d\.json: not a LabelMe annotation"):
        open_dataset(root, layout="labelme")


def test_labelme_bad_shapes_name_the_file_and_shape(tmp_path: Path) -> None:
    root = _copy(LABELME, tmp_path)
    doc = json.loads((root / "field_d.json").read_text())
    doc["shapes"].append({"label": "grass", "points": [[1, 1], [4, 4]], "shape_type": "mask"})
    (root / "field_d.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"field_d\.json: shape 3: shape_type 'mask' is not "
                                           "supported"):
        open_dataset(root).load_label(1)
    doc["shapes"][3] = {"label": "grass", "points": [[1, 1], [4, 4]], "shape_type": "polygon"}
    (root / "field_d.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"field_d\.json: shape 3: a polygon needs at least 3"):
        open_dataset(root).load_label(1)


# --- command line ----------------------------------------------------------------------------


def test_eval_runs_on_a_cvat_export_and_a_labelme_folder(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--model", "exg-otsu", "--data", str(CVAT), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "mIoU " in out and "(2 images)" in out
    assert main(["eval", "--model", "exg-otsu", "--data", f"{CVAT}:train", "--format", "cvat",
                 "--quiet"]) == 0
    assert "(1 images)" in capsys.readouterr().out
    assert main(["eval", "--model", "exg-otsu", "--data", str(LABELME), "--format", "labelme",
                 "--quiet"]) == 0
    assert "mIoU " in capsys.readouterr().out
