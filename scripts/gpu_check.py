"""GPU check of the TensorRT backend's device memory, streams and CUDA graphs, without TensorRT.

For the lent GPU machine (PyTorch with CUDA and cuda-python, no TensorRT, no ROS):

    python scripts/gpu_check.py [--allocator torch,cuda-python] [--runs 50]

The backend (``crop_weed_seg/backends/tensorrt_backend.py``) is driven with the CPU fake of the
``tensorrt`` module (``test/support/fake_tensorrt.py``: the "engine" runs the ONNX on ONNX
Runtime). Here the fake's execution context is switched from host memory to *device* memory: it
synchronises
the device, copies the inputs from the device addresses the backend gave it with ``cudaMemcpy``,
runs ONNX Runtime and copies the outputs back to the device addresses. So the backend's real
allocators (PyTorch, cuda-python), its pinned staging buffers, its non-default stream and its
host<->device copies run on a real CUDA device. Checks, per allocator:

- labels of the golden frames (``test/fixtures/trt_goldens``) equal ONNX Runtime's (agreement
  >= 99.99 %), confidence finite;
- buffers follow a shape change (a second input size through a dynamic profile);
- the allocator's CUDA-graph capture and replay on its stream (a device-to-device copy captured
  once and replayed: the copy of the newest data appears after each replay).

Prints a Markdown table with the device name; exit 0 when every check passes, 1 otherwise,
2 without CUDA. It has not run yet: no task so far was lent a GPU. Nothing here is TensorRT.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "test"))


def _cudart() -> Any:
    from cuda.bindings import runtime as cudart
    return cudart


def _check(result: Any) -> Any:
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else values


def device_memory_fake(fake_module: Any) -> None:
    """Point the fake's raw-address reads and writes at device memory (cudaMemcpyDefault works
    for device and pinned host addresses alike under unified addressing)."""
    from support import fake_tensorrt

    cudart = _cudart()
    kind = cudart.cudaMemcpyKind.cudaMemcpyDefault

    def read(ptr: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        _check(cudart.cudaDeviceSynchronize())          # the backend's H2D copy on its stream
        out = np.empty(shape, dtype)
        _check(cudart.cudaMemcpy(out.ctypes.data, ptr, out.nbytes, kind))
        return out

    def write(ptr: int, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        _check(cudart.cudaMemcpy(ptr, array.ctypes.data, array.nbytes, kind))

    fake_tensorrt._read = read      # type: ignore[attr-defined]
    fake_tensorrt._write = write    # type: ignore[attr-defined]


def run(allocator_name: str, runs: int, cache: Path) -> list[tuple[str, bool, str]]:
    """The checks for one allocator: ``torch``, ``cuda-python``, or ``host`` (a dry run of this
    script on a machine without a GPU: numpy memory, no device copies, no graph check)."""
    from crop_weed_seg.backends import cuda_memory
    from crop_weed_seg.backends.base import BackendOptions
    from crop_weed_seg.backends.engine_cache import EngineCache, EngineSettings
    from crop_weed_seg.backends.tensorrt_backend import TensorRTBackend
    from crop_weed_seg.model.contract import load_model_contract
    from crop_weed_seg.model.preprocess import to_tensor

    from support import fake_tensorrt

    checks: list[tuple[str, bool, str]] = []
    module = fake_tensorrt.make_fake_tensorrt("10.3.0")
    sys.modules["tensorrt"] = module
    if allocator_name == "host":
        allocator: Any = cuda_memory.HostAllocator()
    else:
        device_memory_fake(module)
        allocator = (cuda_memory.TorchAllocator() if allocator_name == "torch"
                     else cuda_memory.CudaPythonAllocator())
    contract = load_model_contract(REPO / "models" / "default")
    h, w = contract.input.size
    settings = EngineSettings.for_model(contract.input.size, contract.dynamic_size,
                                        shapes=((h // 2, w // 2), (h, w), (h, w))
                                        if contract.dynamic_size else None)
    backend = TensorRTBackend(contract, BackendOptions(device="cuda"),
                              cache_dir=EngineCache(cache / allocator_name, allow_any=True),
                              allocator=allocator,
                              settings=settings)
    with np.load(REPO / "test" / "fixtures" / "trt_goldens" / "goldens.npz") as g:
        frames, labels, conf = g["frames"], g["labels"], g["confidence"]
    agree, finite = [], True
    times = []
    for k in range(len(frames)):
        tensor = to_tensor(frames[k], contract.input)
        for _ in range(max(1, runs // len(frames))):
            t0 = time.perf_counter()
            out = backend.infer(tensor)
            times.append((time.perf_counter() - t0) * 1e3)
        agree.append(float(np.mean(out.labels.reshape(labels[k].shape) == labels[k])))
        finite &= bool(np.isfinite(out.confidence).all())
        diff = float(np.abs(out.confidence.reshape(conf[k].shape) - conf[k]).max())
    checks.append((f"{allocator_name}: golden labels", min(agree) >= 0.9999,
                   f"agreement min {100 * min(agree):.3f} %, confidence max diff {diff:.2e}, "
                   f"p50 {np.median(times):.1f} ms (ONNX Runtime on CPU inside)"))
    checks.append((f"{allocator_name}: confidence finite", finite, ""))
    if contract.dynamic_size:
        small = np.ascontiguousarray(to_tensor(frames[0], contract.input)[:, :, : h // 2,
                                                                            : w // 2])
        try:
            out = backend.infer(small)
            checks.append((f"{allocator_name}: shape change",
                           tuple(out.labels.shape[-2:]) == (h // 2, w // 2),
                           f"labels {tuple(out.labels.shape)}"))
        except Exception as exc:  # noqa: BLE001 — reported as a failed check
            checks.append((f"{allocator_name}: shape change", False,
                           f"{type(exc).__name__}: {exc}"))
    if allocator_name != "host":
        checks.append(graph_check(allocator, allocator_name))
    backend.close()
    return checks


def graph_check(allocator: Any, name: str) -> tuple[str, bool, str]:
    """Capture a device-to-device copy on the allocator's stream once, replay it after changing
    the source: the destination must follow."""
    stream = allocator.create_stream()
    src = allocator.empty((1024,), np.dtype(np.float32))
    dst = allocator.empty((1024,), np.dtype(np.float32))
    cudart = _cudart()
    kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice

    def work() -> None:
        _check(cudart.cudaMemcpyAsync(dst.ptr, src.ptr, src.nbytes, kind, stream.handle))
    try:
        graph = allocator.capture_graph(stream, work)
        ok = True
        for value in (1.0, 2.5, -3.0):
            src.copy_from_host(np.full(1024, value, np.float32), stream)
            graph.replay(stream)
            stream.synchronize()
            ok &= bool(np.all(dst.copy_to_host(stream) == value))
        return (f"{name}: CUDA graph replay", ok, "3 replays")
    except Exception as exc:  # noqa: BLE001 — reported as a failed check
        return (f"{name}: CUDA graph replay", False, f"{type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--allocator", default="torch,cuda-python")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "crop_weed_seg"
                        / "gpu_check")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.allocator.split(",")]
    try:
        import torch
        if names == ["host"]:
            device = "no GPU (host dry run)"
        elif not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device")
        else:
            device = torch.cuda.get_device_name(0)
    except Exception as exc:  # noqa: BLE001
        print(f"gpu_check: cannot run: {exc} (a dry run without a GPU: --allocator host)")
        return 2
    rows: list[tuple[str, bool, str]] = []
    for name in names:
        try:
            rows += run(name, args.runs, args.cache)
        except Exception as exc:  # noqa: BLE001 — reported as a failed check
            rows.append((f"{name}: backend", False, f"{type(exc).__name__}: {exc}"))
    print(f"GPU check on {device} ({time.strftime('%Y-%m-%d')}): fake tensorrt, real CUDA "
          "memory\n")
    print("| check | result | detail |\n|---|---|---|")
    for check, ok, detail in rows:
        print(f"| {check} | {'pass' if ok else 'FAIL'} | {detail} |")
    return 0 if rows and all(ok for _, ok, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
