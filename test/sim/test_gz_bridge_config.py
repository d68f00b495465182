"""config/gz_bridge.yaml: every entry is a type pair ros_gz_bridge supports (its jazzy list in
test/fixtures/gazebo/, provenance there), with a valid direction; the ROS names and types are
the simulation contract's (field_sim publishes the same), and every Gazebo topic is one the
generated world publishes (or subscribes, for cmd_vel)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from crop_weed_seg.sim.gazebo_world import GZ_TOPICS, write_gazebo_world
from crop_weed_seg.sim.scenario import BoomSpec, CameraSpec, Scenario
from crop_weed_seg.sim.world import FieldConfig

from support import FIXTURES, REPO

CONFIG = REPO / "config" / "gz_bridge.yaml"
TYPES = FIXTURES / "gazebo" / "ros_gz_bridge-jazzy-types.md"
DIRECTIONS = {"GZ_TO_ROS", "ROS_TO_GZ", "BIDIRECTIONAL"}
KEYS = {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction", "lazy",
        "subscriber_queue", "publisher_queue"}
#: The simulation contract: ROS name -> (type, direction seen from Gazebo).
CONTRACT = {
    "/clock": ("rosgraph_msgs/msg/Clock", "GZ_TO_ROS"),
    "image": ("sensor_msgs/msg/Image", "GZ_TO_ROS"),
    "camera_info": ("sensor_msgs/msg/CameraInfo", "GZ_TO_ROS"),
    "labels_truth": ("sensor_msgs/msg/Image", "GZ_TO_ROS"),
    "/odom": ("nav_msgs/msg/Odometry", "GZ_TO_ROS"),
    "/tf": ("tf2_msgs/msg/TFMessage", "GZ_TO_ROS"),
    "cmd_vel": ("geometry_msgs/msg/Twist", "ROS_TO_GZ"),
}


def supported_pairs(path: Path = TYPES) -> set[tuple[str, str]]:
    """(ROS type, Gazebo type) pairs of the bridge's README table (``gz::msgs::X`` written as
    ``gz.msgs.X``, as the YAML names them)."""
    pairs = set()
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and "/msg/" in cells[0]:
            pairs.add((cells[0], cells[1].replace("::", ".")))
    return pairs


def entries() -> list[dict[str, Any]]:
    doc = yaml.safe_load(CONFIG.read_text())
    assert isinstance(doc, list) and doc
    return doc


def bridge_problems(items: list[dict[str, Any]], pairs: set[tuple[str, str]]) -> list[str]:
    """What ros_gz_bridge would refuse or misroute in a config, one line each."""
    found = []
    for item in items:
        name = item.get("ros_topic_name", "?")
        unknown = set(item) - KEYS
        if unknown:
            found.append(f"{name}: unknown keys {sorted(unknown)}")
        missing = {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name"} - set(item)
        if missing:
            found.append(f"{name}: missing {sorted(missing)}")
        if (item.get("ros_type_name"), item.get("gz_type_name")) not in pairs:
            found.append(f"{name}: ros_gz_bridge has no pair {item.get('ros_type_name')} <-> "
                         f"{item.get('gz_type_name')}")
        if item.get("direction", "BIDIRECTIONAL") not in DIRECTIONS:
            found.append(f"{name}: direction {item.get('direction')!r}")
        for key in ("subscriber_queue", "publisher_queue"):
            if key in item and not (isinstance(item[key], int) and item[key] > 0):
                found.append(f"{name}: {key} {item[key]!r}")
        if "lazy" in item and not isinstance(item["lazy"], bool):
            found.append(f"{name}: lazy {item['lazy']!r}")
    return found


def test_the_type_list_is_the_bridges() -> None:
    pairs = supported_pairs()
    assert len(pairs) > 50
    assert ("sensor_msgs/msg/Image", "gz.msgs.Image") in pairs
    assert ("tf2_msgs/msg/TFMessage", "gz.msgs.Pose_V") in pairs


def test_every_entry_is_a_supported_pair_with_a_valid_direction() -> None:
    assert bridge_problems(entries(), supported_pairs()) == []


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("gz_type_name", "gz.msgs.Odometry", "has no pair"),
    ("direction", "GZ_TO_ROS_AND_BACK", "direction"),
    ("publisher_queue", 0, "publisher_queue"),
    ("qos", "best_effort", "unknown keys"),
])
def test_the_check_catches_a_bad_entry(key: str, value: Any, expected: str) -> None:
    broken = [dict(e) for e in entries()]
    broken[1][key] = value
    assert any(expected in p for p in bridge_problems(broken, supported_pairs()))


def test_ros_names_types_and_directions_are_the_contracts() -> None:
    got = {e["ros_topic_name"]: (e["ros_type_name"], e["direction"]) for e in entries()}
    assert got == CONTRACT
    assert len(entries()) == len(CONTRACT)
    for e in entries():
        assert e.get("lazy") is False, e["ros_topic_name"]   # cameras render for the bridge
        if e["ros_type_name"] == "sensor_msgs/msg/Image":
            assert e["publisher_queue"] == 5                 # RELIABLE, KEEP_LAST 5


def _published_by_world(world: Path) -> dict[str, str]:
    """Gazebo topic -> what in the world makes it (or takes it)."""
    root = ET.parse(world).getroot()
    topics = {"/clock": "gz sim (every world)"}
    for sensor in root.iter("sensor"):
        topic = sensor.findtext("topic", "")
        if sensor.get("type") == "segmentation":
            topics[topic + "/labels_map"] = "segmentation sensor"
        else:
            topics[topic] = f"{sensor.get('type')} sensor"
            info = sensor.findtext("camera/camera_info_topic")
            if info:
                topics[info] = "camera_info of the camera sensor"
    for plugin in root.iter("plugin"):
        for tag in ("odom_topic", "tf_topic", "topic"):
            if plugin.findtext(tag):
                topics[plugin.findtext(tag, "")] = f"{plugin.get('name')} <{tag}>"
    return topics


def test_gazebo_topics_are_the_worlds(tmp_path: Path) -> None:
    scenario = Scenario(field=FieldConfig(length_m=1.5, width_m=0.4, gsd_mm=4.0),
                        camera=CameraSpec(width=64, height=48, height_m=0.4),
                        boom=BoomSpec(nozzles=4, spacing_m=0.1))
    world = write_gazebo_world(tmp_path / "w", scenario).world
    published = _published_by_world(world)
    for e in entries():
        assert e["gz_topic_name"] == GZ_TOPICS[e["ros_topic_name"]], e["ros_topic_name"]
        assert e["gz_topic_name"] in published, (e["gz_topic_name"], sorted(published))
    assert published[GZ_TOPICS["cmd_vel"]].startswith("gz::sim::systems::VelocityControl")
    assert published[GZ_TOPICS["/odom"]].startswith("gz::sim::systems::OdometryPublisher")
