"""What the runtime needs to know about an ONNX file, read from its protobuf without ``onnx``.

The node checks ``model.yaml`` against the graph (input and output names, channel count, the
class map in ``metadata_props``) and the TensorRT backend looks at the tensor types and op types
before a build. Neither may need the ``onnx`` package: it has no rosdep key, and a robot (a
Jetson running TensorRT has no ONNX Runtime either) installs only the runtime dependencies. The
protobuf wire format is small and stable, and ONNX's field numbers are frozen (onnx/onnx.proto),
so this module reads just those fields and skips everything else, weights included, without
copying them. ``test/model/test_onnx_reader.py`` compares it with ``onnx.load`` where ``onnx`` is
installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

# Field numbers from onnx/onnx.proto (frozen by ONNX's compatibility rules).
_MODEL_IR_VERSION, _MODEL_GRAPH, _MODEL_METADATA_PROPS = 1, 7, 14
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 1, 5, 11, 12
_GRAPH_VALUE_INFO, _GRAPH_SPARSE_INITIALIZER = 13, 15
_NODE_OP_TYPE, _NODE_ATTRIBUTE = 4, 5
_ATTRIBUTE_NAME, _ATTRIBUTE_I = 1, 3
_TENSOR_DATA_TYPE, _TENSOR_NAME = 2, 8
_SPARSE_VALUES = 1
_VALUE_INFO_NAME, _VALUE_INFO_TYPE = 1, 2
_TYPE_TENSOR = 1
_TENSOR_TYPE_ELEM_TYPE, _TENSOR_TYPE_SHAPE = 1, 2
_SHAPE_DIM = 1
_DIM_VALUE, _DIM_PARAM = 1, 2

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5


class OnnxReadError(ValueError):
    """The bytes are not an ONNX model this reader understands."""


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output: its name, element type (``onnx.TensorProto`` enum, 0 when not a
    tensor) and dimensions (an int, a symbolic name, or None when unknown)."""

    name: str
    elem_type: int = 0
    dims: tuple[int | str | None, ...] | None = None


@dataclass(frozen=True)
class OnnxSummary:
    """The parts of a ModelProto the runtime checks."""

    ir_version: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    initializer_names: frozenset[str]
    metadata: dict[str, str] = field(default_factory=dict)
    #: Element types of the initializers and the value_info entries, and the Cast targets.
    tensor_types: frozenset[int] = frozenset()
    #: Op types of the main graph's nodes.
    op_types: frozenset[str] = frozenset()

    @property
    def graph_inputs(self) -> tuple[TensorInfo, ...]:
        """The inputs a caller feeds (initializers listed as inputs left out, IR < 4 style)."""
        return tuple(i for i in self.inputs if i.name not in self.initializer_names)


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise OnnxReadError("truncated or malformed varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value or start, end) of each field of one message; for
    length-delimited fields the value is the payload's start offset."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise OnnxReadError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value, pos
        elif wire == _LENGTH:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise OnnxReadError("a length-delimited field runs past its message")
            yield number, wire, pos, pos + length
            pos += length
        elif wire == _FIXED64:
            pos += 8
        elif wire == _FIXED32:
            pos += 4
        else:  # groups are not used by proto3 / ONNX
            raise OnnxReadError(f"unsupported wire type {wire}")
    if pos != end:
        raise OnnxReadError("a fixed-size field runs past its message")


def _string(buf: memoryview, start: int, end: int) -> str:
    try:
        return bytes(buf[start:end]).decode("utf-8")
    except UnicodeDecodeError:
        raise OnnxReadError("a string field is not UTF-8") from None


def _string_field(buf: memoryview, start: int, end: int, number: int) -> str:
    value = ""
    for num, wire, a, b in _fields(buf, start, end):
        if num == number and wire == _LENGTH:
            value = _string(buf, a, b)
    return value


def _int_field(buf: memoryview, start: int, end: int, number: int) -> int | None:
    value = None
    for num, wire, a, _ in _fields(buf, start, end):
        if num == number and wire == _VARINT:
            value = a
    return value


def _dim(buf: memoryview, start: int, end: int) -> int | str | None:
    value: int | str | None = None
    for num, wire, a, b in _fields(buf, start, end):
        if num == _DIM_VALUE and wire == _VARINT:
            value = a - (1 << 64) if a >= 1 << 63 else a
        elif num == _DIM_PARAM and wire == _LENGTH:
            value = _string(buf, a, b)
    return value


def _tensor_type(buf: memoryview, start: int, end: int) -> tuple[int, tuple[int | str | None, ...]
                                                                  | None]:
    elem_type, dims = 0, None
    for num, wire, a, b in _fields(buf, start, end):
        if num == _TENSOR_TYPE_ELEM_TYPE and wire == _VARINT:
            elem_type = a
        elif num == _TENSOR_TYPE_SHAPE and wire == _LENGTH:
            dims = tuple(_dim(buf, c, d) for n, w, c, d in _fields(buf, a, b)
                         if n == _SHAPE_DIM and w == _LENGTH)
    return elem_type, dims


def _value_info(buf: memoryview, start: int, end: int) -> TensorInfo:
    name, elem_type, dims = "", 0, None
    for num, wire, a, b in _fields(buf, start, end):
        if num == _VALUE_INFO_NAME and wire == _LENGTH:
            name = _string(buf, a, b)
        elif num == _VALUE_INFO_TYPE and wire == _LENGTH:
            for n, w, c, d in _fields(buf, a, b):
                if n == _TYPE_TENSOR and w == _LENGTH:
                    elem_type, dims = _tensor_type(buf, c, d)
    return TensorInfo(name, elem_type, dims)


def _tensor_name_and_type(buf: memoryview, start: int, end: int) -> tuple[str, int]:
    name, data_type = "", 0
    for num, wire, a, b in _fields(buf, start, end):
        if num == _TENSOR_NAME and wire == _LENGTH:
            name = _string(buf, a, b)
        elif num == _TENSOR_DATA_TYPE and wire == _VARINT:
            data_type = a
    return name, data_type


def parse_onnx(data: bytes) -> OnnxSummary:
    """The summary of a serialised ModelProto; OnnxReadError when it is not one."""
    buf = memoryview(data)
    ir_version: int | None = None
    graph: tuple[int, int] | None = None
    metadata: dict[str, str] = {}
    for num, wire, a, b in _fields(buf, 0, len(buf)):
        if num == _MODEL_IR_VERSION and wire == _VARINT:
            ir_version = a
        elif num == _MODEL_GRAPH and wire == _LENGTH:
            graph = (a, b)
        elif num == _MODEL_METADATA_PROPS and wire == _LENGTH:
            metadata[_string_field(buf, a, b, _ENTRY_KEY)] = _string_field(buf, a, b, _ENTRY_VALUE)
    if ir_version is None or graph is None:
        raise OnnxReadError("no ir_version or no graph: not an ONNX ModelProto")
    inputs: list[TensorInfo] = []
    outputs: list[TensorInfo] = []
    initializers: set[str] = set()
    types: set[int] = set()
    ops: set[str] = set()
    for num, wire, a, b in _fields(buf, *graph):
        if wire != _LENGTH:
            continue
        if num == _GRAPH_INPUT:
            inputs.append(_value_info(buf, a, b))
        elif num == _GRAPH_OUTPUT:
            outputs.append(_value_info(buf, a, b))
        elif num == _GRAPH_INITIALIZER:
            name, data_type = _tensor_name_and_type(buf, a, b)
            initializers.add(name)
            types.add(data_type)
        elif num == _GRAPH_SPARSE_INITIALIZER:
            for n, w, c, d in _fields(buf, a, b):
                if n == _SPARSE_VALUES and w == _LENGTH:
                    initializers.add(_tensor_name_and_type(buf, c, d)[0])
        elif num == _GRAPH_VALUE_INFO:
            types.add(_value_info(buf, a, b).elem_type)
        elif num == _GRAPH_NODE:
            op_type = _string_field(buf, a, b, _NODE_OP_TYPE)
            ops.add(op_type)
            if op_type == "Cast":
                for n, w, c, d in _fields(buf, a, b):
                    if n == _NODE_ATTRIBUTE and w == _LENGTH and \
                            _string_field(buf, c, d, _ATTRIBUTE_NAME) == "to":
                        target = _int_field(buf, c, d, _ATTRIBUTE_I)
                        if target is not None:
                            types.add(target)
    return OnnxSummary(ir_version=ir_version, inputs=tuple(inputs), outputs=tuple(outputs),
                       initializer_names=frozenset(initializers), metadata=metadata,
                       tensor_types=frozenset(types), op_types=frozenset(ops))


def read_onnx(path: Path | str) -> OnnxSummary:
    """:func:`parse_onnx` of a file (external data files are not read: not needed)."""
    return parse_onnx(Path(path).read_bytes())
