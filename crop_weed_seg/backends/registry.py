"""Backend registry, the ``auto`` order and the error that lists every backend tried."""

from __future__ import annotations

import importlib
import os
from typing import Callable, Mapping

from crop_weed_seg.backends.base import Backend, BackendOptions
from crop_weed_seg.errors import BackendError
from crop_weed_seg.model.contract import ModelContract

BackendFactory = Callable[[ModelContract, BackendOptions], Backend]


def _lazy(module: str) -> BackendFactory:
    """A factory that imports ``crop_weed_seg.backends.<module>`` only when called."""
    def factory(contract: ModelContract, options: BackendOptions) -> Backend:
        mod = importlib.import_module(f"crop_weed_seg.backends.{module}")
        return mod.create(contract, options)  # type: ignore[no-any-return]
    factory.__name__ = f"create_{module}"
    return factory


#: Name -> factory. Tests swap in fakes by passing their own mapping.
REGISTRY: dict[str, BackendFactory] = {
    "onnxruntime": _lazy("onnxruntime_backend"),
    "torch": _lazy("torch_backend"),
    # Fails with a reason (tensorrt not installed, no CUDA device, device=cpu, no engine and
    # builds not allowed) so that ``auto`` moves on to the next backend.
    "tensorrt": _lazy("tensorrt_backend"),
}

#: ``auto`` tries these in order and takes the first that loads. ONNX Runtime comes before torch
#: because on a CPU it is about 2.5x faster than eager PyTorch for our models; on a machine with
#: an NVIDIA GPU but an ONNX Runtime without GPU providers, torch (CUDA, fp16) goes first.
AUTO_ORDER: tuple[str, ...] = ("tensorrt", "onnxruntime", "torch")


def _nvidia_gpu_present() -> bool:
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvgpu", "/dev/nvhost-ctrl"))


def _onnxruntime_has_gpu() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return bool({"CUDAExecutionProvider", "TensorrtExecutionProvider"}
                & set(ort.get_available_providers()))


def auto_order(registry: Mapping[str, BackendFactory]) -> list[str]:
    """The order ``auto`` tries on this machine (only names present in ``registry``)."""
    order = [n for n in AUTO_ORDER if n in registry]
    if "torch" in order and "onnxruntime" in order and _nvidia_gpu_present() \
            and not _onnxruntime_has_gpu():
        order.remove("torch")
        order.insert(order.index("onnxruntime"), "torch")
    return order + [n for n in registry if n not in order]


def create_backend(name: str, contract: ModelContract, options: BackendOptions = BackendOptions(),
                   registry: Mapping[str, BackendFactory] | None = None) -> Backend:
    """Load ``contract``'s model on backend ``name`` (or the first that works for ``auto``).

    Raises BackendError listing every backend tried and why each failed.
    """
    registry = REGISTRY if registry is None else registry
    if name == "auto":
        candidates = auto_order(registry)
    elif name in registry:
        candidates = [name]
    else:
        raise BackendError(f"unknown backend {name!r}; valid: auto, {', '.join(registry)}")
    failures: list[str] = []
    for candidate in candidates:
        try:
            return registry[candidate](contract, options)
        except Exception as exc:  # noqa: BLE001 - any failure means: try the next one
            failures.append(f"{candidate}: {exc}")
    tried = "\n  ".join(failures)
    raise BackendError(f"no usable backend for model '{contract.name}' "
                       f"(backend={name}, device={options.device}); tried:\n  {tried}")


def available_backends(registry: Mapping[str, BackendFactory] | None = None) -> list[str]:
    """Names whose runtime (a module of the same name) is importable here, without loading
    a model."""
    import importlib.util

    registry = REGISTRY if registry is None else registry
    return [n for n in auto_order(registry) if importlib.util.find_spec(n) is not None]
