"""Dataset readers: folder, PhenoBench and CWFID layouts, errors, class weights, splitting."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from crop_weed_seg.data.datasets import (
    Sample,
    SegmentationDataset,
    class_frequency_weights,
    detect_layout,
    open_dataset,
    split_indices,
)
from crop_weed_seg.errors import ConfigError, DatasetError

# --------------------------------------------------------------------------------------------
# Fixture helpers
# --------------------------------------------------------------------------------------------


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def write_ids(path: Path, ids: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), ids)
    return path


def make_rgb(h: int = 6, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def folder_labels(h: int = 6, w: int = 8) -> np.ndarray:
    labels = np.zeros((h, w), dtype=np.uint8)
    labels[:, 2:4] = 1
    labels[:, 4:6] = 2
    labels[0, :] = 255
    return labels


def make_folder(root: Path, stems: tuple[str, ...] = ("b", "a", "c")) -> dict[str, tuple]:
    """images/<stem>.png + labels/<stem>.png; returns {stem: (rgb, labels)}."""
    data = {}
    for i, stem in enumerate(stems):
        rgb, labels = make_rgb(seed=i), folder_labels()
        write_rgb(root / "images" / f"{stem}.png", rgb)
        write_ids(root / "labels" / f"{stem}.png", labels)
        data[stem] = (rgb, labels)
    return data


PHENO_RAW = np.array([[0, 1, 2, 3, 4, 255]] * 4, dtype=np.uint8)
PHENO_MAPPED = np.array([[0, 1, 2, 1, 2, 255]] * 4, dtype=np.uint8)


def make_phenobench(root: Path, splits: dict[str, tuple[str, ...]] | None = None,
                    dtype: type = np.uint8) -> None:
    splits = splits or {"train": ("phenoBench_00001", "phenoBench_00000"),
                        "val": ("phenoBench_00100",)}
    for split, stems in splits.items():
        for i, stem in enumerate(stems):
            write_rgb(root / split / "images" / f"{stem}.png", make_rgb(4, 6, seed=i))
            write_ids(root / split / "semantics" / f"{stem}.png", PHENO_RAW.astype(dtype))


CWFID_COLOURS = np.array(
    [
        [[0, 0, 0], [0, 255, 0], [255, 0, 0], [20, 200, 10]],
        [[200, 60, 0], [255, 255, 0], [255, 255, 255], [0, 0, 255]],
    ],
    dtype=np.uint8,
)
CWFID_EXPECTED = np.array([[0, 1, 2, 1], [2, 0, 0, 0]], dtype=np.uint8)


def make_cwfid(root: Path, numbers: tuple[int, ...] = (1, 2, 3, 4),
               train: list[int] | None = None, test: list[int] | None = None) -> None:
    for n in numbers:
        write_rgb(root / "images" / f"{n:03d}_image.png", make_rgb(2, 4, seed=n))
        write_rgb(root / "annotations" / f"{n:03d}_annotation.png", CWFID_COLOURS)
    train = [2, 4] if train is None else train
    test = [1, 3] if test is None else test
    (root / "train_test_split.yaml").write_text(f"train: {train}\ntest: {test}\n")


# --------------------------------------------------------------------------------------------
# Folder layout
# --------------------------------------------------------------------------------------------


def test_folder_reader_returns_rgb_image_and_class_ids(tmp_path: Path) -> None:
    data = make_folder(tmp_path)
    ds = open_dataset(tmp_path, layout="folder")
    assert ds.layout == "folder" and ds.split is None and ds.root == tmp_path
    rgb, labels = ds[0]
    expected_rgb, expected_labels = data["a"]
    assert rgb.dtype == np.uint8 and rgb.shape == (6, 8, 3)
    assert labels.dtype == np.uint8 and labels.shape == (6, 8)
    np.testing.assert_array_equal(rgb, expected_rgb)  # RGB order, not BGR
    np.testing.assert_array_equal(labels, expected_labels)


def test_folder_listing_is_sorted_by_stem(tmp_path: Path) -> None:
    make_folder(tmp_path, stems=("zeta", "alpha", "mid"))
    ds = open_dataset(tmp_path)
    assert [s.stem for s in ds.samples] == ["alpha", "mid", "zeta"]
    assert len(ds) == 3
    assert ds.samples[0] == Sample("alpha", tmp_path / "images" / "alpha.png",
                                   tmp_path / "labels" / "alpha.png")


def test_folder_reader_accepts_jpeg_images(tmp_path: Path) -> None:
    write_rgb(tmp_path / "images" / "x.jpg", make_rgb())
    write_ids(tmp_path / "labels" / "x.png", folder_labels())
    rgb, labels = open_dataset(tmp_path)[0]
    assert rgb.shape == (6, 8, 3)
    np.testing.assert_array_equal(labels, folder_labels())


def test_folder_reader_accepts_16_bit_labels(tmp_path: Path) -> None:
    write_rgb(tmp_path / "images" / "x.png", make_rgb())
    write_ids(tmp_path / "labels" / "x.png", folder_labels().astype(np.uint16))
    _, labels = open_dataset(tmp_path)[0]
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, folder_labels())


def test_folder_layout_rejects_any_split(tmp_path: Path) -> None:
    make_folder(tmp_path)
    with pytest.raises(ConfigError, match="split must be None"):
        open_dataset(tmp_path, layout="folder", split="train")


def test_open_dataset_raises_on_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nope.*does not exist"):
        open_dataset(tmp_path / "nope")


def test_folder_reader_raises_on_missing_labels_folder(tmp_path: Path) -> None:
    write_rgb(tmp_path / "images" / "x.png", make_rgb())
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path, layout="folder")
    assert str(tmp_path / "labels") in str(info.value)
    assert "folder layout" in str(info.value)


def test_folder_reader_raises_on_image_without_label(tmp_path: Path) -> None:
    make_folder(tmp_path)
    write_rgb(tmp_path / "images" / "lonely.png", make_rgb())
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "images" / "lonely.png") in message
    assert str(tmp_path / "labels" / "lonely.png") in message


def test_folder_reader_raises_on_empty_dataset(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        open_dataset(tmp_path)


def test_folder_reader_raises_on_two_images_with_one_stem(tmp_path: Path) -> None:
    make_folder(tmp_path, stems=("a",))
    write_rgb(tmp_path / "images" / "a.jpg", make_rgb())
    with pytest.raises(DatasetError, match="a.png"):
        open_dataset(tmp_path)


def test_folder_reader_raises_on_unreadable_image(tmp_path: Path) -> None:
    make_folder(tmp_path, stems=("a",))
    (tmp_path / "images" / "a.png").write_bytes(b"not a png at all")
    ds = open_dataset(tmp_path)  # listing is lazy: no content read yet
    with pytest.raises(DatasetError) as info:
        ds[0]
    assert str(tmp_path / "images" / "a.png") in str(info.value)


def test_folder_reader_raises_on_label_of_different_size(tmp_path: Path) -> None:
    write_rgb(tmp_path / "images" / "a.png", make_rgb(6, 8))
    write_ids(tmp_path / "labels" / "a.png", folder_labels(5, 7))
    ds = open_dataset(tmp_path)
    with pytest.raises(DatasetError) as info:
        ds[0]
    message = str(info.value)
    assert "a.png" in message and "7x5" in message and "8x6" in message


def test_folder_reader_raises_on_label_values_outside_class_set(tmp_path: Path) -> None:
    labels = folder_labels()
    labels[1, 1], labels[2, 2] = 3, 7
    write_rgb(tmp_path / "images" / "a.png", make_rgb())
    write_ids(tmp_path / "labels" / "a.png", labels)
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path)[0]
    message = str(info.value)
    assert str(tmp_path / "labels" / "a.png") in message
    assert "[3, 7]" in message


def test_folder_reader_raises_on_colour_label(tmp_path: Path) -> None:
    write_rgb(tmp_path / "images" / "a.png", make_rgb())
    write_rgb(tmp_path / "labels" / "a.png", make_rgb())
    with pytest.raises(DatasetError, match="3 channels"):
        open_dataset(tmp_path)[0]


def test_validate_raises_on_first_bad_sample(tmp_path: Path) -> None:
    make_folder(tmp_path, stems=("a", "b", "c"))
    write_ids(tmp_path / "labels" / "b.png", folder_labels(3, 3))
    ds = open_dataset(tmp_path)
    ds[0]
    with pytest.raises(DatasetError, match="b.png"):
        ds.validate()


def test_validate_passes_on_good_dataset(tmp_path: Path) -> None:
    make_folder(tmp_path)
    open_dataset(tmp_path).validate()


def test_dataset_index_out_of_range_raises_index_error(tmp_path: Path) -> None:
    make_folder(tmp_path, stems=("a",))
    ds = open_dataset(tmp_path)
    with pytest.raises(IndexError):
        ds[1]
    assert len(list(ds)) == 1


# --------------------------------------------------------------------------------------------
# Layout detection
# --------------------------------------------------------------------------------------------


def test_detect_layout_recognises_each_layout(tmp_path: Path) -> None:
    make_folder(tmp_path / "f")
    make_phenobench(tmp_path / "p")
    make_cwfid(tmp_path / "c")
    assert detect_layout(tmp_path / "f") == "folder"
    assert detect_layout(tmp_path / "p") == "phenobench"
    assert detect_layout(tmp_path / "c") == "cwfid"
    assert open_dataset(tmp_path / "c").layout == "cwfid"


def test_detect_layout_raises_on_unrecognised_folder(tmp_path: Path) -> None:
    (tmp_path / "something").mkdir()
    with pytest.raises(DatasetError, match="cannot tell the dataset layout"):
        detect_layout(tmp_path)


def test_open_dataset_rejects_unknown_layout(tmp_path: Path) -> None:
    make_folder(tmp_path)
    with pytest.raises(ConfigError, match="folder, phenobench, cwfid"):
        open_dataset(tmp_path, layout="coco")


# --------------------------------------------------------------------------------------------
# PhenoBench
# --------------------------------------------------------------------------------------------


def test_phenobench_reader_maps_partial_crop_and_partial_weed(tmp_path: Path) -> None:
    make_phenobench(tmp_path)
    ds = open_dataset(tmp_path, split="train")
    assert ds.layout == "phenobench" and ds.split == "train"
    rgb, labels = ds[0]
    assert rgb.shape == (4, 6, 3)
    np.testing.assert_array_equal(labels, PHENO_MAPPED)


def test_phenobench_reader_reads_16_bit_semantics(tmp_path: Path) -> None:
    make_phenobench(tmp_path, dtype=np.uint16)
    assert cv2.imread(str(tmp_path / "val" / "semantics" / "phenoBench_00100.png"),
                      cv2.IMREAD_UNCHANGED).dtype == np.uint16
    _, labels = open_dataset(tmp_path, split="val")[0]
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, PHENO_MAPPED)


def test_phenobench_split_selects_its_own_folder(tmp_path: Path) -> None:
    make_phenobench(tmp_path)
    train = open_dataset(tmp_path, "phenobench", "train")
    val = open_dataset(tmp_path, "phenobench", "val")
    assert [s.stem for s in train.samples] == ["phenoBench_00000", "phenoBench_00001"]
    assert [s.stem for s in val.samples] == ["phenoBench_00100"]
    assert val.samples[0].label_path == tmp_path / "val" / "semantics" / "phenoBench_00100.png"


def test_phenobench_requires_train_or_val_split(tmp_path: Path) -> None:
    make_phenobench(tmp_path)
    with pytest.raises(ConfigError, match="train, val"):
        open_dataset(tmp_path, split=None)
    with pytest.raises(ConfigError, match="test split has no semantics"):
        open_dataset(tmp_path, split="test")


def test_phenobench_raises_on_missing_split_folder(tmp_path: Path) -> None:
    make_phenobench(tmp_path, splits={"train": ("a",)})
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path, split="val")
    assert str(tmp_path / "val") in str(info.value)


def test_phenobench_raises_on_missing_semantics_folder(tmp_path: Path) -> None:
    write_rgb(tmp_path / "train" / "images" / "a.png", make_rgb())
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path, split="train")
    assert str(tmp_path / "train" / "semantics") in str(info.value)


def test_phenobench_raises_on_image_without_semantics(tmp_path: Path) -> None:
    make_phenobench(tmp_path)
    write_rgb(tmp_path / "train" / "images" / "extra.png", make_rgb())
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path, split="train")
    assert "extra.png" in str(info.value)
    assert str(tmp_path / "train" / "semantics" / "extra.png") in str(info.value)


def test_phenobench_raises_on_semantics_values_outside_class_set(tmp_path: Path) -> None:
    make_phenobench(tmp_path, splits={"train": ("a",)})
    bad = PHENO_RAW.astype(np.uint16)
    bad[0, 0], bad[1, 1] = 5, 300
    write_ids(tmp_path / "train" / "semantics" / "a.png", bad)
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path, split="train")[0]
    assert "a.png" in str(info.value) and "[5, 300]" in str(info.value)


# --------------------------------------------------------------------------------------------
# CWFID
# --------------------------------------------------------------------------------------------


def test_cwfid_reader_maps_annotation_colours(tmp_path: Path) -> None:
    make_cwfid(tmp_path)
    ds = open_dataset(tmp_path, layout="cwfid")
    rgb, labels = ds[0]
    assert ds.samples[0].stem == "001"
    assert rgb.shape == (2, 4, 3)
    np.testing.assert_array_equal(labels, CWFID_EXPECTED)


def test_cwfid_split_takes_image_numbers_from_yaml(tmp_path: Path) -> None:
    make_cwfid(tmp_path, numbers=(1, 2, 3, 4, 10), train=[10, 2], test=[1, 3])
    train = open_dataset(tmp_path, split="train")
    test = open_dataset(tmp_path, split="test")
    assert [s.stem for s in train.samples] == ["002", "010"]
    assert [s.stem for s in test.samples] == ["001", "003"]
    assert train.samples[1].label_path == tmp_path / "annotations" / "010_annotation.png"


def test_cwfid_without_split_lists_every_image(tmp_path: Path) -> None:
    make_cwfid(tmp_path, numbers=(1, 2, 3, 4, 5))
    assert [s.stem for s in open_dataset(tmp_path).samples] == ["001", "002", "003", "004",
                                                                 "005"]


def test_cwfid_rejects_unknown_split(tmp_path: Path) -> None:
    make_cwfid(tmp_path)
    with pytest.raises(ConfigError, match="train, test"):
        open_dataset(tmp_path, split="val")


def test_cwfid_raises_when_split_file_is_missing(tmp_path: Path) -> None:
    make_cwfid(tmp_path)
    (tmp_path / "train_test_split.yaml").unlink()
    with pytest.raises(DatasetError, match="train_test_split.yaml"):
        open_dataset(tmp_path, layout="cwfid", split="train")


def test_cwfid_raises_when_split_file_lacks_the_key(tmp_path: Path) -> None:
    make_cwfid(tmp_path)
    (tmp_path / "train_test_split.yaml").write_text("train: [1, 2]\n")
    with pytest.raises(DatasetError, match="train_test_split.yaml.*'test'"):
        open_dataset(tmp_path, split="test")


def test_cwfid_raises_when_yaml_lists_a_missing_image(tmp_path: Path) -> None:
    make_cwfid(tmp_path, train=[2, 4, 42])
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path, split="train")
    assert "042_image.png" in str(info.value) and "train_test_split.yaml" in str(info.value)


def test_cwfid_raises_on_image_without_annotation(tmp_path: Path) -> None:
    make_cwfid(tmp_path)
    (tmp_path / "annotations" / "003_annotation.png").unlink()
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path)
    assert "003_image.png" in str(info.value)
    assert str(tmp_path / "annotations" / "003_annotation.png") in str(info.value)


def test_cwfid_raises_on_annotation_of_different_size(tmp_path: Path) -> None:
    make_cwfid(tmp_path)
    write_rgb(tmp_path / "annotations" / "002_annotation.png", np.zeros((3, 4, 3), np.uint8))
    ds = open_dataset(tmp_path, split="train")
    with pytest.raises(DatasetError) as info:
        ds.validate()
    assert "002_annotation.png" in str(info.value)
    assert "4x3" in str(info.value) and "4x2" in str(info.value)


def test_cwfid_raises_on_missing_annotations_folder(tmp_path: Path) -> None:
    write_rgb(tmp_path / "images" / "001_image.png", make_rgb())
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path, layout="cwfid")
    assert str(tmp_path / "annotations") in str(info.value) and "cwfid" in str(info.value)


# --------------------------------------------------------------------------------------------
# Class weights
# --------------------------------------------------------------------------------------------


def dataset_of_labels(root: Path, labels: list[np.ndarray]) -> SegmentationDataset:
    for i, lab in enumerate(labels):
        write_rgb(root / "images" / f"{i:02d}.png", make_rgb(*lab.shape))
        write_ids(root / "labels" / f"{i:02d}.png", lab)
    return open_dataset(root)


def test_class_weights_give_rare_class_the_largest_weight(tmp_path: Path) -> None:
    lab = np.zeros((10, 10), np.uint8)
    lab[:, :3] = 1   # 30 % crop
    lab[0, 9] = 2    # 1 % weed
    weights = class_frequency_weights(dataset_of_labels(tmp_path, [lab]))
    assert weights.dtype == np.float32 and weights.shape == (3,)
    assert weights[2] > weights[1] > weights[0]
    np.testing.assert_allclose(weights, 1 / np.log(1.02 + np.array([0.69, 0.30, 0.01])),
                               rtol=1e-5)


def test_class_weights_are_finite_for_a_class_without_pixels(tmp_path: Path) -> None:
    lab = np.zeros((4, 4), np.uint8)
    lab[:2] = 1
    weights = class_frequency_weights(dataset_of_labels(tmp_path, [lab]))
    assert np.all(np.isfinite(weights))
    assert weights[2] == pytest.approx(1 / np.log(1.02), rel=1e-5)


def test_class_weights_ignore_pixels_marked_255(tmp_path: Path) -> None:
    lab = np.full((4, 4), 255, np.uint8)
    lab[0, :2] = 0
    lab[1, :2] = 1
    weights = class_frequency_weights(dataset_of_labels(tmp_path, [lab]))
    assert weights[0] == pytest.approx(weights[1])


def test_class_weights_max_images_reads_only_that_many(tmp_path: Path) -> None:
    first = np.zeros((4, 4), np.uint8)
    first[0] = 2
    ds = dataset_of_labels(tmp_path, [first, np.ones((4, 4), np.uint8)])
    (tmp_path / "labels" / "01.png").write_bytes(b"broken")  # never read with max_images=1
    weights = class_frequency_weights(ds, max_images=1)
    assert weights[1] == pytest.approx(1 / np.log(1.02))
    with pytest.raises(DatasetError, match="01.png"):
        class_frequency_weights(ds)


def test_class_weights_raise_when_every_pixel_is_ignored(tmp_path: Path) -> None:
    ds = dataset_of_labels(tmp_path, [np.full((3, 3), 255, np.uint8)])
    with pytest.raises(DatasetError, match="no labelled pixels"):
        class_frequency_weights(ds)


# --------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------


def test_split_indices_is_deterministic_disjoint_and_complete() -> None:
    train, val = split_indices(50, 0.2, seed=7)
    train2, val2 = split_indices(50, 0.2, seed=7)
    np.testing.assert_array_equal(train, train2)
    np.testing.assert_array_equal(val, val2)
    assert len(val) == 10 and len(train) == 40
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(50))
    assert not set(train.tolist()) & set(val.tolist())
    other_train, _ = split_indices(50, 0.2, seed=8)
    assert not np.array_equal(train, other_train)


def test_split_indices_keeps_at_least_one_of_each_part() -> None:
    train, val = split_indices(3, 0.01, seed=0)
    assert len(val) == 1 and len(train) == 2
    train, val = split_indices(2, 0.99, seed=0)
    assert len(val) == 1 and len(train) == 1
    train, val = split_indices(5, 0.0, seed=0)
    assert len(val) == 0 and train.tolist() == [0, 1, 2, 3, 4]


def test_split_indices_rejects_fraction_out_of_range() -> None:
    with pytest.raises(ConfigError, match="val_fraction"):
        split_indices(10, 1.0, seed=0)
    with pytest.raises(ConfigError, match="val_fraction"):
        split_indices(10, -0.1, seed=0)
