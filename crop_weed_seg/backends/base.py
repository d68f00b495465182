"""The backend interface: a normalised input tensor in, labels and confidence out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

if TYPE_CHECKING:
    from crop_weed_seg.backends.engine_options import EngineOptions

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class BackendOptions:
    """How to run a model. ``device`` is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    ``threads`` sets CPU intra-op threads (None: the runtime's choice, capped at 4);
    ``cuda_graphs`` replays a captured graph for fixed input shapes (torch and TensorRT on
    CUDA). The ``engine_*`` fields are TensorRT's engine cache (DESIGN.md §7): its folder (None:
    the user's cache folder), whether a missing or stale engine may be built at start-up, and
    whether to rebuild regardless; ``engine`` which engine to use (precision, DLA, shapes, ONNX
    ...: the node's ``engine_*`` parameters; None: ``precision`` and the defaults);
    ``progress`` receives one-line progress messages (an engine build takes minutes).
    """

    device: str = "auto"
    precision: str = "fp32"
    threads: int | None = None
    cuda_graphs: bool = False
    engine_cache_dir: str | None = None
    allow_engine_build: bool = True
    force_engine_rebuild: bool = False
    engine: EngineOptions | None = None
    progress: Callable[[str], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class InferenceOutput:
    """Model-resolution outputs: labels (h, w) of an integer dtype, confidence (h, w) float32."""

    labels: np.ndarray
    confidence: np.ndarray


class Backend(Protocol):
    """One loaded model on one runtime. Not thread-safe: one instance per thread."""

    name: str
    #: What it runs on, in words (e.g. "CPUExecutionProvider, 2 threads", "cuda:0 fp16").
    detail: str

    def infer(self, tensor: np.ndarray) -> InferenceOutput:
        """Run one (1, 3, h, w) float32 tensor; h, w must be allowed by the model contract."""
        ...

    def close(self) -> None:
        """Release runtime resources (sessions, device memory)."""
        ...
