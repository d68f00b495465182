"""FP16 and INT8 (Q/DQ) ONNX variants for TensorRT ≥ 10.12 / 11, checked on CPU against FP32.

TensorRT 10.12 deprecates and 11 removes the FP16/INT8 builder flags: a reduced-precision engine
comes from an ONNX that already carries the precision (built with the STRONGLY_TYPED flag).

- FP16: ``onnxconverter-common``'s float16 conversion with ``keep_io_types=True``: the graph's
  input and its confidence output stay float32, labels stay int32 (NVIDIA ModelOpt AutoCast
  does the same job, but its ``[onnx]`` extra pins an older onnx and onnxruntime-gpu).
- INT8: ONNX Runtime ``quantize_static`` in Q/DQ format, per-channel symmetric int8 weights,
  symmetric int8 activations (zero point 0, what TensorRT accepts), float bias, calibrated on
  representative frames through the model's own preprocessing
  (:mod:`crop_weed_seg.model.preprocess`).

Every variant is compared with the FP32 model under ONNX Runtime (CPU): per-pixel argmax
agreement, NaN count, and mIoU against ground truth when labels are at hand.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from crop_weed_seg.data.metrics import ConfusionAccumulator
from crop_weed_seg.errors import DatasetError, ModelContractError
from crop_weed_seg.image_files import read_rgb
from crop_weed_seg.model.contract import ModelContract
from crop_weed_seg.model.preprocess import fit_to_input, to_tensor
from crop_weed_seg.synthetic import PRESETS, generate_sample

#: Ops whose inputs get Q/DQ in the INT8 model. The convolutions carry the compute; the
#: vegetation-index arithmetic at the input and the softmax/argmax head stay in float.
INT8_OP_TYPES = ("Conv",)
FP16_MIN_AGREEMENT = 0.995


@dataclass(frozen=True)
class Comparison:
    """A reduced-precision model against the FP32 reference on the same inputs."""

    images: int
    agreement: float            # share of pixels whose label equals FP32's (all images)
    min_image_agreement: float  # worst single image
    nan_outputs: int            # images whose confidence holds NaN/Inf
    max_confidence_diff: float
    miou_reference: float | None = None   # against ground truth, when given
    miou_candidate: float | None = None

    @property
    def miou_change(self) -> float | None:
        if self.miou_reference is None or self.miou_candidate is None:
            return None
        return self.miou_candidate - self.miou_reference

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "miou_change": self.miou_change}


def preprocess_frame(rgb: np.ndarray, contract: ModelContract) -> np.ndarray:
    """(H, W, 3) uint8 RGB frame → (1, 3, h, w) float32, exactly as the Segmenter does."""
    small, _ = fit_to_input(rgb, contract.input)
    return to_tensor(np.ascontiguousarray(small), contract.input)


def image_files(folder: Path) -> list[Path]:
    """Images of a folder (or of its ``images/`` subfolder, the dataset layout), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder of calibration images")
    if (folder / "images").is_dir():
        folder = folder / "images"
    exts = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in exts and
                   not p.name.startswith("."))
    if not files:
        raise DatasetError(f"{folder}: no images found for calibration")
    return files


def tensors_from_folder(folder: Path, contract: ModelContract, limit: int | None = None
                        ) -> list[np.ndarray]:
    files = image_files(folder)[:limit] if limit else image_files(folder)
    return [preprocess_frame(read_rgb(p), contract) for p in files]


def synthetic_samples(contract: ModelContract, count: int, preset: str = "heldout",
                      seed: int = 3, start: int = 0
                      ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(tensor, truth labels at model resolution) for synthetic frames ``start..start+count``.

    ``preset="heldout", seed=3`` is the default model's held-out test set
    (``crop-weed-seg synth --preset heldout --seed 3``).
    """
    import cv2

    h, w = contract.input.size
    for index in range(start, start + count):
        rgb, labels, _ = generate_sample(PRESETS[preset], seed, index)
        truth = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
        yield preprocess_frame(rgb, contract), truth


def _session(path: Path | str, threads: int | None = None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_model(session: Any, contract: ModelContract, tensor: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    labels, confidence = session.run([contract.labels_output, contract.confidence_output],
                                     {contract.input_name: tensor})
    return labels, confidence


def compare(reference: Path | str, candidate: Path | str, contract: ModelContract,
            samples: Iterable[np.ndarray | tuple[np.ndarray, np.ndarray]]) -> Comparison:
    """Run both models on every sample (a tensor, or (tensor, truth labels)) and compare."""
    ref_s, cand_s = _session(reference), _session(candidate)
    n = contract.num_classes
    acc_ref, acc_cand = ConfusionAccumulator(n), ConfusionAccumulator(n)
    same = total = images = nans = 0
    worst, max_diff, have_truth = 1.0, 0.0, False
    for sample in samples:
        tensor, truth = sample if isinstance(sample, tuple) else (sample, None)
        ref_labels, ref_conf = run_model(ref_s, contract, tensor)
        labels, conf = run_model(cand_s, contract, tensor)
        if labels.dtype != np.int32 or conf.dtype != np.float32:
            raise ModelContractError(f"{candidate}: outputs are {labels.dtype}/{conf.dtype}, "
                                     "the contract needs int32 labels and float32 confidence")
        equal = int((labels == ref_labels).sum())
        same, total, images = same + equal, total + labels.size, images + 1
        worst = min(worst, equal / labels.size)
        if not np.isfinite(conf).all():
            nans += 1
        else:
            max_diff = max(max_diff, float(np.abs(conf - ref_conf).max()))
        if truth is not None:
            have_truth = True
            acc_ref.add(truth, ref_labels[0])
            acc_cand.add(truth, labels[0])
    if images == 0:
        raise ValueError("no samples to compare")
    return Comparison(images=images, agreement=same / total, min_image_agreement=worst,
                      nan_outputs=nans, max_confidence_diff=max_diff,
                      miou_reference=acc_ref.scores().miou if have_truth else None,
                      miou_candidate=acc_cand.scores().miou if have_truth else None)


def convert_fp16(src: Path | str, dst: Path | str) -> Path:
    """FP32 ONNX → FP16 ONNX with float32 input/outputs (``keep_io_types=True``)."""
    import onnx
    from onnxconverter_common import float16

    model = onnx.load(str(src))
    converted = float16.convert_float_to_float16(model, keep_io_types=True)
    _copy_metadata(model, converted)
    dst = Path(dst)
    onnx.save(converted, str(dst))
    return dst


class _TensorReader:
    """ONNX Runtime CalibrationDataReader over preprocessed tensors."""

    def __init__(self, input_name: str, tensors: Sequence[np.ndarray]) -> None:
        self._input_name = input_name
        self._iter = iter(tensors)

    def get_next(self) -> dict[str, np.ndarray] | None:
        tensor = next(self._iter, None)
        return None if tensor is None else {self._input_name: tensor}


def quantize_int8(src: Path | str, dst: Path | str, contract: ModelContract,
                  calibration: Sequence[np.ndarray],
                  op_types: Sequence[str] = INT8_OP_TYPES) -> Path:
    """FP32 ONNX → INT8 Q/DQ ONNX (per-channel symmetric weights, symmetric int8 activations,
    zero points 0, float bias), calibrated (min/max) on ``calibration`` tensors."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise DatasetError("INT8 calibration needs at least one image")
    dst = Path(dst)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference (and no ORT-specific fusions) so every Conv gets its Q/DQ pairs.
        quant_pre_process(str(src), str(prepared), skip_optimization=True)
        quantize_static(
            str(prepared), str(dst), _TensorReader(contract.input_name, calibration),
            quant_format=QuantFormat.QDQ, op_types_to_quantize=list(op_types),
            per_channel=True, reduce_range=False,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                           "QuantizeBias": False})
    src_model = onnx.load(str(src), load_external_data=False)
    out = onnx.load(str(dst))
    _copy_metadata(src_model, out)
    onnx.save(out, str(dst))
    return dst


def _copy_metadata(src: Any, dst: Any) -> None:
    """Keep our metadata_props (class map, input size, name) on the converted model."""
    have = {p.key for p in dst.metadata_props}
    for prop in src.metadata_props:
        if prop.key not in have:
            entry = dst.metadata_props.add()
            entry.key, entry.value = prop.key, prop.value


def count_qdq(path: Path | str) -> dict[str, int]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    counts = {"QuantizeLinear": 0, "DequantizeLinear": 0}
    for node in model.graph.node:
        if node.op_type in counts:
            counts[node.op_type] += 1
    return counts


def io_types(path: Path | str) -> dict[str, str]:
    """Graph input/output name → element type name (e.g. FLOAT, INT32)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return {v.name: onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)
            for v in list(model.graph.input) + list(model.graph.output) if v.name not in inits}
