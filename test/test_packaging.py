"""The ament_python packaging: package.xml, setup.py, setup.cfg and the ament index marker agree
with each other and with the code, and every rosdep key is one we checked exists."""

from __future__ import annotations

import ast
import configparser
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from support import REPO as ROOT

PACKAGE = "crop_weed_seg"

#: Every dependency key package.xml may use. ROS packages resolve through the rosdistro
#: distribution file; the python3-* keys were checked against rosdistro's rosdep/python.yaml.
#: Adding a key here means checking that it exists (``rosdep resolve KEY``) first.
ALLOWED_ROSDEP_KEYS = {
    # ROS 2 packages
    "rclpy", "builtin_interfaces", "std_msgs", "sensor_msgs", "geometry_msgs", "nav_msgs",
    "visualization_msgs", "diagnostic_msgs", "ament_index_python", "launch", "launch_ros",
    "ament_flake8", "ament_pep257", "ament_copyright",
    # rosdep/python.yaml
    "python3-numpy", "python3-opencv", "python3-yaml", "python3-tqdm",
    "python3-onnxruntime-pip", "python3-pytest",
}

DEPENDENCY_TAGS = ("depend", "build_depend", "build_export_depend", "buildtool_depend",
                   "buildtool_export_depend", "exec_depend", "test_depend", "doc_depend")


@pytest.fixture(scope="module")
def manifest() -> ET.Element:
    return ET.parse(ROOT / "package.xml").getroot()


def _text(manifest: ET.Element, tag: str) -> str:
    element = manifest.find(tag)
    assert element is not None and element.text, f"package.xml has no <{tag}>"
    return element.text.strip()


def _init_version() -> str | None:
    init = ROOT / PACKAGE / "__init__.py"
    if not init.is_file():
        return None
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", init.read_text("utf-8"), re.M)
    return match.group(1) if match else None


def test_package_xml_is_format_3_with_name_version_maintainer_and_license(
        manifest: ET.Element) -> None:
    assert manifest.tag == "package"
    assert manifest.get("format") == "3"
    assert _text(manifest, "name") == PACKAGE
    assert re.fullmatch(r"\d+\.\d+\.\d+", _text(manifest, "version"))
    assert _text(manifest, "description")
    maintainer = manifest.find("maintainer")
    assert maintainer is not None
    assert maintainer.get("email") == "maintainers@crop-weed-seg.invalid"
    assert _text(manifest, "license") == "Apache-2.0"


def test_package_xml_exports_the_ament_python_build_type(manifest: ET.Element) -> None:
    build_type = manifest.find("export/build_type")
    assert build_type is not None and build_type.text == "ament_python"


def test_every_rosdep_key_is_from_the_checked_list(manifest: ET.Element) -> None:
    keys = [(e.tag, (e.text or "").strip()) for tag in DEPENDENCY_TAGS for e in manifest.iter(tag)]
    assert keys, "package.xml declares no dependencies"
    unknown = sorted({key for _, key in keys} - ALLOWED_ROSDEP_KEYS)
    assert not unknown, f"rosdep keys not in the checked list: {unknown}"
    assert len(keys) == len(set(keys)), "a dependency is declared twice"


def test_runtime_dependencies_cover_ros_and_the_core_libraries(manifest: ET.Element) -> None:
    runtime = {(e.text or "").strip() for tag in ("depend", "exec_depend")
               for e in manifest.iter(tag)}
    assert {"rclpy", "sensor_msgs", "std_msgs", "launch", "launch_ros", "python3-numpy",
            "python3-opencv", "python3-yaml"} <= runtime


def test_names_agree_between_package_xml_and_setup_py(manifest: ET.Element,
                                                      setup_kwargs: dict[str, Any]) -> None:
    assert setup_kwargs["name"] == _text(manifest, "name") == PACKAGE


def test_versions_agree_between_package_xml_setup_py_and_the_package(
        manifest: ET.Element, setup_kwargs: dict[str, Any]) -> None:
    version = _text(manifest, "version")
    assert setup_kwargs["version"] == version
    init_version = _init_version()
    if init_version is not None:
        assert init_version == version


def test_setup_cfg_installs_scripts_where_ros2_run_finds_them() -> None:
    config = configparser.ConfigParser(interpolation=None)
    assert config.read(ROOT / "setup.cfg")
    assert config.get("develop", "script_dir") == f"$base/lib/{PACKAGE}"
    assert config.get("install", "install_scripts") == f"$base/lib/{PACKAGE}"


def test_ament_resource_marker_exists_and_is_installed(setup_kwargs: dict[str, Any]) -> None:
    marker = ROOT / "resource" / PACKAGE
    assert marker.is_file()
    data_files = dict(setup_kwargs["data_files"])
    assert data_files["share/ament_index/resource_index/packages"] == [f"resource/{PACKAGE}"]
    assert data_files[f"share/{PACKAGE}"] == ["package.xml"]


def test_data_files_are_existing_relative_paths(setup_kwargs: dict[str, Any]) -> None:
    destinations = [destination for destination, _ in setup_kwargs["data_files"]]
    assert {f"share/{PACKAGE}/launch", f"share/{PACKAGE}/config",
            f"share/{PACKAGE}/models/default"} <= set(destinations)
    for destination, files in setup_kwargs["data_files"]:
        assert not Path(destination).is_absolute()
        for name in files:
            assert not Path(name).is_absolute(), name
            assert (ROOT / name).is_file(), f"{name} (installed to {destination}) is missing"


def test_console_script_points_at_an_existing_main(setup_kwargs: dict[str, Any]) -> None:
    scripts = setup_kwargs["entry_points"]["console_scripts"]
    assert "crop-weed-seg = crop_weed_seg.tools.cli:main" in scripts
    for entry in scripts:
        name, target = (part.strip() for part in entry.split("="))
        module, function = target.split(":")
        source = ROOT / Path(*module.split(".")).with_suffix(".py")
        if not source.is_file():
            pytest.skip(f"{source.relative_to(ROOT)} is not written yet")
        tree = ast.parse(source.read_text("utf-8"))
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert function in functions, f"{name}: {module} has no function {function}"


def test_every_python_subpackage_is_installed(setup_kwargs: dict[str, Any]) -> None:
    """A folder of modules without __init__.py would be silently left out of the install."""
    installed = set(setup_kwargs["packages"])
    assert PACKAGE in installed
    for folder in sorted((ROOT / PACKAGE).rglob("*")):
        if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py")):
            dotted = ".".join(folder.relative_to(ROOT).parts)
            assert dotted in installed, f"{dotted} has modules but no __init__.py"


def test_install_requires_are_unpinned_and_python_is_3_10_or_newer(
        setup_kwargs: dict[str, Any]) -> None:
    requirements = setup_kwargs["install_requires"]
    assert {"numpy", "opencv-python-headless", "pyyaml", "onnxruntime"} <= set(requirements)
    for requirement in requirements:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+", requirement), f"{requirement} is pinned"
    assert setup_kwargs["python_requires"] == ">=3.10"
