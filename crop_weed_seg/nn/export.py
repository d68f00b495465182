"""ONNX export (opset 17) with labels and confidence inside the graph, and a parity check."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from crop_weed_seg.classes import CLASS_NAMES
from crop_weed_seg.image_files import write_bytes_atomic
from crop_weed_seg.model.contract import META_CLASSES, META_INPUT_SIZE, META_MODEL_NAME
from crop_weed_seg.nn.network import LabelsAndConfidence

OPSET = 17
INPUT_NAME = "image"
LABELS_OUTPUT = "labels"
CONFIDENCE_OUTPUT = "confidence"


def export_onnx(net: torch.nn.Module, path: Path, input_size: tuple[int, int],
                model_name: str, classes: tuple[str, ...] = CLASS_NAMES,
                dynamic_size: bool = True) -> Path:
    """Write ``net`` (logits model) as a single-file ONNX with int32 labels and confidence.

    The wrapper is put in eval mode and reference outputs are computed *before* exporting
    (TENSORRT.md): a module left in training mode would export BatchNorm in training mode.
    """
    import onnx

    net = net.eval().cpu()
    wrapper = LabelsAndConfidence(net).eval()
    h, w = input_size
    dummy = torch.rand(1, 3, h, w)
    with torch.no_grad():
        wrapper(dummy)
    dynamic_axes = {INPUT_NAME: {0: "batch"}, LABELS_OUTPUT: {0: "batch"},
                    CONFIDENCE_OUTPUT: {0: "batch"}}
    if dynamic_size:
        dynamic_axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                        LABELS_OUTPUT: {0: "batch", 1: "height", 2: "width"},
                        CONFIDENCE_OUTPUT: {0: "batch", 1: "height", 2: "width"}}
    buffer = io.BytesIO()
    # The legacy (TorchScript) exporter on purpose: it writes one self-contained file, where the
    # dynamo exporter puts weights in a separate *.onnx.data (TENSORRT.md, "Export rules").
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(wrapper, (dummy,), buffer, opset_version=OPSET, dynamo=False,
                          input_names=[INPUT_NAME],
                          output_names=[LABELS_OUTPUT, CONFIDENCE_OUTPUT],
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    for key, value in ((META_CLASSES, json.dumps(list(classes))),
                       (META_INPUT_SIZE, json.dumps([h, w])),
                       (META_MODEL_NAME, model_name)):
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    model.producer_name = "crop_weed_seg"
    onnx.checker.check_model(model)
    write_bytes_atomic(path, model.SerializeToString())
    return path


def onnx_parity(net: torch.nn.Module, onnx_path: Path, sizes: list[tuple[int, int]],
                samples: int = 2, seed: int = 0) -> float:
    """Share of pixels where ONNX Runtime's labels equal PyTorch's argmax on random inputs.

    Inputs are smooth random images (noise at several scales), closer to photos than white
    noise, so ties between classes are as rare as in real frames.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    agree = total = 0
    net = net.eval().cpu()
    for h, w in sizes:
        for _ in range(samples):
            coarse = rng.random((1, 3, max(2, h // 16), max(2, w // 16))).astype(np.float32)
            x = torch.nn.functional.interpolate(torch.from_numpy(coarse), size=(h, w),
                                                mode="bilinear", align_corners=False)
            x = (x + 0.05 * torch.rand_like(x)).clamp(0, 1)
            with torch.no_grad():
                ref = net(x).argmax(1).numpy()
            labels = session.run([LABELS_OUTPUT], {INPUT_NAME: x.numpy()})[0]
            agree += int((labels == ref).sum())
            total += ref.size
    return agree / total
