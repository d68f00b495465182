"""Lint an ONNX graph for TensorRT 8.5 … 11 before it reaches a Jetson (no TensorRT needed).

Checks (each finding has a stable ``code``):

- ``opset``: the default-domain opset must be 17 (our contract; TensorRT 8.5 parses up to 17).
- ``unsupported-op``: an operator outside :data:`TRT85_SUPPORTED_OPS`, the operators that
  onnx-tensorrt ``release/8.5-GA`` ``docs/operators.md`` marks as supported.
- ``custom-domain``: a node whose domain is not the default ONNX domain (custom ops and
  ``com.microsoft`` contrib ops need plugins TensorRT does not have).
- ``resize-mode`` / ``resize-coordinate-mode`` / ``resize-nearest-mode``: Resize attributes
  outside what TensorRT 8.5 supports; ``align_corners`` is allowed but warned about (DLA and the
  training code use ``half_pixel``: bilinear with ``align_corners=False``).
- ``large-int64``: an int64 initializer or Constant with values outside int32; TensorRT 8.x casts
  INT64 down to INT32 and clamps silently (e.g. ``Slice`` ends of ``INT64_MAX``).
- ``constant-input``: an input TensorRT 8.5 wants as an initializer/Constant (``Slice`` axes,
  ``Squeeze``/``Unsqueeze`` axes, ``TopK`` K, ``CumSum`` axis) is computed at run time.
- ``qdq-zero-point``: a Quantize/DequantizeLinear with a non-zero or non-int8 zero point
  (TensorRT wants symmetric int8 Q/DQ).
- ``dynamic-dims`` / ``static-dims`` / ``input-channels`` / ``input-rank``: the graph input's
  shape against ``model.yaml`` (``input.size``, ``input.dynamic_size``).

Usage: ``python -m crop_weed_seg.tools.onnx_lint models/default [more.onnx ...]``; exit status 1
when any finding is an error (2 with ``--strict`` for warnings too).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

EXPECTED_OPSET = 17
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
DEFAULT_DOMAINS = ("", "ai.onnx")

#: Operators that onnx-tensorrt release/8.5-GA docs/operators.md marks "Y" (supported), the
#: oldest TensorRT in the field (JetPack 5.1). Newer TensorRT supports a superset.
#: Left out on purpose (marked "N" there), among others: LayerNormalization, IsInf, Hardmax,
#: ConvInteger, MatMulInteger, QLinearConv, QLinearMatMul, DynamicQuantizeLinear, Compress,
#: Unique, DFT/STFT, the Sequence* and Optional* ops, BitShift, MaxUnpool, MaxRoiPool.
TRT85_SUPPORTED_OPS: frozenset[str] = frozenset({
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
    "AveragePool", "BatchNormalization", "Cast", "Ceil", "Celu", "Clip", "Concat", "Constant",
    "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace",
    "DequantizeLinear", "Div", "Dropout", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand",
    "EyeLike", "Flatten", "Floor", "Gather", "GatherElements", "GatherND", "Gemm",
    "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual",
    "GridSample", "GRU", "HardSigmoid", "HardSwish", "Identity", "If", "ImageScaler",
    "InstanceNormalization", "IsNaN", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax",
    "Loop", "LRN", "LSTM", "LpNormalization", "LpPool", "MatMul", "Max", "MaxPool", "Mean",
    "MeanVarianceNormalization", "Min", "Mod", "Mul", "Neg", "NonMaxSuppression", "NonZero",
    "Not", "OneHot", "Or", "Pad", "ParametricSoftplus", "Pow", "PRelu", "QuantizeLinear",
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Range",
    "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
    "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape",
    "Resize", "ReverseSequence", "RNN", "RoiAlign", "Round", "ScaledTanh", "Scan", "Scatter",
    "ScatterElements", "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh",
    "Size", "Slice", "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt",
    "Squeeze", "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu", "Tile", "TopK", "Transpose",
    "Trilu", "Unsqueeze", "Upsample", "Where", "Xor",
})

#: Resize attributes TensorRT 8.5 supports (operators.md, Resize row).
RESIZE_MODES = frozenset({"nearest", "linear"})
RESIZE_COORDINATE_MODES = frozenset({"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn",
                                     "asymmetric", "align_corners"})
RESIZE_NEAREST_MODES = frozenset({"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"})

#: (op_type, input index) that TensorRT 8.5 needs as an initializer or Constant.
CONSTANT_INPUTS: dict[str, tuple[int, ...]] = {
    "Slice": (3,), "Squeeze": (1,), "Unsqueeze": (1,), "TopK": (1,), "CumSum": (1,),
}

ERROR = "error"
WARNING = "warning"
INFO = "info"


@dataclass(frozen=True)
class Finding:
    """One lint result. ``severity`` is error, warning or info; ``node`` names the node or
    tensor it is about (empty for graph-level findings)."""

    severity: str
    code: str
    message: str
    node: str = ""

    def __str__(self) -> str:
        where = f" [{self.node}]" if self.node else ""
        return f"{self.severity.upper():7s} {self.code}{where}: {self.message}"


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _node_label(node: Any, index: int) -> str:
    return node.name or f"{node.op_type}#{index}"


def _all_nodes(graph: Any) -> Iterable[Any]:
    """Every node, including those in If/Loop/Scan subgraphs."""
    from onnx import AttributeProto

    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.type == AttributeProto.GRAPH:
                yield from _all_nodes(a.g)
            elif a.type == AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _all_nodes(g)


def _check_opset(model: Any, expected: int) -> list[Finding]:
    found = [o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS]
    if not found:
        return [Finding(ERROR, "opset", "the model imports no default-domain opset")]
    version = found[0]
    if version != expected:
        extra = " (TensorRT 8.5 parses opsets up to 17)" if version > 17 else ""
        return [Finding(WARNING, "opset", f"opset {version}, our contract exports opset "
                        f"{expected}{extra}")]
    return []


def _check_ops(nodes: Sequence[Any]) -> list[Finding]:
    findings = []
    for i, node in enumerate(nodes):
        label = _node_label(node, i)
        if node.domain not in DEFAULT_DOMAINS:
            findings.append(Finding(ERROR, "custom-domain",
                                    f"{node.op_type} is in domain '{node.domain}', which "
                                    "TensorRT cannot parse without a plugin", label))
        elif node.op_type not in TRT85_SUPPORTED_OPS:
            findings.append(Finding(ERROR, "unsupported-op",
                                    f"{node.op_type} is not supported by TensorRT 8.5's ONNX "
                                    "parser", label))
    return findings


def _check_resize(nodes: Sequence[Any]) -> list[Finding]:
    findings = []
    for i, node in enumerate(nodes):
        if node.op_type != "Resize" or node.domain not in DEFAULT_DOMAINS:
            continue
        label = _node_label(node, i)
        mode = _attr(node, "mode", "nearest")
        coord = _attr(node, "coordinate_transformation_mode", "half_pixel")
        nearest = _attr(node, "nearest_mode", "round_prefer_floor")
        if mode not in RESIZE_MODES:
            findings.append(Finding(ERROR, "resize-mode", f"mode '{mode}' is not supported by "
                                    f"TensorRT 8.5 (supported: {sorted(RESIZE_MODES)})", label))
        if coord not in RESIZE_COORDINATE_MODES:
            findings.append(Finding(ERROR, "resize-coordinate-mode",
                                    f"coordinate_transformation_mode '{coord}' is not supported "
                                    f"by TensorRT 8.5 (supported: "
                                    f"{sorted(RESIZE_COORDINATE_MODES)})", label))
        elif mode == "linear" and coord == "align_corners":
            findings.append(Finding(WARNING, "resize-coordinate-mode",
                                    "bilinear resize with align_corners: export with "
                                    "align_corners=False (half_pixel), as training does and as "
                                    "DLA accepts", label))
        elif mode == "linear" and coord not in ("half_pixel", "pytorch_half_pixel"):
            findings.append(Finding(WARNING, "resize-coordinate-mode",
                                    f"bilinear resize with '{coord}': expected half_pixel "
                                    "(align_corners=False)", label))
        if mode == "nearest" and nearest not in RESIZE_NEAREST_MODES:
            findings.append(Finding(ERROR, "resize-nearest-mode",
                                    f"nearest_mode '{nearest}' is not supported by TensorRT 8.5",
                                    label))
        if mode == "linear" and coord == "tf_half_pixel_for_nn":
            findings.append(Finding(ERROR, "resize-coordinate-mode",
                                    "tf_half_pixel_for_nn is only meant for nearest resize",
                                    label))
    return findings


def _int64_out_of_range(tensor: Any) -> tuple[int, int, int] | None:
    """(count, min, max) of int64 values outside int32, or None."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    if tensor.data_type != TensorProto.INT64:
        return None
    values = numpy_helper.to_array(tensor).reshape(-1)
    bad = values[(values < INT32_MIN) | (values > INT32_MAX)]
    if bad.size == 0:
        return None
    return int(bad.size), int(np.min(bad)), int(np.max(bad))


def _check_int64(graph: Any, nodes: Sequence[Any]) -> list[Finding]:
    findings = []

    def report(what: str, name: str, result: tuple[int, int, int]) -> None:
        count, lo, hi = result
        findings.append(Finding(WARNING, "large-int64",
                                f"{what} holds {count} int64 value(s) outside int32 "
                                f"(min {lo}, max {hi}); TensorRT 8.x clamps them to int32",
                                name))

    for init in graph.initializer:
        result = _int64_out_of_range(init)
        if result:
            report("initializer", init.name, result)
    for i, node in enumerate(nodes):
        if node.op_type != "Constant":
            continue
        for a in node.attribute:
            if a.name == "value" and a.HasField("t"):
                result = _int64_out_of_range(a.t)
                if result:
                    report("Constant", _node_label(node, i), result)
            elif a.name == "value_ints" and any(not INT32_MIN <= v <= INT32_MAX for v in a.ints):
                bad = [v for v in a.ints if not INT32_MIN <= v <= INT32_MAX]
                report("Constant", _node_label(node, i), (len(bad), min(bad), max(bad)))
            elif a.name == "value_int" and not INT32_MIN <= a.i <= INT32_MAX:
                report("Constant", _node_label(node, i), (1, a.i, a.i))
    return findings


def _check_constant_inputs(graph: Any) -> list[Finding]:
    constants = {init.name for init in graph.initializer}
    constants |= {out for n in graph.node if n.op_type == "Constant" for out in n.output}
    findings = []
    for i, node in enumerate(graph.node):
        for index in CONSTANT_INPUTS.get(node.op_type, ()):
            if index < len(node.input) and node.input[index] and \
                    node.input[index] not in constants:
                findings.append(Finding(ERROR, "constant-input",
                                        f"{node.op_type} input {index} ('{node.input[index]}') "
                                        "must be an initializer or Constant for TensorRT 8.5",
                                        _node_label(node, i)))
    return findings


def _check_qdq(graph: Any) -> list[Finding]:
    from onnx import TensorProto, numpy_helper

    inits = {init.name: init for init in graph.initializer}
    inits.update({n.output[0]: _attr(n, "value", None) for n in graph.node
                  if n.op_type == "Constant" and n.output})
    findings = []
    for i, node in enumerate(graph.node):
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        label = _node_label(node, i)
        if len(node.input) < 3 or not node.input[2]:
            if node.op_type == "QuantizeLinear":
                findings.append(Finding(ERROR, "qdq-zero-point", "QuantizeLinear without a "
                                        "zero point quantises to uint8; TensorRT needs int8 "
                                        "(an int8 zero point of 0)", label))
            continue
        zp = inits.get(node.input[2])
        if zp is None:
            findings.append(Finding(ERROR, "qdq-zero-point", "zero point is computed at run "
                                    "time; TensorRT needs a constant zero", label))
            continue
        if zp.data_type != TensorProto.INT8:
            findings.append(Finding(ERROR, "qdq-zero-point",
                                    f"zero point type {TensorProto.DataType.Name(zp.data_type)}: "
                                    "TensorRT 8.5 supports int8 Q/DQ only", label))
        elif numpy_helper.to_array(zp).any():
            findings.append(Finding(ERROR, "qdq-zero-point", "non-zero zero point: TensorRT "
                                    "needs symmetric quantisation (zero point 0)", label))
    return findings


def _dims(value_info: Any) -> list[int | str | None]:
    out: list[int | str | None] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def _check_dims(graph: Any, size: tuple[int, int], dynamic_size: bool,
                input_name: str | None) -> list[Finding]:
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if input_name is not None:
        inputs = [i for i in inputs if i.name == input_name] or inputs
    if not inputs:
        return [Finding(ERROR, "input-rank", "the graph has no input")]
    inp = inputs[0]
    dims = _dims(inp)
    if len(dims) != 4:
        return [Finding(ERROR, "input-rank", f"input '{inp.name}' has rank {len(dims)}, "
                        "expected NCHW (4)", inp.name)]
    findings = []
    batch, channels, h, w = dims
    if channels != 3:
        findings.append(Finding(ERROR, "input-channels", f"channel dim is {channels!r}, the "
                                "contract needs a static 3 (RGB)", inp.name))
    if not isinstance(batch, int):
        findings.append(Finding(INFO, "dynamic-dims", f"batch dim is dynamic ({batch!r}): the "
                                "engine's optimisation profile must pin it (1)", inp.name))
    elif batch != 1:
        findings.append(Finding(WARNING, "static-dims", f"static batch {batch}, frames arrive "
                                "one at a time (1)", inp.name))
    spatial_dynamic = [not isinstance(d, int) for d in (h, w)]
    if dynamic_size:
        if not all(spatial_dynamic):
            findings.append(Finding(ERROR, "static-dims",
                                    f"model.yaml says dynamic_size: true but the graph's H, W "
                                    f"are {h!r}, {w!r}; re-export with dynamic axes or set "
                                    "dynamic_size: false", inp.name))
    else:
        if any(spatial_dynamic):
            findings.append(Finding(WARNING, "dynamic-dims",
                                    f"model.yaml says dynamic_size: false but the graph's H, W "
                                    f"are {h!r}, {w!r}: the engine needs an optimisation "
                                    f"profile pinned to {size[0]}x{size[1]}", inp.name))
        elif (h, w) != tuple(size):
            findings.append(Finding(ERROR, "static-dims",
                                    f"graph input is {h}x{w}, model.yaml input.size is "
                                    f"{size[0]}x{size[1]}", inp.name))
    return findings


def _contract_for(onnx_path: Path) -> dict[str, Any] | None:
    """``input`` section of a ``model.yaml`` beside the ONNX, if any."""
    import yaml

    yaml_path = onnx_path.parent / "model.yaml"
    if not yaml_path.is_file():
        return None
    data = yaml.safe_load(yaml_path.read_text()) or {}
    inp = data.get("input") or {}
    onnx_file = (data.get("onnx") or {}).get("file", "model.onnx")
    return {"size": tuple(int(v) for v in inp.get("size", (384, 512))),
            "dynamic_size": bool(inp.get("dynamic_size", False)),
            "name": str(inp.get("name", "image")),
            "is_contract_onnx": onnx_file == onnx_path.name}


def lint_model(model: Any, *, expected_opset: int = EXPECTED_OPSET,
               input_size: tuple[int, int] | None = None, dynamic_size: bool | None = None,
               input_name: str | None = None) -> list[Finding]:
    """Lint an in-memory ``onnx.ModelProto``; dims are checked when ``input_size`` and
    ``dynamic_size`` are given."""
    graph = model.graph
    nodes = list(_all_nodes(graph))
    findings = _check_opset(model, expected_opset)
    findings += _check_ops(nodes)
    findings += _check_resize(nodes)
    findings += _check_int64(graph, nodes)
    findings += _check_constant_inputs(graph)
    findings += _check_qdq(graph)
    if input_size is not None and dynamic_size is not None:
        findings += _check_dims(graph, input_size, dynamic_size, input_name)
    return findings


def lint_onnx(path: Path | str, *, expected_opset: int = EXPECTED_OPSET,
              input_size: tuple[int, int] | None = None,
              dynamic_size: bool | None = None) -> list[Finding]:
    """Lint an ONNX file, or a model folder (its ``model.yaml`` names the ONNX).

    The graph input's dims are compared with ``model.yaml`` beside the ONNX when there is one
    (or with ``input_size``/``dynamic_size`` when given).
    """
    import onnx

    path = Path(path)
    if path.is_dir():
        import yaml

        data = yaml.safe_load((path / "model.yaml").read_text()) or {}
        path = path / str((data.get("onnx") or {}).get("file", "model.onnx"))
    contract = _contract_for(path)
    input_name = None
    if contract is not None:
        input_size = input_size or contract["size"]
        if dynamic_size is None:
            dynamic_size = contract["dynamic_size"]
        input_name = contract["name"]
    model = onnx.load(str(path), load_external_data=False)
    return lint_model(model, expected_opset=expected_opset, input_size=input_size,
                      dynamic_size=dynamic_size, input_name=input_name)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == ERROR for f in findings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crop_weed_seg.tools.onnx_lint",
        description="Check ONNX graphs against what TensorRT 8.5 … 11 parses.")
    parser.add_argument("paths", nargs="+", type=Path, help="ONNX files or model folders")
    parser.add_argument("--opset", type=int, default=EXPECTED_OPSET, help="expected opset")
    parser.add_argument("--strict", action="store_true", help="exit 2 on warnings too")
    parser.add_argument("--quiet", action="store_true", help="hide info findings")
    args = parser.parse_args(argv)
    status = 0
    for path in args.paths:
        try:
            findings = lint_onnx(path, expected_opset=args.opset)
        except Exception as exc:  # noqa: BLE001 - unreadable file, bad YAML: report and go on
            print(f"{path}: ERROR cannot lint ({exc})")
            status = 1
            continue
        shown = [f for f in findings if not (args.quiet and f.severity == INFO)]
        errors = sum(f.severity == ERROR for f in findings)
        warnings = sum(f.severity == WARNING for f in findings)
        print(f"{path}: {errors} error(s), {warnings} warning(s)")
        for f in shown:
            print(f"  {f}")
        if errors:
            status = 1
        elif warnings and args.strict and status == 0:
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
