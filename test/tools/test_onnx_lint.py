"""ONNX lint for TensorRT 8.5 … 11: the shipped model passes; small graphs trigger each finding."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from crop_weed_seg.tools.onnx_lint import (
    ERROR,
    TRT85_SUPPORTED_OPS,
    WARNING,
    has_errors,
    lint_model,
    lint_onnx,
    main,
)

from support import REPO


def _model(nodes, inputs=None, outputs=None, initializers=(), opset=17, domains=()):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                      ["batch", 3, "height", "width"])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets)


def _codes(findings, severity=None):
    return {f.code for f in findings if severity is None or f.severity == severity}


def test_shipped_model_passes():
    findings = lint_onnx(REPO / "models/default")
    assert not has_errors(findings), findings
    assert not [f for f in findings if f.severity == WARNING], findings
    # the file path and the folder give the same answer (model.yaml beside the ONNX)
    assert lint_onnx(REPO / "models/default/model.onnx") == findings
    assert main([str(REPO / "models/default"), "--strict"]) == 0


def test_supported_set_is_trt85():
    for op in ("Conv", "Resize", "ArgMax", "QuantizeLinear", "DequantizeLinear", "Slice"):
        assert op in TRT85_SUPPORTED_OPS
    for op in ("LayerNormalization", "IsInf", "QLinearConv", "ConvInteger", "Unique",
               "SequenceAt", "DynamicQuantizeLinear"):
        assert op not in TRT85_SUPPORTED_OPS


def test_clean_graph_has_no_findings():
    model = _model([helper.make_node("Relu", ["x"], ["y"])])
    assert lint_model(model) == []


def test_opset_other_than_17_warns():
    findings = lint_model(_model([helper.make_node("Relu", ["x"], ["y"])], opset=18))
    assert _codes(findings, WARNING) == {"opset"}
    assert "17" in findings[0].message


def test_unsupported_op():
    node = helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln")
    scale = numpy_helper.from_array(np.ones(3, np.float32), "s")
    findings = lint_model(_model([node], initializers=[scale]))
    assert [(f.code, f.node) for f in findings] == [("unsupported-op", "ln")]
    assert findings[0].severity == ERROR


def test_custom_domain():
    node = helper.make_node("FusedConv", ["x"], ["y"], domain="com.microsoft")
    findings = lint_model(_model([node], domains=["com.microsoft"]))
    assert _codes(findings, ERROR) == {"custom-domain"}


def _resize(**attrs):
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", **attrs)
    return _model([node], initializers=[scales])


@pytest.mark.parametrize("attrs, code, severity", [
    ({"mode": "cubic"}, "resize-mode", ERROR),
    ({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"},
     "resize-coordinate-mode", ERROR),
    ({"mode": "linear", "coordinate_transformation_mode": "align_corners"},
     "resize-coordinate-mode", WARNING),
    ({"mode": "linear", "coordinate_transformation_mode": "asymmetric"},
     "resize-coordinate-mode", WARNING),
    ({"mode": "nearest", "nearest_mode": "bogus"}, "resize-nearest-mode", ERROR),
])
def test_resize_attributes(attrs, code, severity):
    findings = lint_model(_resize(**attrs))
    assert (code, severity) in {(f.code, f.severity) for f in findings}, findings


def test_resize_half_pixel_linear_is_clean():
    assert lint_model(_resize(mode="linear", coordinate_transformation_mode="half_pixel")) == []


def test_large_int64_initializer_and_constant():
    big = numpy_helper.from_array(np.array([0, 2**40], np.int64), "ends")
    const = helper.make_node("Constant", [], ["c"], name="big_const",
                             value=numpy_helper.from_array(np.array([-(2**35)], np.int64)))
    ints = helper.make_node("Constant", [], ["d"], name="big_ints", value_ints=[1, 2**33])
    small = numpy_helper.from_array(np.array([0, 2**31 - 1], np.int64), "fine")
    findings = lint_model(_model([const, ints, helper.make_node("Relu", ["x"], ["y"])],
                                 initializers=[big, small]))
    large = [f for f in findings if f.code == "large-int64"]
    assert {f.node for f in large} == {"ends", "big_const", "big_ints"}
    assert all(f.severity == WARNING for f in large)


def test_runtime_slice_axes():
    starts = numpy_helper.from_array(np.array([0], np.int64), "starts")
    ends = numpy_helper.from_array(np.array([2], np.int64), "ends")
    shape = helper.make_node("Shape", ["x"], ["axes_full"])
    gather = helper.make_node("Gather", ["axes_full", "idx"], ["axes"])
    idx = numpy_helper.from_array(np.array([0], np.int64), "idx")
    sl = helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"], name="sl")
    findings = lint_model(_model([shape, gather, sl], initializers=[starts, ends, idx]))
    assert [(f.code, f.node) for f in findings] == [("constant-input", "sl")]


def test_qdq_zero_points():
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    zp_u8 = numpy_helper.from_array(np.array(128, np.uint8), "zu")
    zp_nz = numpy_helper.from_array(np.array(3, np.int8), "zn")
    zp_ok = numpy_helper.from_array(np.array(0, np.int8), "zo")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zu"], ["q1"], name="q_uint8"),
             helper.make_node("QuantizeLinear", ["x", "s", "zn"], ["q2"], name="q_nonzero"),
             helper.make_node("QuantizeLinear", ["x", "s"], ["q3"], name="q_default"),
             helper.make_node("QuantizeLinear", ["x", "s", "zo"], ["q4"], name="q_ok"),
             helper.make_node("DequantizeLinear", ["q4", "s", "zo"], ["y"], name="dq_ok")]
    findings = lint_model(_model(nodes, initializers=[scale, zp_u8, zp_nz, zp_ok]))
    assert {f.node for f in findings if f.code == "qdq-zero-point"} == \
        {"q_uint8", "q_nonzero", "q_default"}


def _input(dims):
    return [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)]


@pytest.mark.parametrize("dims, dynamic, code, severity", [
    ([1, 3, 384, 512], True, "static-dims", ERROR),        # yaml dynamic, graph static
    ([1, 3, "h", "w"], False, "dynamic-dims", WARNING),    # yaml static, graph dynamic
    ([1, 3, 256, 256], False, "static-dims", ERROR),       # wrong static size
    ([1, 4, 384, 512], False, "input-channels", ERROR),
    ([1, 384, 512], False, "input-rank", ERROR),
    (["n", 3, "h", "w"], True, "dynamic-dims", "info"),    # dynamic batch: info only
])
def test_dims_against_contract(dims, dynamic, code, severity):
    model = _model([helper.make_node("Relu", ["image"], ["y"])], inputs=_input(dims))
    findings = lint_model(model, input_size=(384, 512), dynamic_size=dynamic,
                          input_name="image")
    assert (code, severity) in {(f.code, f.severity) for f in findings}, findings


def test_static_model_matching_yaml_is_clean():
    model = _model([helper.make_node("Relu", ["image"], ["y"])], inputs=_input([1, 3, 384, 512]))
    assert lint_model(model, input_size=(384, 512), dynamic_size=False) == []


def test_model_yaml_beside_onnx_is_used(tmp_path):
    model = _model([helper.make_node("Relu", ["image"], ["y"])], inputs=_input([1, 3, 64, 64]))
    onnx.save(model, str(tmp_path / "model.onnx"))
    (tmp_path / "model.yaml").write_text(
        "input: {name: image, size: [384, 512], dynamic_size: true}\nonnx: {file: model.onnx}\n")
    assert "static-dims" in _codes(lint_onnx(tmp_path), ERROR)
    assert main([str(tmp_path / "model.onnx")]) == 1


def test_main_reports_unreadable_file(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    assert main([str(bad)]) == 1
    assert "cannot lint" in capsys.readouterr().out
