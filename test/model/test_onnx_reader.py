"""The protobuf reader the runtime uses instead of ``onnx`` gives what ``onnx.load`` gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from crop_weed_seg.model.onnx_reader import OnnxReadError, OnnxSummary, parse_onnx, read_onnx

from support import REPO

onnx = pytest.importorskip("onnx", reason="onnx is a training extra (requirements-train.txt)")


def _dims(value_info: object) -> tuple[int | str | None, ...] | None:
    tensor = value_info.type.tensor_type  # type: ignore[attr-defined]
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else
                 d.dim_param if d.HasField("dim_param") else None for d in tensor.shape.dim)


def _expected(model: object) -> dict[str, object]:
    graph = model.graph  # type: ignore[attr-defined]
    types = {init.data_type for init in graph.initializer}
    types |= {info.type.tensor_type.elem_type for info in graph.value_info}
    for node in graph.node:
        if node.op_type == "Cast":
            types |= {attr.i for attr in node.attribute if attr.name == "to"}
    return {
        "ir_version": model.ir_version,  # type: ignore[attr-defined]
        "inputs": [(i.name, i.type.tensor_type.elem_type, _dims(i)) for i in graph.input],
        "outputs": [(o.name, o.type.tensor_type.elem_type, _dims(o)) for o in graph.output],
        "initializers": {i.name for i in graph.initializer}
        | {s.values.name for s in graph.sparse_initializer},
        "metadata": {p.key: p.value for p in model.metadata_props},  # type: ignore[attr-defined]
        "types": types,
        "ops": {n.op_type for n in graph.node},
    }


def _got(summary: OnnxSummary) -> dict[str, object]:
    return {
        "ir_version": summary.ir_version,
        "inputs": [(i.name, i.elem_type, i.dims) for i in summary.inputs],
        "outputs": [(o.name, o.elem_type, o.dims) for o in summary.outputs],
        "initializers": set(summary.initializer_names),
        "metadata": summary.metadata,
        "types": set(summary.tensor_types),
        "ops": set(summary.op_types),
    }


@pytest.mark.parametrize("name", ["default", "synthetic"])
def test_shipped_models_read_the_same_as_with_onnx(name: str) -> None:
    path = REPO / "models" / name / "model.onnx"
    summary = read_onnx(path)
    assert _got(summary) == _expected(onnx.load(str(path), load_external_data=False))
    assert [i.name for i in summary.graph_inputs] == ["image"]
    assert "crop_weed_seg.classes" in summary.metadata


def _hand_made() -> object:
    """Every feature the reader handles: an initializer listed as an input (IR 3 style), a
    sparse initializer, symbolic, fixed, negative and unknown dimensions, value_info, a Cast to
    float16, metadata with non-ASCII text, a non-tensor output type."""
    h = onnx.helper
    tp = onnx.TensorProto
    weight = h.make_tensor("w", tp.FLOAT, [3], [1.0, 2.0, 3.0])
    sparse = onnx.helper.make_sparse_tensor(
        h.make_tensor("s", tp.FLOAT, [1], [5.0]), h.make_tensor("s_idx", tp.INT64, [1], [0]), [3])
    image = h.make_tensor_value_info("image", tp.FLOAT, [1, 3, "height", None])
    w_in = h.make_tensor_value_info("w", tp.FLOAT, [3])
    out = h.make_tensor_value_info("labels", tp.FLOAT16, [-1, 7])
    seq = h.make_tensor_sequence_value_info("seq", tp.FLOAT, None)
    nodes = [h.make_node("Mul", ["image", "w"], ["m"]),
             h.make_node("Cast", ["m"], ["labels"], to=tp.FLOAT16),
             h.make_node("SequenceConstruct", ["m"], ["seq"])]
    graph = h.make_graph(nodes, "g", [image, w_in], [out, seq], initializer=[weight],
                         sparse_initializer=[sparse],
                         value_info=[h.make_tensor_value_info("m", tp.DOUBLE, None)])
    model = h.make_model(graph, producer_name="test")
    h.set_model_props(model, {"crop_weed_seg.classes": '["soil", "crop", "weed"]',
                              "note": "Unkraut — größer"})
    return model


def test_a_hand_made_graph_reads_the_same_as_with_onnx(tmp_path: Path) -> None:
    model = _hand_made()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    summary = read_onnx(path)
    assert _got(summary) == _expected(onnx.load(str(path)))
    assert [i.name for i in summary.graph_inputs] == ["image"]
    assert summary.inputs[0].dims == (1, 3, "height", None)
    assert summary.outputs[0].dims == (-1, 7)
    assert summary.metadata["note"] == "Unkraut — größer"
    assert {onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE} <= summary.tensor_types


@pytest.mark.parametrize("data", [b"", b"not an onnx file", b"\x08\x07", b"\x3a\xff\x01"])
def test_bytes_that_are_not_a_model_raise_onnx_read_error(data: bytes) -> None:
    with pytest.raises(OnnxReadError):
        parse_onnx(data)


def test_a_truncated_model_raises_onnx_read_error() -> None:
    data = (REPO / "models" / "default" / "model.onnx").read_bytes()
    with pytest.raises(OnnxReadError):
        parse_onnx(data[: len(data) // 2])
