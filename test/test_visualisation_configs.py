"""The shipped RViz2 config (``config/crop_weed_seg.rviz``) and Foxglove layout
(``config/foxglove_layout.json``): they parse, every topic they name is one the package
publishes or subscribes (docs/DESIGN.md §4 table, and spray_planner's nozzle_states) with a
display or panel that fits its message type, and they show what the issue asks for: image,
overlay, markers (fixed frame base_link) and nozzle states. Neither tool runs here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from crop_weed_seg.parameters import shared

from support import REPO

RVIZ = REPO / "config" / "crop_weed_seg.rviz"
FOXGLOVE = REPO / "config" / "foxglove_layout.json"

#: RViz display class -> the message type it shows
RVIZ_TYPES = {"rviz_default_plugins/Image": "sensor_msgs/Image",
              "rviz_default_plugins/MarkerArray": "visualization_msgs/MarkerArray",
              "rviz_default_plugins/PointCloud2": "sensor_msgs/PointCloud2"}


def package_topics() -> dict[str, str]:
    """Topic (relative names without '/', /diagnostics as it is) -> message type: the rows of
    the DESIGN.md §4 table and the planner's nozzle_states."""
    design = (REPO / "docs" / "DESIGN.md").read_text()
    section = design.split("## 4.", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (?:in|out) \| `([^`]+)` \| ([\w/]+)", section, re.MULTILINE)
    assert len(rows) >= 8, "the DESIGN.md §4 topic table was not found"
    topics = {name: kind for name, kind in rows}
    topics["nozzle_states"] = "sensor_msgs/JointState"
    return topics


def _type_of(topic: str) -> str | None:
    topics = package_topics()
    return topics.get(topic) or topics.get(topic.lstrip("/"))


def _rviz_displays() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RVIZ.read_text())
    return doc["Visualization Manager"]["Displays"]


def _rviz_topics() -> Iterator[tuple[str, str]]:
    """(display class, topic) of every display with a topic."""
    for display in _rviz_displays():
        if isinstance(display.get("Topic"), dict):
            yield display["Class"], display["Topic"]["Value"]


def test_the_design_table_is_read() -> None:
    topics = package_topics()
    assert topics["overlay"] == "sensor_msgs/Image"
    assert topics["spray_markers"] == "visualization_msgs/MarkerArray"
    assert topics["/diagnostics"] == "diagnostic_msgs/DiagnosticArray"


def test_rviz_config_names_only_package_topics_with_fitting_displays() -> None:
    doc = yaml.safe_load(RVIZ.read_text())
    assert doc["Visualization Manager"]["Global Options"]["Fixed Frame"] == "base_link"
    named = list(_rviz_topics())
    assert named, "no topics in the RViz config"
    for kind, topic in named:
        assert _type_of(topic) is not None, f"{topic} is not a topic of the package"
        assert RVIZ_TYPES[kind] == _type_of(topic), f"{kind} cannot show {topic}"
    enabled = {(d["Class"], d["Topic"]["Value"]) for d in _rviz_displays()
               if d.get("Enabled") and isinstance(d.get("Topic"), dict)}
    assert {("rviz_default_plugins/Image", "/image"),
            ("rviz_default_plugins/Image", "/overlay"),
            ("rviz_default_plugins/MarkerArray", "/spray_markers")} <= enabled


def _foxglove() -> dict[str, Any]:
    return json.loads(FOXGLOVE.read_text())


def _panel_ids(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    else:
        yield from _panel_ids(node["first"])
        yield from _panel_ids(node["second"])
        assert 0 < node["splitPercentage"] < 100 and node["direction"] in ("row", "column")


def _foxglove_topics(layout: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel id, topic) of every topic a panel names, message paths included."""
    for panel, config in layout["configById"].items():
        image = config.get("imageMode", {})
        for key in ("imageTopic", "calibrationTopic"):
            if image.get(key):
                yield panel, image[key]
        for topic in config.get("topics", {}):
            yield panel, topic
        for path in config.get("paths", []):
            yield panel, path["value"].split(".", 1)[0]
        if config.get("topicToRender"):
            yield panel, config["topicToRender"]


def test_foxglove_layout_parses_and_every_panel_is_laid_out() -> None:
    layout = _foxglove()
    assert set(layout) >= {"configById", "layout", "globalVariables", "userNodes"}
    ids = list(_panel_ids(layout["layout"]))
    assert sorted(ids) == sorted(layout["configById"]), "layout and configById differ"


def test_foxglove_layout_names_only_package_topics_with_fitting_panels() -> None:
    layout = _foxglove()
    fits = {"Image": {"sensor_msgs/Image", "sensor_msgs/CompressedImage",
                      "sensor_msgs/CameraInfo"},
            "3D": {"visualization_msgs/MarkerArray", "sensor_msgs/PointCloud2"},
            "StateTransitions": {"sensor_msgs/JointState"},
            "DiagnosticSummary": {"diagnostic_msgs/DiagnosticArray"}}
    named = list(_foxglove_topics(layout))
    for panel, topic in named:
        kind = _type_of(topic)
        assert kind is not None, f"{panel}: {topic} is not a topic of the package"
        assert kind in fits[panel.split("!", 1)[0]], f"{panel} cannot show {topic} ({kind})"
    images = {layout["configById"][p]["imageMode"]["imageTopic"]
              for p in layout["configById"] if p.startswith("Image!")}
    assert images == {"/image", "/overlay"}
    ground = next(c for p, c in layout["configById"].items() if p.startswith("3D!"))
    assert ground["followTf"] == "base_link" and ground["topics"]["/spray_markers"]["visible"]
    states = next(c for p, c in layout["configById"].items()
                  if p.startswith("StateTransitions!"))
    nozzles = [int(m.group(1)) for path in states["paths"]
               if (m := re.fullmatch(r"/nozzle_states\.position\[(\d+)\]", path["value"]))]
    count = shared.NOZZLE_COUNT.default
    assert isinstance(count, int) and nozzles == list(range(count)), \
        "one state row per nozzle of the default boom"
