"""PyTorch backend: the model rebuilt from its safetensors weights; CPU fp32, or CUDA in fp32 or
fp16 with optional CUDA-graph replay for fixed input shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported lazily at run time: the core must not pull torch in
    import torch

from crop_weed_seg.backends.base import BackendOptions, InferenceOutput
from crop_weed_seg.errors import BackendError
from crop_weed_seg.model.contract import ModelContract


class TorchBackend:
    name = "torch"

    def __init__(self, contract: ModelContract, options: BackendOptions) -> None:
        import torch

        # Here, not at module level: nn/ imports torch, which the core must not load on import.
        from crop_weed_seg.nn.network import LabelsAndConfidence, NetworkConfig, build_network
        from crop_weed_seg.nn.weights import load_weights

        if contract.weights_path is None:
            raise BackendError(f"{contract.folder}/model.yaml names no weights file; the torch "
                               "backend needs one")
        device = options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError(f"device={device} asked for, but torch sees no CUDA device")
        if options.precision not in ("fp32", "fp16"):
            raise BackendError(f"torch backend supports fp32 and fp16, not {options.precision}")
        if options.precision == "fp16" and not device.startswith("cuda"):
            raise BackendError("fp16 needs a CUDA device (device=cuda)")
        self.torch = torch
        self.device = torch.device(device)
        if self.device.type == "cpu" and options.threads:
            torch.set_num_threads(options.threads)
        net = build_network(NetworkConfig.from_json(contract.architecture))
        load_weights(net, contract.weights_path)
        self.dtype = torch.float16 if options.precision == "fp16" else torch.float32
        self.model = LabelsAndConfidence(net).eval().to(self.device, self.dtype)
        self.cuda_graphs = options.cuda_graphs and self.device.type == "cuda"
        self._graph: object | None = None
        self._static_in: "torch.Tensor | None" = None
        self._static_out: "tuple[torch.Tensor, torch.Tensor] | None" = None
        self.detail = f"{self.device} {options.precision}" + \
            (" cuda-graphs" if self.cuda_graphs else "")

    def _run_graph(self, x: "torch.Tensor") -> "tuple[torch.Tensor, torch.Tensor]":
        torch = self.torch
        if self._static_in is None or self._static_in.shape != x.shape:
            # (Re)capture for this shape: warm up on a side stream, then capture.
            self._static_in = x.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream), torch.no_grad():
                for _ in range(2):
                    self.model(self._static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), torch.no_grad():
                self._static_out = self.model(self._static_in)
            self._graph = graph
        self._static_in.copy_(x)
        self._graph.replay()  # type: ignore[union-attr]
        assert self._static_out is not None
        return self._static_out

    def infer(self, tensor: np.ndarray) -> InferenceOutput:
        torch = self.torch
        x = torch.from_numpy(tensor).to(self.device, self.dtype, non_blocking=True)
        with torch.no_grad():
            labels, conf = self._run_graph(x) if self.cuda_graphs else self.model(x)
        return InferenceOutput(labels[0].cpu().numpy(), conf[0].float().cpu().numpy())

    def close(self) -> None:
        self._graph = self._static_in = self._static_out = None


def create(contract: ModelContract, options: BackendOptions) -> TorchBackend:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise BackendError(f"torch is not installed ({exc})") from None
    return TorchBackend(contract, options)
