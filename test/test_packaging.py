"""The ament_python packaging: package.xml, setup.py, setup.cfg and the ament index marker agree
with each other and with the code, and every rosdep key is one we checked exists."""

from __future__ import annotations

import ast
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
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
    "rclpy", "builtin_interfaces", "rcl_interfaces", "rosgraph_msgs", "std_msgs", "sensor_msgs",
    "geometry_msgs", "nav_msgs", "visualization_msgs", "diagnostic_msgs", "ament_index_python",
    "launch", "launch_ros",
    # geometry2 (tf2_msgs, tf2_ros) is released for every ROS 2 distribution; ros_gz for
    # humble, jazzy and kilted (the launched-only packages below)
    "tf2_msgs", "tf2_ros", "ros_gz_bridge", "ros_gz_sim",
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
    for requirement in requirements + setup_kwargs["extras_require"]["train"]:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+", requirement), f"{requirement} is pinned"
    assert setup_kwargs["python_requires"] == ">=3.10"


# --- dependencies by role ------------------------------------------------------------------------

#: Third-party import name (top level) -> its pip distribution; None: not from pip (JetPack).
IMPORT_DISTRIBUTIONS: dict[str, str | None] = {
    "numpy": "numpy", "cv2": "opencv-python-headless", "yaml": "pyyaml", "tqdm": "tqdm",
    "onnxruntime": "onnxruntime", "rosbags": "rosbags", "torch": "torch",
    "safetensors": "safetensors", "onnx": "onnx", "matplotlib": "matplotlib",
    "onnxconverter_common": "onnxconverter-common",
    "tensorrt": None, "cuda": None,  # JetPack / cuda-python on the GPU machine, both optional
}
#: Python libraries with a rosdep key in package.xml (the others are pip-only, see its comment).
ROSDEP_PYTHON_KEYS = {"numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml",
                      "tqdm": "python3-tqdm", "onnxruntime": "python3-onnxruntime-pip"}
#: Training/export packages: never needed by the nodes or the runtime tools.
TRAIN_ONLY = ("torch", "safetensors", "onnx", "matplotlib", "onnxconverter_common")


def _name(requirement_line: str) -> str | None:
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement_line.split("#", 1)[0])
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


def _pins(path: Path) -> dict[str, str]:
    """name -> the requirement line of each requirement in ``path``."""
    pins = {}
    for line in path.read_text("utf-8").splitlines():
        name = _name(line)
        if name:
            pins[name] = line.split("#", 1)[0].strip()
    return pins


def _third_party_imports(paths: list[Path]) -> dict[str, set[str]]:
    """Top-level name -> the files importing it (anywhere in them), stdlib and ours left out."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != PACKAGE:
                    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                    found.setdefault(top, set()).add(str(where))
    return found


def _code_files() -> list[Path]:
    return sorted((ROOT / PACKAGE).rglob("*.py")) + sorted((ROOT / "launch").glob("*.py"))


def test_setup_py_roles_match_the_pinned_requirement_files(setup_kwargs: dict[str, Any]) -> None:
    """install_requires <-> requirements.txt, extras_require["train"] <-> requirements-train.txt,
    every pin exact, and no package in two roles."""
    runtime = {_name(r) for r in setup_kwargs["install_requires"]}
    train = {_name(r) for r in setup_kwargs["extras_require"]["train"]}
    runtime_pins = _pins(ROOT / "requirements.txt")
    train_pins = _pins(ROOT / "requirements-train.txt")
    # setuptools: the build backend of the editable install, not imported by the package.
    assert set(runtime_pins) - {"setuptools"} == runtime
    assert set(train_pins) == train
    assert not runtime & train
    files = ["requirements.txt", "requirements-train.txt", "requirements-dev.txt",
             "requirements-ros.txt", "constraints.txt"]
    seen: dict[str, str] = {}
    for file in files:
        for name, line in _pins(ROOT / file).items():
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!]+", line), f"{file}: {line}"
            assert name not in seen, f"{name} is pinned in {seen.get(name)} and {file}"
            seen[name] = file
    assert train_pins["torch"] == "torch==2.13.0"  # ENVIRONMENT.md: any other downloads CUDA


#: ROS packages the launch files start (executables), never imported: (launch file, the text
#: in it that starts one).
LAUNCHED_ONLY = {
    "ros_gz_bridge": ("launch/sim.launch.py", '"ros_gz_bridge", "parameter_bridge"'),
    "ros_gz_sim": ("launch/sim.launch.py", '["gz", "sim"'),    # ros_gz_sim brings gz sim
}


def test_every_third_party_import_has_a_role(setup_kwargs: dict[str, Any],
                                             manifest: ET.Element) -> None:
    """Each import of the code is a ROS package in package.xml, a Python library in setup.py
    (runtime or train) with its rosdep key where it has one, or JetPack's."""
    imports = _third_party_imports(_code_files())
    runtime = {_name(r) for r in setup_kwargs["install_requires"]}
    train = {_name(r) for r in setup_kwargs["extras_require"]["train"]}
    exec_depends = {(e.text or "").strip() for tag in ("depend", "exec_depend")
                    for e in manifest.iter(tag)}
    ros = {name: files for name, files in imports.items() if name not in IMPORT_DISTRIBUTIONS}
    undeclared = {name: sorted(files) for name, files in ros.items() if name not in exec_depends}
    assert not undeclared, f"ROS packages imported but not in package.xml: {undeclared}"
    ros_keys = {k for k in exec_depends if not k.startswith("python3-")}
    for name, (launch_file, text) in LAUNCHED_ONLY.items():
        assert text in (ROOT / launch_file).read_text("utf-8"), f"{launch_file} no longer " \
            f"starts {name} ({text!r}): drop it from package.xml and LAUNCHED_ONLY"
    assert ros_keys - set(ros) - set(LAUNCHED_ONLY) == set(), \
        "package.xml declares ROS packages nothing imports"
    for name, files in imports.items():
        if name in IMPORT_DISTRIBUTIONS and IMPORT_DISTRIBUTIONS[name] is not None:
            assert _name(str(IMPORT_DISTRIBUTIONS[name])) in runtime | train, \
                f"{name} (imported in {sorted(files)}) is in no role of setup.py"
    for name, key in ROSDEP_PYTHON_KEYS.items():
        assert _name(IMPORT_DISTRIBUTIONS[name] or "") in runtime
        assert key in exec_depends, f"{name} is a runtime library: package.xml needs {key}"
    assert not set(TRAIN_ONLY) & set(ROSDEP_PYTHON_KEYS)


def test_the_checker_would_notice_an_undeclared_ros_import(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from tf2_msgs.msg import TFMessage\n    import os\n"
                      "    from crop_weed_seg.errors import BagError\n")
    assert _third_party_imports([source]) == {"tf2_msgs": {str(source)}}


#: The runtime's entry points: importing them must not need a training package.
RUNTIME_MODULES = (
    "crop_weed_seg.ros.segmenter_node", "crop_weed_seg.ros.spray_planner_node",
    "crop_weed_seg.ros.field_sim_node", "crop_weed_seg.ros.scorer_node",
    "crop_weed_seg.tools.sim_loop",
    "crop_weed_seg.tools.replay_demo", "crop_weed_seg.tools.bag_player",
    "crop_weed_seg.tools.predict_cmd", "crop_weed_seg.tools.eval_cmd",
    "crop_weed_seg.tools.bag_cmd", "crop_weed_seg.tools.bench_cmd",
    "crop_weed_seg.tools.info_cmd", "crop_weed_seg.tools.simulate_cmd",
    "crop_weed_seg.tools.build_engine_cmd", "crop_weed_seg.tools.cli",
)


def test_runtime_entry_points_import_without_the_training_packages() -> None:
    code = textwrap.dedent(f"""
        import importlib, json, sys
        for name in {TRAIN_ONLY!r}:
            sys.modules[name] = None  # import raises ImportError, as on a runtime-only install
        failed = {{}}
        for module in {RUNTIME_MODULES!r}:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                failed[module] = str(exc)
        print(json.dumps(failed))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {}


def test_plots_without_matplotlib_say_what_to_install(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import numpy as np, pathlib\n"
            "from crop_weed_seg.data.plots import plot_confusion\n"
            "from crop_weed_seg.errors import ConfigError\n"
            "try:\n"
            f"    plot_confusion(np.eye(3), pathlib.Path({str(tmp_path)!r}) / 'c.png')\n"
            "except ConfigError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "requirements-train.txt" in out.stdout


# --- the Makefile's pip commands per role and with a system ROS 2 --------------------------------

FAKE_PIP = """
import json, sys
args = sys.argv[2:]
record = {"args": args, "requirements": [], "constraints": []}
for flag, key in (("-r", "requirements"), ("-c", "constraints")):
    for i, arg in enumerate(args):
        if arg == flag:
            with open(args[i + 1]) as handle:
                record[key] += [line.split("#")[0].strip() for line in handle
                                if line.split("#")[0].strip()]
record["requirements"] += [a for a in args[1:] if not a.startswith("-") and a != "."
                           and args[args.index(a) - 1] not in ("-r", "-c")]
with open(sys.argv[1], "a") as log:
    log.write(json.dumps(record) + "\\n")
"""


def _make(tmp_path: Path, target: str, system_ros: bool) -> list[dict[str, list[str]]]:
    """Run ``make TARGET`` with a fake pip that records what it is asked to install, in a venv
    folder under tmp_path; with ``system_ros``, a stand-in sourced ROS 2: ROS_DISTRO set and a
    PYTHONPATH with a fake rclpy, a fake numpy 1.26.4 (with its dist-info, as Debian's
    python3-numpy has) and a fake cv2."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "pyvenv.cfg").write_text(
        f"include-system-site-packages = {'true' if system_ros else 'false'}\n")
    fake_pip = tmp_path / "fake_pip.py"
    fake_pip.write_text(FAKE_PIP)
    log = tmp_path / "pip.log"
    env = {k: v for k, v in os.environ.items()
           if k not in ("ROS_DISTRO", "PYTHONPATH", "MAKEFLAGS", "MFLAGS")}
    if system_ros:
        system = tmp_path / "system_site"
        for name, text in (("rclpy", ""), ("numpy", "__version__ = '1.26.4'\n"), ("cv2", "")):
            (system / name).mkdir(parents=True)
            (system / name / "__init__.py").write_text(text)
        dist_info = system / "numpy-1.26.4.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\n"
                                            "Version: 1.26.4\n")
        env.update(ROS_DISTRO="jazzy", PYTHONPATH=str(system))
    out = subprocess.run(
        ["make", "--no-print-directory", target, f"VENV={venv}", f"PYTHON={sys.executable}",
         f"PIP={sys.executable} {fake_pip} {log}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    # A second run installs nothing: the stamps are current.
    again = subprocess.run(
        ["make", "--no-print-directory", target, f"VENV={venv}", f"PYTHON={sys.executable}",
         f"PIP={sys.executable} {fake_pip} {log}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and len(log.read_text().splitlines()) == len(calls)
    return calls


def _requested(calls: list[dict[str, list[str]]]) -> dict[str, str]:
    return {str(_name(r)): r for call in calls for r in call["requirements"]}


def test_make_run_installs_the_runtime_and_ros_only(tmp_path: Path) -> None:
    calls = _make(tmp_path, "venv-runtime", system_ros=False)
    requested = _requested(calls)
    assert requested["numpy"] == "numpy==2.4.6"
    assert {"onnxruntime", "opencv-python-headless", "rosbags", "ros-rclpy"} <= set(requested)
    assert not {"torch", "onnx", "matplotlib", "safetensors", "pytest"} & set(requested)
    assert all("constraints.txt" in " ".join(call["args"]) for call in calls
               if "--no-deps" not in call["args"])


def test_make_test_installs_every_role(tmp_path: Path) -> None:
    requested = _requested(_make(tmp_path, "venv", system_ros=False))
    assert {"numpy", "onnxruntime", "ros-rclpy", "torch", "onnx", "matplotlib", "pytest",
            "mypy"} <= set(requested)


def test_with_a_system_ros_the_makefile_never_asks_pip_for_numpy_or_opencv(
        tmp_path: Path) -> None:
    calls = _make(tmp_path, "venv", system_ros=True)
    requested = _requested(calls)
    assert {"onnxruntime", "rosbags", "torch", "pytest"} <= set(requested)
    assert not {"numpy", "opencv-python-headless", "opencv-python"} & set(requested)
    assert not any(name.startswith("ros-") for name in requested), "ROS wheels over a system ROS"
    for call in calls:
        if "--no-deps" in call["args"]:
            continue
        constraints = {str(_name(c)): c for c in call["constraints"]}
        assert constraints["numpy"] == "numpy==1.26.4", call  # the system's: never replaced
        assert constraints["opencv-python-headless"] == "opencv-python-headless<0", call
