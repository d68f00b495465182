"""The model folder contract (``models/<name>/model.yaml``) and its cross-check with the ONNX.

A model is a folder holding ``model.yaml`` (this contract), ``model.onnx`` and the trained
weights. ``load_model_contract`` fails with one ModelContractError naming the file and the
mismatch; a missing class map is an error, never a guess.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crop_weed_seg.classes import PALETTE_RGB
from crop_weed_seg.errors import ModelContractError
from crop_weed_seg.image_files import write_bytes_atomic
from crop_weed_seg.model.onnx_reader import OnnxReadError, read_onnx
from crop_weed_seg.model.preprocess import InputSpec

CONTRACT_FILE = "model.yaml"
SCHEMA_VERSION = 1
#: Keys our exporter writes into the ONNX ``metadata_props``; the loader compares them.
META_CLASSES = "crop_weed_seg.classes"
META_INPUT_SIZE = "crop_weed_seg.input_size"
META_MODEL_NAME = "crop_weed_seg.model_name"


@dataclass(frozen=True)
class ModelContract:
    """What ``model.yaml`` promises. Paths are absolute."""

    folder: Path
    name: str
    version: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    input: InputSpec
    dynamic_size: bool
    input_name: str
    labels_output: str
    confidence_output: str
    onnx_path: Path
    onnx_sha256: str
    weights_path: Path | None
    architecture: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _require(data: dict[str, Any], key: str, where: Path) -> Any:
    if key not in data:
        raise ModelContractError(f"{where}: missing required key '{key}'")
    return data[key]


def _classes_from(raw: Any, where: Path) -> tuple[str, ...]:
    if not isinstance(raw, dict) or not raw:
        raise ModelContractError(f"{where}: 'classes' must map label ids to names, e.g. "
                                 "{0: soil, 1: crop, 2: weed}")
    try:
        ids = sorted(int(k) for k in raw)
    except (TypeError, ValueError):
        raise ModelContractError(f"{where}: 'classes' keys must be integer label ids") from None
    if ids != list(range(len(ids))):
        raise ModelContractError(f"{where}: class ids must be 0..{len(ids) - 1} without gaps, "
                                 f"got {ids}")
    return tuple(str(raw.get(i, raw.get(str(i)))) for i in ids)


def load_model_contract(folder: Path | str, *, check_files: bool = True,
                        check_onnx: bool = True) -> ModelContract:
    """Read and validate ``<folder>/model.yaml``; optionally verify the ONNX sha256 and graph."""
    folder = Path(folder).resolve()
    path = folder / CONTRACT_FILE
    if not folder.is_dir():
        raise ModelContractError(f"{folder}: model folder does not exist")
    if not path.is_file():
        raise ModelContractError(f"{path}: model contract not found (every model folder needs "
                                 f"a {CONTRACT_FILE})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ModelContractError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ModelContractError(f"{path}: expected a mapping at the top level")
    classes = _classes_from(data.get("classes"), path)
    palette_raw = data.get("palette") or {}
    palette = tuple(tuple(int(c) for c in palette_raw.get(name, PALETTE_RGB[i % 3]))
                    for i, name in enumerate(classes))
    inp = _require(data, "input", path)
    size = _require(inp, "size", path)
    if not (isinstance(size, list) and len(size) == 2 and all(int(s) >= 32 for s in size)):
        raise ModelContractError(f"{path}: input.size must be [H, W] with both ≥ 32, got {size}")
    order = str(inp.get("channel_order", "RGB"))
    if order not in ("RGB", "BGR"):
        raise ModelContractError(f"{path}: input.channel_order must be RGB or BGR, got {order}")
    mean = tuple(float(v) for v in inp.get("mean", (0.0, 0.0, 0.0)))
    std = tuple(float(v) for v in inp.get("std", (1.0, 1.0, 1.0)))
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ModelContractError(f"{path}: input.mean and input.std need 3 values, std > 0")
    spec = InputSpec(size=(int(size[0]), int(size[1])), channel_order=order,
                     scale=float(inp.get("scale", 1.0 / 255.0)),
                     mean=mean, std=std)  # type: ignore[arg-type]
    onnx_info = _require(data, "onnx", path)
    outputs = _require(data, "outputs", path)
    weights = data.get("weights") or {}
    contract = ModelContract(
        folder=folder,
        name=str(_require(data, "name", path)),
        version=str(data.get("version", "0")),
        classes=classes,
        palette=palette,  # type: ignore[arg-type]
        input=spec,
        dynamic_size=bool(inp.get("dynamic_size", False)),
        input_name=str(inp.get("name", "image")),
        labels_output=str(_require(outputs, "labels", path)),
        confidence_output=str(_require(outputs, "confidence", path)),
        onnx_path=folder / str(_require(onnx_info, "file", path)),
        onnx_sha256=str(onnx_info.get("sha256", "")),
        weights_path=(folder / weights["file"]) if weights.get("file") else None,
        architecture=dict(data.get("architecture") or {}),
        training=dict(data.get("training") or {}),
        metrics=dict(data.get("metrics") or {}),
    )
    if check_files:
        if not contract.onnx_path.is_file():
            raise ModelContractError(f"{contract.onnx_path}: ONNX file named in {path} is missing")
        if contract.onnx_sha256:
            actual = sha256_file(contract.onnx_path)
            if actual != contract.onnx_sha256:
                raise ModelContractError(
                    f"{contract.onnx_path}: sha256 {actual[:12]}… differs from {path} "
                    f"({contract.onnx_sha256[:12]}…); the ONNX was replaced without updating "
                    "the contract")
    if check_onnx:
        check_onnx_against_contract(contract)
    return contract


def check_onnx_against_contract(contract: ModelContract) -> None:
    """Compare the ONNX graph's inputs, outputs and metadata with the contract.

    Reads the protobuf itself (:mod:`crop_weed_seg.model.onnx_reader`): the ``onnx`` package is
    a training/export dependency, not installed on a robot.
    """
    path = contract.onnx_path
    try:
        model = read_onnx(path)
    except (OSError, OnnxReadError) as exc:
        raise ModelContractError(f"{path}: not a readable ONNX model ({exc})") from None
    inputs = [i.name for i in model.graph_inputs]
    if inputs != [contract.input_name]:
        raise ModelContractError(f"{path}: graph inputs {inputs} do not match model.yaml "
                                 f"input.name '{contract.input_name}'")
    outputs = [o.name for o in model.outputs]
    wanted = [contract.labels_output, contract.confidence_output]
    missing = [n for n in wanted if n not in outputs]
    if missing:
        raise ModelContractError(f"{path}: outputs {missing} named in model.yaml are not in the "
                                 f"graph (graph outputs: {outputs})")
    meta = model.metadata
    if META_CLASSES in meta:
        try:
            graph_classes = tuple(json.loads(meta[META_CLASSES]))
        except (ValueError, TypeError):
            raise ModelContractError(f"{path}: metadata '{META_CLASSES}' is not a JSON list "
                                     f"({meta[META_CLASSES][:80]!r})") from None
        if graph_classes != contract.classes:
            raise ModelContractError(
                f"{path}: class map in the ONNX metadata {list(graph_classes)} differs from "
                f"model.yaml {list(contract.classes)} (wrong class count or order)")
    dims = model.graph_inputs[0].dims or ()
    if len(dims) == 4 and isinstance(dims[1], int) and dims[1] != 3:
        raise ModelContractError(f"{path}: input has {dims[1]} channels, expected 3")


def write_model_yaml(folder: Path, document: dict[str, Any]) -> Path:
    """Write ``model.yaml`` atomically (keys in the given order)."""
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=100)
    path = folder / CONTRACT_FILE
    write_bytes_atomic(path, text.encode())
    return path
