"""``build-engine`` ↔ node parity: one :class:`EngineOptions` decides the engine key, built from
build-engine's command line and from the node's parameters; every engine build-engine builds,
the node finds — by its parameters, by the parameters build-engine prints, or by the engine's
sidecar.

TensorRT cannot run here: the builds go through the CPU fake of ``tensorrt``
(test/support/fake_tensorrt.py, FAKE, ONNX Runtime underneath) with host memory for the device.
The engine cache must live outside /tmp (it refuses it), so the builds use a fresh folder under
``~/.cache/crop_weed_seg`` that the fixture removes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import yaml

from crop_weed_seg.backends import BackendOptions
from crop_weed_seg.backends.cuda_memory import HostAllocator
from crop_weed_seg.backends.engine_cache import DeviceInfo, EngineCache
from crop_weed_seg.backends.engine_options import (
    NODE_PARAMETERS,
    P_SETTINGS,
    EngineOptions,
    cache_dir_from_node_parameters,
    from_cli,
    from_node_parameters,
    from_sidecar,
)
from crop_weed_seg.errors import BackendError, ConfigError
from crop_weed_seg.model.contract import ModelContract, load_model_contract
from crop_weed_seg.parameters.segmenter import BY_NAME, PARAMETERS, validate
from crop_weed_seg.tools import build_engine_cmd

from support import REPO
from support.fake_tensorrt import FAKE_GPU, install, make_fake_tensorrt

ORIN = DeviceInfo(name="Orin", compute_capability="8.7", trt_version="10.3.0")
#: build-engine options that do not choose the engine.
NOT_ENGINE_OPTIONS = {"-h", "--help", "--model", "--cache-dir", "--force", "--list"}


# --- a model folder with an FP16 ONNX beside it, and one outside ------------------------------

@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``model``: a copy of the default model with ``model_fp16.onnx`` and ``model_int8.onnx``
    (``crop-weed-seg quantize``'s conversions; INT8 calibrated on two random tensors: only its
    Q/DQ form matters here); ``elsewhere/other_fp16.onnx``: the FP16 bytes outside it."""
    pytest.importorskip("onnxconverter_common")
    from crop_weed_seg.training.precision import convert_fp16, quantize_int8

    root = tmp_path_factory.mktemp("engine_options")
    model = root / "model"
    model.mkdir()
    for name in ("model.yaml", "model.onnx"):
        shutil.copy(REPO / "models/default" / name, model / name)
    convert_fp16(model / "model.onnx", model / "model_fp16.onnx")
    contract = load_model_contract(model)
    calibration = [np.random.default_rng(seed).random((1, 3, *contract.input.size),
                                                      dtype=np.float32) for seed in range(2)]
    quantize_int8(model / "model.onnx", model / "model_int8.onnx", contract, calibration)
    (root / "elsewhere").mkdir()
    shutil.copy(model / "model_fp16.onnx", root / "elsewhere" / "other_fp16.onnx")
    return {"root": root, "model": model, "elsewhere": root / "elsewhere"}


@pytest.fixture(scope="module")
def contract(folders: dict[str, Path]) -> ModelContract:
    return load_model_contract(folders["model"])


@pytest.fixture
def home_cache() -> Iterator[Path]:
    """An engine cache folder the cache accepts (not under /tmp), removed afterwards."""
    path = Path.home() / ".cache" / "crop_weed_seg" / f"pytest-engines-{uuid.uuid4().hex[:12]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def cli_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crop-weed-seg")
    build_engine_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def cli_options(argv: list[str]) -> EngineOptions:
    return from_cli(cli_parser().parse_args(["build-engine", "--model", "M", *argv]))


def node_options(params: dict[str, Any]) -> EngineOptions:
    """What the node builds from its parameter values: the table's defaults, then ``params``
    (each checked against the node's table as the node's start-up check does)."""
    for name, value in params.items():
        assert validate(name, value) is None, (name, value)
    values = {p.name: p.default for p in PARAMETERS}
    values.update(params)
    return from_node_parameters(values)


# --- parity: every build-engine option, both ways ---------------------------------------------

#: (case, build-engine options, the node parameters a user sets for the same engine).
#: ``{model}`` / ``{elsewhere}`` are the folders of the fixture; ``{cwd_rel}`` an ONNX given
#: relative to the current folder (the test changes into the fixture's root).
CASES: list[tuple[str, list[str], dict[str, Any]]] = [
    ("defaults", [], {}),
    ("precision fp16", ["--precision", "fp16"], {"precision": "fp16"}),
    ("precision int8", ["--precision", "int8"], {"precision": "int8"}),
    ("dla core 0 fp16", ["--precision", "fp16", "--dla-core", "0"],
     {"precision": "fp16", "engine_dla_core": 0}),
    ("dla core 1 int8", ["--dla-core", "1", "--precision", "int8"],
     {"precision": "int8", "engine_dla_core": 1}),
    ("dynamic profile", ["--shapes", "256x320,384x512,512x640"],
     {"engine_shapes": "256x320,384x512,512x640"}),
    ("fixed other size", ["--shapes", "480x640,480x640,480x640"],
     {"engine_shapes": "480x640, 480x640, 480x640"}),
    ("profile equal to the default", ["--shapes", "384x512,384x512,384x512"],
     {"engine_shapes": "384x512,384x512,384x512"}),
    ("dla with a fixed size", ["--precision", "fp16", "--dla-core", "0", "--shapes",
                               "480x640,480x640,480x640"],
     {"precision": "fp16", "engine_dla_core": 0, "engine_shapes": "480x640,480x640,480x640"}),
    ("workspace small", ["--workspace-mb", "256"], {"engine_workspace_mb": 256}),
    ("workspace large", ["--workspace-mb", "8192"], {"engine_workspace_mb": 8192}),
    ("strongly typed fp32", ["--strongly-typed"], {"engine_strongly_typed": True}),
    ("tf32", ["--tf32"], {"engine_tf32": True}),
    ("optimisation level 0", ["--optimization-level", "0"], {"engine_optimization_level": 0}),
    ("optimisation level 5", ["--optimization-level", "5"], {"engine_optimization_level": 5}),
    ("fp16 route: ONNX in the model folder (absolute on the CLI)",
     ["--precision", "fp16", "--onnx", "{model}/model_fp16.onnx", "--strongly-typed"],
     {"precision": "fp16", "engine_onnx": "model_fp16.onnx", "engine_strongly_typed": True}),
    ("ONNX relative to the current folder on the CLI",
     ["--onnx", "{cwd_rel}", "--precision", "fp16"],
     {"engine_onnx": "model_fp16.onnx", "precision": "fp16"}),
    ("ONNX outside the model folder",
     ["--precision", "fp16", "--onnx", "{elsewhere}/other_fp16.onnx", "--strongly-typed"],
     {"precision": "fp16", "engine_onnx": "{elsewhere}/other_fp16.onnx",
      "engine_strongly_typed": True}),
    ("all of them", ["--precision", "int8", "--onnx", "{model}/model_fp16.onnx",
                     "--dla-core", "1", "--shapes", "320x320,320x320,320x320",
                     "--workspace-mb", "512", "--strongly-typed", "--tf32",
                     "--optimization-level", "3"],
     {"precision": "int8", "engine_onnx": "model_fp16.onnx", "engine_dla_core": 1,
      "engine_shapes": "320x320,320x320,320x320", "engine_workspace_mb": 512,
      "engine_strongly_typed": True, "engine_tf32": True, "engine_optimization_level": 3}),
]


def _fill(value: Any, folders: dict[str, Path]) -> Any:
    if not isinstance(value, str):
        return value
    return value.format(model=folders["model"], elsewhere=folders["elsewhere"],
                        cwd_rel="model/model_fp16.onnx")


def both_ways(case: tuple[str, list[str], dict[str, Any]], folders: dict[str, Path],
              monkeypatch: pytest.MonkeyPatch) -> tuple[EngineOptions, EngineOptions]:
    _, argv, params = case
    monkeypatch.chdir(folders["root"])
    cli = cli_options([_fill(a, folders) for a in argv])
    node = node_options({k: _fill(v, folders) for k, v in params.items()})
    return cli, node


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_build_engine_and_node_parameters_give_the_same_key(
        case: tuple[str, list[str], dict[str, Any]], folders: dict[str, Path],
        contract: ModelContract, monkeypatch: pytest.MonkeyPatch) -> None:
    cli, node = both_ways(case, folders, monkeypatch)
    assert cli.key(contract, ORIN) == node.key(contract, ORIN)
    assert cli.settings(contract) == node.settings(contract)
    assert cli.onnx_path(contract).resolve() == node.onnx_path(contract).resolve()
    # what build-engine prints for these options is what the node was given
    printed = cli.node_parameters(contract.folder)
    assert node_options(printed).key(contract, ORIN) == cli.key(contract, ORIN)


def test_every_case_chooses_another_engine(folders: dict[str, Path], contract: ModelContract,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The cases are not vacuous: each option moves the key, so a dropped option (the node
    ignoring one, the CLI not passing one on) would fail the parity test above. Two cases
    deliberately name the same engine another way (and must share a key)."""
    keys: dict[str, str] = {}
    for case in CASES:
        keys[case[0]] = both_ways(case, folders, monkeypatch)[0].key(contract, ORIN)
    same = [("defaults", "profile equal to the default"),
            ("fp16 route: ONNX in the model folder (absolute on the CLI)",
             "ONNX outside the model folder")]  # same bytes, same key: the key is the content
    for a, b in same:
        assert keys.pop(a) == keys[b]
    assert len(set(keys.values())) == len(keys), "two cases gave the same key"


def test_the_cases_cover_every_build_engine_option_and_node_parameter() -> None:
    """A new build-engine option or engine parameter without a parity case fails here."""
    sub = next(a for a in cli_parser()._actions if isinstance(a, argparse._SubParsersAction))
    flags = {s for action in sub.choices["build-engine"]._actions
             for s in action.option_strings} - NOT_ENGINE_OPTIONS
    used_flags = {a for _, argv, _ in CASES for a in argv if a.startswith("--")}
    assert flags == used_flags
    used_params = {name for _, _, params in CASES for name in params}
    assert used_params == set(NODE_PARAMETERS) - {P_SETTINGS}  # the sidecar: tests below


def test_node_table_declares_every_engine_parameter_with_the_options_defaults() -> None:
    defaults = EngineOptions().node_parameters()
    assert set(NODE_PARAMETERS) <= set(BY_NAME)
    assert {name: BY_NAME[name].default for name in defaults} == defaults
    assert BY_NAME[P_SETTINGS].default == ""
    assert all(BY_NAME[name].read_only for name in NODE_PARAMETERS)
    # the table's defaults are today's engine: fp32, model ONNX, GPU, the model's size
    assert node_options({}) == EngineOptions()


@pytest.mark.parametrize("params, message", [
    ({"engine_dla_core": 0}, "DLA runs fp16 or int8 only"),
    ({"engine_shapes": "384x512"}, "engine_shapes must look like MINHxMINW"),
    ({"engine_shapes": "512x512,384x512,384x512"}, "need min <= opt <= max"),
    ({"precision": "fp16", "engine_dla_core": 0, "engine_shapes": "256x256,384x512,512x640"},
     "DLA needs a fixed input size"),
])
def test_bad_engine_parameters_are_named(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        node_options(params)
    assert "precision/engine_*" in str(err.value)


def test_missing_engine_onnx_says_how_to_make_it(contract: ModelContract) -> None:
    options = node_options({"engine_onnx": "model_fp32_typo.onnx"})
    with pytest.raises(ConfigError, match="model_fp32_typo.onnx does not exist .*relative to "
                                          "the model folder.*crop-weed-seg quantize"):
        options.key(contract, ORIN)


def test_static_model_takes_no_profile(contract: ModelContract) -> None:
    from dataclasses import replace

    static = replace(contract, dynamic_size=False)
    options = node_options({"engine_shapes": "256x320,384x512,512x640"})
    with pytest.raises(ConfigError, match="static input 384x512"):
        options.settings(static)
    assert node_options({}).settings(static).shapes is None


# --- the sidecar -------------------------------------------------------------------------------

def _write_sidecar(path: Path, options: EngineOptions, contract: ModelContract,
                   **changes: Any) -> Path:
    from crop_weed_seg.backends.engine_cache import engine_sidecar_info
    from crop_weed_seg.backends.engine_options import sidecar_fields

    info = engine_sidecar_info(options.onnx_sha256(contract), options.settings(contract), ORIN)
    info.update(sidecar_fields(options, contract.folder))
    meta = {"format": 1, "model": contract.name, "key": options.key(contract, ORIN), **info}
    meta.update(changes)
    path.write_text(json.dumps(meta))
    return path


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sidecar_round_trips(case: tuple[str, list[str], dict[str, Any]],
                             folders: dict[str, Path], contract: ModelContract,
                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cli, _ = both_ways(case, folders, monkeypatch)
    sidecar = _write_sidecar(tmp_path / "default-0123456789abcdef.json", cli, contract)
    read = from_sidecar(sidecar)
    assert read.key(contract, ORIN) == cli.key(contract, ORIN) == read.sidecar_key
    assert read.for_model == "default" and str(sidecar) in read.source
    via_node = node_options({P_SETTINGS: str(sidecar)})
    assert via_node.key(contract, ORIN) == cli.key(contract, ORIN)


def test_sidecar_decides_and_parameters_may_only_agree(folders: dict[str, Path],
                                                       contract: ModelContract,
                                                       tmp_path: Path) -> None:
    fp16 = EngineOptions(precision="fp16", dla_core=0)
    sidecar = str(_write_sidecar(tmp_path / "s.json", fp16, contract))
    key = fp16.key(contract, ORIN)
    # left at their defaults (precision fp32 included): the sidecar decides
    assert node_options({P_SETTINGS: sidecar}).key(contract, ORIN) == key
    # set to the sidecar's values: fine
    assert node_options({P_SETTINGS: sidecar, "precision": "fp16",
                         "engine_dla_core": 0}).key(contract, ORIN) == key
    with pytest.raises(ConfigError, match=r"decides the engine, but precision 'int8' \(the "
                                          r"sidecar: 'fp16'\), engine_workspace_mb 512 "
                                          r"\(the sidecar: 1024\) disagree"):
        node_options({P_SETTINGS: sidecar, "precision": "int8", "engine_workspace_mb": 512})


def test_sidecar_errors_name_the_file(tmp_path: Path, contract: ModelContract) -> None:
    with pytest.raises(ConfigError, match="engine_settings .*missing.json: no such file"):
        node_options({P_SETTINGS: str(tmp_path / "missing.json")})
    (tmp_path / "bad.json").write_text('{"key": "x"}')
    with pytest.raises(ConfigError, match="bad.json: not an engine sidecar .KeyError"):
        node_options({P_SETTINGS: str(tmp_path / "bad.json")})
    other = _write_sidecar(tmp_path / "other.json", EngineOptions(), contract, model="weeds2")
    with pytest.raises(ConfigError, match="engine of model 'weeds2', but the model is "
                                          "'default'"):
        node_options({P_SETTINGS: str(other)}).key(contract, ORIN)


def test_engine_cache_folder_from_parameters(tmp_path: Path) -> None:
    assert cache_dir_from_node_parameters({"engine_cache_dir": ""}) is None
    sidecar = str(tmp_path / "engines" / "default-0123456789abcdef.json")
    assert cache_dir_from_node_parameters({P_SETTINGS: sidecar}) == str(tmp_path / "engines")
    assert cache_dir_from_node_parameters({P_SETTINGS: sidecar,
                                           "engine_cache_dir": "/srv/engines"}) == "/srv/engines"


# --- build-engine builds, prints; the node finds it --------------------------------------------

def run_build_engine(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str,
                                                                                   str]:
    rc = build_engine_cmd.run(cli_parser().parse_args(["build-engine", *argv]))
    out = capsys.readouterr()
    return rc, out.out, out.err


def printed_parameters(out: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(params-file snippet, ``--ros-args -p`` values as rclpy reads them (YAML), launch
    arguments) from build-engine's output."""
    lines = out.splitlines()
    start = lines.index("  params file (e.g. config/crop_weed_seg.yaml):") + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("  ros2 run "))
    doc = yaml.safe_load("\n".join(line[4:] for line in lines[start:end]))
    snippet = doc["/**/crop_weed_seg"]["ros__parameters"]
    tokens = shlex.split(lines[end].split("--ros-args", 1)[1])
    assert tokens[0::2] == ["-p"] * (len(tokens) // 2)
    ros_args = {name: yaml.safe_load(value)
                for name, _, value in (t.partition(":=") for t in tokens[1::2])}
    launch_line = next(line for line in lines[end:] if "ros2 launch" in line)
    launch = dict(t.split(":=", 1) for t in shlex.split(launch_line) if ":=" in t)
    return snippet, ros_args, launch


def launch_module() -> Any:
    """launch/crop_weed_seg.launch.py (its module-level tables need no ``launch`` package)."""
    spec = importlib.util.spec_from_file_location("crop_weed_seg_launch",
                                                  REPO / "launch" / "crop_weed_seg.launch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _values(params: dict[str, Any]) -> dict[str, Any]:
    values = {p.name: p.default for p in PARAMETERS}
    for name, value in params.items():
        assert validate(name, value) is None, (name, value)
    values.update(params)
    return values


#: (fake TensorRT version, DLA cores of the fake device, build-engine options)
BUILDS = [
    ("10.3.0", 0, []),
    ("10.3.0", 2, ["--precision", "fp16", "--dla-core", "1"]),
    ("10.3.0", 0, ["--shapes", "256x320,384x512,512x640", "--workspace-mb", "512", "--tf32",
                   "--optimization-level", "2"]),
    ("10.13.0", 0, ["--precision", "fp16", "--onnx", "{model}/model_fp16.onnx",
                    "--strongly-typed"]),
    ("10.13.0", 0, ["--precision", "int8", "--onnx", "{model}/model_int8.onnx",
                    "--strongly-typed"]),
]


@pytest.mark.parametrize("version, dla_cores, argv", BUILDS,
                         ids=["fp32", "fp16-dla", "profile-workspace-tf32-level",
                              "fp16-strongly-typed-10.13", "int8-qdq-strongly-typed-10.13"])
def test_what_build_engine_prints_finds_its_engine(
        version: str, dla_cores: int, argv: list[str], folders: dict[str, Path],
        contract: ModelContract, home_cache: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """build-engine (FAKE TensorRT) builds and prints; the printed params-file snippet, the
    printed ``-p`` arguments and the printed sidecar, each given to the node's settings and
    the TensorRT backend, find that engine: a cache hit with the same key, no second build."""
    from crop_weed_seg.backends import tensorrt_backend

    trt = install(monkeypatch, make_fake_tensorrt(version))
    trt.state.num_dla_cores = dla_cores
    monkeypatch.setattr(tensorrt_backend, "default_allocator",
                        lambda index=0: HostAllocator(FAKE_GPU))
    rc, out, err = run_build_engine(["--model", str(folders["model"]), "--cache-dir",
                                     str(home_cache), *[_fill(a, folders) for a in argv]],
                                    capsys)
    assert rc == 0, err
    assert trt.state.builds == 1
    key = next(line for line in out.splitlines() if line.startswith("engine built: key "))
    key = key.split()[-1]
    snippet, ros_args, launch = printed_parameters(out)
    assert snippet["backend"] == "tensorrt" and Path(snippet["model_dir"]) == contract.folder
    assert Path(snippet["engine_cache_dir"]) == home_cache.resolve()
    assert set(NODE_PARAMETERS) - {P_SETTINGS} <= set(snippet)  # every engine parameter
    sidecar = Path(launch[P_SETTINGS])
    assert sidecar.parent == home_cache.resolve() and sidecar.name.startswith("default-")
    assert json.loads(sidecar.read_text())["key"] == key
    assert Path(launch["model_dir"]) == contract.folder and launch["backend"] == "tensorrt"
    launch_file = launch_module()
    assert set(launch) <= set(launch_file.PARAMETER_ARGUMENTS)  # each reaches the node

    device = tensorrt_backend.device_info(HostAllocator(FAKE_GPU))
    for label, params in (("params file", snippet), ("--ros-args", ros_args),
                          ("sidecar", {P_SETTINGS: str(sidecar), "backend": "tensorrt"})):
        values = _values(params)
        engine = from_node_parameters(values)
        assert engine.key(contract, device) == key, label
        options = BackendOptions(device="cuda", precision=engine.precision, engine=engine,
                                 engine_cache_dir=cache_dir_from_node_parameters(values),
                                 allow_engine_build=False)
        backend = tensorrt_backend.create(load_model_contract(values["model_dir"] or
                                                              contract.folder), options)
        assert (backend.engine_key, backend.engine_status) == (key, "hit"), label
        backend.close()
    assert trt.state.builds == 1

    rc, out, _ = run_build_engine(["--model", str(folders["model"]), "--cache-dir",
                                   str(home_cache), *[_fill(a, folders) for a in argv]], capsys)
    assert rc == 0 and f"engine hit: key {key}" in out and trt.state.builds == 1


def test_fp16_route_on_tensorrt_10_13(folders: dict[str, Path], contract: ModelContract,
                                      home_cache: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """TensorRT >= 10.12 has no FP16 flag: the plain fp16 build fails saying the route, the
    route builds a strongly typed network without the FP16 flag from the FP16 ONNX, and its
    engine gives the FP32 model's labels on a frame (FAKE TensorRT: ONNX Runtime)."""
    from crop_weed_seg.backends import tensorrt_backend
    from crop_weed_seg.backends.onnxruntime_backend import OnnxRuntimeBackend

    trt = install(monkeypatch, make_fake_tensorrt("10.13.0"))
    monkeypatch.setattr(tensorrt_backend, "default_allocator",
                        lambda index=0: HostAllocator(FAKE_GPU))
    base = ["--model", str(folders["model"]), "--cache-dir", str(home_cache)]
    rc, _, err = run_build_engine(base + ["--precision", "fp16"], capsys)
    assert rc == 2 and "crop-weed-seg quantize --model MODEL --precision fp16" in err
    assert "--onnx MODEL/model_fp16.onnx --strongly-typed" in err and trt.state.builds == 0
    rc, _, err = run_build_engine(base + ["--precision", "fp16", "--onnx",
                                          str(folders["root"] / "nope.onnx")], capsys)
    assert rc == 2 and "nope.onnx does not exist" in err
    rc, _, err = run_build_engine(base + ["--precision", "fp32", "--strongly-typed", "--onnx",
                                          str(folders["model"] / "model_fp16.onnx")], capsys)
    assert rc == 2 and "holds float16 tensors" in err and "set precision fp16" in err
    rc, out, err = run_build_engine(base + ["--precision", "fp16", "--strongly-typed", "--onnx",
                                            str(folders["model"] / "model_fp16.onnx")], capsys)
    assert rc == 0, err
    strongly = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert trt.state.last_network_flags & strongly and "FP16" not in trt.state.last_flags
    snippet, _, _ = printed_parameters(out)
    assert (snippet["precision"], snippet["engine_onnx"], snippet["engine_strongly_typed"]) == \
        ("fp16", "model_fp16.onnx", True)
    values = _values(snippet)
    backend = tensorrt_backend.create(contract, BackendOptions(
        device="cuda", precision="fp16", engine=from_node_parameters(values),
        engine_cache_dir=values["engine_cache_dir"], allow_engine_build=False))
    assert backend.engine_status == "hit" and "fp16" in backend.detail
    frame = np.random.default_rng(0).random((1, 3, *contract.input.size), dtype=np.float32)
    reference = OnnxRuntimeBackend(contract, BackendOptions(device="cpu", threads=2))
    same = np.mean(backend.infer(frame).labels == reference.infer(frame).labels)
    assert same >= 0.995, same
    backend.close()


def test_node_without_the_engine_says_the_exact_build_command(
        folders: dict[str, Path], contract: ModelContract, home_cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """allow_engine_build false and no engine: the error's build-engine command carries every
    option the node's parameters set (so running it builds the engine the node looks for)."""
    from crop_weed_seg.backends import tensorrt_backend

    install(monkeypatch, make_fake_tensorrt("10.13.0"))
    monkeypatch.setattr(tensorrt_backend, "default_allocator",
                        lambda index=0: HostAllocator(FAKE_GPU))
    engine = node_options({"precision": "fp16", "engine_onnx": "model_fp16.onnx",
                           "engine_strongly_typed": True, "engine_workspace_mb": 512,
                           "engine_optimization_level": 4})
    with pytest.raises(BackendError) as err:
        tensorrt_backend.create(contract, BackendOptions(
            device="cuda", precision="fp16", engine=engine, engine_cache_dir=str(home_cache),
            allow_engine_build=False))
    command = str(err.value).split("build it with ", 1)[1].split(" on this device")[0]
    argv = shlex.split(command)
    assert argv[:4] == ["crop-weed-seg", "build-engine", "--model", str(contract.folder)]
    parsed = cli_parser().parse_args(argv[1:])
    assert Path(parsed.cache_dir).resolve() == EngineCache(home_cache).dir
    assert from_cli(parsed).key(contract, ORIN) == engine.key(contract, ORIN)


def test_the_node_finds_the_engine_build_engine_built(
        folders: dict[str, Path], home_cache: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], ros_node_factory: Any, tmp_path: Path) -> None:
    """The real segmenter node (rclpy), FAKE TensorRT 10.13: after build-engine's FP16 route,
    the node started with the printed params-file snippet, or with ``engine_settings`` naming
    the printed sidecar (no cache folder given: the sidecar's), loads that engine — a cache
    hit, the same key, no build (builds are not even allowed) — and a contradicting parameter
    stops it with the reason."""
    from crop_weed_seg.backends import tensorrt_backend

    trt = install(monkeypatch, make_fake_tensorrt("10.13.0"))
    monkeypatch.setattr(tensorrt_backend, "default_allocator",
                        lambda index=0: HostAllocator(FAKE_GPU))
    rc, out, err = run_build_engine(["--model", str(folders["model"]), "--cache-dir",
                                     str(home_cache), "--precision", "fp16", "--onnx",
                                     str(folders["model"] / "model_fp16.onnx"),
                                     "--strongly-typed"], capsys)
    assert rc == 0, err
    key = next(line for line in out.splitlines() if line.startswith("engine built: key ")
               ).split()[-1]
    snippet, _, launch = printed_parameters(out)
    params_file = tmp_path / "engine.yaml"
    params_file.write_text(yaml.safe_dump(
        {"/**/crop_weed_seg": {"ros__parameters": {**snippet, "allow_engine_build": False}}}))
    node = ros_node_factory(["--ros-args", "--params-file", str(params_file)])
    assert node.model_info["backend"] == "tensorrt"
    assert (node.model_info["engine_key"], node.model_info["engine_status"]) == (key, "hit")
    assert node.get_parameter("engine_onnx").value == "model_fp16.onnx"

    by_sidecar = ["--ros-args", "-p", "backend:=tensorrt", "-p",
                  f"model_dir:={folders['model']}", "-p", "allow_engine_build:=false",
                  "-p", f"engine_settings:={launch[P_SETTINGS]}"]
    node = ros_node_factory(by_sidecar)
    assert (node.model_info["engine_key"], node.model_info["engine_status"]) == (key, "hit")
    assert node.get_parameter("precision").value == "fp32"  # left at its default: sidecar's
    assert trt.state.builds == 1
    with pytest.raises(ConfigError, match="precision 'int8' .the sidecar: 'fp16'. disagree"):
        ros_node_factory(by_sidecar + ["-p", "precision:=int8"])


def test_a_sidecar_from_another_device_says_so_and_builds_here(
        contract: ModelContract, home_cache: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A sidecar copied from another Jetson (another GPU/TensorRT): its settings still apply,
    the key here differs, and the progress log says why the engine is built anew."""
    from crop_weed_seg.backends import tensorrt_backend

    trt = install(monkeypatch, make_fake_tensorrt("10.3.0"))
    monkeypatch.setattr(tensorrt_backend, "default_allocator",
                        lambda index=0: HostAllocator(FAKE_GPU))
    wanted = EngineOptions(precision="fp16", workspace_mb=512)
    sidecar = _write_sidecar(tmp_path / "default-0123456789abcdef.json", wanted, contract)
    messages: list[str] = []
    engine = node_options({P_SETTINGS: str(sidecar)})
    backend = tensorrt_backend.create(contract, BackendOptions(
        device="cuda", precision=engine.precision, engine=engine,
        engine_cache_dir=str(home_cache), progress=messages.append))
    assert backend.engine_status == "built" and trt.state.builds == 1
    assert backend.settings == wanted.settings(contract)
    assert backend.engine_key != wanted.key(contract, ORIN)
    assert any(f"names engine {wanted.key(contract, ORIN)[:16]}, but here its key is "
               f"{backend.engine_key[:16]}" in m for m in messages), messages
    backend.close()
