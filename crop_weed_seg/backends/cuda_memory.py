"""Device buffers, streams and CUDA graphs for the TensorRT backend, behind one small interface.

Three implementations of :class:`Allocator`:

- :class:`TorchAllocator`: PyTorch CUDA tensors (``data_ptr()``) and ``torch.cuda.Stream``;
- :class:`CudaPythonAllocator`: cuda-python (``from cuda.bindings import runtime as cudart``,
  every call returns ``(err, value...)`` and is checked);
- :class:`HostAllocator`: numpy arrays whose ``ctypes`` address stands in for a device pointer.
  **Test code**: it serves the CPU fake of TensorRT (``test/support/fake_tensorrt.py``) and never
  touches a GPU.

Both real allocators copy through pinned (page-locked) host buffers, so the copies are truly
asynchronous on the backend's non-default stream. Nothing here imports torch or cuda-python at
module level (the core must stay importable without them).
"""

from __future__ import annotations

import ctypes
import itertools
from typing import Any, Callable, Protocol

import numpy as np

from crop_weed_seg.errors import BackendError


class Stream(Protocol):
    """A non-default CUDA stream; ``handle`` is the ``cudaStream_t`` as an int."""

    handle: int

    def synchronize(self) -> None: ...


class DeviceBuffer(Protocol):
    """``nbytes`` of device memory at ``ptr`` holding an array of ``shape`` and ``dtype``."""

    ptr: int
    nbytes: int
    dtype: np.dtype[Any]
    shape: tuple[int, ...]

    def copy_from_host(self, array: np.ndarray, stream: Stream | None = None) -> None:
        """Enqueue a host-to-device copy of ``array`` (same nbytes) on ``stream``."""
        ...

    def copy_to_host(self, stream: Stream | None = None) -> np.ndarray:
        """Copy device to host on ``stream``, wait for the stream, return a new host array."""
        ...


class Graph(Protocol):
    """A captured CUDA graph: the work of one inference, replayed with one launch."""

    def replay(self, stream: Stream) -> None: ...


class Allocator(Protocol):
    """Device memory, streams and graph capture on one device."""

    name: str

    def empty(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> DeviceBuffer: ...

    def create_stream(self) -> Stream: ...

    def capture_graph(self, stream: Stream, work: Callable[[], None]) -> Graph:
        """Capture ``work`` (which enqueues on ``stream``) into a graph."""
        ...

    def device_name(self) -> str: ...

    def compute_capability(self) -> tuple[int, int]: ...

    def close(self) -> None: ...


def _nbytes(shape: tuple[int, ...], dtype: np.dtype[Any]) -> int:
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def _check_copy(array: np.ndarray, buffer: DeviceBuffer) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=buffer.dtype)
    if array.nbytes != buffer.nbytes:
        raise BackendError(f"host array of shape {array.shape} ({array.nbytes} bytes) does not "
                           f"fit the device buffer of shape {buffer.shape} ({buffer.nbytes} bytes)")
    return array


# --- PyTorch ---------------------------------------------------------------------------------

class _TorchStream:
    def __init__(self, torch: Any, device: Any) -> None:
        self.torch_stream = torch.cuda.Stream(device=device)
        self.handle = int(self.torch_stream.cuda_stream)

    def synchronize(self) -> None:
        self.torch_stream.synchronize()


class _TorchBuffer:
    def __init__(self, torch: Any, device: Any, shape: tuple[int, ...],
                 dtype: np.dtype[Any]) -> None:
        self._torch = torch
        torch_dtype = torch.from_numpy(np.empty(0, dtype)).dtype
        self.device_tensor = torch.empty(shape, dtype=torch_dtype, device=device)
        self.host_tensor = torch.empty(shape, dtype=torch_dtype, pin_memory=True)
        self.host: np.ndarray = self.host_tensor.numpy()
        self.ptr = int(self.device_tensor.data_ptr())
        self.nbytes = _nbytes(shape, dtype)
        self.dtype = dtype
        self.shape = shape

    def _stream(self, stream: Stream | None) -> Any:
        if isinstance(stream, _TorchStream):
            return stream.torch_stream
        return self._torch.cuda.current_stream()

    def copy_from_host(self, array: np.ndarray, stream: Stream | None = None) -> None:
        torch_stream = self._stream(stream)
        torch_stream.synchronize()  # the pinned staging buffer may still be in a copy
        self.host[...] = _check_copy(array, self).reshape(self.shape)
        with self._torch.cuda.stream(torch_stream):
            self.device_tensor.copy_(self.host_tensor, non_blocking=True)

    def copy_to_host(self, stream: Stream | None = None) -> np.ndarray:
        torch_stream = self._stream(stream)
        with self._torch.cuda.stream(torch_stream):
            self.host_tensor.copy_(self.device_tensor, non_blocking=True)
        torch_stream.synchronize()
        return self.host.copy()


class _TorchGraph:
    def __init__(self, graph: Any) -> None:
        self.graph = graph

    def replay(self, stream: Stream) -> None:
        self.graph.replay()


class TorchAllocator:
    """CUDA memory from PyTorch's caching allocator on ``cuda:<index>``."""

    name = "torch"

    def __init__(self, device_index: int = 0) -> None:
        import torch

        if not torch.cuda.is_available():
            raise BackendError("torch sees no CUDA device")
        if device_index >= torch.cuda.device_count():
            raise BackendError(f"cuda:{device_index} asked for, torch sees "
                               f"{torch.cuda.device_count()} device(s)")
        self._torch = torch
        self.device = torch.device("cuda", device_index)

    def empty(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> DeviceBuffer:
        return _TorchBuffer(self._torch, self.device, shape, np.dtype(dtype))

    def create_stream(self) -> Stream:
        return _TorchStream(self._torch, self.device)

    def capture_graph(self, stream: Stream, work: Callable[[], None]) -> Graph:
        assert isinstance(stream, _TorchStream)
        graph = self._torch.cuda.CUDAGraph()
        with self._torch.cuda.graph(graph, stream=stream.torch_stream):
            work()
        return _TorchGraph(graph)

    def device_name(self) -> str:
        return str(self._torch.cuda.get_device_name(self.device))

    def compute_capability(self) -> tuple[int, int]:
        major, minor = self._torch.cuda.get_device_capability(self.device)
        return int(major), int(minor)

    def close(self) -> None:
        pass


# --- cuda-python -----------------------------------------------------------------------------

def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6; 13.x only has this
    except ImportError as exc:
        raise BackendError(f"cuda-python is not installed ({exc}); pip install cuda-python "
                           "or use the torch allocator") from None
    return cudart


class _CudaCaller:
    """Calls a cudart function and checks the ``(err, *values)`` it returns."""

    def __init__(self, cudart: Any) -> None:
        self.cudart = cudart

    def __call__(self, name: str, *args: Any) -> Any:
        result = getattr(self.cudart, name)(*args)
        err, values = result[0], result[1:]
        if err != self.cudart.cudaError_t.cudaSuccess:
            _, err_name = self.cudart.cudaGetErrorName(err)
            text = err_name.decode() if isinstance(err_name, bytes) else str(err_name)
            raise BackendError(f"CUDA {name} failed: {text}")
        if not values:
            return None
        return values[0] if len(values) == 1 else values


class _CudaStream:
    def __init__(self, call: _CudaCaller) -> None:
        self._call = call
        flags = call.cudart.cudaStreamNonBlocking
        self.raw = call("cudaStreamCreateWithFlags", flags)
        self.handle = int(self.raw)

    def synchronize(self) -> None:
        self._call("cudaStreamSynchronize", self.raw)

    def destroy(self) -> None:
        self._call("cudaStreamDestroy", self.raw)


class _CudaBuffer:
    def __init__(self, call: _CudaCaller, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self._call = call
        self.shape, self.dtype = shape, dtype
        self.nbytes = _nbytes(shape, dtype)
        size = max(self.nbytes, 1)
        self.ptr = int(call("cudaMalloc", size))
        self._host_ptr = int(call("cudaMallocHost", size))  # pinned
        raw = (ctypes.c_byte * size).from_address(self._host_ptr)
        self.host: np.ndarray = \
            np.frombuffer(memoryview(raw).cast("B"), dtype=np.uint8)[:self.nbytes] \
            .view(dtype).reshape(shape)

    def _raw_stream(self, stream: Stream | None) -> Any:
        return stream.raw if isinstance(stream, _CudaStream) else 0

    def copy_from_host(self, array: np.ndarray, stream: Stream | None = None) -> None:
        raw = self._raw_stream(stream)
        self._call("cudaStreamSynchronize", raw)  # the pinned staging buffer may be in use
        self.host[...] = _check_copy(array, self).reshape(self.shape)
        self._call("cudaMemcpyAsync", self.ptr, self._host_ptr, self.nbytes,
                   self._call.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, raw)

    def copy_to_host(self, stream: Stream | None = None) -> np.ndarray:
        raw = self._raw_stream(stream)
        self._call("cudaMemcpyAsync", self._host_ptr, self.ptr, self.nbytes,
                   self._call.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, raw)
        self._call("cudaStreamSynchronize", raw)
        return self.host.copy()

    def free(self) -> None:
        self._call("cudaFree", self.ptr)
        self._call("cudaFreeHost", self._host_ptr)


class _CudaGraph:
    def __init__(self, call: _CudaCaller, exec_graph: Any) -> None:
        self._call, self.exec_graph = call, exec_graph

    def replay(self, stream: Stream) -> None:
        assert isinstance(stream, _CudaStream)
        self._call("cudaGraphLaunch", self.exec_graph, stream.raw)


class CudaPythonAllocator:
    """CUDA memory through cuda-python's runtime bindings (no PyTorch needed, e.g. Jetson)."""

    name = "cuda-python"

    def __init__(self, device_index: int = 0) -> None:
        self._call = _CudaCaller(_cudart())
        count = self._call("cudaGetDeviceCount")
        if device_index >= int(count):
            raise BackendError(f"cuda:{device_index} asked for, CUDA sees {count} device(s)")
        self.device_index = device_index
        self._call("cudaSetDevice", device_index)
        self._buffers: list[_CudaBuffer] = []
        self._streams: list[_CudaStream] = []

    def empty(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> DeviceBuffer:
        buffer = _CudaBuffer(self._call, shape, np.dtype(dtype))
        self._buffers.append(buffer)
        return buffer

    def create_stream(self) -> Stream:
        stream = _CudaStream(self._call)
        self._streams.append(stream)
        return stream

    def capture_graph(self, stream: Stream, work: Callable[[], None]) -> Graph:
        assert isinstance(stream, _CudaStream)
        cudart = self._call.cudart
        self._call("cudaStreamBeginCapture", stream.raw,
                   cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal)
        try:
            work()
        finally:
            graph = self._call("cudaStreamEndCapture", stream.raw)
        return _CudaGraph(self._call, self._call("cudaGraphInstantiate", graph, 0))

    def _properties(self) -> Any:
        return self._call("cudaGetDeviceProperties", self.device_index)

    def device_name(self) -> str:
        name = self._properties().name
        return (name.decode(errors="replace") if isinstance(name, bytes) else str(name)) \
            .rstrip("\x00")

    def compute_capability(self) -> tuple[int, int]:
        props = self._properties()
        return int(props.major), int(props.minor)

    def close(self) -> None:
        for buffer in self._buffers:
            buffer.free()
        for stream in self._streams:
            stream.destroy()
        self._buffers, self._streams = [], []


def default_allocator(device_index: int = 0) -> Allocator:
    """PyTorch if it sees a CUDA device, else cuda-python; BackendError naming both failures."""
    reasons = []
    for factory in (TorchAllocator, CudaPythonAllocator):
        try:
            return factory(device_index)
        except ImportError as exc:
            reasons.append(f"{factory.name}: not installed ({exc})")
        except BackendError as exc:
            reasons.append(f"{factory.name}: {exc}")
    raise BackendError("no CUDA memory allocator: " + "; ".join(reasons))


# --- host memory (tests and the CPU fake only) -----------------------------------------------

class HostStream:
    """A pretend non-default stream: work runs synchronously. Test code."""

    _ids = itertools.count(0x1000)

    def __init__(self) -> None:
        self.handle = next(self._ids)

    def synchronize(self) -> None:
        pass


class HostBuffer:
    """A numpy array whose address stands in for a device pointer. Test code."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self.array = np.zeros(shape, dtype)
        self.ptr = int(self.array.ctypes.data)
        self.nbytes = int(self.array.nbytes)
        self.dtype = self.array.dtype
        self.shape = shape

    def copy_from_host(self, array: np.ndarray, stream: Stream | None = None) -> None:
        self.array[...] = _check_copy(array, self).reshape(self.shape)

    def copy_to_host(self, stream: Stream | None = None) -> np.ndarray:
        return self.array.copy()


class HostGraph:
    """Records the captured work and runs it again on replay. Test code."""

    def __init__(self, work: Callable[[], None]) -> None:
        self.work = work
        self.replays = 0

    def replay(self, stream: Stream) -> None:
        self.replays += 1
        self.work()


class HostAllocator:
    """Host memory posing as device memory, for the CPU fake of TensorRT. Test code: it never
    touches a GPU, and the "device" it reports is ``device`` / ``capability``."""

    name = "host"

    def __init__(self, device: str = "Fake GPU (host memory)",
                 capability: tuple[int, int] = (8, 7)) -> None:
        self._device, self._capability = device, capability
        self.buffers: list[HostBuffer] = []
        self.graphs: list[HostGraph] = []

    def empty(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> DeviceBuffer:
        buffer = HostBuffer(shape, np.dtype(dtype))
        self.buffers.append(buffer)
        return buffer

    def create_stream(self) -> Stream:
        return HostStream()

    def capture_graph(self, stream: Stream, work: Callable[[], None]) -> Graph:
        # Like a real capture, nothing runs now: the work runs on each replay.
        graph = HostGraph(work)
        self.graphs.append(graph)
        return graph

    def device_name(self) -> str:
        return self._device

    def compute_capability(self) -> tuple[int, int]:
        return self._capability

    def close(self) -> None:
        self.buffers = []
