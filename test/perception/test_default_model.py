"""The shipped default model: a complete, consistent folder that still segments the bundled
held-out samples (their labels are exact, so this is a real regression check)."""

from __future__ import annotations

import yaml

from crop_weed_seg.data.datasets import open_dataset
from crop_weed_seg.data.evaluation import evaluate
from crop_weed_seg.model.contract import load_model_contract
from crop_weed_seg.perception.segmenter import Segmenter

from support import REPO

MODEL = REPO / "models/default"


def test_default_model_folder_is_complete_and_consistent() -> None:
    contract = load_model_contract(MODEL)  # checks the sha256 and the graph against model.yaml
    assert contract.classes == ("soil", "crop", "weed")
    assert contract.architecture["parameters"] <= 2_000_000
    for name in ("model.safetensors", "README.md", "training_curves.png", "confusion_test.png"):
        assert (MODEL / name).is_file(), name
    doc = yaml.safe_load((MODEL / "model.yaml").read_text())
    assert doc["onnx"]["opset"] == 17 and doc["onnx"]["parity_argmax_agreement"] >= 0.999
    assert {"val", "test", "test_classical"} <= set(doc["metrics"])
    card = (MODEL / "README.md").read_text()
    assert "crop-weed-seg train" in card and "crop-weed-seg synth" in card.replace(
        "make synth-data", "crop-weed-seg synth")


def test_default_model_segments_the_bundled_heldout_samples() -> None:
    scores = evaluate(Segmenter(MODEL, "onnxruntime").predict,
                      open_dataset(REPO / "samples/field"))
    assert scores.images == 6
    assert scores.vegetation_iou >= 0.88, scores.to_json()  # 0.919 when shipped
    assert scores.miou >= 0.75, scores.to_json()  # 0.813 when shipped
