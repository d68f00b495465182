"""scripts/jetson_acceptance.py without TensorRT: import-safe, exits 2 with a clear message; its
pure helpers (agreement, percentiles, trtexec parsing, Markdown tables). Also the golden I/O in
test/fixtures/trt_goldens that the script replays: it must still match models/default under ONNX
Runtime, so a model change fails here until ``test/fixtures/make_trt_goldens.py`` is rerun."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from crop_weed_seg.model.contract import load_model_contract

from support import REPO

DATA = REPO / "test" / "fixtures"
SCRIPT = REPO / "scripts" / "jetson_acceptance.py"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def acc():
    return _load("jetson_acceptance", SCRIPT)


def test_import_does_not_need_tensorrt(acc):
    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('a', {str(SCRIPT)!r}); "
            "m = importlib.util.module_from_spec(spec); sys.modules['a'] = m; "
            "spec.loader.exec_module(m); "
            "print(sorted(k for k in ('tensorrt', 'torch', 'crop_weed_seg') if k in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert acc.MIN_AGREEMENT["fp32"] == 0.9999 and acc.MIN_AGREEMENT["fp16"] == 0.995


def test_without_tensorrt_exits_2(acc, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    assert acc.main(["--no-trtexec"]) == acc.EXIT_UNAVAILABLE == 2
    err = capsys.readouterr().err
    assert "TensorRT" in err and "--system-site-packages" in err


def test_script_subprocess_exits_2():
    code = "import sys; sys.modules['tensorrt'] = None; sys.argv = ['x']; " \
           f"import runpy; runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "cannot run" in proc.stderr


def test_bad_precision_is_a_usage_error(acc):
    with pytest.raises(SystemExit) as exc:
        acc.main(["--precision", "fp64"])
    assert exc.value.code == 2


def test_argmax_agreement(acc):
    ref = np.zeros((1, 4, 5), np.int32)
    out = ref[0].astype(np.int64).copy()
    out[0, :2] = 1
    assert acc.argmax_agreement(ref, ref) == 1.0
    assert acc.argmax_agreement(out, ref) == pytest.approx(18 / 20)
    with pytest.raises(ValueError):
        acc.argmax_agreement(np.zeros((3, 3)), ref)


def test_percentiles(acc):
    stats = acc.percentiles([float(v) for v in range(1, 101)])
    assert stats["p50"] == pytest.approx(50.5)
    assert stats["p90"] == pytest.approx(90.1)
    assert stats["p99"] == pytest.approx(99.01)
    assert stats["runs"] == 100
    with pytest.raises(ValueError):
        acc.percentiles([])


TRTEXEC_85 = """\
[12/01/2022-10:00:00] [I] === Performance summary ===
[12/01/2022-10:00:00] [I] Throughput: 590.1 qps
[12/01/2022-10:00:00] [I] Latency: min = 1.9 ms, max = 2.7 ms, mean = 2.0 ms, median = 2.0 ms, \
percentile(90%) = 2.1 ms, percentile(95%) = 2.2 ms, percentile(99%) = 2.4 ms
[12/01/2022-10:00:00] [I] GPU Compute Time: min = 1.64746 ms, max = 2.26367 ms, \
mean = 1.68513 ms, median = 1.68018 ms, percentile(90%) = 1.70117 ms, \
percentile(95%) = 1.71094 ms, percentile(99%) = 1.83984 ms
&&&& PASSED TensorRT.trtexec [TensorRT v8502]
"""


def test_parse_trtexec(acc):
    parsed = acc.parse_trtexec_gpu_compute(TRTEXEC_85)
    assert parsed["median"] == pytest.approx(1.68018)
    assert parsed["p99"] == pytest.approx(1.83984)
    assert parsed["min"] == pytest.approx(1.64746)
    assert acc.parse_trtexec_gpu_compute("no summary here") is None


def test_tables_and_exit_code(acc):
    checks = [acc.Check("fp32", "build", True, "built"),
              acc.Check("fp16", "parity", False, "a|b"),
              acc.Check("fp16", "trtexec", None, "absent")]
    table = acc.checks_table(checks)
    lines = table.splitlines()
    assert lines[0] == "| precision | check | result | detail |"
    assert lines[1] == "|---|---|---|---|"
    assert "**FAIL**" in lines[3] and "a\\|b" in lines[3] and "skipped" in lines[4]
    assert acc.exit_code(checks) == 1
    assert acc.exit_code([checks[0], checks[2]]) == 0
    lat = acc.latency_table([("fp16", "CUDA events (torch)", acc.percentiles([1.0, 2.0, 3.0]))])
    assert "| fp16 | CUDA events (torch) | 2.00 |" in lat


def test_corrupt_file_keeps_size_changes_bytes(acc, tmp_path):
    plan = tmp_path / "m.engine"
    plan.write_bytes(bytes(range(256)) * 100)
    before = plan.read_bytes()
    acc.corrupt_file(plan)
    after = plan.read_bytes()
    assert len(after) == len(before) and after != before


# --- golden I/O ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def make_goldens():
    return _load("make_trt_goldens", DATA / "make_trt_goldens.py")


@pytest.fixture(scope="module")
def goldens(make_goldens):
    return make_goldens.load_goldens()


def test_script_reads_the_goldens(acc, goldens):
    doc = acc.load_goldens(acc.DEFAULT_GOLDENS)
    assert doc["names"] == goldens["names"] and doc["model_sha256"] == goldens["model_sha256"]
def test_goldens_small_and_complete(goldens):
    size = sum(p.stat().st_size for p in (DATA / "trt_goldens").iterdir())
    assert size < 3e6
    n = len(goldens["names"])
    assert n >= 2
    assert goldens["frames"].shape == (n, 384, 512, 3) and goldens["frames"].dtype == np.uint8
    assert goldens["labels"].shape == (n, 1, 384, 512) and goldens["labels"].dtype == np.int32
    assert goldens["confidence"].dtype == np.float32


def test_goldens_match_current_model(goldens, make_goldens):
    contract = load_model_contract(REPO / "models/default")
    assert goldens["model_sha256"] == contract.onnx_sha256, \
        "models/default changed: rerun test/fixtures/make_trt_goldens.py"
    session = ort.InferenceSession(str(contract.onnx_path), providers=["CPUExecutionProvider"])
    module = make_goldens
    for frame, labels, confidence in zip(goldens["frames"], goldens["labels"],
                                         goldens["confidence"]):
        tensor = module.input_tensor(frame, contract.input)
        out_labels, out_conf = session.run([contract.labels_output, contract.confidence_output],
                                           {contract.input_name: tensor})
        assert np.mean(out_labels == labels) >= 0.9999
        np.testing.assert_allclose(out_conf, confidence, atol=1e-4)


def test_frames_are_the_model_preprocessing(goldens):
    from crop_weed_seg.image_files import read_rgb
    from crop_weed_seg.model.preprocess import resize_to_input

    contract = load_model_contract(REPO / "models/default")
    rgb = read_rgb(REPO / "samples/field/images" / f"{goldens['names'][0]}.png")
    np.testing.assert_array_equal(resize_to_input(rgb, contract.input), goldens["frames"][0])


def test_polygraphy_json_roundtrip(goldens, make_goldens, tmp_path):
    pytest.importorskip("polygraphy")
    from polygraphy.comparator import RunResults
    from polygraphy.json import load_json

    inputs, outputs = make_goldens.write_polygraphy_json(tmp_path)
    feeds = load_json(str(inputs))
    assert len(feeds) == len(goldens["names"])
    assert feeds[0]["image"].shape == (1, 3, 384, 512) and feeds[0]["image"].dtype == np.float32
    results = RunResults.load(str(outputs))
    (_, iterations), = list(results.items())
    np.testing.assert_array_equal(iterations[0]["labels"], goldens["labels"][0])
    assert iterations[0]["labels"].dtype == np.int32


def test_engine_route_uses_builder_flags_before_trt_10_12(acc, tmp_path):
    contract = load_model_contract(REPO / "models/default")
    for precision in ("fp32", "fp16", "int8"):
        engine = acc.engine_route(precision, (10, 3), contract, tmp_path, [])
        assert (engine.precision, engine.onnx, engine.strongly_typed) == (precision, "", False)
    assert not any(tmp_path.iterdir())


def test_engine_route_builds_fp16_and_qdq_onnx_strongly_typed_from_trt_10_12(acc, goldens,
                                                                            tmp_path):
    """TensorRT >= 10.12 refuses the FP16/INT8 builder flags (TENSORRT.md): the acceptance
    run must hand it an FP16 ONNX or a Q/DQ ONNX built as a strongly typed network."""
    from crop_weed_seg.model.preprocess import to_tensor
    from crop_weed_seg.training.precision import count_qdq

    contract = load_model_contract(REPO / "models/default")
    assert acc.engine_route("fp32", (10, 12), contract, tmp_path, []).onnx == ""
    fp16 = acc.engine_route("fp16", (10, 12), contract, tmp_path / "a", [])
    assert (fp16.precision, fp16.strongly_typed) == ("fp16", True)
    import onnx

    model = onnx.load(fp16.onnx)
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    calibration = [to_tensor(np.ascontiguousarray(f), contract.input) for f in goldens["frames"]]
    int8 = acc.engine_route("int8", (11, 0), contract, tmp_path / "b", calibration)
    assert (int8.precision, int8.strongly_typed) == ("int8", True)
    counts = count_qdq(int8.onnx)
    assert counts["QuantizeLinear"] > 0 and counts["DequantizeLinear"] > 0
    assert int8.onnx_path(contract) != contract.onnx_path
