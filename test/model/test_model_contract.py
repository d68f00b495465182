"""Model folder contract: a valid folder loads; each broken contract fails with its message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from crop_weed_seg.errors import ModelContractError
from crop_weed_seg.model.contract import load_model_contract, sha256_file

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
