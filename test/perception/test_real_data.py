"""Real labelled data: class maps, colour masks, Supervisely projects, dataset descriptions,
partial (vegetation-only) labels in the loss and the metrics, and the shipped model on the real
photographs bundled in samples/real (Peanut and EWS excerpts, CC BY-SA 4.0)."""

from __future__ import annotations

import base64
import json
import shutil
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from crop_weed_seg.classes import CROP, IGNORE_INDEX, SOIL, VEGETATION, WEED
from crop_weed_seg.data.class_map import load_class_map, parse_class_map, parse_colour
from crop_weed_seg.data.datasets import open_dataset, open_source, parse_source
from crop_weed_seg.data.description import load_description
from crop_weed_seg.data.evaluation import evaluate
from crop_weed_seg.data.metrics import ConfusionAccumulator
from crop_weed_seg.errors import ConfigError, DatasetError
from crop_weed_seg.nn.losses import LOSSES, partial_cross_entropy, segmentation_loss
from crop_weed_seg.perception.segmenter import load_predictor

from support import REPO

PEANUT = REPO / "samples/real/peanut"
EWS = REPO / "samples/real/ews"


# --- class maps ---------------------------------------------------------------------------------

def test_class_map_reads_names_and_colours_and_falls_back_to_obvious_names() -> None:
    cmap = parse_class_map({"classes": {"Peanut": "crop", "0,255,0": "crop", "#ff0000": "weed",
                                        "Grass": "Weed"}, "unlabelled": "ignore"}, "x.yaml")
    assert cmap.id_for_name("peanut", "f") == CROP
    assert cmap.id_for_name(" GRASS ", "f") == WEED
    assert cmap.id_for_name("_background_", "f") == SOIL
    assert cmap.id_for_name("plant", "f") == VEGETATION
    assert cmap.colours == {(0, 255, 0): CROP, (255, 0, 0): WEED}
    assert cmap.unlabelled == IGNORE_INDEX
    with pytest.raises(DatasetError, match=r"ann/a\.json: class 'carrot' has no entry"):
        cmap.id_for_name("carrot", "ann/a.json")


@pytest.mark.parametrize("doc, match", [
    ({"classes": {"a": "tree"}}, "class target 'tree' is not one of"),
    ({"classes": {"a": "crop"}, "colour": 1}, "unknown keys"),
    ({"klasses": {}}, "needs a 'classes:' mapping"),
    ({"classes": {"a": "crop"}, "unlabelled": "sky"}, "unlabelled"),
])
def test_bad_class_maps_name_the_file(doc: dict, match: str) -> None:
    with pytest.raises(DatasetError, match=match) as info:
        parse_class_map(doc, "my/classes.yaml")
    assert "my/classes.yaml" in str(info.value)


def test_parse_colour() -> None:
    assert parse_colour("0, 255,0") == (0, 255, 0)
    assert parse_colour("#0A0B0c") == (10, 11, 12)
    assert parse_colour("300,0,0") is None
    assert parse_colour("wheat") is None


def test_colour_decoding_reports_unknown_colours_with_counts(tmp_path: Path) -> None:
    cmap = load_class_map(PEANUT / "classes.yaml")
    mask = np.zeros((4, 5, 3), np.uint8)
    mask[0, 0] = (0, 255, 0)
    mask[1, :2] = (255, 0, 0)
    labels = cmap.decode_colours(mask, "m.png")
    assert labels[0, 0] == CROP and (labels[1, :2] == WEED).all() and labels[3, 4] == SOIL
    mask[2, 1:4] = (7, 8, 9)
    with pytest.raises(DatasetError, match=r"m\.png: 3 pixels have colours .* \(7,8,9\) x3"):
        cmap.decode_colours(mask, "m.png")


# --- real files: Peanut colour masks, EWS Supervisely -------------------------------------------

def test_peanut_excerpt_opens_as_colour_masks_with_soil_crop_and_weed() -> None:
    data = open_dataset(PEANUT)
    assert data.layout == "colour-mask" and len(data) == 8
    counts = np.zeros(256, np.int64)
    for i in range(len(data)):
        image, labels = data[i]
        assert image.shape == (360, 480, 3) and labels.shape == (360, 480)
        counts += np.bincount(labels.ravel(), minlength=256)
    assert set(np.flatnonzero(counts)) == {SOIL, CROP, WEED}
    share = counts[:3] / counts.sum()
    assert 0.6 < share[SOIL] < 0.95 and share[CROP] > 0.03 and share[WEED] > 0.01


def test_colour_mask_without_class_map_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(PEANUT, root)
    (root / "classes.yaml").unlink()
    assert open_dataset(root).layout == "folder"  # no colours named: plain id labels
    with pytest.raises(DatasetError, match="needs a class map naming its colours"):
        open_dataset(root, "colour-mask")
    data = open_dataset(root, classes=PEANUT / "classes.yaml")
    assert data.layout == "colour-mask"
    with pytest.raises(DatasetError, match="channels"):  # read as id labels: a clear error
        open_dataset(root, "folder")[0]


def test_ews_excerpt_opens_as_supervisely_with_vegetation_only_labels() -> None:
    data = open_dataset(EWS)
    assert data.layout == "supervisely" and len(data) == 4
    assert all(s.stem.startswith("validation/") for s in data.samples)
    for i in range(len(data)):
        image, labels = data[i]
        assert image.shape == (350, 350, 3)
        values = set(np.unique(labels))
        assert values == {SOIL, VEGETATION}
        # The mask is the plant: much greener than the soil around it.
        exg = 2.0 * image[..., 1] - image[..., 0] - image[..., 2]
        assert exg[labels == VEGETATION].mean() > exg[labels == SOIL].mean() + 10
    with pytest.raises(ConfigError, match="datasets validation; split 'train'"):
        open_dataset(EWS, split="train")


def _supervisely_project(root: Path, objects: list[dict], classes: tuple[str, ...] = ("Wheat",)
                         ) -> Path:
    (root / "ds/img").mkdir(parents=True)
    (root / "ds/ann").mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps({"classes": [{"title": c} for c in classes]}))
    cv2.imwrite(str(root / "ds/img/a.png"), np.zeros((10, 12, 3), np.uint8))
    ann = {"size": {"height": 10, "width": 12}, "objects": objects}
    (root / "ds/ann/a.png.json").write_text(json.dumps(ann))
    return root


def _bitmap(mask: np.ndarray, origin: tuple[int, int]) -> dict:
    rgba = np.zeros(mask.shape + (4,), np.uint8)
    rgba[..., 3] = mask * 255
    ok, png = cv2.imencode(".png", rgba)
    assert ok
    return {"data": base64.b64encode(zlib.compress(png.tobytes())).decode(),
            "origin": list(origin)}


def test_supervisely_bitmap_polygon_rectangle_painted_in_order(tmp_path: Path) -> None:
    bitmap = np.zeros((3, 4), np.uint8)
    bitmap[1, 1:3] = 1
    objects = [
        {"classTitle": "Wheat", "geometryType": "rectangle",
         "points": {"exterior": [[0, 0], [3, 2]], "interior": []}},
        {"classTitle": "Weed", "geometryType": "bitmap", "bitmap": _bitmap(bitmap, (2, 1))},
        {"classTitle": "Crop", "geometryType": "polygon",
         "points": {"exterior": [[6, 4], [11, 4], [11, 9], [6, 9]],
                    "interior": [[[8, 6], [9, 6], [9, 7], [8, 7]]]}},
    ]
    root = _supervisely_project(tmp_path / "s", objects, ("Wheat", "Weed", "Crop"))
    (root / "classes.yaml").write_text("classes: {Wheat: vegetation}\n")
    _, labels = open_dataset(root)[0]
    assert (labels[0:3, 0:4] != SOIL).all()
    assert labels[0, 0] == VEGETATION
    assert labels[2, 3] == WEED and labels[2, 4] == WEED and labels[2, 2] == VEGETATION
    assert labels[5, 10] == CROP and labels[6, 8] == SOIL  # inside the hole
    assert labels[9, 0] == SOIL


@pytest.mark.parametrize("objects, classes, match", [
    ([{"classTitle": "Wheat", "geometryType": "bitmap",
       "bitmap": _bitmap(np.ones((3, 3), np.uint8), (11, 0))}], ("Wheat",),
     r"a\.png\.json: bitmap object .* lies outside the 12x10 image"),
    ([{"classTitle": "Wheat", "geometryType": "point", "points": {"exterior": [[1, 1]]}}],
     ("Wheat",), r"a\.png\.json: object .* has geometry 'point'"),
    ([], ("Barley",), r"meta\.json: class 'Barley' has no entry"),
])
def test_supervisely_errors_name_the_file(tmp_path: Path, objects: list, classes: tuple,
                                          match: str) -> None:
    root = _supervisely_project(tmp_path / "s", objects, classes)
    (root / "classes.yaml").write_text("classes: {Wheat: vegetation}\n")
    with pytest.raises(DatasetError, match=match):
        open_dataset(root)[0]


# --- dataset descriptions and sources ------------------------------------------------------------

def _description(tmp_path: Path, splits: str) -> Path:
    path = tmp_path / "desc" / "peanut.yaml"
    path.parent.mkdir()
    path.write_text(f"name: mini\nroot: {PEANUT}\nformat: colour-mask\n"
                    "classes: {'0,0,0': soil, '0,255,0': crop, '255,0,0': weed}\n"
                    f"licence: CC-BY-SA-4.0\nsplits: {splits}\n")
    return path


def test_description_gives_fixed_splits_and_keeps_licence(tmp_path: Path) -> None:
    path = _description(tmp_path, "{train: ['0004', '0007', '0041'], test: ['0278']}")
    train = open_source(f"{path}:train")
    assert [s.stem for s in train.samples] == ["0004", "0007", "0041"]
    assert train.description["licence"] == "CC-BY-SA-4.0"
    assert [s.stem for s in open_dataset(path, split="test").samples] == ["0278"]
    assert len(open_dataset(path)) == 8
    with pytest.raises(ConfigError, match="no split 'val'"):
        open_dataset(path, split="val")


@pytest.mark.parametrize("splits, match", [
    ("{train: ['0004'], test: ['0004']}", "splits must not overlap"),
    ("{train: ['9999']}", "lists 1 stems not found"),
])
def test_bad_descriptions_name_the_file(tmp_path: Path, splits: str, match: str) -> None:
    path = _description(tmp_path, splits)
    with pytest.raises(DatasetError, match=match) as info:
        open_dataset(path, split="train")
    assert str(path) in str(info.value)


def test_description_with_missing_root_says_how_to_fix(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("root: ../nowhere\n")
    with pytest.raises(DatasetError, match=r"d\.yaml: its root .*nowhere is not a folder"):
        open_dataset(path)


def test_repository_descriptions_are_consistent() -> None:
    peanut = load_description(REPO / "datasets/peanut.yaml")
    assert {k: len(v) for k, v in peanut.splits.items()} == {"train": 238, "val": 34, "test": 68}
    assert peanut.licence == "CC-BY-SA-4.0" and "Tran" in (peanut.attribution or "")
    bundled = {p.stem for p in (PEANUT / "images").iterdir()}
    assert bundled <= set(peanut.splits["test"])  # the bundled excerpt never trained a model
    ews = load_description(REPO / "datasets/ews.yaml")
    assert ews.format == "supervisely" and ews.class_map is not None
    assert ews.class_map.id_for_name("Wheat", "x") == VEGETATION


def test_parse_source() -> None:
    assert parse_source("d/p.yaml:train@3") == (Path("d/p.yaml"), "train", 3)
    assert parse_source("data/synth") == (Path("data/synth"), None, 1)
    with pytest.raises(ConfigError, match="repeat after @"):
        parse_source("d/p.yaml:train@x")


# --- partial labels in the loss and the metrics --------------------------------------------------

def test_vegetation_pixels_supervise_plant_probability_not_the_split() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), VEGETATION, dtype=torch.long)
    loss = partial_cross_entropy(logits, target, None)
    probs = torch.softmax(logits, 1)
    expected = -torch.log(probs[:, CROP] + probs[:, WEED]).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    loss.backward()
    grad = logits.grad
    assert grad is not None
    # The gradient never pushes crop against weed: both move the same way relative to soil,
    # and swapping the crop and weed logits leaves the loss unchanged.
    swapped = logits.detach()[:, [SOIL, WEED, CROP]]
    assert torch.allclose(partial_cross_entropy(swapped, target, None), loss, atol=1e-6)
    assert (grad[:, SOIL] > 0).all() and (grad[:, CROP] < 0).all() and (grad[:, WEED] < 0).all()


@pytest.mark.parametrize("kind", LOSSES)
def test_losses_accept_mixed_class_and_vegetation_targets(kind: str) -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 4, (2, 8, 8))
    target[0, 0, 0] = IGNORE_INDEX
    weights = torch.tensor([0.5, 1.0, 1.5])
    loss = segmentation_loss(kind, logits, target, weights)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    # Without vegetation pixels the cross-entropy is exactly the weighted one of torch.
    plain = torch.where(target == VEGETATION, torch.tensor(SOIL), target)
    ce = partial_cross_entropy(logits, plain, weights)
    ref = torch.nn.functional.cross_entropy(logits, plain, weight=weights,
                                            ignore_index=IGNORE_INDEX)
    assert torch.allclose(ce, ref, atol=1e-6)


def test_metrics_count_vegetation_labels_for_vegetation_iou_only() -> None:
    truth = np.array([[SOIL, SOIL, VEGETATION, VEGETATION, CROP, WEED]], np.uint8)
    pred = np.array([[SOIL, CROP, SOIL, WEED, CROP, CROP]], np.uint8)
    acc = ConfusionAccumulator()
    acc.add(truth, pred)
    scores = acc.scores()
    assert scores.vegetation_only == (1, 1)
    # plant truth: cols 2,3,4,5; plant prediction: 1,3,4,5 -> intersection 3, union 5
    assert scores.vegetation_iou == pytest.approx(3 / 5)
    # soil: truth {0,1}, predicted soil {0,2} -> 1 / 3 (the vegetation pixel predicted soil
    # is a soil false positive)
    assert scores.iou["soil"] == pytest.approx(1 / 3)
    assert scores.iou["crop"] == pytest.approx(1 / 3)  # truth {4}, predicted {1, 4, 5}
    assert scores.confusion.sum() == 4  # class-labelled pixels only
    assert scores.to_json()["vegetation_only"] == [1, 1]


# --- baselines and the shipped model on real photographs -----------------------------------------

def _vegetation_iou(model: str, root: Path) -> float:
    return evaluate(load_predictor(model).predict, open_dataset(root)).vegetation_iou


def test_exg_otsu_baseline_finds_plants_on_real_photos() -> None:
    assert _vegetation_iou("exg-otsu", PEANUT) > 0.6
    assert _vegetation_iou("exg-otsu", EWS) > 0.4


def test_shipped_model_works_on_real_photographs() -> None:
    """The default model on the bundled real photographs (Peanut test split, EWS validation):
    measured 2026-11-30 at mIoU 0.80, weed IoU 0.54, vegetation IoU 0.85 on Peanut (ExG + Otsu
    0.82, the classical baseline mIoU 0.63) and vegetation IoU 0.75 on EWS (ExG + Otsu 0.55)."""
    default = str(REPO / "models/default")
    peanut = evaluate(load_predictor(default).predict, open_dataset(PEANUT))
    classical = evaluate(load_predictor("classical").predict, open_dataset(PEANUT))
    assert peanut.miou > 0.75 and peanut.iou["weed"] > 0.45
    assert peanut.miou > classical.miou + 0.1
    assert peanut.vegetation_iou > _vegetation_iou("exg-otsu", PEANUT) + 0.02
    assert _vegetation_iou(default, EWS) > _vegetation_iou("exg-otsu", EWS) + 0.1
