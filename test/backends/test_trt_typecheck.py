"""Type-check the TensorRT backend with ``mypy --strict`` against the ``tensorrt-stubs`` of two
TensorRT versions (docs/TENSORRT.md, verification ladder step 1), and show that the check
catches TRT-8-only API and a missing None check.

The stubs are fetched and patched by ``scripts/trt_stubs/fetch_and_patch.py`` into
``.venv/trt-stubs/<version>/`` (``make test`` runs it once; the test runs it if that was
skipped, which needs the package registry).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO

SCRIPT = REPO / "scripts/trt_stubs/fetch_and_patch.py"
CONFIG = REPO / "scripts/trt_stubs/mypy.ini"
CHECKED = ["crop_weed_seg/backends/tensorrt_backend.py", "crop_weed_seg/backends/cuda_memory.py"]

_spec = importlib.util.spec_from_file_location("fetch_and_patch", SCRIPT)
assert _spec is not None and _spec.loader is not None
fetch_and_patch = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fetch_and_patch)
VERSIONS: tuple[str, ...] = fetch_and_patch.VERSIONS

pytest.importorskip("mypy", reason="mypy is in requirements-dev.txt: run make test")


@pytest.fixture(scope="module")
def stubs_root() -> Path:
    root = REPO / ".venv" / "trt-stubs"
    if not all(fetch_and_patch.is_current(root / v) for v in VERSIONS):
        done = subprocess.run([sys.executable, str(SCRIPT), "--dest", str(root)],
                              capture_output=True, text=True)
        assert done.returncode == 0, (
            "tensorrt-stubs are not fetched and could not be downloaded now; run `make test` "
            f"(or {SCRIPT.relative_to(REPO)}) with access to the package registry:\n"
            f"{done.stdout}{done.stderr}")
    return root


def mypy(stubs: Path, files: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MYPYPATH=str(stubs))
    cache = stubs.parent / f".mypy_cache-{stubs.name}"
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(CONFIG),
                           "--cache-dir", str(cache), *files],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


@pytest.mark.parametrize("version", VERSIONS)
def test_backend_passes_mypy_strict_against_the_stubs(stubs_root: Path, version: str) -> None:
    result = mypy(stubs_root / version, CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 2 source files" in result.stdout


TRT8_ISMS = '''
import tensorrt as trt


def run(plan: bytes, builder: trt.Builder, network: trt.INetworkDefinition,
        config: trt.IBuilderConfig) -> int:
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    context = engine.create_execution_context()
    return 0


def old_api(engine: trt.ICudaEngine, context: trt.IExecutionContext, builder: trt.Builder,
            network: trt.INetworkDefinition, config: trt.IBuilderConfig) -> None:
    print(engine.num_bindings)
    context.execute_async_v2([0, 0], 0)
    builder.build_engine(network, config)
    context.set_input_shape("image", "1x3x384x512")
'''


@pytest.mark.parametrize("version", VERSIONS)
def test_mypy_rejects_trt8_api_and_a_missing_none_check(stubs_root: Path, version: str,
                                                        tmp_path: Path) -> None:
    snippet = tmp_path / "trt8_isms.py"
    snippet.write_text(TRT8_ISMS)
    result = mypy(stubs_root / version, [str(snippet)])
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    for expected in [
        'Item "None" of "ICudaEngine | None" has no attribute "create_execution_context"',
        '"ICudaEngine" has no attribute "num_bindings"',
        'has no attribute "execute_async_v2"',
        '"Builder" has no attribute "build_engine"',
        '"set_input_shape" of "IExecutionContext" has incompatible type "str"',
    ]:
        assert expected in out, f"{expected!r} missing from:\n{out}"


def test_patched_stubs_accept_tuples_for_dims_and_return_optional(stubs_root: Path) -> None:
    text = (stubs_root / VERSIONS[-1] / "tensorrt_bindings/tensorrt.pyi").read_text()
    assert "def set_shape(self, input: str, min: _DimsLike, opt: _DimsLike, max: _DimsLike)" \
        in text
    assert "-> ICudaEngine | None:" in text and "-> IHostMemory | None:" in text
    assert "\nbool: " not in text and "\nbool_: DataType" in text
    assert not re.search(r"(?m)^\s*def .*[(, ]in: ", text)
