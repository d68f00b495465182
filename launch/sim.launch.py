"""A simulated drive over ROS with simulated time: a simulator, then the segmenter, the spray
planner and the scorer, the same three either way.

    ros2 launch crop_weed_seg sim.launch.py                        # field_sim: runs anywhere
    crop-weed-seg gazebo-world /tmp/field_world                    # then, with Gazebo Harmonic:
    ros2 launch crop_weed_seg sim.launch.py simulator:=gazebo world:=/tmp/field_world/world.sdf

``simulator:=field_sim`` (default) starts the ``field_sim`` node on ``field_file`` (default: the
package's ``config/sim_field.json``); it publishes ``/clock``, ``image``, ``camera_info``,
``labels_truth``, ``/odom``, ``/tf`` and ``/tf_static``. ``simulator:=gazebo`` starts Gazebo on
``world`` (a folder written by ``crop-weed-seg gazebo-world``; headless ``gz sim -s -r
--headless-rendering`` unless ``headless:=server`` (rendering on ``$DISPLAY``, e.g. under
``xvfb-run``) or ``headless:=false`` (GUI), with the world's folder on
``GZ_SIM_RESOURCE_PATH``), ``ros_gz_bridge``'s ``parameter_bridge`` with the package's
``config/gz_bridge.yaml`` (the same topics, from Gazebo), and a static TF ``base_link`` ->
``camera_optical_frame`` from the scenario's mount. The field file is then the world's own
``field.json`` (its plants are the world's; ``field_file`` is for field_sim).

Either way: ``segmenter_node`` (``crop_weed_seg``) and ``spray_planner`` with the geometry of the
field file's scenario (``Scenario.node_parameters()``, read when the launch runs), and
``sim_scorer`` on the same field file (``out_dir``: where score.json goes; with
``exit_when_done:=true`` the scorer's exit ends the launch).
Every node runs with ``use_sim_time`` (field_sim, the clock's source, ignores it); the nodes
get the package's large-image Fast DDS profile unless the environment names one (as in
crop_weed_seg.launch.py).

Module-level names below are plain data so that tests can check them without the ``launch``
package; ``launch``, ``launch_ros`` and crop_weed_seg are imported only inside the functions.
"""

import os

PACKAGE = "crop_weed_seg"
SIMULATORS = ("field_sim", "gazebo")
#: Role -> (executable, node name). The simulator nodes, then the loop every simulator feeds.
FIELD_SIM = ("field_sim", "field_sim")
SEGMENTER = ("segmenter_node", "crop_weed_seg")
PLANNER = ("spray_planner", "spray_planner")
SCORER = ("sim_scorer", "sim_scorer")
BRIDGE = ("ros_gz_bridge", "parameter_bridge", "gz_bridge")        # package, executable, name
STATIC_TF = ("tf2_ros", "static_transform_publisher", "camera_mount_tf")
FIELD_FILE = "config/sim_field.json"                 # relative to the package share directory
BRIDGE_CONFIG = "config/gz_bridge.yaml"              # relative to the package share directory
FASTDDS_PROFILE = "config/fastdds_large_images.xml"  # relative to the package share directory
WORLD_FIELD_FILE = "field.json"                      # next to a gazebo-world's world.sdf
BASE_FRAME, OPTICAL_FRAME = "base_link", "camera_optical_frame"
#: The command that runs the world (the world file is appended).
#: headless:=true (EGL, no display), server (server only, rendering on $DISPLAY: under xvfb-run
#: with Mesa llvmpipe where EGL fails), false (server and GUI).
GZ_COMMANDS = {"true": ["gz", "sim", "-s", "-r", "--headless-rendering"],
               "server": ["gz", "sim", "-s", "-r"],
               "false": ["gz", "sim", "-r"]}
#: The segmenter's input QoS: the simulators publish images RELIABLE, KEEP_LAST 5.
SEGMENTER_INPUT_QOS = {"input_qos_reliability": "reliable", "input_qos_depth": 5}

#: Written before a path in ARGUMENTS: the package share folder (FindPackageShare at launch).
SHARE = "<share>/"

#: launch argument -> (default, description).
ARGUMENTS = {
    "simulator": ("field_sim", "field_sim (ROS node, runs anywhere) or gazebo (Gazebo Harmonic "
                               "with ros_gz; needs world)."),
    "field_file": (SHARE + FIELD_FILE, "Field file of field_sim (scenario, optionally plants); "
                                       "with simulator:=gazebo the world's field.json is used."),
    "world": ("", "simulator:=gazebo: world.sdf written by crop-weed-seg gazebo-world."),
    "headless": ("true", "simulator:=gazebo: true: gz sim server with headless (EGL) rendering; "
                         "server: server only, rendering on $DISPLAY (xvfb-run); false: with "
                         "the GUI."),
    "real_time_factor": ("1.0", "field_sim: simulated seconds per wall-clock second."),
    "drive_mode": ("scripted", "field_sim: scripted (the scenario's speed) or cmd_vel."),
    "model_dir": ("", "Segmenter model folder; empty: the node's default (shipped model)."),
    "backend": ("", "Segmenter backend (auto, tensorrt, onnxruntime, torch); empty: default."),
    "out_dir": ("", "Scorer: folder for score.json and score.png; empty: write none."),
    "exit_when_done": ("false", "field_sim and the scorer stop when the drive has ended, and "
                                "the scorer's exit ends the launch."),
    "log_level": ("info", "Logging level of the nodes: debug, info, warn, error."),
}

PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
FAST_DDS_2_DISTROS = ("foxy", "galactic", "humble", "iron", "jazzy")
TRUE = ("true", "1", "yes", "on")


def _share_path(rel):
    """A package file as PathJoinSubstitution([FindPackageShare(PACKAGE), *parts])."""
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.substitutions import FindPackageShare
    return PathJoinSubstitution([FindPackageShare(PACKAGE)] + rel.split("/"))


def _default_value(default):
    return _share_path(default[len(SHARE):]) if default.startswith(SHARE) else default


def _dds_env(environment):
    """The package's large-image profile for the nodes, unless the environment names one or
    selects another middleware (crop_weed_seg.launch.py's fastdds_profile:=auto)."""
    if any(environment.get(name) for name in PROFILE_VARIABLES):
        return {}
    rmw = environment.get("RMW_IMPLEMENTATION", "")
    if rmw and not rmw.startswith("rmw_fastrtps"):
        return {}
    distro = environment.get("ROS_DISTRO", "").strip().lower()
    names = PROFILE_VARIABLES if not distro else \
        ("FASTRTPS_DEFAULT_PROFILES_FILE",) if distro in FAST_DDS_2_DISTROS \
        else ("FASTDDS_DEFAULT_PROFILES_FILE",)
    return {name: _share_path(FASTDDS_PROFILE) for name in names}


def _field_file(simulator, field_file, world):
    """(field file of the run, the world file or None); ValueError says what is missing."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator:={simulator}: choose {' or '.join(SIMULATORS)}")
    if simulator == "field_sim":
        return field_file, None
    if not world:
        raise ValueError("simulator:=gazebo needs world:=<folder>/world.sdf (write one with "
                         "crop-weed-seg gazebo-world <folder>)")
    world = os.path.abspath(world)
    if not os.path.isfile(world):
        raise ValueError(f"world:={world}: no such file (crop-weed-seg gazebo-world writes it)")
    own = os.path.join(os.path.dirname(world), WORLD_FIELD_FILE)
    if not os.path.isfile(own):
        raise ValueError(f"world:={world}: no {WORLD_FIELD_FILE} beside it, so the scorer "
                         "would not know its plants (regenerate it with crop-weed-seg "
                         "gazebo-world)")
    return own, world


def _camera_mount_arguments(camera):
    """static_transform_publisher's arguments: base_link -> camera_optical_frame."""
    from crop_weed_seg.sim.gazebo_world import optical_frame_transform

    (x, y, z), (qx, qy, qz, qw) = optical_frame_transform(camera)
    values = {"--x": x, "--y": y, "--z": z, "--qx": qx, "--qy": qy, "--qz": qz, "--qw": qw}
    args = [item for name, value in values.items() for item in (name, repr(float(value)))]
    return args + ["--frame-id", BASE_FRAME, "--child-frame-id", OPTICAL_FRAME]


def _node_actions(context):
    from launch.actions import EmitEvent, ExecuteProcess, LogInfo, RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch.events import Shutdown
    from launch_ros.actions import Node

    from crop_weed_seg.sim.scenario import read_field_file

    def arg(name):
        return context.launch_configurations[name]

    def number(name):
        try:
            return float(arg(name))
        except ValueError:
            raise ValueError(f"{name}:={arg(name)} is not a number") from None

    simulator = arg("simulator").strip()
    field_file, world = _field_file(simulator, os.path.abspath(arg("field_file")),
                                    arg("world").strip())
    scenario = read_field_file(field_file).scenario
    geometry = scenario.node_parameters()
    env = _dds_env(getattr(context, "environment", os.environ))
    done = arg("exit_when_done").lower() in TRUE
    common = {"ros_arguments": ["--log-level", arg("log_level")], "output": "screen",
              "emulate_tty": True}

    def node(role, parameters, **kw):
        executable, name = role
        return Node(package=PACKAGE, executable=executable, name=name, parameters=[parameters],
                    additional_env=dict(env), **common, **kw)

    actions = [LogInfo(msg=f"sim: simulator {simulator}, field file {field_file}, camera "
                           f"{scenario.camera.width}x{scenario.camera.height} at "
                           f"{scenario.camera.height_m:g} m, {scenario.speed_mps:g} m/s")]
    if simulator == "field_sim":
        actions.append(node(FIELD_SIM, {
            "use_sim_time": True,   # the clock's source: changes nothing there, says so
            "field_file": field_file, "real_time_factor": number("real_time_factor"),
            "drive_mode": arg("drive_mode"), "exit_when_done": done}))
    else:
        world_dir = os.path.dirname(world)
        resource = os.pathsep.join(p for p in (world_dir, os.environ.get(
            "GZ_SIM_RESOURCE_PATH", "")) if p)
        mode = arg("headless").strip().lower()
        mode = "true" if mode in TRUE else "false" if mode in ("false", "0", "no", "off") \
            else mode
        if mode not in GZ_COMMANDS:
            raise ValueError(f"headless:={arg('headless')}: choose true, server or false")
        command = GZ_COMMANDS[mode] + [world]
        actions += [
            LogInfo(msg=f"sim: {' '.join(command)} (the field file is the world's)"),
            ExecuteProcess(cmd=command, name="gz_sim", cwd=world_dir, output="screen",
                           additional_env={"GZ_SIM_RESOURCE_PATH": resource}),
            Node(package=BRIDGE[0], executable=BRIDGE[1], name=BRIDGE[2],
                 parameters=[{"config_file": _share_path(BRIDGE_CONFIG), "use_sim_time": True}],
                 additional_env=dict(env), **common),
            Node(package=STATIC_TF[0], executable=STATIC_TF[1], name=STATIC_TF[2],
                 arguments=_camera_mount_arguments(scenario.camera),
                 parameters=[{"use_sim_time": True}], **common),
        ]
    segmenter = {"use_sim_time": True, **SEGMENTER_INPUT_QOS, **geometry["segmenter_node"]}
    segmenter.update({name: arg(name) for name in ("model_dir", "backend") if arg(name)})
    odom = [("odom", "/odom")]   # robot-wide, as crop_weed_seg.launch.py remaps it
    scorer = node(SCORER, {"use_sim_time": True, "field_file": field_file,
                           "out_dir": arg("out_dir"), "exit_when_done": done})
    actions += [
        node(SEGMENTER, segmenter, remappings=odom),
        node(PLANNER, {"use_sim_time": True, **geometry["spray_planner"]}, remappings=odom),
        scorer,
    ]
    if done:   # the scorer's exit (score written) ends the whole launch, simulator included
        actions.append(RegisterEventHandler(OnProcessExit(
            target_action=scorer, on_exit=[EmitEvent(event=Shutdown(
                reason="sim_scorer exited: the drive has ended (exit_when_done)"))])))
    return actions


def generate_launch_description():
    # I001: run from the repository root, ruff's isort takes `launch` for this launch/ folder.
    from launch import LaunchDescription  # noqa: I001
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [DeclareLaunchArgument(name, default_value=_default_value(default),
                                      description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_node_actions)])
