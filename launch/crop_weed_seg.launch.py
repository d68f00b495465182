"""Start the crop_weed_seg segmenter node.

    ros2 launch crop_weed_seg crop_weed_seg.launch.py camera:=/cam0/image_raw
    ros2 launch crop_weed_seg crop_weed_seg.launch.py camera:=/cam0/image_raw \\
        params_file:=/path/my_field.yaml backend:=tensorrt namespace:=left

Topics (relative, so ``namespace`` applies): ``labels``, ``confidence``, ``overlay``,
``spray_targets``, ``spray_markers`` and (from spray_planner, started unless ``planner:=false``)
``nozzle_states`` out; ``image`` (remapped to ``camera``; with ``input_transport: compressed``
the node reads ``<camera>/compressed``), ``camera_info`` and ``odom`` in. Parameters come from ``params_file``
(default: the package's ``config/crop_weed_seg.yaml``); the ``model_dir`` and ``backend``
arguments override it when not empty.

The node process gets ``FASTDDS_DEFAULT_PROFILES_FILE`` = ``fastdds_profile`` (default: the
package's ``config/fastdds_large_images.xml``) so that its large outputs arrive over shared
memory; give the same profile to the camera driver's process (see README). Set
``fastdds_profile:=''`` to keep the environment as it is.

Module-level names below are plain data so that tests can check them without the ``launch``
package; ``launch`` and ``launch_ros`` are imported only inside the functions.
"""

PACKAGE = "crop_weed_seg"
EXECUTABLE = "segmenter_node"
NODE_NAME = "crop_weed_seg"
PLANNER_EXECUTABLE = "spray_planner"
PLANNER_NODE_NAME = "spray_planner"
PARAMS_FILE = "config/crop_weed_seg.yaml"          # relative to the package share directory
PLANNER_PARAMS_FILE = "config/spray_planner.yaml"  # relative to the package share directory
FASTDDS_PROFILE = "config/fastdds_large_images.xml"  # relative to the package share directory

#: launch argument -> (default, description). "<share>" stands for the package share folder.
ARGUMENTS = {
    "namespace": ("", "Namespace of the node and its relative topics (e.g. left, right)."),
    "camera": ("image", "Image topic to segment (sensor_msgs/Image; with input_transport "
                        "compressed, its /compressed subtopic)."),
    "camera_info": ("camera_info", "CameraInfo topic of the same camera."),
    "odom": ("odom", "Odometry topic (ground speed for spray timing)."),
    "params_file": ("<share>/" + PARAMS_FILE,
                    "YAML file with the node's parameters (<share>: the package share folder)."),
    "model_dir": ("", "Model folder; empty keeps params_file's value (default: shipped model)."),
    "backend": ("", "auto | tensorrt | onnxruntime | torch; empty keeps params_file's value."),
    "use_sim_time": ("false", "Use /clock (simulation, bag replay with --clock)."),
    "log_level": ("info", "Logging level: debug, info, warn, error."),
    "fastdds_profile": ("<share>/" + FASTDDS_PROFILE,
                        "Fast DDS profiles file for the node process; empty: leave unset."),
    "planner": ("true", "Also start spray_planner (nozzle_states from spray_targets)."),
    "planner_params_file": ("<share>/" + PLANNER_PARAMS_FILE,
                            "YAML file with spray_planner's parameters."),
}

#: launch arguments that override a node parameter of the same name when not empty.
PARAMETER_ARGUMENTS = ("model_dir", "backend")


def _node_actions(context):
    from launch_ros.actions import Node

    def arg(name):
        return context.launch_configurations[name]

    share = _share()
    params = [arg("params_file").replace("<share>", share)]
    overrides = {name: arg(name) for name in PARAMETER_ARGUMENTS if arg(name)}
    overrides["use_sim_time"] = arg("use_sim_time").lower() in ("true", "1", "yes")
    params.append(overrides)
    env = {}
    profile = arg("fastdds_profile").replace("<share>", share)
    if profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = profile
    sim_time = overrides["use_sim_time"]
    nodes = [Node(
        package=PACKAGE, executable=EXECUTABLE, name=NODE_NAME, namespace=arg("namespace"),
        parameters=params,
        remappings=[("image", arg("camera")), ("camera_info", arg("camera_info")),
                    ("odom", arg("odom"))],
        arguments=["--ros-args", "--log-level", arg("log_level")],
        additional_env=env, output="screen", emulate_tty=True,
    )]
    if arg("planner").lower() in ("true", "1", "yes"):
        nodes.append(Node(
            package=PACKAGE, executable=PLANNER_EXECUTABLE, name=PLANNER_NODE_NAME,
            namespace=arg("namespace"),
            parameters=[arg("planner_params_file").replace("<share>", share),
                        {"use_sim_time": sim_time}],
            remappings=[("odom", arg("odom"))],
            arguments=["--ros-args", "--log-level", arg("log_level")],
            additional_env=env, output="screen", emulate_tty=True,
        ))
    return nodes


def _share():
    from ament_index_python.packages import get_package_share_directory
    return get_package_share_directory(PACKAGE)


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_node_actions)])

