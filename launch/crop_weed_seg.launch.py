"""Start the crop_weed_seg segmenter node (and spray_planner).

    ros2 launch crop_weed_seg crop_weed_seg.launch.py camera:=/cam0/image_raw
    ros2 launch crop_weed_seg crop_weed_seg.launch.py camera:=/cam0/image_raw \\
        params_file:=/path/my_field.yaml backend:=tensorrt precision:=fp16 namespace:=left

Topics: ``labels``, ``labels_color``, ``confidence``, ``overlay``, ``spray_targets``,
``spray_markers`` and (from spray_planner, started unless ``planner:=false``)
``nozzle_states`` out, relative, so
``namespace`` applies; in: ``image`` (remapped to ``camera``; with ``input_transport:
compressed`` the node reads ``<camera>/compressed``), ``camera_info`` (remapped to the
``camera_info`` argument; empty, the default: the topic next to ``camera``, as image_transport
names it: ``/cam0/image_raw`` -> ``/cam0/camera_info``) and ``odom`` (remapped to the ``odom``
argument, default ``/odom``: absolute, because odometry is robot-wide and a namespace must not
move it). Without ``camera_info`` (or a set ``hfov_deg``) the node has no ground geometry and
its targets have no lane, so no nozzle opens.

Parameters come from ``params_file`` (default: the package's ``config/crop_weed_seg.yaml``,
found with ``FindPackageShare``); the ``model_dir``, ``backend``, ``precision`` and
``engine_settings`` arguments override it when not empty (``engine_settings``: the TensorRT
engine's sidecar, as ``crop-weed-seg build-engine`` prints it). ``log_level`` goes to both
nodes as ROS arguments.

DDS (``fastdds_profile``): ``auto`` (default) gives the node processes the package's Fast DDS
profile for large images (``config/fastdds_large_images.xml``) only when the environment names
no profile file of its own and does not select another middleware; ``large_images``: that
profile in any case; ``none``: the environment as it is; anything else: the path of a profile
file. A profile is given in ``FASTRTPS_DEFAULT_PROFILES_FILE`` (read by Fast DDS 2.x: Humble,
Jazzy) and ``FASTDDS_DEFAULT_PROFILES_FILE`` (Fast DDS 3.x: Kilted); the launch log says which
profile the nodes get and why. Give the same profile to the camera driver's process (README,
"Large images over DDS").

Module-level names below are plain data so that tests can check them without the ``launch``
package; ``launch`` and ``launch_ros`` are imported only inside the functions.
"""

import os

PACKAGE = "crop_weed_seg"
EXECUTABLE = "segmenter_node"
NODE_NAME = "crop_weed_seg"
PLANNER_EXECUTABLE = "spray_planner"
PLANNER_NODE_NAME = "spray_planner"
PARAMS_FILE = "config/crop_weed_seg.yaml"          # relative to the package share directory
PLANNER_PARAMS_FILE = "config/spray_planner.yaml"  # relative to the package share directory
FASTDDS_PROFILE = "config/fastdds_large_images.xml"  # relative to the package share directory

#: Written before a path in ARGUMENTS: the package share folder (FindPackageShare at launch).
SHARE = "<share>/"

#: launch argument -> (default, description).
ARGUMENTS = {
    "namespace": ("", "Namespace of the nodes and their relative topics (e.g. left, right)."),
    "camera": ("image", "Image topic to segment (sensor_msgs/Image; with input_transport "
                        "compressed, its /compressed subtopic)."),
    "camera_info": ("", "CameraInfo topic of the same camera; empty: the one next to camera "
                        "(its last name replaced by camera_info: /cam0/image_raw -> "
                        "/cam0/camera_info)."),
    "odom": ("/odom", "Odometry topic (ground speed for spray timing); absolute by default, "
                      "so a namespace does not move it."),
    "params_file": (SHARE + PARAMS_FILE,
                    "YAML file with the node's parameters (default: the package's)."),
    "model_dir": ("", "Model folder; empty keeps params_file's value (default: shipped model)."),
    "backend": ("", "auto | tensorrt | onnxruntime | torch; empty keeps params_file's value."),
    "precision": ("", "fp32 | fp16 | int8 (where the backend supports it); empty keeps "
                      "params_file's value."),
    "engine_settings": ("", "TensorRT: the sidecar (.json) next to an engine built by "
                            "`crop-weed-seg build-engine` (it prints this argument): it decides "
                            "precision and every engine setting, its folder is the engine "
                            "cache; empty keeps params_file's engine_* values."),
    "use_sim_time": ("false", "Use /clock (simulation, bag replay with --clock)."),
    "log_level": ("info", "Logging level of both nodes: debug, info, warn, error."),
    "fastdds_profile": ("auto", "auto: the package's large-image Fast DDS profile unless the "
                                "environment names one; large_images: that profile always; "
                                "none: leave the environment as it is; else: a profile path."),
    "planner": ("true", "Also start spray_planner (nozzle_states from spray_targets)."),
    "planner_params_file": (SHARE + PLANNER_PARAMS_FILE,
                            "YAML file with spray_planner's parameters (default: the "
                            "package's)."),
}

#: launch arguments that override a node parameter of the same name when not empty.
PARAMETER_ARGUMENTS = ("model_dir", "backend", "precision", "engine_settings")

#: The variables Fast DDS reads its default profiles file from: 2.x (Humble, Jazzy), 3.x.
PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
#: Distributions on Fast DDS 2.x, which reads only FASTRTPS_*; 3.x (Kilted on) reads FASTDDS_*
#: and warns about the old name (crop_weed_seg/ros/dds_profile.py decides the same way).
FAST_DDS_2_DISTROS = ("foxy", "galactic", "humble", "iron", "jazzy")

TRUE = ("true", "1", "yes", "on")


def camera_info_topic(image_topic: str) -> str:
    """The CameraInfo topic next to an image topic, as image_transport forms it: the last name
    replaced by ``camera_info`` (``/cam0/image_raw`` -> ``/cam0/camera_info``, ``image`` ->
    ``camera_info``). A relative topic stays relative, so a namespace applies to both alike."""
    head, _, _ = image_topic.rstrip("/").rpartition("/")
    return (head + "/" if head or image_topic.startswith("/") else "") + "camera_info"


def _default_value(default):
    """An ARGUMENTS default as DeclareLaunchArgument takes it: a package file is a
    PathJoinSubstitution under FindPackageShare, anything else the string itself."""
    if not default.startswith(SHARE):
        return default
    from launch.substitutions import PathJoinSubstitution
    from launch_ros.substitutions import FindPackageShare
    return PathJoinSubstitution([FindPackageShare(PACKAGE)] + default[len(SHARE):].split("/"))


def _dds_profile(choice, environment):
    """(additional_env for the nodes, log message) for a ``fastdds_profile`` value."""
    choice = choice.strip()
    if choice in ("none", ""):
        return {}, "fastdds_profile:=none: the nodes keep the DDS set-up of the environment"
    if choice == "auto":
        for name in PROFILE_VARIABLES:
            if environment.get(name):
                return {}, (f"fastdds_profile:=auto: the environment's {name}="
                            f"{environment[name]} is kept")
        rmw = environment.get("RMW_IMPLEMENTATION", "")
        if rmw and not rmw.startswith("rmw_fastrtps"):
            return {}, f"fastdds_profile:=auto: RMW_IMPLEMENTATION={rmw}, no Fast DDS profile"
    if choice in ("auto", "large_images"):
        path = _default_value(SHARE + FASTDDS_PROFILE)
    elif os.path.isfile(choice):
        path = choice
    else:  # Fast DDS would ignore a missing file without a word
        raise FileNotFoundError(f"fastdds_profile:={choice}: no such file (auto, large_images, "
                                "none or the path of a Fast DDS profile)")
    reason = "auto (the environment names none)" if choice == "auto" else choice
    names = _profile_variables(environment)
    message = [f"fastdds_profile:={reason}: the nodes get the Fast DDS profile ", path,
               f" (in {' and '.join(names)})"]
    return {name: path for name in names}, message


def _profile_variables(environment):
    """The variable(s) the distribution's Fast DDS reads (both when ROS_DISTRO is unset)."""
    distro = environment.get("ROS_DISTRO", "").strip().lower()
    if not distro:
        return PROFILE_VARIABLES
    return ("FASTRTPS_DEFAULT_PROFILES_FILE",) if distro in FAST_DDS_2_DISTROS \
        else ("FASTDDS_DEFAULT_PROFILES_FILE",)


def _node_actions(context):
    from launch.actions import LogInfo
    from launch_ros.actions import Node

    def arg(name):
        return context.launch_configurations[name]

    overrides = {name: arg(name) for name in PARAMETER_ARGUMENTS if arg(name)}
    sim_time = arg("use_sim_time").lower() in TRUE
    overrides["use_sim_time"] = sim_time
    camera = arg("camera")
    info = arg("camera_info") or camera_info_topic(camera)
    env, dds_message = _dds_profile(arg("fastdds_profile"),
                                    getattr(context, "environment", os.environ))
    log_level = arg("log_level")
    actions = [
        LogInfo(msg=f"{NODE_NAME}: image {camera}, camera_info {info}, odom {arg('odom')}"),
        LogInfo(msg=dds_message),
        Node(package=PACKAGE, executable=EXECUTABLE, name=NODE_NAME, namespace=arg("namespace"),
             parameters=[arg("params_file"), overrides],
             remappings=[("image", camera), ("camera_info", info), ("odom", arg("odom"))],
             ros_arguments=["--log-level", log_level], additional_env=env, output="screen",
             emulate_tty=True),
    ]
    if arg("planner").lower() in TRUE:
        actions.append(Node(
            package=PACKAGE, executable=PLANNER_EXECUTABLE, name=PLANNER_NODE_NAME,
            namespace=arg("namespace"),
            parameters=[arg("planner_params_file"), {"use_sim_time": sim_time}],
            remappings=[("odom", arg("odom"))],
            ros_arguments=["--log-level", log_level], additional_env=dict(env), output="screen",
            emulate_tty=True,
        ))
    return actions


def generate_launch_description():
    # I001: run from the repository root, ruff's isort takes `launch` for this launch/ folder.
    from launch import LaunchDescription  # noqa: I001
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    declared = [DeclareLaunchArgument(name, default_value=_default_value(default),
                                      description=text)
                for name, (default, text) in ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_node_actions)])
