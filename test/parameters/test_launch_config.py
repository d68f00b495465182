"""The launch file, the parameter YAML and the node agree, checked without the ``launch``
package (it is not installable from PyPI): every executable, parameter and file they name exists
and matches what the node declares."""

from __future__ import annotations

import types
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from crop_weed_seg.backends.engine_options import cache_dir_from_node_parameters
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.parameters import field_sim as fs
from crop_weed_seg.parameters import planner as pp
from crop_weed_seg.parameters import scorer as sc
from crop_weed_seg.parameters import shared
from crop_weed_seg.parameters.config_files import rendered
from crop_weed_seg.parameters.segmenter import (
    BY_NAME,
    EXECUTABLE,
    NODE_NAME,
    PARAMETERS,
    check_all,
    validate,
)
from crop_weed_seg.parameters.table import GENERATOR, ParamSpec
from crop_weed_seg.spray.pipeline import SpraySettings
from crop_weed_seg.spray.planner import PlannerConfig

from support import REPO as ROOT
from support.fake_launch import (
    Recorder,
    install,
    load_launch_file,
    node_actions,
    resolve,
)

LAUNCH_FILE = ROOT / "launch" / "crop_weed_seg.launch.py"
PARAMS_YAML = ROOT / "config" / "crop_weed_seg.yaml"


def _load_launch_module() -> types.ModuleType:
    return load_launch_file(LAUNCH_FILE, "crop_weed_seg_launch")


def _yaml_parameters() -> dict[str, Any]:
    doc = yaml.safe_load(PARAMS_YAML.read_text())
    assert list(doc) == [f"/**/{NODE_NAME}"], "the YAML must address the node in any namespace"
    return doc[f"/**/{NODE_NAME}"]["ros__parameters"]


def test_yaml_lists_every_parameter_with_its_default() -> None:
    assert PARAMS_YAML.read_text() == rendered()[PARAMS_YAML.name], f"regenerate: {GENERATOR}"
    values = _yaml_parameters()
    assert values == {p.name: p.default for p in PARAMETERS}
    for name, value in values.items():
        assert type(value) is type(BY_NAME[name].default), name
        assert validate(name, value) is None


def test_every_parameter_is_described_and_bounded() -> None:
    for spec in PARAMETERS:
        assert len(spec.description) > 20, spec.name
        if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool):
            assert spec.low is not None and spec.high is not None, f"{spec.name} has no range"
            assert spec.low <= spec.default <= spec.high, spec.name


def test_validate_gives_reasons() -> None:
    assert "one of" in (validate("backend", "cuda-magic") or "")
    assert ">= 0.0" in (validate("overlay_alpha", -0.1) or "")
    assert "must be a float" in (validate("latency_budget_ms", "fast") or "")
    assert validate("overlay_max_rate_hz", 2) is None  # ints are fine for float parameters
    assert validate("use_sim_time", True) is None      # not ours


def test_launch_file_names_what_exists(setup_console_scripts: dict[str, str]) -> None:
    launch = _load_launch_module()
    assert launch.PACKAGE == "crop_weed_seg"
    assert launch.EXECUTABLE == EXECUTABLE and EXECUTABLE in setup_console_scripts
    assert setup_console_scripts[EXECUTABLE] == "crop_weed_seg.ros.segmenter_node:main"
    assert launch.NODE_NAME == NODE_NAME
    assert launch.PLANNER_EXECUTABLE in setup_console_scripts
    for rel in (launch.PARAMS_FILE, launch.FASTDDS_PROFILE, launch.PLANNER_PARAMS_FILE):
        assert (ROOT / rel).is_file(), rel
    for name in launch.PARAMETER_ARGUMENTS:
        assert name in BY_NAME and name in launch.ARGUMENTS
    assert "precision" in launch.PARAMETER_ARGUMENTS
    for name, (default, description) in launch.ARGUMENTS.items():
        assert isinstance(default, str) and len(description) > 15, name
        if default.startswith(launch.SHARE):
            assert (ROOT / default[len(launch.SHARE):]).is_file(), name
    # The argument names of before issue 15 stay (a robot's launch command must keep working).
    assert {"namespace", "camera", "camera_info", "odom", "params_file", "model_dir",
            "backend", "use_sim_time", "log_level", "fastdds_profile", "planner",
            "planner_params_file"} <= set(launch.ARGUMENTS)


# FAKE launch/launch_ros (not installable here): see test/support/fake_launch.py.

@pytest.fixture()
def fake_launch(monkeypatch: pytest.MonkeyPatch) -> list[Recorder]:
    return install(monkeypatch)


def _is_share_file(value: Any, rel: str) -> bool:
    """The value is PathJoinSubstitution([FindPackageShare('crop_weed_seg'), *rel parts])."""
    return (getattr(value, "kind", "") == "PathJoinSubstitution"
            and value.args[0][0].kind == "FindPackageShare"
            and value.args[0][0].args == ("crop_weed_seg",)
            and value.args[0][1:] == rel.split("/")
            and Path(resolve(value)) == ROOT / rel)


def _launch(launch: types.ModuleType, environment: dict[str, str] | None = None,
            **arguments: str) -> dict[str, Any]:
    """Runs the OpaqueFunction on the default arguments updated by ``arguments``; returns the
    nodes by executable and the log lines. Package files resolve to the repository, as
    DeclareLaunchArgument's FindPackageShare default would on a robot."""
    actions = node_actions(launch, environment, arguments)
    nodes = {a.kwargs["executable"]: a.kwargs for a in actions if a.kind == "Node"}
    logs = [resolve(a.kwargs["msg"]) for a in actions if a.kind == "LogInfo"]
    assert len(nodes) + len(logs) == len(actions)
    return {"nodes": nodes, "logs": logs, **nodes}


def test_launch_description_declares_package_defaults_with_find_package_share(
        fake_launch: list[Recorder]) -> None:
    launch = _load_launch_module()
    launch.generate_launch_description()
    declared = {r.args[0]: r.kwargs for r in fake_launch if r.kind == "DeclareLaunchArgument"}
    assert set(declared) == set(launch.ARGUMENTS)
    assert all(kw["description"] for kw in declared.values())
    assert _is_share_file(declared["params_file"]["default_value"], "config/crop_weed_seg.yaml")
    assert _is_share_file(declared["planner_params_file"]["default_value"],
                          "config/spray_planner.yaml")
    for name, (default, _) in launch.ARGUMENTS.items():
        if not default.startswith(launch.SHARE):
            assert declared[name]["default_value"] == default, name
    assert declared["odom"]["default_value"] == "/odom"
    assert declared["camera_info"]["default_value"] == ""
    assert declared["fastdds_profile"]["default_value"] == "auto"
    (description,) = [r for r in fake_launch if r.kind == "LaunchDescription"]
    assert [a.kind for a in description.args[0]][-1] == "OpaqueFunction"


def test_launch_builds_nodes_that_match_the_package(fake_launch: list[Recorder]) -> None:
    launch = _load_launch_module()
    out = _launch(launch, camera="/cam0/image_raw", backend="onnxruntime", use_sim_time="true",
                  log_level="debug")
    kw = out[EXECUTABLE]
    assert (kw["package"], kw["executable"], kw["name"]) == ("crop_weed_seg", EXECUTABLE,
                                                             NODE_NAME)
    params_file, overrides = kw["parameters"]
    assert Path(params_file) == PARAMS_YAML
    assert overrides == {"backend": "onnxruntime", "use_sim_time": True}  # empty ones kept
    assert ("image", "/cam0/image_raw") in kw["remappings"]
    pk = out["spray_planner"]
    assert (pk["executable"], pk["name"]) == ("spray_planner", "spray_planner")
    assert Path(pk["parameters"][0]) == ROOT / "config" / "spray_planner.yaml"
    assert pk["parameters"][1] == {"use_sim_time": True}
    # The log level is a ROS argument (launch_ros adds --ros-args), not a program argument.
    for node in (kw, pk):
        assert node["ros_arguments"] == ["--log-level", "debug"]
        assert "arguments" not in node
        assert node["namespace"] == ""
    assert list(_launch(launch, planner="false")["nodes"]) == [EXECUTABLE]


def test_precision_and_model_arguments_reach_the_node(fake_launch: list[Recorder]) -> None:
    launch = _load_launch_module()
    overrides = _launch(launch, precision="fp16", model_dir="/models/v3",
                        backend="tensorrt")[EXECUTABLE]["parameters"][1]
    assert overrides == {"precision": "fp16", "model_dir": "/models/v3", "backend": "tensorrt",
                         "use_sim_time": False}
    for value in BY_NAME["precision"].choices:
        assert validate("precision", value) is None
    assert "precision" not in _launch(launch)[EXECUTABLE]["parameters"][1]


def test_engine_settings_argument_reaches_the_node(fake_launch: list[Recorder]) -> None:
    """build-engine prints ``engine_settings:=<sidecar>`` for the launch file: the argument
    becomes the node parameter, whose sidecar then decides the engine and names the cache."""
    launch = _load_launch_module()
    sidecar = "/data/engines/default-0123456789abcdef.json"
    overrides = _launch(launch, backend="tensorrt", engine_settings=sidecar
                        )[EXECUTABLE]["parameters"][1]
    assert overrides == {"backend": "tensorrt", "engine_settings": sidecar,
                         "use_sim_time": False}
    assert validate("engine_settings", sidecar) is None and BY_NAME["engine_settings"].read_only
    values = {**{p.name: p.default for p in PARAMETERS}, **overrides}
    assert cache_dir_from_node_parameters(values) == "/data/engines"
    assert "engine_settings" not in _launch(launch)[EXECUTABLE]["parameters"][1]
    assert launch.ARGUMENTS["engine_settings"][0] == ""


def test_odometry_is_robot_wide_by_default(fake_launch: list[Recorder]) -> None:
    """A namespace (a second camera, left/right) must not move odometry to /left/odom."""
    launch = _load_launch_module()
    out = _launch(launch, namespace="left", camera="/cam_left/image_raw")
    for executable in (EXECUTABLE, "spray_planner"):
        assert out[executable]["namespace"] == "left"
        assert ("odom", "/odom") in out[executable]["remappings"]
    out = _launch(launch, odom="/wheel/odometry")
    for executable in (EXECUTABLE, "spray_planner"):
        assert ("odom", "/wheel/odometry") in out[executable]["remappings"]


@pytest.mark.parametrize(("camera", "info"), [
    ("/cam0/image_raw", "/cam0/camera_info"),
    ("image", "camera_info"),
    ("/a/b/image_rect", "/a/b/camera_info"),
    ("/image", "/camera_info"),
    ("cam/image_raw/", "cam/camera_info"),
    ("~/image", "~/camera_info"),
])
def test_camera_info_is_next_to_the_image(fake_launch: list[Recorder], camera: str,
                                          info: str) -> None:
    """image_transport's convention (camera_common getCameraInfoTopic): the image topic's
    last name replaced by camera_info; a relative topic stays relative (namespace applies)."""
    launch = _load_launch_module()
    assert launch.camera_info_topic(camera) == info
    out = _launch(launch, camera=camera)
    remappings = dict(out[EXECUTABLE]["remappings"])
    assert remappings["image"] == camera and remappings["camera_info"] == info
    assert any(f"camera_info {info}" in line for line in out["logs"])


def test_camera_info_argument_overrides_the_derived_topic(
        fake_launch: list[Recorder]) -> None:
    launch = _load_launch_module()
    out = _launch(launch, camera="/cam0/image_rect", camera_info="/cam0/calib/camera_info")
    assert ("camera_info", "/cam0/calib/camera_info") in out[EXECUTABLE]["remappings"]


def _profile_env(node: dict[str, Any]) -> dict[str, str]:
    return {name: resolve(value) for name, value in node["additional_env"].items()}


def test_dds_profile_is_set_when_the_environment_has_none(
        fake_launch: list[Recorder]) -> None:
    launch = _load_launch_module()
    out = _launch(launch, environment={"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"})
    for executable in (EXECUTABLE, "spray_planner"):
        env = out[executable]["additional_env"]
        assert set(env) == {"FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"}
        assert all(_is_share_file(v, "config/fastdds_large_images.xml") for v in env.values())
    (line,) = [line for line in out["logs"] if "fastdds_profile" in line]
    assert "auto" in line and str(ROOT / "config" / "fastdds_large_images.xml") in line


@pytest.mark.parametrize("distro,variable", [("humble", "FASTRTPS_DEFAULT_PROFILES_FILE"),
                                              ("jazzy", "FASTRTPS_DEFAULT_PROFILES_FILE"),
                                              ("kilted", "FASTDDS_DEFAULT_PROFILES_FILE")])
def test_dds_profile_goes_into_the_variable_the_distributions_fast_dds_reads(
        fake_launch: list[Recorder], distro: str, variable: str) -> None:
    """Fast DDS 2.x (Humble, Jazzy) reads only FASTRTPS_*; 3.x warns about it, reads FASTDDS_*."""
    launch = _load_launch_module()
    out = _launch(launch, environment={"ROS_DISTRO": distro})
    for executable in (EXECUTABLE, "spray_planner"):
        assert set(out[executable]["additional_env"]) == {variable}


@pytest.mark.parametrize("variable", ["FASTRTPS_DEFAULT_PROFILES_FILE",
                                      "FASTDDS_DEFAULT_PROFILES_FILE"])
def test_dds_profile_of_the_environment_is_kept(fake_launch: list[Recorder],
                                                variable: str) -> None:
    """A team's own profile (Fast DDS 2.x or 3.x variable) is not overridden by default."""
    launch = _load_launch_module()
    out = _launch(launch, environment={variable: "/team/dds.xml"})
    assert out[EXECUTABLE]["additional_env"] == {} == out["spray_planner"]["additional_env"]
    (line,) = [line for line in out["logs"] if "fastdds_profile" in line]
    assert f"{variable}=/team/dds.xml is kept" in line


def test_dds_profile_only_for_fast_dds(fake_launch: list[Recorder]) -> None:
    launch = _load_launch_module()
    out = _launch(launch, environment={"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"})
    assert out[EXECUTABLE]["additional_env"] == {}
    assert any("rmw_cyclonedds_cpp" in line for line in out["logs"])


def test_dds_profile_when_asked(fake_launch: list[Recorder], tmp_path: Path) -> None:
    launch = _load_launch_module()
    team = {"FASTDDS_DEFAULT_PROFILES_FILE": "/team/dds.xml"}
    out = _launch(launch, environment=team, fastdds_profile="large_images")
    assert set(_profile_env(out[EXECUTABLE]).values()) == {
        str(ROOT / "config" / "fastdds_large_images.xml")}
    own = tmp_path / "own.xml"
    own.write_text("<dds/>")
    out = _launch(launch, environment=team, fastdds_profile=str(own))
    assert _profile_env(out[EXECUTABLE]) == {"FASTRTPS_DEFAULT_PROFILES_FILE": str(own),
                                             "FASTDDS_DEFAULT_PROFILES_FILE": str(own)}
    assert any(str(own) in line for line in out["logs"])
    for value in ("none", ""):
        out = _launch(launch, fastdds_profile=value)
        assert out[EXECUTABLE]["additional_env"] == {}
        assert any("fastdds_profile:=none" in line for line in out["logs"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        _launch(launch, fastdds_profile=str(tmp_path / "typo.xml"))


def test_dds_profile_check_reads_the_process_environment_without_a_context_one(
        fake_launch: list[Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    """Humble's LaunchContext may have no ``environment``: os.environ is what it changes."""
    launch = _load_launch_module()
    monkeypatch.setenv("FASTRTPS_DEFAULT_PROFILES_FILE", "/team/dds.xml")
    values = {name: default for name, (default, _) in launch.ARGUMENTS.items()}
    actions = launch._node_actions(types.SimpleNamespace(launch_configurations=values))
    assert all(a.kwargs["additional_env"] == {} for a in actions if a.kind == "Node")


def test_node_declares_exactly_the_table(ros_node_factory: Any) -> None:
    """The running node's declared parameters and descriptors are the table's."""
    node = ros_node_factory()
    node_wide = {"use_sim_time", "start_type_description_service"}  # rclpy declares these
    declared = set(node._parameters) - node_wide
    assert declared == set(BY_NAME)
    for spec in PARAMETERS:
        desc = node.describe_parameter(spec.name)
        assert desc.description == spec.description
        assert desc.read_only == spec.read_only
        assert node.get_parameter(spec.name).value == spec.default


def test_node_reads_the_params_file_in_a_namespace(ros_node_factory: Any,
                                                   tmp_path: Path) -> None:
    values = _yaml_parameters()
    values.update(overlay_alpha=0.3, latency_budget_ms=55.0, input_transport="compressed")
    custom = tmp_path / "field.yaml"
    custom.write_text(yaml.safe_dump({f"/**/{NODE_NAME}": {"ros__parameters": values}}))
    node = ros_node_factory(["--ros-args", "-r", "__ns:=/left", "--params-file", str(custom),
                             "-r", "image:=/cam_left/image_raw"])
    assert node.get_fully_qualified_name() == f"/left/{NODE_NAME}"
    assert node.get_parameter("overlay_alpha").value == 0.3
    assert node.get_parameter("latency_budget_ms").value == 55.0
    assert node.input_topic == "/cam_left/image_raw/compressed"


@pytest.mark.parametrize("table", [fs, sc], ids=["field_sim", "sim_scorer"])
def test_simulation_node_yaml_is_its_table(table: types.ModuleType) -> None:
    path = ROOT / "config" / f"{table.NODE_NAME}.yaml"
    assert path.read_text() == rendered()[path.name], f"regenerate: {GENERATOR}"
    values = yaml.safe_load(path.read_text())[f"/**/{table.NODE_NAME}"]["ros__parameters"]
    assert values == {p.name: p.default for p in table.PARAMETERS}


def test_planner_yaml_is_its_table() -> None:
    path = ROOT / "config" / "spray_planner.yaml"
    assert path.read_text() == rendered()[path.name], f"regenerate: {GENERATOR}"
    values = yaml.safe_load(path.read_text())[f"/**/{pp.NODE_NAME}"]["ros__parameters"]
    assert values == {p.name: p.default for p in pp.PARAMETERS}


def _fields(spec: ParamSpec) -> dict[str, Any]:
    return {"name": spec.name, "type": spec.kind, "default": spec.default,
            "low": spec.low, "high": spec.high, "choices": spec.choices,
            "non_empty": spec.non_empty, "read_only": spec.read_only,
            "description": spec.description}


def shared_definition_differences(seg: tuple[ParamSpec, ...],
                                  planner: tuple[ParamSpec, ...]) -> list[str]:
    """Every parameter both tables have whose definition differs between them, or from
    parameters/shared.py, or that is not in parameters/shared.py at all."""
    seg_by, pl_by = {p.name: p for p in seg}, {p.name: p for p in planner}
    found = []
    for name in sorted(set(seg_by) & set(pl_by)):
        if name not in shared.BY_NAME:
            found.append(f"{name}: in both tables but not in parameters/shared.py")
            continue
        want = _fields(shared.BY_NAME[name])
        for table, spec in (("segmenter", seg_by[name]), ("planner", pl_by[name])):
            got = _fields(spec)
            found += [f"{name}: {table} {key} {got[key]!r} != shared {want[key]!r}"
                      for key in want if got[key] != want[key]]
            if not spec.shared:
                found.append(f"{name}: {table} defines it itself")
    return found


def test_parameters_of_both_nodes_have_one_definition() -> None:
    """Every name both nodes declare is one spec: same type, default, range, choices,
    read-only flag and description in both tables (the one of parameters/shared.py), and
    every spec of parameters/shared.py is in both tables."""
    assert shared_definition_differences(PARAMETERS, pp.PARAMETERS) == []
    assert set(shared.BY_NAME) == set(BY_NAME) & set(pp.BY_NAME)
    assert {p.name for p in PARAMETERS if p.shared} == set(shared.BY_NAME)
    assert {p.name for p in pp.PARAMETERS if p.shared} == set(shared.BY_NAME)
    assert set(shared.GEOMETRY) <= set(shared.BY_NAME)


def test_the_shared_definition_check_catches_drift() -> None:
    """The check above fails on a table that redefines a shared name with another range (the
    drift of boom_center_y_m, ±20 m in one node and ±10 m in the other, before issue 13) or
    another default, or that adds a name of the other node's without sharing it."""
    drifted = tuple(ParamSpec("boom_center_y_m", 0.0, p.description, low=-10.0, high=10.0)
                    if p.name == "boom_center_y_m" else p for p in pp.PARAMETERS)
    found = shared_definition_differences(PARAMETERS, drifted)
    assert any("planner low -10.0 != shared -20.0" in f for f in found), found
    assert any("boom_center_y_m: planner defines it itself" in f for f in found), found
    stale = tuple(ParamSpec("stale_timeout_s", 2.0, "Diagnostics turn STALE.", low=0.1,
                            high=3600.0) if p.name == "stale_timeout_s" else p
                  for p in PARAMETERS)
    found = shared_definition_differences(stale, pp.PARAMETERS)
    assert any("segmenter default 2.0 != shared 0.5" in f for f in found), found
    extra = pp.PARAMETERS + (BY_NAME["camera_y_m"],)
    assert shared_definition_differences(PARAMETERS, extra) == \
        ["camera_y_m: in both tables but not in parameters/shared.py"]


def test_the_core_defaults_are_the_tables() -> None:
    """The settings objects the nodes build from their parameters default to the tables."""
    assert SpraySettings.from_values({p.name: p.default for p in PARAMETERS}) == SpraySettings()
    config = pp.build(pp.defaults())[1]
    assert config.command_period_s == pytest.approx(1 / pp.BY_NAME["rate_hz"].default)
    assert replace(config, command_period_s=0.0) == PlannerConfig()


def test_shared_parameters_are_checked_together() -> None:
    values = {p.name: p.default for p in PARAMETERS}
    check_all(values)
    with pytest.raises(ConfigError, match="must not exceed max_speed_mps"):
        check_all({**values, "default_speed_mps": 12.0})
    with pytest.raises(ConfigError, match="must not exceed max_speed_mps"):
        pp.build({**pp.defaults(), "default_speed_mps": 12.0})
    check_all({**values, "default_speed_mps": 0.0, "odom_timeout_s": 0.0})
    for name, bad in (("nozzle_offset_m", -0.1), ("boom_center_y_m", 20.5),
                      ("stale_timeout_s", 0.0), ("target_frame", " ")):
        assert validate(name, bad) is not None and pp.validate(name, bad) is not None, name
