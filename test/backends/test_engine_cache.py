"""The TensorRT engine cache without TensorRT: keys, sidecars, hits, stale and corrupt plans,
locking across processes, crash safety, refusal of bad folders, pruning, and ``build-engine``.

``deserialize`` and ``build`` are fakes: a "plan" is ``PLAN|<trt version>|<payload>`` and
deserialises to ``("engine", payload)`` only under the TensorRT version that built it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest

import crop_weed_seg
from crop_weed_seg.backends.engine_cache import (
    CACHE_DIR_ENV,
    DeviceInfo,
    EngineCache,
    EngineSettings,
    check_cache_dir,
    default_cache_dir,
    engine_key,
    engine_sidecar_info,
    parse_shapes,
)
from crop_weed_seg.errors import BackendError, ConfigError
from crop_weed_seg.tools import build_engine_cmd

from support import REPO

SHA = "ab" * 32
ORIN = DeviceInfo(name="Orin", compute_capability="8.7", trt_version="10.3.0")
SETTINGS = EngineSettings(precision="fp16", shapes=((384, 512), (384, 512), (384, 512)))


class FakeTensorRT:
    """Plans and engines of one TensorRT version; counts builds."""

    def __init__(self, version: str = "10.3.0", payload: bytes = b"weights") -> None:
        self.version = version
        self.payload = payload
        self.builds: list[bytes | None] = []

    def deserialize(self, plan: bytes) -> tuple[str, bytes] | None:
        prefix = f"PLAN|{self.version}|".encode()
        return ("engine", plan[len(prefix):]) if plan.startswith(prefix) else None

    def build(self, timing: bytes | None) -> tuple[bytes, bytes | None]:
        self.builds.append(timing)
        return f"PLAN|{self.version}|".encode() + self.payload, b"timing%d" % len(self.builds)


def _cache(tmp_path: Path, **kwargs: Any) -> EngineCache:
    return EngineCache(tmp_path / "engines", allow_any=True, **kwargs)


def _load(cache: EngineCache, trt: FakeTensorRT, key: str | None = None,
          model: str = "default", **kwargs: Any) -> tuple[Any, str]:
    key = key or engine_key(SHA, SETTINGS, ORIN)
    info = engine_sidecar_info(SHA, SETTINGS, ORIN, model_dir="/models/default")
    return cache.load_or_build(model, key, info, deserialize=trt.deserialize, build=trt.build,
                               **kwargs)


# --- settings and keys -------------------------------------------------------------------------

def test_key_is_stable_for_equal_inputs() -> None:
    again = EngineSettings(precision="fp16", shapes=[[384, 512]] * 3)  # type: ignore[arg-type]
    assert engine_key(SHA, SETTINGS, ORIN) == engine_key(SHA.upper(), again, ORIN)
    assert len(engine_key(SHA, SETTINGS, ORIN)) == 64


@pytest.mark.parametrize("change", [
    {"onnx": "cd" * 32},
    {"precision": "int8"},
    {"workspace_bytes": 2 << 30},
    {"dla_core": 0},
    {"dla_core": 1},
    {"shapes": ((256, 256), (384, 512), (768, 1024))},
    {"strongly_typed": True},
    {"tf32": True},
    {"builder_optimization_level": 5},
    {"trt_version": "10.3.1"},
    {"name": "Xavier"},
    {"compute_capability": "7.2"},
])
def test_key_changes_with_every_input(change: dict[str, Any]) -> None:
    base = engine_key(SHA, SETTINGS, ORIN)
    onnx = change.pop("onnx", SHA)
    device_fields = {k: change.pop(k) for k in ("trt_version", "name", "compute_capability")
                     if k in change}
    key = engine_key(onnx, replace(SETTINGS, **change), replace(ORIN, **device_fields))
    assert key != base


def test_canonical_settings_are_sorted_json() -> None:
    text = EngineSettings().canonical()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data == {"builder_optimization_level": None, "dla_core": None, "precision": "fp32",
                    "shapes": None, "strongly_typed": False, "tf32": False,
                    "workspace_bytes": 1 << 30}
    assert EngineSettings.from_dict(SETTINGS.to_dict()) == SETTINGS


@pytest.mark.parametrize("kwargs, field", [
    ({"precision": "fp8"}, "precision"),
    ({"workspace_bytes": 0}, "workspace_bytes"),
    ({"dla_core": 0}, "dla_core"),  # fp32
    ({"dla_core": -1, "precision": "fp16"}, "dla_core"),
    ({"dla_core": 0, "precision": "fp16", "shapes": ((256, 256), (384, 512), (384, 512))},
     "dla_core"),
    ({"shapes": ((384, 512), (256, 512), (768, 1024))}, "shapes"),
    ({"shapes": ((384, 512), (384, 512))}, "shapes"),
    ({"shapes": ((0, 512), (384, 512), (384, 512))}, "shapes"),
    ({"builder_optimization_level": 6}, "builder_optimization_level"),
    ({"tf32": 1}, "tf32"),
])
def test_invalid_settings_raise_config_error_naming_the_field(kwargs: dict[str, Any],
                                                              field: str) -> None:
    with pytest.raises(ConfigError, match=f"engine setting {field}:"):
        EngineSettings(**kwargs)


def test_dla_accepts_static_models_and_pinned_dynamic_shapes() -> None:
    assert EngineSettings(precision="int8", dla_core=0).dla_core == 0
    assert EngineSettings(precision="fp16", dla_core=1, shapes=((384, 512),) * 3).dla_core == 1


def test_settings_for_model_default_to_the_contract_size() -> None:
    dyn = EngineSettings.for_model((384, 512), True, precision="fp16")
    assert dyn.shapes == ((384, 512),) * 3
    assert EngineSettings.for_model((384, 512), False).shapes is None
    with pytest.raises(ConfigError, match="static input 384x512"):
        EngineSettings.for_model((384, 512), False,
                                 shapes=parse_shapes("256x256,384x512,512x512"))
    assert parse_shapes("256x320, 384x512,720X1280") == ((256, 320), (384, 512), (720, 1280))
    with pytest.raises(ConfigError, match="MINHxMINW"):
        parse_shapes("384x512")


def test_device_info_and_onnx_sha_are_validated() -> None:
    with pytest.raises(ConfigError, match="compute_capability"):
        DeviceInfo("Orin", "sm87", "10.3.0")
    with pytest.raises(ConfigError, match="onnx_sha256"):
        engine_key("", SETTINGS, ORIN)


# --- cache folder --------------------------------------------------------------------------------

def test_default_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv(CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg/crop_weed_seg/engines"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home/.cache/crop_weed_seg/engines"


def test_temporary_directory_and_install_tree_are_refused(tmp_path: Path) -> None:
    for path in (Path(tempfile.gettempdir()), Path(tempfile.gettempdir()) / "engines", tmp_path):
        with pytest.raises(ConfigError, match="temporary directory"):
            check_cache_dir(path)
    package = Path(crop_weed_seg.__file__).resolve().parent
    for path in (package / "engines", Path(sys.prefix) / "share/crop_weed_seg"):
        with pytest.raises(ConfigError, match="installed software"):
            check_cache_dir(path, create=False)
    assert not (package / "engines").exists()
    assert check_cache_dir(tmp_path / "ok", allow_any=True).is_dir()


def test_unusable_cache_dir_is_a_clear_backend_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(BackendError, match=r"engines is not usable: Not a directory"):
        EngineCache(blocker / "engines", allow_any=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0o500 folder anyway")
def test_read_only_cache_dir_is_a_clear_backend_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    try:
        with pytest.raises(BackendError, match="ro is not usable: Permission denied"):
            EngineCache(folder, allow_any=True)
    finally:
        folder.chmod(0o700)


# --- load_or_build -------------------------------------------------------------------------------

def test_first_load_builds_and_writes_plan_sidecar_and_timing_cache(tmp_path: Path) -> None:
    cache, trt = _cache(tmp_path), FakeTensorRT()
    messages: list[str] = []
    engine, status = _load(cache, trt, progress=messages.append)
    key = engine_key(SHA, SETTINGS, ORIN)
    assert (engine, status) == (("engine", b"weights"), "built")
    assert trt.builds == [None]
    plan = cache.plan_path("default", key)
    assert plan == tmp_path / "engines" / f"default-{key[:16]}.engine"
    sidecar = json.loads(plan.with_suffix(".json").read_text())
    assert sidecar["model"] == "default" and sidecar["key"] == key
    assert sidecar["onnx_sha256"] == SHA and sidecar["tensorrt_version"] == "10.3.0"
    assert sidecar["settings"] == SETTINGS.to_dict()
    assert sidecar["device"] == {"name": "Orin", "compute_capability": "8.7",
                                 "trt_version": "10.3.0"}
    assert sidecar["plan_bytes"] == plan.stat().st_size
    assert len(sidecar["plan_sha256"]) == 64 and sidecar["created"] and sidecar["created_unix"]
    assert cache.timing_cache_path("10.3.0", "Orin").read_bytes() == b"timing1"
    assert cache.timing_cache_path("10.3.0", "NVIDIA Orin (nvgpu)").name == \
        "timing-10.3.0-nvidia-orin-nvgpu.cache"
    assert messages[0].startswith(f"building engine {key[:16]} for default (fp16")
    assert "this can take minutes" in messages[0]
    assert messages[1].startswith("engine built in ")
    assert [p.name for p in (tmp_path / "engines").iterdir() if p.name.endswith(".tmp")] == []


def test_second_load_is_a_hit_without_building(tmp_path: Path) -> None:
    cache, trt = _cache(tmp_path), FakeTensorRT()
    _load(cache, trt)
    messages: list[str] = []
    engine, status = _load(_cache(tmp_path), trt, progress=messages.append)
    assert (engine, status) == (("engine", b"weights"), "hit")
    assert len(trt.builds) == 1
    assert messages[0].startswith("cache hit")


def test_the_timing_cache_is_handed_to_the_next_build(tmp_path: Path) -> None:
    cache, trt = _cache(tmp_path), FakeTensorRT()
    _load(cache, trt)
    _load(cache, trt, key=engine_key(SHA, replace(SETTINGS, precision="int8"), ORIN))
    assert trt.builds == [None, b"timing1"]


@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.write_bytes(p.read_bytes()[:5]), "truncated or corrupt"),
    (lambda p: p.write_bytes(p.read_bytes()[:-1] + b"X"), "sha256 differs"),
    (lambda p: p.with_suffix(".json").unlink(), "sidecar .* is missing"),
    (lambda p: p.with_suffix(".json").write_text("{"), "sidecar .* is unreadable"),
])
def test_damaged_plan_is_rebuilt_with_the_reason(tmp_path: Path, damage: Callable[[Path], Any],
                                                 reason: str) -> None:
    cache, trt = _cache(tmp_path), FakeTensorRT()
    _load(cache, trt)
    damage(cache.plan_path("default", engine_key(SHA, SETTINGS, ORIN)))
    engine, status = _load(cache, trt)
    assert engine == ("engine", b"weights")
    assert status.startswith("rebuilt: ")
    assert re.search(reason, status), status
    assert _load(cache, trt)[1] == "hit"


def test_plan_that_tensorrt_rejects_is_rebuilt(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    _load(cache, FakeTensorRT("10.3.0"))
    upgraded = FakeTensorRT("10.3.0.30", payload=b"new")  # same key, other libnvinfer build
    engine, status = _load(cache, upgraded)
    assert engine == ("engine", b"new")
    assert status.startswith("rebuilt: TensorRT could not deserialize")
    assert "built with TensorRT 10.3.0 on Orin" in status


def test_force_rebuild(tmp_path: Path) -> None:
    cache, trt = _cache(tmp_path), FakeTensorRT()
    _load(cache, trt)
    assert _load(cache, trt, force_rebuild=True)[1] == "rebuilt: forced"
    assert _load(_cache(tmp_path, force_rebuild=True), trt)[1] == "rebuilt: forced"
    assert len(trt.builds) == 3


def test_allow_build_false_fails_fast_with_the_build_command(tmp_path: Path) -> None:
    cache, trt = _cache(tmp_path), FakeTensorRT()
    key = engine_key(SHA, SETTINGS, ORIN)
    with pytest.raises(BackendError) as info:
        _load(cache, trt, allow_build=False)
    message = str(info.value)
    assert f"no usable engine for default key {key[:16]} in {cache.dir}" in message
    assert "allow_engine_build is false" in message
    assert ("build it with crop-weed-seg build-engine --model /models/default --precision fp16 "
            "--shapes 384x512,384x512,384x512") in message
    assert trt.builds == []
    _load(cache, trt)
    assert _load(cache, trt, allow_build=False)[1] == "hit"


def test_failed_build_leaves_the_cache_unchanged(tmp_path: Path) -> None:
    cache, trt = _cache(tmp_path), FakeTensorRT()

    def broken(_timing: bytes | None) -> tuple[bytes, bytes | None]:
        raise BackendError("parser: unsupported op")

    with pytest.raises(BackendError, match="unsupported op"):
        cache.load_or_build("default", engine_key(SHA, SETTINGS, ORIN), {},
                            deserialize=trt.deserialize, build=broken)
    assert sorted(p.suffix for p in cache.dir.iterdir()) == [".lock"]
    assert _load(cache, trt)[1] == "built"


def test_read_only_cache_loads_but_never_builds(tmp_path: Path) -> None:
    trt = FakeTensorRT()
    with pytest.raises(BackendError, match="the engine cache is read-only"):
        _load(_cache(tmp_path, read_only=True), trt)
    _load(_cache(tmp_path), trt)
    assert _load(_cache(tmp_path, read_only=True), trt)[1] == "hit"


# --- processes -----------------------------------------------------------------------------------

def _slow_build_child(folder: str, record: str, barrier: Any, results: Any) -> None:
    trt = FakeTensorRT()

    def build(timing: bytes | None) -> tuple[bytes, bytes | None]:
        with open(record, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # widens the window in which the other process must wait
        return trt.build(timing)

    cache = EngineCache(folder, allow_any=True)
    barrier.wait()
    engine, status = cache.load_or_build(
        "default", engine_key(SHA, SETTINGS, ORIN), engine_sidecar_info(SHA, SETTINGS, ORIN),
        deserialize=trt.deserialize, build=build)
    results.put((engine, status))


def test_two_processes_build_once_and_both_get_the_engine(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    record = tmp_path / "builds.txt"
    folder = tmp_path / "engines"
    children = [ctx.Process(target=_slow_build_child,
                            args=(str(folder), str(record), barrier, results))
                for _ in range(2)]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert len(record.read_text().splitlines()) == 1
    assert sorted(status for _, status in outcomes) == ["built", "hit"]
    assert all(engine == ("engine", b"weights") for engine, _ in outcomes)


def _killed_while_writing_child(folder: str) -> None:
    """Builds, then dies (SIGKILL) after the plan's bytes are in the temp file, before the
    rename: what a power cut or OOM kill during the write looks like."""
    real_fsync = os.fsync

    def fsync_then_die(fd: int) -> None:
        real_fsync(fd)
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            os.kill(os.getpid(), signal.SIGKILL)

    os.fsync = fsync_then_die  # type: ignore[assignment]
    trt = FakeTensorRT()
    EngineCache(folder, allow_any=True).load_or_build(
        "default", engine_key(SHA, SETTINGS, ORIN), engine_sidecar_info(SHA, SETTINGS, ORIN),
        deserialize=trt.deserialize, build=trt.build)


def test_build_killed_while_writing_leaves_no_plan_and_releases_the_lock(tmp_path: Path) -> None:
    folder = tmp_path / "engines"
    child = multiprocessing.get_context("spawn").Process(target=_killed_while_writing_child,
                                                         args=(str(folder),))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL
    assert list(folder.glob("*.engine")) == []
    assert [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # the torn write
    cache, trt = _cache(tmp_path), FakeTensorRT()
    assert _load(cache, trt) == (("engine", b"weights"), "built")  # lock was released
    assert [p for p in folder.iterdir() if p.name.endswith(".tmp")] == []  # and cleaned


# --- listing and pruning -------------------------------------------------------------------------

def test_entries_and_prune_keep_the_newest_plans_per_model(tmp_path: Path) -> None:
    cache, trt = EngineCache(tmp_path / "engines", allow_any=True, keep_per_model=10), \
        FakeTensorRT()
    keys: list[str] = []
    for precision in ("fp32", "fp16", "int8"):
        for workspace in (1, 2):
            settings = EngineSettings(precision=precision, workspace_bytes=workspace << 30)
            key = engine_key(SHA, settings, ORIN)
            cache.load_or_build("default", key, engine_sidecar_info(SHA, settings, ORIN),
                                deserialize=trt.deserialize, build=trt.build)
            plan = cache.plan_path("default", key)
            os.utime(plan, (1000.0 + len(keys), 1000.0 + len(keys)))
            keys.append(key)
    _load(cache, trt, model="other")
    assert len(cache.entries()) == 7
    removed = cache.prune(keep_per_model=2)
    assert sorted(removed) == sorted(cache.plan_path("default", k) for k in keys[:4])
    left = cache.entries()
    assert sorted(e.key for e in left if e.model == "default") == sorted(keys[4:])
    assert [e.model for e in left].count("other") == 1
    assert all(e.plan_present for e in left)
    assert not any(cache.lock_path("default", k).exists() for k in keys[:4])


def test_builds_prune_automatically(tmp_path: Path) -> None:
    cache, trt = _cache(tmp_path, keep_per_model=2), FakeTensorRT()
    for level in range(4):
        settings = replace(SETTINGS, builder_optimization_level=level)
        cache.load_or_build("default", engine_key(SHA, settings, ORIN),
                            engine_sidecar_info(SHA, settings, ORIN),
                            deserialize=trt.deserialize, build=trt.build)
    assert len(list(cache.dir.glob("*.engine"))) == 2


# --- build-engine command ------------------------------------------------------------------------

def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="crop-weed-seg")
    build_engine_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
    return build_engine_cmd.run(parser.parse_args(["build-engine", *argv]))


def test_build_engine_list_needs_no_tensorrt(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cache, trt = _cache(tmp_path), FakeTensorRT()
    _load(cache, trt)
    assert _run(["--list", "--cache-dir", str(cache.dir)]) == 0
    out = capsys.readouterr().out
    key = engine_key(SHA, SETTINGS, ORIN)
    assert f"1 engine(s) in {cache.dir}" in out
    line = out.splitlines()[1]
    for part in ("default", key[:16], "fp16", "TensorRT 10.3.0", "Orin (sm 8.7)", " MB"):
        assert part in line


def test_build_engine_without_tensorrt_says_where_to_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails even where installed
    rc = _run(["--model", str(REPO / "models/default"), "--precision", "fp16",
               "--cache-dir", str(Path.home() / ".cache/crop_weed_seg/test-engines")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("TensorRT is not installed here: build engines on the target device")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    ([], "--model is required"),
    (["--model", str(REPO / "models/default"), "--shapes", "384x512"], "MINHxMINW"),
    (["--model", str(REPO / "models/default"), "--dla-core", "0"], "DLA runs fp16 or int8"),
    (["--model", str(REPO / "models/default"), "--cache-dir", tempfile.gettempdir()],
     "temporary directory"),
])
def test_build_engine_rejects_bad_options_before_needing_tensorrt(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(argv) == 2
    assert message in capsys.readouterr().err
