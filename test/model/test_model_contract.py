"""Model folder contract: a valid folder loads; each broken contract fails with its message."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crop_weed_seg.errors import ModelContractError
from crop_weed_seg.model.contract import load_model_contract, sha256_file

from support import REPO
from support.models import write_untrained_model


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_untrained_model(tmp_path_factory.mktemp("model"))


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_yaml(folder: Path, edit) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load((folder / "model.yaml").read_text())
    edit(doc)
    (folder / "model.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def test_valid_folder_loads_with_its_contract(model_folder: Path) -> None:
    c = load_model_contract(model_folder)
    assert c.classes == ("soil", "crop", "weed")
    assert c.input_name == "image" and c.labels_output == "labels"
    assert c.onnx_sha256 == sha256_file(c.onnx_path)


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelContractError, match="nowhere: model folder does not exist"):
        load_model_contract(tmp_path / "nowhere")


def test_missing_yaml_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelContractError, match="model.yaml: model contract not found"):
        load_model_contract(tmp_path)


def test_missing_onnx_is_named(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path / "m")
    (folder / "model.onnx").unlink()
    with pytest.raises(ModelContractError, match="model.onnx: ONNX file named in .* is missing"):
        load_model_contract(folder)


def test_replaced_onnx_fails_the_sha256_check(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path / "m")
    with open(folder / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelContractError, match="sha256 .* differs from"):
        load_model_contract(folder)


def test_missing_class_map_is_an_error_not_a_guess(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path / "m")
    _edit_yaml(folder, lambda d: d.pop("classes"))
    with pytest.raises(ModelContractError, match="'classes' must map label ids to names"):
        load_model_contract(folder)


def test_wrong_class_count_is_caught_against_the_onnx(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path / "m")
    _edit_yaml(folder, lambda d: d["classes"].update({3: "stone"}))
    with pytest.raises(ModelContractError, match="class map in the ONNX metadata"):
        load_model_contract(folder)


def test_wrong_input_name_is_caught_against_the_onnx(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path / "m")
    _edit_yaml(folder, lambda d: d["input"].update(name="rgb"))
    with pytest.raises(ModelContractError, match="graph inputs \\['image'\\] do not match"):
        load_model_contract(folder)


def test_wrong_output_name_is_caught_against_the_onnx(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path / "m")
    _edit_yaml(folder, lambda d: d["outputs"].update(labels="argmax"))
    with pytest.raises(ModelContractError, match="outputs \\['argmax'\\] named in model.yaml"):
        load_model_contract(folder)


def test_broken_yaml_is_named(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path / "m")
    (folder / "model.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ModelContractError, match="model.yaml: not valid YAML"):
        load_model_contract(folder)


def test_missing_confidence_output_is_named(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path / "m")
    _edit_yaml(folder, lambda d: d["outputs"].pop("confidence"))
    with pytest.raises(ModelContractError, match="missing required key 'confidence'"):
        load_model_contract(folder)


def test_channel_count_is_caught_against_the_onnx(model_folder: Path, tmp_path: Path) -> None:
    from crop_weed_seg.model import contract as contract_module
    from crop_weed_seg.model.onnx_reader import TensorInfo

    c = load_model_contract(model_folder)
    real = contract_module.read_onnx(c.onnx_path)
    four = TensorInfo("image", 1, (1, 4, "h", "w"))
    fake = type(real)(real.ir_version, (four,), real.outputs, real.initializer_names,
                      real.metadata)
    original = contract_module.read_onnx
    contract_module.read_onnx = lambda path: fake  # type: ignore[assignment]
    try:
        with pytest.raises(ModelContractError, match="input has 4 channels, expected 3"):
            contract_module.check_onnx_against_contract(c)
    finally:
        contract_module.read_onnx = original


def test_a_file_that_is_not_onnx_is_named(model_folder: Path, tmp_path: Path) -> None:
    folder = _copy(model_folder, tmp_path / "m")
    (folder / "model.onnx").write_bytes(b"not an onnx file")
    _edit_yaml(folder, lambda d: d["onnx"].update(sha256=""))
    with pytest.raises(ModelContractError, match="model.onnx: not a readable ONNX model"):
        load_model_contract(folder)


#: Run in a subprocess where the training/export packages cannot be imported, as on a robot
#: (``sys.modules[name] = None`` makes ``import name`` raise ImportError).
_WITHOUT_TRAINING_PACKAGES = """
import json, sys
for name in BLOCKED:
    sys.modules[name] = None
from crop_weed_seg.errors import ModelContractError
results = {}
for label, folder in FOLDERS.items():
    try:
        if SEGMENTER:
            import numpy as np
            from crop_weed_seg.perception.segmenter import Segmenter
            seg = Segmenter(folder, "onnxruntime")
            labels = seg.segment(np.zeros((60, 80, 3), np.uint8)).labels
            results[label] = "ok " + str(labels.shape)
        else:
            from crop_weed_seg.model.contract import load_model_contract
            results[label] = "ok " + load_model_contract(folder).name
    except ModelContractError as exc:
        results[label] = "ModelContractError: " + str(exc)
results["imported"] = sorted(n for n in BLOCKED if sys.modules.get(n) is not None)
print(json.dumps(results))
"""


def _run_without(blocked: tuple[str, ...], folders: dict[str, Path],
                 segmenter: bool) -> dict[str, str]:
    paths = {label: str(folder) for label, folder in folders.items()}
    code = (f"BLOCKED = {blocked!r}\nFOLDERS = {paths!r}\nSEGMENTER = {segmenter!r}\n"
            + _WITHOUT_TRAINING_PACKAGES)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _mismatched_folders(model_folder: Path, tmp_path: Path) -> dict[str, Path]:
    classes = _copy(model_folder, tmp_path / "classes")
    _edit_yaml(classes, lambda d: d["classes"].update({3: "stone"}))
    output = _copy(model_folder, tmp_path / "output")
    _edit_yaml(output, lambda d: d["outputs"].update(labels="argmax"))
    return {"valid": model_folder, "classes": classes, "output": output,
            "shipped": REPO / "models" / "default"}


def test_the_contract_check_needs_neither_onnx_nor_onnxruntime(model_folder: Path,
                                                                tmp_path: Path) -> None:
    """A robot has no ``onnx`` (no rosdep key, a training extra) and a Jetson running TensorRT
    no ONNX Runtime either: the cross-check still catches each mismatch."""
    results = _run_without(("onnx", "onnxruntime", "torch"),
                           _mismatched_folders(model_folder, tmp_path), segmenter=False)
    assert results.pop("imported") == []
    assert results["valid"].startswith("ok ") and results["shipped"].startswith("ok ")
    assert results["classes"].startswith("ModelContractError: ")
    assert "class map in the ONNX metadata" in results["classes"]
    assert "classes/model.onnx" in results["classes"]
    assert "outputs ['argmax'] named in model.yaml are not in the graph" in results["output"]


def test_the_segmenter_starts_without_onnx_and_still_refuses_a_mismatch(
        model_folder: Path, tmp_path: Path) -> None:
    results = _run_without(("onnx", "torch", "matplotlib", "safetensors"),
                           _mismatched_folders(model_folder, tmp_path), segmenter=True)
    assert results.pop("imported") == []
    assert results["valid"] == "ok (60, 80)" and results["shipped"] == "ok (60, 80)"
    assert "class map in the ONNX metadata" in results["classes"]
    assert "outputs ['argmax']" in results["output"]
