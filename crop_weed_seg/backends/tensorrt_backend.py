"""TensorRT backend: an engine built from the model's ONNX on the target GPU, cached, and run on
a non-default CUDA stream.

One code path from TensorRT 8.5 to 11, using only the name-based API (docs/TENSORRT.md):
``Builder`` / ``OnnxParser.parse_from_file`` / ``build_serialized_network`` to build,
``Runtime.deserialize_cuda_engine`` / ``num_io_tensors`` / ``set_input_shape`` /
``set_tensor_address`` / ``execute_async_v3`` to run. Version branches: the EXPLICIT_BATCH
network flag (8.x only), ``builder_optimization_level`` (from 8.6, probed with ``hasattr``) and
the FP16/INT8 builder flags (only before 10.12; from 10.12 on a strongly typed FP16 or Q/DQ
ONNX is required).

``tensorrt`` is imported only inside functions: importing this module costs nothing and pulls
no GPU runtime in (the core's layer test checks that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from crop_weed_seg.backends.base import BackendOptions, InferenceOutput
from crop_weed_seg.backends.cuda_memory import (
    Allocator,
    DeviceBuffer,
    Graph,
    Stream,
    default_allocator,
)
from crop_weed_seg.backends.engine_cache import (
    DeviceInfo,
    EngineCache,
    EngineSettings,
    default_cache_dir,
    engine_key,
    engine_sidecar_info,
)
from crop_weed_seg.backends.engine_options import (
    FP16_ROUTE,
    EngineOptions,
    options_from_settings,
    sidecar_fields,
)
from crop_weed_seg.errors import BackendError, ConfigError, InvalidFrameError
from crop_weed_seg.model.contract import ModelContract
from crop_weed_seg.model.onnx_reader import OnnxReadError, read_onnx

if TYPE_CHECKING:  # the stubs (scripts/trt_stubs) describe it; at run time it is imported lazily
    import tensorrt as trt

Progress = Callable[[str], None]

#: Default builder workspace (the memory pool TensorRT may use for tactics) [bytes].
DEFAULT_WORKSPACE = 1 << 30
#: After an out-of-memory build the workspace is halved down to this floor [bytes].
WORKSPACE_FLOOR = 64 << 20
#: From this version on the FP16/INT8 builder flags are deprecated (and gone in 11): the
#: precision must come from the ONNX itself, built as a strongly typed network.
STRONGLY_TYPED_ONLY_FROM = (10, 12)

_OOM = re.compile(r"out of memory|outofmemory|could not be allocated|cudaErrorMemoryAllocation|"
                  r"insufficient memory|failed to allocate", re.IGNORECASE)

#: TensorRT DataType member name -> numpy dtype (members missing in older versions are skipped).
_NUMPY_DTYPES: dict[str, type[np.generic]] = {
    "FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64,
    "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_,
}

Shape = tuple[int, ...]


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or BackendError saying how to get it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendError(f"tensorrt is not installed ({exc}); on a Jetson it comes with "
                           "JetPack (apt python3-libnvinfer) for the system Python: use a venv "
                           "with --system-site-packages") from None
    return tensorrt


def trt_version(module: Any) -> tuple[int, int]:
    """(major, minor) of a ``tensorrt`` module's ``__version__`` ("10.3.0.26" -> (10, 3))."""
    parts = re.findall(r"\d+", str(getattr(module, "__version__", "0.0")))
    return (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0) if parts else (0, 0)


class _ErrorLog:
    """Collects what TensorRT's logger reports at warning level or worse (for error messages)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def text(self) -> str:
        return "; ".join(self.messages[-8:]) or "no message from TensorRT"


def _make_logger(log: _ErrorLog) -> trt.ILogger:
    """An ``ILogger`` that records warnings and errors into ``log``."""
    import tensorrt as trt

    class RecordingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            if int(severity) <= int(trt.ILogger.Severity.WARNING):
                log.messages.append(str(msg))

    return RecordingLogger()


# --- building --------------------------------------------------------------------------------

def _onnx_summary(path: Path) -> tuple[set[int], set[str]] | None:
    """(tensor element types of the initializers, value_info and Cast targets, op types) of an
    ONNX, read without the ``onnx`` package (a Jetson has none); None when the file cannot be
    read that way (then the precision checks are left to TensorRT's parser)."""
    try:
        summary = read_onnx(path)
    except (OSError, OnnxReadError):
        return None
    return set(summary.tensor_types), set(summary.op_types)


_ONNX_FLOAT16 = 10  # onnx.TensorProto.FLOAT16


def _precision_flags(settings: EngineSettings, onnx_path: Path) -> list[str]:
    """Names of the BuilderFlags to set for ``settings.precision``; BackendError when this
    TensorRT cannot give that precision from this ONNX."""
    import tensorrt as trt

    version = trt_version(trt)
    precision = settings.precision
    if precision == "fp32":
        if settings.strongly_typed:
            summary = _onnx_summary(onnx_path)
            if summary is not None and _ONNX_FLOAT16 in summary[0]:
                raise BackendError(f"{onnx_path} holds float16 tensors and a strongly typed "
                                   "network keeps them: set precision fp16 for this ONNX")
        return []
    summary = _onnx_summary(onnx_path)
    if precision == "int8":
        if summary is not None and not {"QuantizeLinear", "DequantizeLinear"} & summary[1]:
            raise BackendError(
                f"{onnx_path}: precision int8 needs a Q/DQ ONNX (QuantizeLinear/DequantizeLinear "
                "nodes: crop-weed-seg quantize --precision int8 --calib FIELD_IMAGES --out "
                "MODEL/model_int8.onnx, or NVIDIA ModelOpt quantization, with representative "
                "field images), given as build-engine --onnx / node engine_onnx; implicit INT8 "
                "calibration is not supported")
        if version >= STRONGLY_TYPED_ONLY_FROM:
            if not settings.strongly_typed:
                raise BackendError(f"TensorRT {trt.__version__} builds INT8 only from a Q/DQ "
                                   "ONNX as a strongly typed network: build-engine "
                                   "--strongly-typed (node: engine_strongly_typed true)")
            return []
        return [] if settings.strongly_typed else ["INT8", "FP16"]
    if precision == "fp16":
        if version >= STRONGLY_TYPED_ONLY_FROM:
            is_fp16 = summary is None or _ONNX_FLOAT16 in summary[0]
            if not (settings.strongly_typed and is_fp16):
                raise BackendError(
                    f"TensorRT {trt.__version__} has no FP16 builder flag (deprecated in "
                    "10.12, removed in 11)"
                    + ("" if is_fp16 else f" and {onnx_path} holds no float16 tensors")
                    + f": {FP16_ROUTE} (NVIDIA ModelOpt AutoCast with keep_io_types=True "
                    "makes such an ONNX too)")
            return []
        return [] if settings.strongly_typed else ["FP16"]
    raise BackendError(f"unknown precision {precision!r}; valid: fp32, fp16, int8")


def profile_shapes(settings: EngineSettings, dims: Shape) -> tuple[Shape, Shape, Shape] | None:
    """(min, opt, max) NCHW shapes for an image input of network dimensions ``dims`` (-1 where
    dynamic) from ``settings.shapes`` ((H, W) min, opt, max), or None for a static input."""
    dynamic = any(d < 0 for d in dims)
    if settings.shapes is None:
        if dynamic:
            raise BackendError(f"the ONNX input has dynamic dimensions {dims}: the engine "
                               "settings need its (min, opt, max) H x W shapes")
        return None
    if len(dims) != 4:
        raise BackendError(f"expected an NCHW image input, the ONNX input has dimensions {dims}")
    batch = dims[0] if dims[0] > 0 else 1
    channels = dims[1] if dims[1] > 0 else 3
    triple = tuple((batch, channels, int(h), int(w)) for h, w in settings.shapes)
    for axis in (2, 3):
        if dims[axis] > 0 and any(s[axis] != dims[axis] for s in triple):
            raise BackendError(f"shapes {settings.describe()} do not fit the ONNX input "
                               f"dimensions {dims} (axis {axis} is fixed)")
    return triple[0], triple[1], triple[2]


def build_plan(onnx_path: Path, settings: EngineSettings,
               timing_cache: bytes | None, progress: Progress) -> tuple[bytes, bytes]:
    """Build a serialised engine from ``onnx_path``; returns (plan, timing cache bytes).

    BackendError lists every parser error, the builder's errors, or says that the GPU ran out
    of memory even with the workspace halved down to WORKSPACE_FLOOR.
    """
    import tensorrt as trt

    version = trt_version(trt)
    log = _ErrorLog()
    logger = _make_logger(log)
    builder = trt.Builder(logger)
    flags = 0
    if version < (10, 0):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if settings.strongly_typed:
        if not hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
            raise BackendError(f"TensorRT {trt.__version__} has no strongly typed networks "
                               "(TensorRT >= 9): build with strongly_typed off")
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        listed = "\n  ".join(errors or [log.text()])
        raise BackendError(f"{onnx_path}: TensorRT {trt.__version__} could not parse the ONNX "
                           f"({len(errors)} error(s)):\n  {listed}")
    config = builder.create_builder_config()
    for flag in _precision_flags(settings, onnx_path):
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if not settings.tf32 and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default on Ampere/Orin: strict FP32
    level = settings.builder_optimization_level
    if level is not None:
        if hasattr(config, "builder_optimization_level"):
            config.builder_optimization_level = int(level)
        else:
            progress(f"TensorRT {trt.__version__} has no builder_optimization_level; "
                     f"level {level} ignored")
    if settings.dla_core is not None:
        if builder.num_DLA_cores <= settings.dla_core:
            raise BackendError(f"DLA core {settings.dla_core} asked for, this device has "
                               f"{builder.num_DLA_cores} (Orin Nano has none)")
        if settings.precision == "fp32":
            raise BackendError("DLA runs fp16 or int8 only: set precision fp16 or int8")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(settings.dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    _add_profile(builder, network, config, settings)
    cache = config.create_timing_cache(timing_cache or b"")
    config.set_timing_cache(cache, False)

    workspace = int(settings.workspace_bytes)
    while True:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
        log.messages.clear()
        progress(f"building the TensorRT {trt.__version__} engine from {onnx_path.name} "
                 f"({settings.precision}, workspace {workspace >> 20} MiB); this takes minutes")
        failure: Exception | None = None
        try:
            plan = builder.build_serialized_network(network, config)
        except (RuntimeError, MemoryError) as exc:
            plan, failure = None, exc
        if plan is not None:
            break
        reason = f"{failure}; {log.text()}" if failure else log.text()
        if not _OOM.search(reason):
            raise BackendError(f"TensorRT {trt.__version__} could not build an engine from "
                               f"{onnx_path}: {reason}")
        if workspace // 2 < WORKSPACE_FLOOR:
            raise BackendError(
                f"out of GPU memory building the engine from {onnx_path}, even with the "
                f"workspace down to {workspace >> 20} MiB: free GPU memory (stop other nodes "
                f"using the GPU) and build again ({reason})")
        workspace //= 2
        progress(f"out of GPU memory; retrying with a {workspace >> 20} MiB workspace")
    timing = bytes(memoryview(config.get_timing_cache().serialize()))
    return bytes(memoryview(plan)), timing


def _add_profile(builder: trt.Builder, network: trt.INetworkDefinition,
                 config: trt.IBuilderConfig, settings: EngineSettings) -> None:
    if network.num_inputs != 1:
        raise BackendError(f"expected one image input, the ONNX has {network.num_inputs}")
    tensor = network.get_input(0)
    shapes = profile_shapes(settings, _dims(tensor.shape))
    if shapes is None:
        return
    profile = builder.create_optimization_profile()
    profile.set_shape(tensor.name, shapes[0], shapes[1], shapes[2])
    config.add_optimization_profile(profile)


# --- device and cache key --------------------------------------------------------------------

def device_info(allocator: Allocator) -> DeviceInfo:
    """The GPU (from the allocator's runtime) and the TensorRT version, for the cache key."""
    import tensorrt as trt

    major, minor = allocator.compute_capability()
    return DeviceInfo(name=allocator.device_name(), compute_capability=f"{major}.{minor}",
                      trt_version=str(trt.__version__))


def engine_options(options: BackendOptions) -> EngineOptions:
    """The engine ``options`` ask for: ``options.engine`` (the node's ``engine_*``
    parameters), else the defaults at ``options.precision``: for a dynamic-size model one fixed
    profile shape (the contract's size, which the Segmenter always feeds; fastest, and CUDA
    graphs work), TF32 off (strict FP32 parity), the model's ONNX."""
    return options.engine or EngineOptions(precision=options.precision)


def _open_cache(cache: EngineCache | Path | str | None) -> EngineCache:
    """An EngineCache; its constructor refuses /tmp and the install tree (ConfigError) and an
    unwritable folder (BackendError naming it)."""
    if isinstance(cache, EngineCache):
        return cache
    return EngineCache(Path(cache) if cache is not None else default_cache_dir())


def _load_engine(contract: ModelContract, settings: EngineSettings,
                 cache: EngineCache, info: DeviceInfo, *, allow_build: bool, force_rebuild: bool,
                 progress: Progress, chosen: EngineOptions | None = None
                 ) -> tuple[trt.ICudaEngine, trt.Runtime, str, str]:
    """(engine, its runtime, key, status) through the cache: deserialise a hit, build on a
    miss. ``chosen`` names the ONNX (default: the model's) and goes into the sidecar. The
    runtime must outlive the engine."""
    import tensorrt as trt

    chosen = chosen or EngineOptions(precision=settings.precision)
    onnx_path = chosen.onnx_path(contract)
    sha = chosen.onnx_sha256(contract)
    key = engine_key(sha, settings, info)
    if chosen.sidecar_key is not None and chosen.sidecar_key != key:
        progress(f"{chosen.source} names engine {chosen.sidecar_key[:16]}, but here its key is "
                 f"{key[:16]} (another TensorRT version, GPU or ONNX than where it was built)")
    log = _ErrorLog()
    runtime = trt.Runtime(_make_logger(log))

    def deserialize(plan: bytes) -> trt.ICudaEngine | None:
        return runtime.deserialize_cuda_engine(plan)  # None: another TensorRT/GPU, or corrupt

    def build(timing_cache: bytes | None) -> tuple[bytes, bytes]:
        return build_plan(onnx_path, settings, timing_cache, progress)

    sidecar = engine_sidecar_info(sha, settings, info, model_dir=contract.folder)
    try:  # what the node and build-engine are told to find this engine again
        described = options_from_settings(settings, onnx=str(onnx_path) if chosen.onnx else "")
    except ConfigError:
        described = None  # a workspace of no whole MiB: settings no user option can give
    if described is not None:
        sidecar.update(sidecar_fields(described, contract.folder))
        sidecar["build_engine_args"] = described.cli_arguments()
    try:
        engine, status = cache.load_or_build(
            contract.name, key, sidecar, deserialize=deserialize, build=build,
            allow_build=allow_build, force_rebuild=force_rebuild, progress=progress)
    except OSError as exc:
        raise BackendError(f"engine cache {cache.dir}: {exc.strerror or exc} "
                           f"({exc.filename or cache.dir}); set engine_cache_dir to a writable "
                           "folder") from None
    return engine, runtime, key, status


def build_engine(contract: ModelContract, settings: EngineSettings,
                 cache: EngineCache | Path | str | None = None, progress: Progress = print, *,
                 force_rebuild: bool = False, allocator: Allocator | None = None,
                 engine: EngineOptions | None = None) -> tuple[str, str]:
    """Build (or find in the cache) the engine for ``contract``; returns (key, status).

    ``engine``: the options ``settings`` came from (the ONNX to build from; default: the
    model's). Used by ``crop-weed-seg build-engine``; the engine is deserialised once as a
    check.
    """
    import_tensorrt()
    allocator = allocator or default_allocator(0)
    info = device_info(allocator)
    _, _, key, status = _load_engine(contract, settings, _open_cache(cache), info,
                                     allow_build=True, force_rebuild=force_rebuild,
                                     progress=progress, chosen=engine)
    return key, status


# --- running ---------------------------------------------------------------------------------

def _dims(dims: trt.Dims | Sequence[int]) -> Shape:
    return tuple(int(dims[i]) for i in range(len(dims)))


def _numpy_dtype(trt_dtype: trt.DataType) -> np.dtype[Any]:
    """The numpy dtype of a TensorRT tensor type (never assumed: labels may be INT32 or INT64)."""
    import tensorrt as trt

    for member, np_type in _NUMPY_DTYPES.items():
        if hasattr(trt.DataType, member) and trt_dtype == getattr(trt.DataType, member):
            return np.dtype(np_type)
    raise BackendError(f"engine tensor type {trt_dtype} has no numpy equivalent here")


@dataclass
class _Binding:
    name: str
    dtype: np.dtype[Any]
    buffer: DeviceBuffer | None = None


def _device_index(device: str) -> int:
    if device in ("auto", "cuda"):
        return 0
    match = re.fullmatch(r"cuda:(\d+)", device)
    if not match:
        raise BackendError(f"TensorRT runs on a CUDA device only; device={device} (use auto, "
                           "cuda or cuda:N, or another backend)")
    return int(match.group(1))


class TensorRTBackend:
    """A cached TensorRT engine run on a non-default CUDA stream. Not thread-safe: one instance
    (execution context + stream) per thread."""

    name = "tensorrt"

    def __init__(self, contract: ModelContract, options: BackendOptions,
                 cache_dir: Path | str | None = None, allow_build: bool = True,
                 force_rebuild: bool = False, allocator: Allocator | None = None,
                 progress: Progress | None = None, settings: EngineSettings | None = None) -> None:
        import_tensorrt()
        import tensorrt as trt

        index = _device_index(options.device)
        self.contract = contract
        self.allocator = allocator or default_allocator(index)
        progress = progress or (lambda message: None)
        chosen = engine_options(options)
        self.settings = settings or chosen.settings(contract)
        info = device_info(self.allocator)
        self.engine: trt.ICudaEngine | None
        self.engine, self._runtime, self.engine_key, self.engine_status = _load_engine(
            contract, self.settings, _open_cache(cache_dir), info,
            allow_build=allow_build, force_rebuild=force_rebuild, progress=progress,
            chosen=chosen)
        engine = self.engine
        self.context: trt.IExecutionContext | None = engine.create_execution_context()
        if self.context is None:
            raise BackendError("TensorRT could not create an execution context (GPU memory?)")
        self.stream: Stream = self.allocator.create_stream()
        self.inputs: dict[str, _Binding] = {}
        self.outputs: dict[str, _Binding] = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            binding = _Binding(name, _numpy_dtype(engine.get_tensor_dtype(name)))
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs)[name] = binding
        wanted = {contract.labels_output, contract.confidence_output}
        if list(self.inputs) != [contract.input_name] or not wanted <= set(self.outputs):
            raise BackendError(f"engine I/O (inputs {list(self.inputs)}, outputs "
                               f"{list(self.outputs)}) does not match model.yaml (input "
                               f"'{contract.input_name}', outputs {sorted(wanted)})")
        if not np.issubdtype(self.outputs[contract.labels_output].dtype, np.integer):
            raise BackendError(f"engine output '{contract.labels_output}' is "
                               f"{self.outputs[contract.labels_output].dtype}, expected integer "
                               "labels (argmax cast to int32 inside the graph)")
        self.cuda_graphs = options.cuda_graphs
        self._shape: Shape | None = None
        self._graph: Graph | None = None
        self.graph_captures = 0
        self.detail = (f"{info.name} (sm {info.compute_capability}) {self.settings.precision}, "
                       f"TensorRT {info.trt_version}, engine {self.engine_status}"
                       + (", cuda-graphs" if self.cuda_graphs else ""))

    def profile(self, name: str) -> tuple[Shape, Shape, Shape]:
        """(min, opt, max) shapes the engine accepts for input ``name`` (profile 0)."""
        assert self.engine is not None, "backend is closed"
        lo, opt, hi = self.engine.get_tensor_profile_shape(name, 0)
        return _dims(lo), _dims(opt), _dims(hi)

    def _configure(self, shape: Shape) -> None:
        """Set the input shape, (re)allocate buffers for the concrete output shapes and bind
        every tensor address. Drops a captured graph (its shapes and addresses changed)."""
        name = self.contract.input_name
        context = self._live_context()
        lo, opt, hi = self.profile(name)
        inside = len(shape) == len(lo) and all(a <= s <= b for a, s, b in zip(lo, shape, hi))
        if not inside or not context.set_input_shape(name, shape):
            raise InvalidFrameError(
                f"input shape {shape} is outside the TensorRT engine's optimisation profile for "
                f"'{name}' (min {lo}, opt {opt}, max {hi}); resize to the model size or "
                "rebuild the engine with wider shapes")
        self._graph = None
        bindings = list(self.inputs.values()) + list(self.outputs.values())
        for binding in bindings:
            dims = _dims(context.get_tensor_shape(binding.name))
            if any(d < 0 for d in dims):
                raise BackendError(f"TensorRT left tensor '{binding.name}' shape {dims} "
                                   "unresolved after the input shape was set")
            if binding.buffer is None or binding.buffer.shape != dims:
                binding.buffer = self.allocator.empty(dims, binding.dtype)
            if not context.set_tensor_address(binding.name, binding.buffer.ptr):
                raise BackendError(f"TensorRT refused the address of tensor '{binding.name}'")
        self._shape = shape

    def _live_context(self) -> trt.IExecutionContext:
        if self.context is None:
            raise BackendError("the TensorRT backend is closed")
        return self.context

    def _execute(self) -> None:
        if not self._live_context().execute_async_v3(self.stream.handle):
            raise BackendError("TensorRT execute_async_v3 failed (see the TensorRT log)")

    def infer(self, tensor: np.ndarray) -> InferenceOutput:
        shape = tuple(int(d) for d in tensor.shape)
        if shape != self._shape:
            self._configure(shape)
        input_buffer = self.inputs[self.contract.input_name].buffer
        assert input_buffer is not None
        input_buffer.copy_from_host(tensor, self.stream)
        if self.cuda_graphs:
            if self._graph is None:
                # Warm up outside the capture (TensorRT allocates lazily on the first run),
                # then capture with these fixed shapes and addresses.
                self._execute()
                self.stream.synchronize()
                self._graph = self.allocator.capture_graph(self.stream, self._execute)
                self.graph_captures += 1
            self._graph.replay(self.stream)
        else:
            self._execute()
        labels_buffer = self.outputs[self.contract.labels_output].buffer
        conf_buffer = self.outputs[self.contract.confidence_output].buffer
        assert labels_buffer is not None and conf_buffer is not None
        labels = labels_buffer.copy_to_host(self.stream)
        confidence = conf_buffer.copy_to_host(self.stream).astype(np.float32, copy=False)
        return InferenceOutput(labels[0], confidence[0])

    def close(self) -> None:
        self._graph = None
        self.context = None
        self.engine = None
        self.allocator.close()


def create(contract: ModelContract, options: BackendOptions) -> TensorRTBackend:
    """Registry factory: BackendError saying why when tensorrt or a CUDA device is missing."""
    import_tensorrt()
    _device_index(options.device)
    return TensorRTBackend(contract, options, cache_dir=options.engine_cache_dir,
                           allow_build=options.allow_engine_build,
                           force_rebuild=options.force_engine_rebuild,
                           progress=options.progress)
