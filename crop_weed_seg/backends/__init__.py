"""Inference backends behind one small interface, a registry and an explicit fallback order.

Each backend module imports its runtime (onnxruntime, torch, tensorrt) lazily, inside its
factory, so importing this package costs nothing and a missing runtime is an error that names
itself instead of an ImportError at start-up.
"""

from crop_weed_seg.backends.base import Backend, BackendOptions, InferenceOutput
from crop_weed_seg.backends.registry import AUTO_ORDER, REGISTRY, available_backends, create_backend

__all__ = ["AUTO_ORDER", "REGISTRY", "Backend", "BackendOptions", "InferenceOutput",
           "available_backends", "create_backend"]
