"""One contract suite run against every backend available here, plus the Segmenter's frame
handling, output checks and the backend registry's fallback order (with fake backends)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crop_weed_seg.backends import BackendOptions, InferenceOutput, available_backends
from crop_weed_seg.backends.registry import create_backend
from crop_weed_seg.errors import BackendError, InvalidFrameError
from crop_weed_seg.image_files import read_label_image, read_rgb
from crop_weed_seg.model.contract import load_model_contract
from crop_weed_seg.perception.segmenter import Segmenter

from support import REPO

DATA = REPO / "test/fixtures"
GOLDENS = json.loads((DATA / "goldens.json").read_text())
BACKENDS = available_backends()


@pytest.fixture(scope="module")
def contract():  # type: ignore[no-untyped-def]
    return load_model_contract(REPO / "models/default")


@pytest.fixture(scope="module", params=BACKENDS)
def segmenter(request: pytest.FixtureRequest, contract) -> Segmenter:  # type: ignore[no-untyped-def]
    # TensorRT runs only on a CUDA device (on a Jetson this suite runs it there too)
    device = "cuda" if request.param == "tensorrt" else "cpu"
    seg = Segmenter(contract, request.param, BackendOptions(device=device, threads=2))
    yield seg
    seg.close()


def test_both_cpu_backends_are_available_here() -> None:
    assert {"onnxruntime", "torch"} <= set(BACKENDS)


def test_goldens_belong_to_the_shipped_model(contract) -> None:  # type: ignore[no-untyped-def]
    assert GOLDENS["model_sha256"] == contract.onnx_sha256, \
        "models/default changed: regenerate with test/fixtures/make_goldens.py"


@pytest.mark.parametrize("stem", sorted(GOLDENS["frames"]))
def test_backend_reproduces_the_golden_outputs(segmenter: Segmenter, stem: str) -> None:
    rgb = read_rgb(REPO / "samples/field/images" / f"{stem}.png")
    result = segmenter.segment(rgb)
    golden = read_label_image(DATA / f"golden_{stem}_labels.png")
    assert result.labels.shape == rgb.shape[:2] == golden.shape
    assert result.labels.dtype == np.uint8
    assert np.mean(result.labels == golden) >= 0.999
    assert result.confidence is not None and result.confidence.dtype == np.float32
    gold_conf = np.load(DATA / f"golden_{stem}_confidence.npy").astype(np.float32)
    assert np.median(np.abs(result.confidence - gold_conf)) < 1e-2
    for name, share in GOLDENS["frames"][stem]["coverage"].items():
        assert result.coverage[name] == pytest.approx(share, abs=2e-3)


def test_labels_come_back_at_odd_camera_resolution(segmenter: Segmenter) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (479, 641, 3), dtype=np.uint8)
    result = segmenter.segment(rgb)
    assert result.labels.shape == (479, 641) and result.confidence.shape == (479, 641)
    assert set(np.unique(result.labels)) <= {0, 1, 2}
    assert sum(result.coverage.values()) == pytest.approx(1.0)
    t = result.timings
    assert t.preprocess_ms > 0 and t.infer_ms > 0 and t.postprocess_ms > 0


def test_bgr_mono_16_bit_and_rgba_frames_give_consistent_labels(segmenter: Segmenter) -> None:
    rgb = read_rgb(REPO / "samples/field/images/field_000000.png")
    ref = segmenter.segment(rgb).labels
    assert np.array_equal(segmenter.segment(np.ascontiguousarray(rgb[:, :, ::-1]), "BGR").labels,
                          ref)
    as16 = rgb.astype(np.uint16) * 257  # the same picture in 16 bit
    assert np.mean(segmenter.segment(as16, "RGB").labels == ref) > 0.999
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert np.array_equal(segmenter.segment(rgba, "RGB").labels, ref)
    grey = rgb.mean(axis=2).astype(np.uint8)
    mono = segmenter.segment(grey, "MONO").labels
    assert mono.shape == grey.shape  # no colour: the model may call it all soil, but no crash


@pytest.mark.parametrize("frame,order,message", [
    (np.zeros((10, 10, 3), np.float32), "RGB", "dtype float32 is not supported"),
    (np.zeros((10, 10, 2), np.uint8), "RGB", "is not \\(H, W\\)"),
    (np.zeros((10, 10, 3), np.uint8), "MONO", "3-channel frame cannot be MONO"),
    (np.zeros((10, 10, 3), np.uint8), "YUV", "channel_order must be one of"),
])
def test_unusable_frames_are_invalid_frame_errors(contract, frame: np.ndarray, order: str,  # type: ignore[no-untyped-def]
                                                  message: str) -> None:
    seg = Segmenter(contract, backend_instance=_FakeBackend(contract))
    with pytest.raises(InvalidFrameError, match=message):
        seg.segment(frame, order)


class _FakeBackend:
    """Test double standing in for a runtime: returns chosen outputs (no model runs)."""

    name = "fake"
    detail = "test double"

    def __init__(self, contract, confidence: float = 0.9, label: int = 1) -> None:  # type: ignore[no-untyped-def]
        h, w = contract.input.size
        self.out = InferenceOutput(np.full((h, w), label, np.int32),
                                   np.full((h, w), confidence, np.float32))

    def infer(self, tensor: np.ndarray) -> InferenceOutput:
        return self.out

    def close(self) -> None:
        pass


def test_nan_in_model_output_is_an_error_for_that_frame(contract) -> None:  # type: ignore[no-untyped-def]
    seg = Segmenter(contract, backend_instance=_FakeBackend(contract, confidence=float("nan")))
    with pytest.raises(InvalidFrameError, match="NaN or Inf"):
        seg.segment(np.zeros((48, 64, 3), np.uint8))


def test_out_of_range_label_from_the_model_is_an_error(contract) -> None:  # type: ignore[no-untyped-def]
    seg = Segmenter(contract, backend_instance=_FakeBackend(contract, label=7))
    with pytest.raises(InvalidFrameError, match="label ids outside 0..2"):
        seg.segment(np.zeros((48, 64, 3), np.uint8))


def test_auto_takes_the_first_backend_that_loads_and_lists_failures(contract) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def broken(name: str):  # type: ignore[no-untyped-def]
        def factory(c, o):  # type: ignore[no-untyped-def]
            calls.append(name)
            raise RuntimeError(f"{name} runtime missing")
        return factory

    def working(c, o):  # type: ignore[no-untyped-def]
        calls.append("fake")
        return _FakeBackend(c)

    registry = {"tensorrt": broken("tensorrt"), "onnxruntime": working, "torch": broken("torch")}
    backend = create_backend("auto", contract, BackendOptions(), registry)
    assert backend.name == "fake" and calls == ["tensorrt", "fake"]

    registry = {"tensorrt": broken("tensorrt"), "onnxruntime": broken("onnxruntime")}
    with pytest.raises(BackendError) as err:
        create_backend("auto", contract, BackendOptions(), registry)
    text = str(err.value)
    assert "tensorrt: tensorrt runtime missing" in text
    assert "onnxruntime: onnxruntime runtime missing" in text


def test_unknown_backend_name_lists_the_valid_ones(contract) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BackendError, match="unknown backend 'tpu'; valid: auto, onnxruntime"):
        create_backend("tpu", contract)


def test_asking_for_cuda_without_a_gpu_is_a_clear_error(contract,  # type: ignore[no-untyped-def]
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(BackendError) as err:
        create_backend("auto", contract, BackendOptions(device="cuda"))
    assert "onnxruntime: device=cuda asked for" in str(err.value)
    assert "torch: device=cuda asked for, but torch sees no CUDA device" in str(err.value)
