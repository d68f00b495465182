"""TEST CODE ONLY: a CPU fake of the part of the ``tensorrt`` Python module that
``crop_weed_seg.backends.tensorrt_backend`` uses, backed by ONNX Runtime.

It is never shipped and never imported by the package. Tests put it in ``sys.modules`` as
``tensorrt`` (``install(monkeypatch, make_fake_tensorrt(...))``). It imitates, per version:

- 8.x: the network must be created with EXPLICIT_BATCH or the parser fails; no STRONGLY_TYPED;
  integer outputs come out INT32; 8.5 has no ``builder_optimization_level``;
- 10.x: EXPLICIT_BATCH is accepted and ignored; integer outputs come out INT64;
- 11: no FP16/INT8 builder flags and no EXPLICIT_BATCH flag.

A serialised plan is bytes: a magic, a JSON header (fake TensorRT version and build, fake GPU,
profile, I/O types) and the ONNX. ``Runtime.deserialize_cuda_engine`` returns None (as the real
one does) for corrupt bytes or a plan from another TensorRT build or GPU. The execution context
reads the input from the raw address it was given, runs ONNX Runtime and writes the outputs to
the raw output addresses: use it with ``cuda_memory.HostAllocator`` (numpy arrays behind
``ctypes`` addresses). Switches on ``module.state`` make the build fail, run out of memory or
slow down, and count builds, deserialisations and executions.
"""

from __future__ import annotations

import ctypes
import enum
import json
import re
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MAGIC = b"FAKETRTPLAN1"
FAKE_GPU = "Fake GPU (host memory)"

_NP_OF: dict[str, Any] = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32,
                          "INT64": np.int64, "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}
_ONNX_ELEM = {1: "FLOAT", 10: "HALF", 6: "INT32", 7: "INT64", 3: "INT8", 2: "UINT8", 9: "BOOL"}


@dataclass
class FakeState:
    """What a test can switch and read."""

    version: str
    #: The "build" of this TensorRT: a plan from another build deserialises to None.
    build_id: str
    gpu: str = FAKE_GPU
    num_dla_cores: int = 0
    #: The next N builds run out of memory (N large: always).
    oom_failures: int = 0
    #: How an out-of-memory build fails: "none" (return None + logged error) or "raise".
    oom_mode: str = "none"
    #: Make every build return None with this logged error.
    fail_build: str | None = None
    #: Seconds each build takes (to widen the window for the concurrency test).
    build_seconds: float = 0.0
    builds: int = 0
    deserializations: int = 0
    executions: int = 0
    workspaces: list[int] = field(default_factory=list)
    #: Builder flags (names) and network flags of the last build.
    last_flags: set[str] = field(default_factory=set)
    last_network_flags: int = 0
    last_optimization_level: int | None = None
    last_dla: tuple[str, int] | None = None
    timing_cache_in: list[bytes] = field(default_factory=list)
    streams: list[int] = field(default_factory=list)


def make_fake_tensorrt(version: str = "10.3.0", *, gpu: str = FAKE_GPU,
                       build_id: str | None = None) -> types.ModuleType:
    """A fresh fake ``tensorrt`` module for TensorRT ``version`` (e.g. 8.5.2, 8.6.1, 10.3.0,
    10.13.0, 11.0.0)."""
    major, minor = (int(p) for p in re.findall(r"\d+", version)[:2])
    v = (major, minor)
    state = FakeState(version=version, build_id=build_id or version, gpu=gpu)
    mod = types.ModuleType("tensorrt")
    mod.__doc__ = "FAKE tensorrt for tests (test/support/fake_tensorrt.py), backed by ONNX Runtime"
    mod.__version__ = version  # type: ignore[attr-defined]
    mod.__file__ = __file__
    mod.state = state  # type: ignore[attr-defined]

    severity = enum.IntEnum("Severity", [("INTERNAL_ERROR", 0), ("ERROR", 1), ("WARNING", 2),
                                         ("INFO", 3), ("VERBOSE", 4)])

    class ILogger:
        Severity = severity

        def __init__(self) -> None:
            pass

        def log(self, severity: Any, msg: str) -> None:
            pass

    class Logger(ILogger):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = (severity(i) for i in range(5))

        def __init__(self, min_severity: Any = severity.WARNING) -> None:
            super().__init__()
            self.min_severity = min_severity

        def log(self, severity: Any, msg: str) -> None:
            if severity <= self.min_severity:
                print(f"[fake TensorRT] {msg}", file=sys.stderr)

    net_flags = [("EXPLICIT_BATCH", 0)] if v < (11, 0) else []
    if v >= (9, 0):
        net_flags.append(("STRONGLY_TYPED", 1))
    NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", net_flags)
    builder_flags = [("GPU_FALLBACK", 3), ("TF32", 6)]
    if v < (11, 0):
        builder_flags += [("FP16", 0), ("INT8", 1)]
    BuilderFlag = enum.IntEnum("BuilderFlag", builder_flags)
    data_types = [("FLOAT", 0), ("HALF", 1), ("INT8", 2), ("INT32", 3), ("BOOL", 4),
                  ("UINT8", 5)] + ([("INT64", 8)] if v >= (10, 0) else [])
    DataType = enum.IntEnum("DataType", data_types)
    MemoryPoolType = enum.IntEnum("MemoryPoolType", [("WORKSPACE", 0)])
    DeviceType = enum.IntEnum("DeviceType", [("GPU", 0), ("DLA", 1)])
    TensorIOMode = enum.IntEnum("TensorIOMode", [("NONE", 0), ("INPUT", 1), ("OUTPUT", 2)])
    int_out = "INT32" if v < (10, 0) else "INT64"

    def log(logger: Any, level: Any, msg: str) -> None:
        logger.log(level, msg)

    class Tensor:
        def __init__(self, name: str, shape: tuple[int, ...], dtype: Any) -> None:
            self.name, self.shape, self.dtype = name, shape, dtype

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.inputs: list[Tensor] = []
            self.outputs: list[Tensor] = []
            self.onnx: bytes = b""

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        @property
        def num_outputs(self) -> int:
            return len(self.outputs)

        def get_input(self, i: int) -> Tensor:
            return self.inputs[i]

        def get_output(self, i: int) -> Tensor:
            return self.outputs[i]

    class ParserError:
        def __init__(self, node: int, op: str, desc: str) -> None:
            self._node, self._op, self._desc = node, op, desc

        def desc(self) -> str:
            return self._desc

        def node(self) -> int:
            return self._node

        def __str__(self) -> str:
            return f"In node {self._node} (op {self._op}): {self._desc}"

    class OnnxParser:
        def __init__(self, network: Network, logger: Any) -> None:
            self.network, self.logger = network, logger
            self.errors: list[ParserError] = []

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> ParserError:
            return self.errors[i]

        def parse_from_file(self, path: str) -> bool:
            import onnx

            self.errors = []
            explicit = "EXPLICIT_BATCH" in NetworkDefinitionCreationFlag.__members__ and \
                self.network.flags & (1 << NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
            if v < (10, 0) and not explicit:
                self.errors.append(ParserError(-1, "", "ModelImporter.cpp: the ONNX parser "
                                               "only supports networks with an explicit batch "
                                               "dimension (create_network(EXPLICIT_BATCH))"))
                return False
            try:
                data = Path(path).read_bytes()
                model = onnx.load_from_string(data)
                onnx.checker.check_model(model)
            except Exception as exc:  # noqa: BLE001 - a fake parser reports everything
                self.errors.append(ParserError(-1, "", f"failed to parse the ONNX model: {exc}"))
                return False
            for i, node in enumerate(model.graph.node):
                if node.domain not in ("", "ai.onnx"):
                    self.errors.append(ParserError(i, node.op_type, f"no importer registered "
                                                   f"for op {node.domain}::{node.op_type}"))
            if self.errors:
                return False
            inits = {init.name for init in model.graph.initializer}
            for inp in model.graph.input:
                if inp.name in inits:
                    continue
                dims = tuple(d.dim_value if d.HasField("dim_value") else -1
                             for d in inp.type.tensor_type.shape.dim)
                self.network.inputs.append(Tensor(inp.name, dims, DataType.FLOAT))
            for out in model.graph.output:
                elem = _ONNX_ELEM.get(out.type.tensor_type.elem_type, "FLOAT")
                if elem in ("INT32", "INT64"):
                    elem = int_out
                dims = tuple(d.dim_value if d.HasField("dim_value") else -1
                             for d in out.type.tensor_type.shape.dim)
                self.network.outputs.append(Tensor(out.name, dims, getattr(DataType, elem)))
            self.network.onnx = data
            return True

    class OptimizationProfile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            triple = tuple(tuple(int(d) for d in s) for s in (lo, opt, hi))
            if not all(a <= b <= c for a, b, c in zip(*triple)):
                raise ValueError(f"profile for {name}: need min <= opt <= max, got {triple}")
            self.shapes[name] = triple

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = bytes(data)

        def serialize(self) -> bytearray:
            count = int(self.data.decode() or 0) if self.data.isdigit() else 0
            return bytearray(str(count + 1).encode())

    class BuilderConfig:
        def __init__(self) -> None:
            self.flags = {"TF32"}  # TF32 is on by default
            self.pools: dict[int, int] = {}
            self.profiles: list[OptimizationProfile] = []
            self.timing_cache: TimingCache | None = None
            self.default_device_type = DeviceType.GPU
            self.DLA_core = -1

        def set_flag(self, flag: Any) -> None:
            self.flags.add(BuilderFlag(flag).name)

        def clear_flag(self, flag: Any) -> None:
            self.flags.discard(BuilderFlag(flag).name)

        def get_flag(self, flag: Any) -> bool:
            return BuilderFlag(flag).name in self.flags

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            self.pools[int(pool)] = int(size)

        def add_optimization_profile(self, profile: OptimizationProfile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data: bytes) -> TimingCache:
            state.timing_cache_in.append(bytes(data))
            return TimingCache(data)

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            self.timing_cache = cache
            return True

        def get_timing_cache(self) -> TimingCache:
            assert self.timing_cache is not None
            return self.timing_cache

    class BuilderConfigWithLevel(BuilderConfig):
        def __init__(self) -> None:
            super().__init__()
            self.builder_optimization_level = 3

    class Builder:
        def __init__(self, logger: Any) -> None:
            self.logger = logger

        @property
        def num_DLA_cores(self) -> int:
            return state.num_dla_cores

        def create_network(self, flags: int = 0) -> Network:
            return Network(flags)

        def create_builder_config(self) -> BuilderConfig:
            return BuilderConfigWithLevel() if v >= (8, 6) else BuilderConfig()

        def create_optimization_profile(self) -> OptimizationProfile:
            return OptimizationProfile()

        def build_serialized_network(self, network: Network,
                                     config: BuilderConfig) -> bytearray | None:
            state.builds += 1
            state.last_flags = set(config.flags)
            state.last_network_flags = network.flags
            state.last_optimization_level = getattr(config, "builder_optimization_level", None)
            state.last_dla = (DeviceType(config.default_device_type).name, config.DLA_core)
            workspace = config.pools.get(int(MemoryPoolType.WORKSPACE), 0)
            state.workspaces.append(workspace)
            if state.build_seconds:
                time.sleep(state.build_seconds)
            if state.oom_failures > 0:
                state.oom_failures -= 1
                if state.oom_mode == "raise":
                    raise RuntimeError("CUDA out of memory while building")
                log(self.logger, severity.ERROR,
                    f"[resizingAllocator.cpp] Error Code 1: Cuda Runtime (out of memory); "
                    f"Requested amount of GPU memory ({workspace} bytes) could not be "
                    "allocated")
                return None
            if state.fail_build:
                log(self.logger, severity.ERROR, state.fail_build)
                return None
            profile = config.profiles[0].shapes if config.profiles else {}
            for tensor in network.inputs:
                if any(d < 0 for d in tensor.shape) and tensor.name not in profile:
                    log(self.logger, severity.ERROR, "Network has dynamic or shape inputs, but "
                        "no optimization profile has been defined.")
                    return None
            header = {
                "version": state.version, "build_id": state.build_id, "gpu": state.gpu,
                "inputs": [[t.name, list(t.shape), t.dtype.name, profile.get(t.name)]
                           for t in network.inputs],
                "outputs": [[t.name, list(t.shape), t.dtype.name] for t in network.outputs],
            }
            raw = json.dumps(header).encode()
            return bytearray(MAGIC + len(raw).to_bytes(4, "little") + raw + network.onnx)

    class Engine:
        def __init__(self, header: dict[str, Any], onnx_bytes: bytes) -> None:
            import onnxruntime as ort

            self.header = header
            so = ort.SessionOptions()
            so.intra_op_num_threads = 2
            self.session = ort.InferenceSession(onnx_bytes, so,
                                                providers=["CPUExecutionProvider"])
            self.io: list[tuple[str, Any, Any, tuple[int, ...]]] = []
            self.profiles: dict[str, list[tuple[int, ...]]] = {}
            for name, shape, dtype, prof in header["inputs"]:
                self.io.append((name, TensorIOMode.INPUT, getattr(DataType, dtype), tuple(shape)))
                if prof is None:
                    prof = [shape, shape, shape]
                self.profiles[name] = [tuple(s) for s in prof]
            for name, shape, dtype in header["outputs"]:
                self.io.append((name, TensorIOMode.OUTPUT, getattr(DataType, dtype),
                                tuple(shape)))

        @property
        def num_io_tensors(self) -> int:
            return len(self.io)

        def _find(self, name: str) -> tuple[str, Any, Any, tuple[int, ...]]:
            for entry in self.io:
                if entry[0] == name:
                    return entry
            raise KeyError(name)

        def get_tensor_name(self, i: int) -> str:
            return self.io[i][0]

        def get_tensor_mode(self, name: str) -> Any:
            return self._find(name)[1]

        def get_tensor_dtype(self, name: str) -> Any:
            return self._find(name)[2]

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return self._find(name)[3]

        def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Any]:
            return list(self.profiles[name])

        def create_execution_context(self) -> ExecutionContext:
            return ExecutionContext(self)

    class ExecutionContext:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}
            self._out_shapes: dict[tuple[int, ...], dict[str, tuple[int, ...]]] = {}

        def set_input_shape(self, name: str, shape: Any) -> bool:
            shape = tuple(int(d) for d in shape)
            lo, _, hi = self.engine.profiles[name]
            if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
                return False
            self.shapes[name] = shape
            return True

        def _output_shapes(self) -> dict[str, tuple[int, ...]]:
            key = tuple(d for s in self.shapes.values() for d in s)
            if key not in self._out_shapes:  # run once on zeros to learn the output shapes
                feed = {n: np.zeros(s, np.float32) for n, s in self.shapes.items()}
                names = [o.name for o in self.engine.session.get_outputs()]
                outs = self.engine.session.run(names, feed)
                self._out_shapes[key] = {n: tuple(o.shape) for n, o in zip(names, outs)}
            return self._out_shapes[key]

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            entry = self.engine._find(name)
            if entry[1] == TensorIOMode.INPUT:
                return self.shapes.get(name, entry[3])
            if any(d < 0 for s in self.shapes.values() for d in s) or \
                    len(self.shapes) < sum(1 for e in self.engine.io
                                           if e[1] == TensorIOMode.INPUT):
                return entry[3]
            return self._output_shapes()[name]

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self.engine._find(name)
            self.addresses[name] = int(ptr)
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            if not stream_handle:
                return False  # this fake insists on a non-default stream
            state.streams.append(int(stream_handle))
            feed = {}
            for name, mode, dtype, _ in self.engine.io:
                if mode != TensorIOMode.INPUT:
                    continue
                shape = self.shapes[name]
                feed[name] = _read(self.addresses[name], shape, _NP_OF[dtype.name])
            names = [e[0] for e in self.engine.io if e[1] == TensorIOMode.OUTPUT]
            for name, value in zip(names, self.engine.session.run(names, feed)):
                dtype = _NP_OF[self.engine.get_tensor_dtype(name).name]
                _write(self.addresses[name], np.ascontiguousarray(value, dtype=dtype))
            state.executions += 1
            return True

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, data: Any) -> Engine | None:
            data = bytes(data)
            try:
                if not data.startswith(MAGIC):
                    raise ValueError("bad magic")
                size = int.from_bytes(data[len(MAGIC):len(MAGIC) + 4], "little")
                start = len(MAGIC) + 4
                header = json.loads(data[start:start + size])
                onnx_bytes = data[start + size:]
            except Exception:  # noqa: BLE001 - like TensorRT: log and return None
                log(self.logger, severity.ERROR, "Error Code 1: Serialization (Serialization "
                    "assertion failed: magic tag does not match)")
                return None
            if header["version"] != state.version or header["build_id"] != state.build_id:
                log(self.logger, severity.ERROR, "Error Code 6: API Usage Error (The engine "
                    f"plan file is not compatible with this version of TensorRT, expecting "
                    f"library version {state.build_id} got {header['build_id']})")
                return None
            if header["gpu"] != state.gpu:
                log(self.logger, severity.ERROR, "Error Code 6: The engine plan file is "
                    f"generated on an incompatible device ({header['gpu']})")
                return None
            try:
                engine = Engine(header, onnx_bytes)
            except Exception:  # noqa: BLE001
                log(self.logger, severity.ERROR, "Error Code 1: Serialization (corrupt plan)")
                return None
            state.deserializations += 1
            return engine

    for name, value in {
        "ILogger": ILogger, "Logger": Logger, "Builder": Builder, "Runtime": Runtime,
        "OnnxParser": OnnxParser, "NetworkDefinitionCreationFlag": NetworkDefinitionCreationFlag,
        "BuilderFlag": BuilderFlag, "DataType": DataType, "MemoryPoolType": MemoryPoolType,
        "DeviceType": DeviceType, "TensorIOMode": TensorIOMode,
    }.items():
        setattr(mod, name, value)
    return mod


def _read(ptr: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A copy of the array of ``shape``/``dtype`` at raw address ``ptr``."""
    count = int(np.prod(shape))
    nbytes = count * np.dtype(dtype).itemsize
    raw = (ctypes.c_byte * nbytes).from_address(ptr)
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape).copy()


def _write(ptr: int, array: np.ndarray) -> None:
    """Copy ``array``'s bytes to raw address ``ptr``."""
    ctypes.memmove(ptr, array.ctypes.data, array.nbytes)


def install(monkeypatch: Any, module: types.ModuleType) -> types.ModuleType:
    """Make ``import tensorrt`` return ``module`` for the rest of the test."""
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    return module
