"""ONNX Runtime backend: TensorRT EP, CUDA EP or CPU, whichever this onnxruntime build has."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from crop_weed_seg.backends.base import BackendOptions, InferenceOutput
from crop_weed_seg.errors import BackendError
from crop_weed_seg.model.contract import ModelContract

#: Preferred providers, fastest first; only those the installed build offers are used.
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def choose_providers(available: list[str], device: str) -> list[str]:
    """Providers to request for ``device`` (auto/cpu/cuda[:N]) from the ``available`` ones."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    wanted = [p for p in PROVIDER_ORDER if p in available]
    if device.startswith("cuda") and not any(p != "CPUExecutionProvider" for p in wanted):
        raise BackendError(f"device={device} asked for, but this onnxruntime build has only "
                           f"{available} (install onnxruntime-gpu)")
    return wanted or ["CPUExecutionProvider"]


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, contract: ModelContract, options: BackendOptions) -> None:
        import onnxruntime as ort

        if options.precision != "fp32":
            raise BackendError(f"onnxruntime runs the model as exported (fp32); precision "
                               f"{options.precision} needs the torch or tensorrt backend")
        self.contract = contract
        providers = choose_providers(ort.get_available_providers(), options.device)
        so = ort.SessionOptions()
        # Threads on purpose: one intra-op pool sized to the cores we may use (capped at 4:
        # more threads than that slow a small network down), no inter-op parallelism.
        threads = options.threads or min(4, os.cpu_count() or 1)
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        # No busy-waiting between ops: spinning threads win ~1.5 ms of 15 on an idle machine but
        # steal the cores from the ROS executor, the camera driver and DDS; in segmenter_node at
        # 1280x720 / 30 Hz on 2 cores it cut latency p95 from 42 to 28 ms (docs/BENCHMARKS.md).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(contract.onnx_path), so, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise BackendError(f"{contract.onnx_path}: ONNX Runtime could not load it ({exc})") \
                from None
        used = self.session.get_providers()
        self.detail = f"{used[0]}, {threads} threads" if used[0] == "CPUExecutionProvider" \
            else used[0]
        self._outputs = [contract.labels_output, contract.confidence_output]
        self._feed: dict[str, Any] = {}

    def infer(self, tensor: np.ndarray) -> InferenceOutput:
        self._feed[self.contract.input_name] = tensor
        labels, confidence = self.session.run(self._outputs, self._feed)
        return InferenceOutput(labels[0], confidence[0])

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]


def create(contract: ModelContract, options: BackendOptions) -> OnnxRuntimeBackend:
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise BackendError(f"onnxruntime is not installed ({exc})") from None
    return OnnxRuntimeBackend(contract, options)
