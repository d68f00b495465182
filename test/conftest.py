"""Shared fixtures: tiny synthetic datasets, setup.py's arguments, in-process ROS nodes.

ROS environment for the whole session (set before any DDS participant exists, because Fast DDS
reads its profiles file once per process): a session-unique ``ROS_DOMAIN_ID`` so parallel runs
on one machine do not see each other, discovery limited to this machine, and the package's
Fast DDS profile so large images cross process boundaries (README, "Large images over DDS").
Subprocesses started by tests inherit all three.
"""

from __future__ import annotations

import os
import runpy
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import setuptools

from crop_weed_seg.ros.dds_profile import set_default_profile
from crop_weed_seg.synthetic import PRESETS
from crop_weed_seg.synthetic.dataset_writer import write_dataset

from support import REPO

os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
set_default_profile(os.environ, REPO / "config" / "fastdds_large_images.xml")


@pytest.fixture(scope="session")
def tiny_field(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 synthetic 128×160 frames in the folder layout."""
    out = tmp_path_factory.mktemp("tiny_field")
    write_dataset(out, replace(PRESETS["train"], height=128, width=160), seed=21, count=12,
                  workers=1)
    return out


@pytest.fixture(scope="session")
def setup_kwargs() -> dict[str, Any]:
    """The keyword arguments setup.py passes to setuptools.setup, without building anything."""
    captured: dict[str, Any] = {}
    original = setuptools.setup
    setuptools.setup = lambda **kwargs: captured.update(kwargs)  # type: ignore[assignment]
    try:
        runpy.run_path(str(REPO / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = original
    assert captured, "setup.py did not call setuptools.setup"
    return captured


@pytest.fixture(scope="session")
def setup_console_scripts(setup_kwargs: dict[str, Any]) -> dict[str, str]:
    """console script name -> 'module:function'."""
    scripts = {}
    for line in setup_kwargs["entry_points"]["console_scripts"]:
        name, target = (part.strip() for part in line.split("=", 1))
        scripts[name] = target
    return scripts


@pytest.fixture()
def ros_node_factory() -> Iterator[Callable[..., Any]]:
    """Build SegmenterNodes in this process, each in its own rclpy context (command-line style
    arguments: remaps, ``--params-file``, ``-p``); all are shut down after the test."""
    pytest.importorskip("rclpy")
    import rclpy

    from crop_weed_seg.ros.segmenter_node import SegmenterNode

    made: list[tuple[Any, Any]] = []

    def make(args: list[str] | None = None) -> SegmenterNode:
        context = rclpy.Context()
        rclpy.init(args=["segmenter_node"] + list(args or []), context=context)
        try:
            node = SegmenterNode(context=context)
        except BaseException:
            rclpy.try_shutdown(context=context)
            raise
        made.append((node, context))
        return node

    yield make
    for node, context in made:
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
