"""launch/sim.launch.py, checked by its description without the ``launch`` package (not
installable from PyPI; same approach as test/parameters/test_launch_config.py): both
simulators feed the same segmenter, planner and scorer on simulated time, with the geometry of
the field file's scenario; Gazebo runs headless on the world's folder, with the bridge and the
camera's static TF; what cannot run is a clear error."""

from __future__ import annotations

import dataclasses
import os
import types
from pathlib import Path
from typing import Any

import pytest

from crop_weed_seg.sim.gazebo_world import optical_frame_transform, write_gazebo_world
from crop_weed_seg.sim.scenario import BoomSpec, CameraSpec, Scenario, write_field_file
from crop_weed_seg.sim.world import FieldConfig

from support import REPO as ROOT
from support.fake_launch import (
    Recorder,
    install,
    load_launch_file,
    node_actions,
    resolve,
)

LAUNCH_FILE = ROOT / "launch" / "sim.launch.py"
TINY = Scenario(field=FieldConfig(length_m=1.5, width_m=0.4, gsd_mm=4.0), seed=2,
                camera=CameraSpec(width=64, height=48, height_m=0.45, pitch_deg=10.0),
                boom=BoomSpec(nozzles=4, spacing_m=0.1, nozzle_offset_m=0.35), speed_mps=0.7)
#: Console scripts of the contract (setup.py gets the simulation ones with issue 16).
EXECUTABLES = {"segmenter_node": "crop_weed_seg.ros.segmenter_node:main",
               "spray_planner": "crop_weed_seg.ros.spray_planner_node:main",
               "field_sim": "crop_weed_seg.ros.field_sim_node:main",
               "sim_scorer": "crop_weed_seg.ros.scorer_node:main"}


def _load_launch_module() -> types.ModuleType:
    return load_launch_file(LAUNCH_FILE, "sim_launch")


# FAKE launch/launch_ros (not installable here): see test/support/fake_launch.py.

@pytest.fixture()
def fake_launch(monkeypatch: pytest.MonkeyPatch) -> list[Recorder]:
    return install(monkeypatch)


def _launch(launch: types.ModuleType, environment: dict[str, str] | None = None,
            **arguments: str) -> dict[str, Any]:
    """Runs the OpaqueFunction on the default arguments updated by ``arguments``; returns the
    nodes by executable, the processes and the log lines."""
    actions = node_actions(launch, environment, arguments)
    nodes = {a.kwargs["executable"]: a.kwargs for a in actions if a.kind == "Node"}
    processes = [a.kwargs for a in actions if a.kind == "ExecuteProcess"]
    logs = [a.kwargs["msg"] for a in actions if a.kind == "LogInfo"]
    handlers = [a.args[0] for a in actions if a.kind == "RegisterEventHandler"]
    assert len(nodes) + len(processes) + len(logs) + len(handlers) == len(actions)
    scorer = next((a for a in actions if a.kind == "Node"
                   and a.kwargs["executable"] == "sim_scorer"), None)
    return {"nodes": nodes, "processes": processes, "logs": logs, "handlers": handlers,
            "scorer": scorer}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gazebo_world(tmp_path_factory.mktemp("gz") / "world", TINY).world


# --- the description --------------------------------------------------------------------------

def test_launch_declares_its_arguments_with_package_defaults(fake_launch: list[Recorder]
                                                             ) -> None:
    launch = _load_launch_module()
    launch.generate_launch_description()
    declared = {r.args[0]: r.kwargs for r in fake_launch if r.kind == "DeclareLaunchArgument"}
    assert set(declared) == set(launch.ARGUMENTS) >= {"simulator", "field_file", "world",
                                                       "headless"}
    assert all(len(kw["description"]) > 15 for kw in declared.values())
    field_file = declared["field_file"]["default_value"]
    assert field_file.kind == "PathJoinSubstitution"
    assert field_file.args[0][0].kind == "FindPackageShare"
    assert Path(resolve(field_file)) == ROOT / "config" / "sim_field.json"
    assert declared["simulator"]["default_value"] == "field_sim"
    assert declared["headless"]["default_value"] == "true"
    (description,) = [r for r in fake_launch if r.kind == "LaunchDescription"]
    assert [a.kind for a in description.args[0]][-1] == "OpaqueFunction"


def test_the_files_and_executables_it_names_exist(setup_console_scripts: dict[str, str]) -> None:
    launch = _load_launch_module()
    for rel in (launch.BRIDGE_CONFIG, launch.FASTDDS_PROFILE):
        assert (ROOT / rel).is_file(), rel
    assert {launch.FIELD_SIM[0], launch.SEGMENTER[0], launch.PLANNER[0], launch.SCORER[0]} == \
        set(EXECUTABLES)
    assert {"segmenter_node", "spray_planner"} <= set(setup_console_scripts)
    for executable, target in EXECUTABLES.items():
        if executable in setup_console_scripts:   # field_sim, sim_scorer: added with issue 16
            assert setup_console_scripts[executable] == target
        module = target.split(":")[0]
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file() or \
            executable not in setup_console_scripts, module
    assert launch.SEGMENTER[1] == "crop_weed_seg" and launch.SCORER[1] == "sim_scorer"


def test_field_sim_loop_on_sim_time_with_the_scenarios_geometry(
        fake_launch: list[Recorder], tmp_path: Path) -> None:
    launch = _load_launch_module()
    field_file = write_field_file(tmp_path / "field.json", TINY)
    out = _launch(launch, field_file=str(field_file), real_time_factor="0.5",
                  exit_when_done="true", out_dir=str(tmp_path / "score"), log_level="debug")
    nodes = out["nodes"]
    assert list(nodes) == ["field_sim", "segmenter_node", "spray_planner", "sim_scorer"]
    assert out["processes"] == []
    sim = nodes["field_sim"]["parameters"][0]
    assert sim == {"use_sim_time": True, "field_file": str(field_file), "real_time_factor": 0.5,
                   "drive_mode": "scripted", "exit_when_done": True}
    geometry = TINY.node_parameters()
    seg = nodes["segmenter_node"]["parameters"][0]
    assert seg == {"use_sim_time": True, "input_qos_reliability": "reliable",
                   "input_qos_depth": 5, **geometry["segmenter_node"]}
    assert seg["camera_height_m"] == 0.45 and seg["camera_pitch_deg"] == 10.0
    assert nodes["spray_planner"]["parameters"][0] == {"use_sim_time": True,
                                                       **geometry["spray_planner"]}
    assert nodes["sim_scorer"]["parameters"][0] == {
        "use_sim_time": True, "field_file": str(field_file), "out_dir": str(tmp_path / "score"),
        "exit_when_done": True}
    for executable, kw in nodes.items():
        assert kw["package"] == "crop_weed_seg"
        assert kw["ros_arguments"] == ["--log-level", "debug"], executable
        assert "namespace" not in kw   # root namespace: the contract's relative topics
    for executable in ("segmenter_node", "spray_planner"):
        assert nodes[executable]["remappings"] == [("odom", "/odom")]
    assert "field_sim" in out["logs"][0] and str(field_file) in out["logs"][0]
    # exit_when_done: the scorer's exit shuts the launch down.
    (handler,) = out["handlers"]
    assert handler.kind == "OnProcessExit" and handler.kwargs["target_action"] is out["scorer"]
    (emit,) = handler.kwargs["on_exit"]
    assert emit.kind == "EmitEvent" and emit.kwargs["event"].kind == "Shutdown"
    assert _launch(launch, field_file=str(field_file))["handlers"] == []


def test_the_default_field_file_is_the_packages(fake_launch: list[Recorder]) -> None:
    launch = _load_launch_module()
    default = ROOT / "config" / "sim_field.json"
    assert default.is_file()
    out = _launch(launch)
    assert out["nodes"]["field_sim"]["parameters"][0]["field_file"] == str(default)
    assert out["nodes"]["sim_scorer"]["parameters"][0]["field_file"] == str(default)
    assert out["nodes"]["sim_scorer"]["parameters"][0]["exit_when_done"] is False


def test_model_and_backend_reach_the_segmenter_only_when_set(fake_launch: list[Recorder],
                                                             tmp_path: Path) -> None:
    launch = _load_launch_module()
    field_file = str(write_field_file(tmp_path / "field.json", TINY))
    seg = _launch(launch, field_file=field_file, model_dir="/models/v3",
                  backend="onnxruntime")["nodes"]["segmenter_node"]["parameters"][0]
    assert (seg["model_dir"], seg["backend"]) == ("/models/v3", "onnxruntime")
    seg = _launch(launch, field_file=field_file)["nodes"]["segmenter_node"]["parameters"][0]
    assert "model_dir" not in seg and "backend" not in seg


def test_gazebo_runs_the_world_headless_with_bridge_and_camera_tf(
        fake_launch: list[Recorder], world: Path, tmp_path: Path) -> None:
    launch = _load_launch_module()
    other = write_field_file(tmp_path / "other.json", dataclasses.replace(TINY, seed=99))
    out = _launch(launch, simulator="gazebo", world=str(world), field_file=str(other),
                  environment={"ROS_DISTRO": "jazzy"})
    nodes = out["nodes"]
    assert list(nodes) == ["parameter_bridge", "static_transform_publisher", "segmenter_node",
                           "spray_planner", "sim_scorer"]
    (gz,) = out["processes"]
    assert gz["cmd"] == ["gz", "sim", "-s", "-r", "--headless-rendering", str(world)]
    assert gz["cwd"] == str(world.parent)
    assert gz["additional_env"]["GZ_SIM_RESOURCE_PATH"].split(os.pathsep)[0] == \
        str(world.parent)
    bridge = nodes["parameter_bridge"]
    assert bridge["package"] == "ros_gz_bridge" and bridge["name"] == "gz_bridge"
    (params,) = bridge["parameters"]
    assert Path(resolve(params["config_file"])) == ROOT / "config" / "gz_bridge.yaml"
    assert params["use_sim_time"] is True
    # The scorer and the geometry use the world's own field file, not field_file.
    own = str(world.parent / "field.json")
    assert nodes["sim_scorer"]["parameters"][0]["field_file"] == own
    assert nodes["segmenter_node"]["parameters"][0]["camera_height_m"] == 0.45
    tf = nodes["static_transform_publisher"]
    assert tf["package"] == "tf2_ros" and tf["parameters"] == [{"use_sim_time": True}]
    args = tf["arguments"]
    named = dict(zip(args[::2], args[1::2]))
    (x, y, z), (qx, qy, qz, qw) = optical_frame_transform(TINY.camera)
    assert {k: float(v) for k, v in named.items() if k not in ("--frame-id",
                                                              "--child-frame-id")} == \
        {"--x": x, "--y": y, "--z": z, "--qx": qx, "--qy": qy, "--qz": qz, "--qw": qw}
    assert (named["--frame-id"], named["--child-frame-id"]) == ("base_link",
                                                                "camera_optical_frame")
    for executable in ("parameter_bridge", "segmenter_node", "spray_planner", "sim_scorer"):
        env = nodes[executable]["additional_env"]
        assert set(env) == {"FASTRTPS_DEFAULT_PROFILES_FILE"}, executable   # Jazzy: Fast DDS 2
        assert Path(resolve(env["FASTRTPS_DEFAULT_PROFILES_FILE"])) == \
            ROOT / "config" / "fastdds_large_images.xml"
    assert "field_sim" not in nodes
    assert any("headless-rendering" in line for line in out["logs"])


@pytest.mark.parametrize(("headless", "command"), [
    ("false", ["gz", "sim", "-r"]), ("server", ["gz", "sim", "-s", "-r"]),
    ("True", ["gz", "sim", "-s", "-r", "--headless-rendering"])])
def test_gazebo_modes(fake_launch: list[Recorder], world: Path, headless: str,
                      command: list[str]) -> None:
    launch = _load_launch_module()
    (gz,) = _launch(launch, simulator="gazebo", world=str(world),
                    headless=headless)["processes"]
    assert gz["cmd"] == command + [str(world)]
    with pytest.raises(ValueError, match="choose true, server or false"):
        _launch(launch, simulator="gazebo", world=str(world), headless="maybe")


def test_the_teams_dds_profile_is_kept(fake_launch: list[Recorder], tmp_path: Path) -> None:
    launch = _load_launch_module()
    field_file = str(write_field_file(tmp_path / "field.json", TINY))
    nodes = _launch(launch, field_file=field_file,
                    environment={"FASTDDS_DEFAULT_PROFILES_FILE": "/team/dds.xml"})["nodes"]
    assert all(kw["additional_env"] == {} for kw in nodes.values())
    nodes = _launch(launch, field_file=field_file, environment={})["nodes"]
    assert set(nodes["sim_scorer"]["additional_env"]) == {"FASTRTPS_DEFAULT_PROFILES_FILE",
                                                          "FASTDDS_DEFAULT_PROFILES_FILE"}


def test_what_cannot_run_is_a_clear_error(fake_launch: list[Recorder], world: Path,
                                          tmp_path: Path) -> None:
    launch = _load_launch_module()
    with pytest.raises(ValueError, match="needs world:="):
        _launch(launch, simulator="gazebo")
    with pytest.raises(ValueError, match="no such file"):
        _launch(launch, simulator="gazebo", world=str(tmp_path / "nope.sdf"))
    lone = tmp_path / "lone" / "world.sdf"
    lone.parent.mkdir()
    lone.write_text(world.read_text())
    with pytest.raises(ValueError, match="no field.json beside it"):
        _launch(launch, simulator="gazebo", world=str(lone))
    with pytest.raises(ValueError, match="choose field_sim or gazebo"):
        _launch(launch, simulator="webots")
    field_file = str(write_field_file(tmp_path / "field.json", TINY))
    with pytest.raises(ValueError, match="real_time_factor:=fast is not a number"):
        _launch(launch, field_file=field_file, real_time_factor="fast")
