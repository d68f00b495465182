"""The TensorRT backend against a CPU fake of ``tensorrt``
(test/support/fake_tensorrt.py: ONNX Runtime
underneath, host memory behind raw addresses). Nothing here runs real TensorRT or a GPU: these
tests pin the backend's logic (cache, version branches, buffers, errors); the numerics on a
device are the Jetson acceptance script's job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crop_weed_seg.backends import BackendOptions
from crop_weed_seg.backends.cuda_memory import HostAllocator
from crop_weed_seg.backends.engine_cache import EngineCache, EngineSettings
from crop_weed_seg.backends.onnxruntime_backend import OnnxRuntimeBackend
from crop_weed_seg.backends.registry import create_backend
from crop_weed_seg.errors import BackendError, ConfigError, CropWeedSegError, InvalidFrameError
from crop_weed_seg.image_files import read_label_image, read_rgb
from crop_weed_seg.model.contract import ModelContract, load_model_contract
from crop_weed_seg.perception.segmenter import Segmenter

from support import REPO
from support.fake_tensorrt import FAKE_GPU, install, make_fake_tensorrt

DATA = REPO / "test/fixtures"
GOLDENS = json.loads((DATA / "goldens.json").read_text())
FP32 = BackendOptions(device="cuda", precision="fp32")


@pytest.fixture(scope="module")
def contract() -> ModelContract:
    return load_model_contract(REPO / "models/default")


@pytest.fixture
def cache(tmp_path: Path) -> EngineCache:
    return EngineCache(tmp_path / "engines", allow_any=True)


def fake(monkeypatch: pytest.MonkeyPatch, version: str = "10.3.0", **kw: Any) -> Any:
    return install(monkeypatch, make_fake_tensorrt(version, **kw))


def backend(contract: ModelContract, cache: EngineCache, options: BackendOptions = FP32,
            **kw: Any) -> Any:
    from crop_weed_seg.backends.tensorrt_backend import TensorRTBackend

    kw.setdefault("allocator", HostAllocator(FAKE_GPU))
    return TensorRTBackend(contract, options, cache_dir=cache, **kw)


def tensor(contract: ModelContract, seed: int = 0, size: tuple[int, int] | None = None
           ) -> np.ndarray:
    h, w = size or contract.input.size
    return np.random.default_rng(seed).random((1, 3, h, w), dtype=np.float32)


# --- import hygiene and registry ------------------------------------------------------------

def test_importing_the_backend_module_imports_no_tensorrt() -> None:
    code = ("import sys, crop_weed_seg.backends.tensorrt_backend, "
            "crop_weed_seg.backends.cuda_memory; print('tensorrt' in sys.modules, "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout.split() == ["False", "False"]


def test_without_tensorrt_auto_falls_over_with_the_reason(contract: ModelContract,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(BackendError, match="tensorrt is not installed"):
        create_backend("tensorrt", contract, FP32)
    seg = create_backend("auto", contract, BackendOptions(device="cpu"))
    assert seg.name != "tensorrt"
    seg.close()


def test_tensorrt_without_a_cuda_device_is_a_clear_error(contract: ModelContract,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch)
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(sys.modules, "cuda", None)
    with pytest.raises(BackendError, match="no CUDA memory allocator: torch: torch sees no "
                       "CUDA device; cuda-python: cuda-python is not installed"):
        create_backend("tensorrt", contract, FP32)
    with pytest.raises(BackendError, match="TensorRT runs on a CUDA device only; device=cpu"):
        create_backend("tensorrt", contract, BackendOptions(device="cpu"))


# --- cache: build, hit, stale, corrupt, concurrent -------------------------------------------

def test_first_start_builds_second_start_is_a_cache_hit(contract: ModelContract,
                                                        cache: EngineCache,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    trt = fake(monkeypatch)
    first = backend(contract, cache)
    assert (first.engine_status, trt.state.builds) == ("built", 1)
    first.infer(tensor(contract))
    first.close()
    second = backend(contract, cache)
    assert second.engine_status == "hit" and second.engine_key == first.engine_key
    assert trt.state.builds == 1, "a cache hit must not build again"
    assert second.name == "tensorrt" and "engine hit" in second.detail
    assert trt.state.timing_cache_in == [b""]  # the first build had no timing cache yet
    assert list(cache.dir.glob("timing-10.3.0-*.cache"))
    second.close()


def test_same_key_but_another_tensorrt_build_is_rebuilt(contract: ModelContract,
                                                        cache: EngineCache,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan TensorRT refuses (deserialize -> None) under the same key is stale: rebuild."""
    trt = fake(monkeypatch, "10.3.0")
    key = backend(contract, cache).engine_key
    upgraded = fake(monkeypatch, "10.3.0", build_id="10.3.0.30-l4t-update")
    again = backend(contract, cache)
    assert again.engine_key == key
    assert again.engine_status.startswith("rebuilt: TensorRT could not deserialize")
    assert (trt.state.builds, upgraded.state.builds) == (1, 1)
    assert upgraded.state.timing_cache_in == [b"1"]  # the old timing cache was reused
    np.testing.assert_array_equal(again.infer(tensor(contract)).labels.shape,
                                  contract.input.size)


def test_tensorrt_upgrade_gives_a_new_key_and_a_new_engine(contract: ModelContract,
                                                           cache: EngineCache,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    fake(monkeypatch, "10.3.0")
    old = backend(contract, cache)
    new_trt = fake(monkeypatch, "10.13.0")
    new = backend(contract, cache)
    assert new.engine_key != old.engine_key
    assert new.engine_status == "built" and new_trt.state.builds == 1
    assert new_trt.state.timing_cache_in == [b""]  # timing caches are per TensorRT version


def test_corrupt_plan_is_rebuilt(contract: ModelContract, cache: EngineCache,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    trt = fake(monkeypatch)
    built = backend(contract, cache)
    plan = cache.plan_path(contract.name, built.engine_key)
    plan.write_bytes(b"\0" * 100)
    rebuilt = backend(contract, cache)
    assert rebuilt.engine_status.startswith("rebuilt:") and "corrupt" in rebuilt.engine_status
    assert trt.state.builds == 2


def test_plan_that_deserializes_to_none_during_build_is_not_cached(
        contract: ModelContract, cache: EngineCache, monkeypatch: pytest.MonkeyPatch) -> None:
    trt = fake(monkeypatch)
    runtime = trt.Runtime
    monkeypatch.setattr(runtime, "deserialize_cuda_engine", lambda self, data: None)
    with pytest.raises(BackendError, match="was built but TensorRT cannot deserialize it"):
        backend(contract, cache)
    assert not list(cache.dir.glob("*.engine"))


def test_no_engine_and_builds_not_allowed_names_the_command(contract: ModelContract,
                                                            cache: EngineCache,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    trt = fake(monkeypatch)
    with pytest.raises(BackendError, match="allow_engine_build is false; build it with "
                                           "crop-weed-seg build-engine"):
        backend(contract, cache, allow_build=False)
    assert trt.state.builds == 0


def test_force_rebuild_builds_even_on_a_hit(contract: ModelContract, cache: EngineCache,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    trt = fake(monkeypatch)
    backend(contract, cache)
    assert backend(contract, cache, force_rebuild=True).engine_status == "rebuilt: forced"
    assert trt.state.builds == 2


_WORKER = """
import json, sys
sys.path.insert(0, {test_dir!r})
from support.fake_tensorrt import FAKE_GPU, make_fake_tensorrt
trt = make_fake_tensorrt("10.3.0")
trt.state.build_seconds = 1.0
sys.modules["tensorrt"] = trt
from crop_weed_seg.backends import BackendOptions
from crop_weed_seg.backends.cuda_memory import HostAllocator
from crop_weed_seg.backends.engine_cache import EngineCache
from crop_weed_seg.backends.tensorrt_backend import TensorRTBackend
from crop_weed_seg.model.contract import load_model_contract
contract = load_model_contract({model!r})
print("ready", flush=True)
sys.stdin.readline()  # both processes start building together
b = TensorRTBackend(contract, BackendOptions(device="cuda"),
                    cache_dir=EngineCache({cache!r}, allow_any=True),
                    allocator=HostAllocator(FAKE_GPU))
print(json.dumps({{"status": b.engine_status, "builds": trt.state.builds}}), flush=True)
"""


def test_two_processes_starting_together_build_once(contract: ModelContract, tmp_path: Path
                                                    ) -> None:
    """Two real processes (the flock is per open file description, so threads would not
    show it): one builds, the other waits on the lock and then gets a cache hit."""
    code = _WORKER.format(test_dir=str(REPO / "test"), model=str(contract.folder),
                          cache=str(tmp_path / "engines"))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=REPO) for _ in range(2)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r["status"] for r in results) == ["built", "hit"]
    assert sum(r["builds"] for r in results) == 1


def test_unwritable_cache_dir_is_a_clear_error(contract: ModelContract, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from crop_weed_seg.backends.tensorrt_backend import TensorRTBackend

    fake(monkeypatch)
    if os.geteuid() == 0:  # root writes anywhere: a regular file where the folder should be
        target = tmp_path / "not-a-folder"
        target.write_text("x")
        where = target / "engines"
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        where = locked / "engines"
    with pytest.raises(BackendError, match=f"engine cache directory {where}.* is not usable"):
        TensorRTBackend(contract, FP32, cache_dir=EngineCache(where, allow_any=True),
                        allocator=HostAllocator(FAKE_GPU))
    with pytest.raises(ConfigError, match="is refused: it is in the temporary directory"):
        TensorRTBackend(contract, FP32, cache_dir=tmp_path / "engines",
                        allocator=HostAllocator(FAKE_GPU))


# --- version branches ------------------------------------------------------------------------

@pytest.mark.parametrize("version,explicit_batch,label_dtype,level", [
    ("8.5.2", True, np.int32, None),
    ("8.6.1", True, np.int32, 5),
    ("10.3.0", False, np.int64, 5),
    ("11.0.0", False, np.int64, 5),
])
def test_version_branches(contract: ModelContract, cache: EngineCache,
                          monkeypatch: pytest.MonkeyPatch, version: str, explicit_batch: bool,
                          label_dtype: Any, level: int | None) -> None:
    trt = fake(monkeypatch, version)
    messages: list[str] = []
    settings = EngineSettings.for_model(contract.input.size, contract.dynamic_size,
                                        builder_optimization_level=5)
    b = backend(contract, cache, settings=settings, progress=messages.append)
    assert bool(trt.state.last_network_flags & 1) == explicit_batch
    assert trt.state.last_optimization_level == level
    if level is None:
        assert any("no builder_optimization_level" in m for m in messages)
    assert "TF32" not in trt.state.last_flags  # cleared for strict fp32 parity
    out = b.infer(tensor(contract))
    # dtype-driven buffers: the engine says INT32 on 8.x and INT64 on 10+, and so do the labels
    assert out.labels.dtype == label_dtype and out.confidence.dtype == np.float32
    assert b.outputs[contract.labels_output].buffer.dtype == label_dtype
    assert set(np.unique(out.labels)) <= {0, 1, 2}


def test_parser_without_explicit_batch_on_8x_lists_the_error(contract: ModelContract,
                                                             cache: EngineCache,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """Guards the 8.x branch: were EXPLICIT_BATCH not set, the fake parser would refuse."""
    from crop_weed_seg.backends import tensorrt_backend

    fake(monkeypatch, "8.6.1")
    monkeypatch.setattr(tensorrt_backend, "trt_version", lambda module: (10, 0))
    with pytest.raises(BackendError, match="could not parse the ONNX .1 error.s..:\n  "
                                           ".*explicit batch"):
        backend(contract, cache)


def test_fp16_flag_before_10_12_and_clear_error_from_10_12(contract: ModelContract,
                                                           cache: EngineCache,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    fp16 = BackendOptions(device="cuda", precision="fp16")
    trt = fake(monkeypatch, "10.3.0")
    backend(contract, cache, fp16)
    assert "FP16" in trt.state.last_flags
    for version in ("10.13.0", "11.0.0"):
        trt = fake(monkeypatch, version)
        with pytest.raises(BackendError, match=f"TensorRT {version} has no FP16 builder flag.*"
                                               "holds no float16 tensors.*crop-weed-seg "
                                               "quantize.*--strongly-typed.*ModelOpt AutoCast"):
            backend(contract, cache, fp16)
        assert trt.state.builds == 0


def test_int8_needs_a_qdq_onnx(contract: ModelContract, cache: EngineCache,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, "10.3.0")
    with pytest.raises(BackendError, match="int8 needs a Q/DQ ONNX"):
        backend(contract, cache, BackendOptions(device="cuda", precision="int8"))


def test_dla_core_sets_gpu_fallback_or_says_there_is_none(contract: ModelContract,
                                                          cache: EngineCache,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    settings = EngineSettings.for_model(contract.input.size, contract.dynamic_size,
                                        precision="fp16", dla_core=0)
    trt = fake(monkeypatch, "10.3.0")
    with pytest.raises(BackendError, match="DLA core 0 asked for, this device has 0"):
        backend(contract, cache, settings=settings)
    trt.state.num_dla_cores = 2
    backend(contract, cache, settings=settings)
    assert "GPU_FALLBACK" in trt.state.last_flags and trt.state.last_dla == ("DLA", 0)


# --- build failures --------------------------------------------------------------------------

def test_parser_failure_lists_every_error(contract: ModelContract, cache: EngineCache,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx

    from crop_weed_seg.backends.tensorrt_backend import build_plan

    fake(monkeypatch)
    model = onnx.load(str(contract.onnx_path))
    for node in model.graph.node[:2]:
        node.domain = "com.example"
    model.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    bad = tmp_path / "custom.onnx"
    onnx.save(model, str(bad))
    settings = EngineSettings.for_model(contract.input.size, contract.dynamic_size)
    with pytest.raises(BackendError) as err:
        build_plan(bad, settings, None, print)
    text = str(err.value)
    assert "could not parse the ONNX (2 error(s))" in text
    assert "In node 0 (op " in text and "In node 1 (op " in text
    (tmp_path / "garbage.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(BackendError,
                       match="(?s)could not parse the ONNX .1 error.*failed to parse"):
        build_plan(tmp_path / "garbage.onnx", settings, None, print)


def test_builder_returning_none_reports_the_builder_errors(contract: ModelContract,
                                                           cache: EngineCache,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    trt = fake(monkeypatch)
    trt.state.fail_build = "Error Code 4: Internal Error (no implementation for Resize)"
    with pytest.raises(BackendError, match="could not build an engine from .*model.onnx: "
                                           "Error Code 4: Internal Error"):
        backend(contract, cache)
    assert not list(cache.dir.glob("*.engine"))


@pytest.mark.parametrize("mode", ["none", "raise"])
def test_out_of_memory_retries_with_half_the_workspace(contract: ModelContract,
                                                       cache: EngineCache,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       mode: str) -> None:
    trt = fake(monkeypatch)
    trt.state.oom_failures, trt.state.oom_mode = 2, mode
    messages: list[str] = []
    b = backend(contract, cache, progress=messages.append)
    assert b.engine_status == "built"
    assert trt.state.workspaces == [1 << 30, 1 << 29, 1 << 28]
    assert sum("retrying with a 512 MiB workspace" in m for m in messages) == 1


def test_out_of_memory_down_to_the_floor_is_a_clear_error(contract: ModelContract,
                                                          cache: EngineCache,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from crop_weed_seg.backends.tensorrt_backend import WORKSPACE_FLOOR

    trt = fake(monkeypatch)
    trt.state.oom_failures = 1000
    with pytest.raises(BackendError, match="out of GPU memory building the engine .* even with "
                                           "the workspace down to 64 MiB: free GPU memory"):
        backend(contract, cache)
    assert trt.state.workspaces[-1] == WORKSPACE_FLOOR
    assert len(trt.state.workspaces) == 5  # 1024, 512, 256, 128, 64 MiB


# --- running ---------------------------------------------------------------------------------

def test_input_outside_the_profile_names_shape_and_profile(contract: ModelContract,
                                                           cache: EngineCache,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    fake(monkeypatch)
    b = backend(contract, cache)
    with pytest.raises(InvalidFrameError, match=r"input shape \(1, 3, 100, 100\) is outside the "
                                                r"TensorRT engine's optimisation profile for "
                                                r"'image' \(min \(1, 3, 384, 512\), opt "
                                                r"\(1, 3, 384, 512\), max \(1, 3, 384, 512\)\)"):
        b.infer(tensor(contract, size=(100, 100)))
    assert b.infer(tensor(contract)).labels.shape == contract.input.size  # still usable


def test_dynamic_profile_reallocates_buffers_for_each_shape(contract: ModelContract,
                                                            cache: EngineCache,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    fake(monkeypatch)
    settings = EngineSettings.for_model(contract.input.size, contract.dynamic_size,
                                        shapes=((256, 256), (384, 512), (512, 640)))
    b = backend(contract, cache, settings=settings)
    assert b.profile("image") == ((1, 3, 256, 256), (1, 3, 384, 512), (1, 3, 512, 640))
    ort = OnnxRuntimeBackend(contract, BackendOptions(device="cpu", threads=2))
    for size in [(384, 512), (256, 320), (512, 640), (384, 512)]:
        x = tensor(contract, seed=size[0], size=size)
        out = b.infer(x)
        assert out.labels.shape == size
        np.testing.assert_array_equal(out.labels, ort.infer(x).labels)
    with pytest.raises(InvalidFrameError, match=r"\(1, 3, 720, 1280\) is outside"):
        b.infer(tensor(contract, size=(720, 1280)))


def test_runs_on_a_non_default_stream(contract: ModelContract, cache: EngineCache,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    trt = fake(monkeypatch)
    b = backend(contract, cache)
    b.infer(tensor(contract))
    assert trt.state.streams and all(s != 0 for s in trt.state.streams)


def test_cuda_graph_captured_once_and_recaptured_on_shape_change(
        contract: ModelContract, cache: EngineCache, monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch)
    settings = EngineSettings.for_model(contract.input.size, contract.dynamic_size,
                                        shapes=((256, 256), (384, 512), (512, 640)))
    allocator = HostAllocator(FAKE_GPU)
    b = backend(contract, cache, BackendOptions(device="cuda", cuda_graphs=True),
                settings=settings, allocator=allocator)
    ort = OnnxRuntimeBackend(contract, BackendOptions(device="cpu", threads=2))
    for seed in range(3):
        x = tensor(contract, seed)
        np.testing.assert_array_equal(b.infer(x).labels, ort.infer(x).labels)
    assert b.graph_captures == 1 and allocator.graphs[0].replays == 3
    b.infer(tensor(contract, size=(256, 320)))
    assert b.graph_captures == 2 and "cuda-graphs" in b.detail


def test_closed_backend_refuses_to_run(contract: ModelContract, cache: EngineCache,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch)
    b = backend(contract, cache)
    b.close()
    with pytest.raises(CropWeedSegError, match="closed"):
        b.infer(tensor(contract))


def test_build_engine_for_the_cli(contract: ModelContract, cache: EngineCache,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from crop_weed_seg.backends.tensorrt_backend import build_engine

    trt = fake(monkeypatch)
    settings = EngineSettings.for_model(contract.input.size, contract.dynamic_size)
    messages: list[str] = []
    key, status = build_engine(contract, settings, cache, messages.append,
                               allocator=HostAllocator(FAKE_GPU))
    assert status == "built" and any("building engine" in m for m in messages)
    assert build_engine(contract, settings, cache, messages.append,
                        allocator=HostAllocator(FAKE_GPU)) == (key, "hit")
    assert backend(contract, cache).engine_key == key  # the node finds what the CLI built
    assert trt.state.builds == 1


# --- contract parity with ONNX Runtime -------------------------------------------------------

@pytest.fixture(scope="module")
def module_fake() -> Any:
    trt = make_fake_tensorrt("10.3.0")
    saved = sys.modules.get("tensorrt")
    sys.modules["tensorrt"] = trt
    yield trt
    if saved is None:
        sys.modules.pop("tensorrt", None)
    else:
        sys.modules["tensorrt"] = saved


@pytest.fixture(scope="module")
def trt_segmenter(contract: ModelContract, module_fake: types.ModuleType,
                  tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache = EngineCache(tmp_path_factory.mktemp("parity") / "engines", allow_any=True)
    seg = Segmenter(contract, backend_instance=backend(contract, cache))
    yield seg
    seg.close()


@pytest.mark.parametrize("stem", sorted(GOLDENS["frames"]))
def test_labels_equal_the_onnxruntime_backend_and_the_goldens(
        contract: ModelContract, trt_segmenter: Segmenter, stem: str) -> None:
    rgb = read_rgb(REPO / "samples/field/images" / f"{stem}.png")
    result = trt_segmenter.segment(rgb)
    ort = Segmenter(contract, "onnxruntime", BackendOptions(device="cpu", threads=2))
    reference = ort.segment(rgb)
    ort.close()
    np.testing.assert_array_equal(result.labels, reference.labels)
    np.testing.assert_allclose(result.confidence, reference.confidence, atol=1e-6)
    golden = read_label_image(DATA / f"golden_{stem}_labels.png")
    assert np.mean(result.labels == golden) >= 0.999
