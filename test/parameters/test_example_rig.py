"""``config/example_rig.yaml`` (two cameras, one boom in two sections), read as rclpy reads a
parameter file (:mod:`support.param_files`), against both nodes' parameter tables: every name
is one the node declares, every value fits its type and range, both nodes of a camera get the
same shared values, and the geometry is one plausible boom. ROS-free; the real nodes load the
file in test/ros/test_example_rig_nodes.py."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from crop_weed_seg.parameters import planner, segmenter, shared
from crop_weed_seg.parameters.table import ParamSpec, validate_named
from crop_weed_seg.spray.geometry import Boom, CameraIntrinsics, GroundProjector
from crop_weed_seg.spray.pipeline import SpraySettings

from support import REPO
from support.param_files import blocks_for, load, matches, parameters_for

RIG = REPO / "config" / "example_rig.yaml"
CAMERAS = ("left", "right")
TABLES: dict[str, dict[str, ParamSpec]] = {segmenter.NODE_NAME: segmenter.BY_NAME,
                                           planner.NODE_NAME: planner.BY_NAME}
MOUNT = ("camera_x_m", "camera_y_m", "camera_height_m", "camera_roll_deg", "camera_pitch_deg",
         "camera_yaw_deg")


def _fqn(camera: str, node: str) -> str:
    return f"/{camera}/{node}"


def _resolved(camera: str, node: str) -> dict[str, Any]:
    return parameters_for(load(RIG), _fqn(camera, node))


def _with_defaults(table: dict[str, ParamSpec], values: dict[str, Any]) -> dict[str, Any]:
    return {**{name: spec.default for name, spec in table.items()}, **values}


def test_the_reader_follows_the_ros_name_patterns() -> None:
    """``*`` is one name token, ``**`` any number (also none); the whole name must match; a
    later block wins."""
    assert matches("/**", "/seg") and matches("/**", "/a/b/seg")
    assert matches("/**/crop_weed_seg", "/crop_weed_seg")
    assert matches("/**/crop_weed_seg", "/left/crop_weed_seg")
    assert not matches("/**/crop_weed_seg", "/left/spray_planner")
    assert matches("/left/*", "/left/spray_planner")
    assert not matches("/left/*", "/left/deeper/spray_planner")
    assert not matches("/left/*", "/right/spray_planner")
    assert matches("left/crop_weed_seg", "/left/crop_weed_seg")     # the leading / is implied
    assert not matches("/left/crop_weed_seg", "/left/crop_weed_seg_2")
    blocks = {"/**": {"a": 1, "b": 1}, "/left/*": {"b": 2}}
    assert parameters_for(blocks, "/left/n") == {"a": 1, "b": 2}
    assert parameters_for(blocks, "/right/n") == {"a": 1, "b": 1}


@pytest.mark.parametrize("camera", CAMERAS)
@pytest.mark.parametrize("node", sorted(TABLES))
def test_every_value_is_a_parameter_of_the_node_with_its_type_and_range(camera: str,
                                                                        node: str) -> None:
    table = TABLES[node]
    values = _resolved(camera, node)
    assert values, f"{_fqn(camera, node)} takes nothing from {RIG.name}"
    unknown = sorted(set(values) - set(table))
    assert unknown == [], f"{_fqn(camera, node)}: not parameters of {node}: {unknown}"
    for name, value in values.items():
        spec = table[name]
        # rclpy refuses an override of another type than the declared default (1 for a float)
        assert type(value) is type(spec.default), \
            f"{name}: {type(value).__name__} {value!r}, the node declares a {spec.kind.__name__}"
        assert validate_named(table, name, value) is None, validate_named(table, name, value)


@pytest.mark.parametrize("camera", CAMERAS)
def test_both_nodes_of_a_camera_accept_the_whole_set(camera: str) -> None:
    seg = _with_defaults(segmenter.BY_NAME, _resolved(camera, segmenter.NODE_NAME))
    segmenter.check_all(seg)
    boom, config = planner.build(_with_defaults(planner.BY_NAME,
                                                _resolved(camera, planner.NODE_NAME)))
    assert SpraySettings.from_values(seg).boom() == boom    # one boom section per camera
    assert config.mode == "spot" and config.failure_policy == "off"


def test_shared_parameters_are_set_once_for_both_nodes_of_a_camera() -> None:
    """Shared parameters (boom geometry, target frame, classes, timing) only in blocks that
    both nodes of a camera take, so they cannot disagree; no parameter is given twice to one
    node (no silent override)."""
    blocks = load(RIG)
    for pattern, values in blocks.items():
        takers = {node for camera in CAMERAS for node in TABLES
                  if matches(pattern, _fqn(camera, node))}
        if takers == set(TABLES):
            extra = sorted(set(values) - set(shared.BY_NAME))
            assert extra == [], f"block {pattern}: not parameters of both nodes: {extra}"
        else:
            both = sorted(set(values) & set(shared.BY_NAME))
            assert both == [], f"block {pattern} sets shared parameters for one node: {both}"
    for camera in CAMERAS:
        seg = _resolved(camera, segmenter.NODE_NAME)
        pl = _resolved(camera, planner.NODE_NAME)
        for name in shared.BY_NAME:
            assert seg.get(name) == pl.get(name), f"{camera}: {name} differs"
        for node in TABLES:
            seen: dict[str, str] = {}
            for pattern in blocks_for(blocks, _fqn(camera, node)):
                for name in blocks[pattern]:
                    assert name not in seen, \
                        f"{_fqn(camera, node)}: {name} in {seen.get(name)} and {pattern}"
                    seen[name] = pattern


def test_two_cameras_with_full_mounts_over_one_boom() -> None:
    """Each camera has all six mount values, its own (rolled, pitched and yawed) mount, and its
    own section of one boom: the sections share spacing and nozzle line and meet without gap
    or overlap; each camera looks at the ground ahead of the nozzles, over its own section."""
    sections: dict[str, Boom] = {}
    for camera in CAMERAS:
        values = _resolved(camera, segmenter.NODE_NAME)
        assert set(MOUNT) <= set(values), f"{camera}: mount incomplete"
        settings = SpraySettings.from_values(_with_defaults(segmenter.BY_NAME, values))
        mount = settings.mount()
        assert mount.roll_deg != 0 and mount.pitch_deg != 0 and mount.yaw_deg != 0, camera
        boom = sections[camera] = settings.boom()
        fov = float(values["hfov_deg"])
        projector = GroundProjector(CameraIntrinsics.from_fov(640, 480, fov), mount)
        centre = projector.pixels_to_ground(np.array([[319.5, 239.5]]))[0]
        assert centre[0] > boom.nozzle_x + 0.5, f"{camera} looks at {centre}"
        lo, hi = boom.right_edge, boom.right_edge + boom.width
        assert lo < centre[1] < hi, f"{camera} looks at y={centre[1]:.3f}, section {lo}..{hi}"
    left, right = sections["left"], sections["right"]
    assert _resolved("left", segmenter.NODE_NAME) != _resolved("right", segmenter.NODE_NAME)
    assert left.nozzle_spacing_m == right.nozzle_spacing_m
    assert math.isclose(left.nozzle_x, right.nozzle_x, abs_tol=1e-9)
    assert math.isclose(right.right_edge + right.width, left.right_edge, abs_tol=1e-9)
