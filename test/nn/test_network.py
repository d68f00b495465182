"""The network: shapes, size, vegetation indices, ONNX export parity, safe weight loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crop_weed_seg.errors import ModelContractError
from crop_weed_seg.nn.export import export_onnx, onnx_parity
from crop_weed_seg.nn.network import (
    LabelsAndConfidence,
    NetworkConfig,
    build_network,
    parameter_count,
    vegetation_indices,
)
from crop_weed_seg.nn.weights import load_weights, save_weights


@pytest.mark.parametrize("size", [(64, 64), (97, 131), (384, 512)])
def test_forward_gives_logits_at_input_size(size: tuple[int, int]) -> None:
    net = build_network(NetworkConfig()).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, *size)


def test_default_network_is_small_and_width_scales_it() -> None:
    n1 = parameter_count(build_network(NetworkConfig()))
    n2 = parameter_count(build_network(NetworkConfig(width=2.0)))
    assert 50_000 < n1 <= 2_000_000 and n2 > 2 * n1


def test_an_unknown_architecture_in_model_yaml_is_a_contract_error() -> None:
    assert NetworkConfig.from_json({"name": "cwnet", "width": 0.5}).width == 0.5
    with pytest.raises(ModelContractError, match="unknown architecture 'unet'; valid: cwnet"):
        NetworkConfig.from_json({"name": "unet"})


def test_excess_green_of_pure_green_and_grey_pixels() -> None:
    rgb = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.5]]).T.reshape(1, 3, 1, 2)
    idx = vegetation_indices(rgb)
    assert idx[0, 0, 0, 0] == pytest.approx(2.0, abs=1e-2)   # ExG of pure green
    assert idx[0, 0, 0, 1] == pytest.approx(0.0, abs=1e-3)   # ExG of grey


def test_export_head_gives_int32_labels_and_max_softmax_confidence() -> None:
    net = build_network(NetworkConfig()).eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        labels, conf = LabelsAndConfidence(net).eval()(x)
        probs = torch.softmax(net(x), dim=1)
    assert labels.dtype == torch.int32 and labels.shape == (1, 64, 96)
    assert torch.equal(labels.long(), probs.argmax(1))
    assert torch.allclose(conf, probs.max(1).values, atol=1e-6)


def test_onnx_export_matches_pytorch_argmax(tmp_path: Path) -> None:
    import onnx

    net = build_network(NetworkConfig())
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode matters
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    path = export_onnx(net, tmp_path / "m.onnx", (96, 128), "t")
    model = onnx.load(str(path))
    assert model.opset_import[0].version == 17
    assert [o.name for o in model.graph.output] == ["labels", "confidence"]
    assert onnx_parity(net, path, [(96, 128), (67, 93)], samples=2) >= 0.999


def test_weights_round_trip_through_safetensors(tmp_path: Path) -> None:
    a, b = build_network(NetworkConfig()), build_network(NetworkConfig())
    save_weights(a, tmp_path / "w.safetensors")
    load_weights(b, tmp_path / "w.safetensors")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_weights_of_another_width_are_rejected_with_the_file_named(tmp_path: Path) -> None:
    save_weights(build_network(NetworkConfig(width=2.0)), tmp_path / "w.safetensors")
    with pytest.raises(ModelContractError,
                       match="w.safetensors: weights do not fit.*size mismatch"):
        load_weights(build_network(NetworkConfig()), tmp_path / "w.safetensors")


def test_a_pickle_is_not_accepted_as_weights(tmp_path: Path) -> None:
    path = tmp_path / "evil.safetensors"
    path.write_bytes(b"\x80\x04\x95not safetensors at all")
    with pytest.raises(ModelContractError, match="not a readable safetensors file"):
        load_weights(build_network(NetworkConfig()), path)
