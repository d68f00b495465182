"""The launch file, the parameter YAML and the node agree, checked without the ``launch``
package (it is not installable from PyPI): every executable, parameter and file they name exists
and matches what the node declares."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.parameters import planner as pp
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

LAUNCH_FILE = ROOT / "launch" / "crop_weed_seg.launch.py"
PARAMS_YAML = ROOT / "config" / "crop_weed_seg.yaml"


def _load_launch_module() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("crop_weed_seg_launch", LAUNCH_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    assert "one of" in validate("backend", "cuda-magic")
    assert ">= 0.0" in validate("overlay_alpha", -0.1)
    assert "must be a float" in validate("latency_budget_ms", "fast")
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
    for name, (default, description) in launch.ARGUMENTS.items():
        assert isinstance(default, str) and len(description) > 15, name
    assert {"namespace", "camera", "params_file", "model_dir", "backend", "use_sim_time",
            "log_level"} <= set(launch.ARGUMENTS)


class _Recorder:
    """Fake of a ``launch``/``launch_ros`` action class: records its constructor arguments.
    (A fake because ``launch`` cannot be installed here; on a robot the real one runs.)"""

    created: list[tuple[str, tuple, dict]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _Recorder.created.append((type(self).__name__, args, kwargs))
        self.args, self.kwargs = args, kwargs


@pytest.fixture()
def fake_launch(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple, dict]]:
    names = {"launch": ["LaunchDescription"],
             "launch.actions": ["DeclareLaunchArgument", "OpaqueFunction"],
             "launch_ros": [], "launch_ros.actions": ["Node"]}
    for module_name, classes in names.items():
        module = types.ModuleType(module_name)
        for cls in classes:
            setattr(module, cls, type(cls, (_Recorder,), {}))
        monkeypatch.setitem(sys.modules, module_name, module)
    _Recorder.created = []
    return _Recorder.created


def test_launch_description_builds_a_node_that_matches_the_package(
        fake_launch: list, monkeypatch: pytest.MonkeyPatch) -> None:
    launch = _load_launch_module()
    monkeypatch.setattr(launch, "_share", lambda: str(ROOT))
    launch.generate_launch_description()
    declared = {kw_args[0]: kw for cls, kw_args, kw in fake_launch
                if cls == "DeclareLaunchArgument"}
    assert set(declared) == set(launch.ARGUMENTS)
    assert all(kw["description"] for kw in declared.values())

    arguments = {name: default for name, (default, _) in launch.ARGUMENTS.items()}
    arguments.update(camera="/cam0/image_raw", backend="onnxruntime", use_sim_time="true")
    context = types.SimpleNamespace(launch_configurations=arguments)
    node, planner = launch._node_actions(context)
    kw = node.kwargs
    assert (kw["package"], kw["executable"], kw["name"]) == ("crop_weed_seg", EXECUTABLE,
                                                             NODE_NAME)
    params_file, overrides = kw["parameters"]
    assert Path(params_file) == PARAMS_YAML
    assert overrides == {"backend": "onnxruntime", "use_sim_time": True}  # empty model_dir kept
    assert ("image", "/cam0/image_raw") in kw["remappings"]
    profile = kw["additional_env"]["FASTDDS_DEFAULT_PROFILES_FILE"]
    assert Path(profile).is_file()
    pk = planner.kwargs
    assert (pk["executable"], pk["name"]) == ("spray_planner", "spray_planner")
    assert Path(pk["parameters"][0]) == ROOT / "config" / "spray_planner.yaml"
    assert pk["parameters"][1] == {"use_sim_time": True}
    arguments["planner"] = "false"
    assert len(launch._node_actions(context)) == 1


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
    assert pp.build(pp.defaults())[1] == PlannerConfig()


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
