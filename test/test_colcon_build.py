"""``colcon build`` of the package in a temporary workspace installs what ros2 run/launch need.

The repository's files (those git tracks plus new, not ignored ones; without data/, runs/,
out/) are copied to ``<tmp>/ws/src/crop_weed_seg`` and built with the colcon that sits next to
this Python (requirements-dev.txt pins colcon-core and colcon-ros). ``ros2 run`` looks for
executables in ``install/<pkg>/lib/<pkg>``, ``ros2 launch`` for launch files in
``share/<pkg>/launch``, and ``ros2 pkg prefix`` for the ament index marker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import REPO

PKG = "crop_weed_seg"
SKIP_TOP = {".git", ".venv", "data", "runs", "out", "build", "install", "log", ".pytest_cache",
            ".mypy_cache", ".ruff_cache"}
BUILD_TIMEOUT_S = 300

#: console_scripts from setup.py and the module each one runs.
EXECUTABLES = {
    "segmenter_node": "crop_weed_seg/ros/segmenter_node.py",
    "bag_player": "crop_weed_seg/tools/bag_player.py",
    "crop-weed-seg": "crop_weed_seg/tools/cli.py",
}
SHARE_FILES = [
    "package.xml",
    "launch/crop_weed_seg.launch.py",
    "launch/sim.launch.py",
    "config/sim_field.json",
    "config/gz_bridge.yaml",
    "config/crop_weed_seg.yaml",
    "config/fastdds_large_images.xml",
    "models/default/model.onnx",
    "models/default/model.yaml",
]


def _colcon() -> Path | None:
    here = Path(sys.executable).parent / "colcon"
    if here.is_file():
        return here
    found = shutil.which("colcon")
    return Path(found) if found else None


def _source_files() -> list[Path]:
    """Repository files relative to REPO, as git sees the working tree (or a walk without git)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO, capture_output=True, check=True, timeout=60).stdout
        names = [Path(n) for n in out.decode().split("\0") if n]
    except (OSError, subprocess.SubprocessError):
        names = [p.relative_to(REPO) for p in REPO.rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts
                 and not any(part.endswith(".egg-info") for part in p.parts)]
    return [n for n in names if n.parts[0] not in SKIP_TOP and (REPO / n).is_file()]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    colcon = _colcon()
    if colcon is None:
        pytest.skip("colcon is not installed (requirements-dev.txt)")
    ws = tmp_path_factory.mktemp("colcon_ws")
    src = ws / "src" / PKG
    for name in _source_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    env = dict(os.environ, COLCON_HOME=str(ws / "colcon_home"), PYTHONDONTWRITEBYTECODE="1")
    start = time.monotonic()
    proc = subprocess.run([str(colcon), "build", "--base-paths", "src"], cwd=ws, env=env,
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    seconds = time.monotonic() - start
    print(f"colcon build took {seconds:.1f} s")
    return {"ws": ws, "proc": proc, "seconds": seconds,
            "install": ws / "install" / PKG}


def test_colcon_build_succeeds(built: dict) -> None:
    proc = built["proc"]
    assert proc.returncode == 0, f"colcon build failed:\n{proc.stdout[-4000:]}\n{proc.stderr}"


def test_installs_everything_ros2_run_and_launch_look_for(built: dict) -> None:
    install: Path = built["install"]
    missing = []
    lib = install / "lib" / PKG
    for exe in EXECUTABLES:
        path = lib / exe
        if not path.is_file():
            missing.append(f"lib/{PKG}/{exe}")
        elif not os.access(path, os.X_OK):
            missing.append(f"lib/{PKG}/{exe} (not executable)")
    share = install / "share" / PKG
    missing += [f"share/{PKG}/{f}" for f in SHARE_FILES if not (share / f).is_file()]
    marker = install / "share" / "ament_index" / "resource_index" / "packages" / PKG
    if not marker.is_file():
        missing.append(str(marker.relative_to(install)))
    packages = sorted(install.glob(f"**/*-packages/{PKG}/__init__.py"))
    if not packages:
        missing.append(f"lib/python3.*/site-packages/{PKG}")
    else:
        site = packages[0].parent.parent
        missing += [f"{site.relative_to(install)}/{m} (entry point of {exe})"
                    for exe, m in EXECUTABLES.items() if not (site / m).is_file()]
    assert not missing, "not installed: " + ", ".join(missing)


def test_console_scripts_run_with_a_python_that_has_the_dependencies(built: dict) -> None:
    install: Path = built["install"]
    script = install / "lib" / PKG / "crop-weed-seg"
    if not script.is_file():
        pytest.fail(f"{script} not installed:\n{built['proc'].stdout[-2000:]}")
    packages = sorted(install.glob(f"**/*-packages/{PKG}/__init__.py"))
    assert packages, "package not installed"
    site = packages[0].parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(site)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    for exe in EXECUTABLES:
        first = (install / "lib" / PKG / exe).read_text().splitlines()[0]
        assert first.startswith("#!"), f"{exe}: no shebang: {first!r}"
        interpreter = first[2:].strip().split()[0]
        probe = subprocess.run(
            [interpreter, "-c", "import numpy, cv2, yaml, onnxruntime, crop_weed_seg; "
             "print(crop_weed_seg.__file__)"],
            env=env, cwd=built["ws"], capture_output=True, text=True, timeout=120)
        assert probe.returncode == 0, f"{exe}: {interpreter} cannot import the deps:\n" \
                                      + probe.stderr
        # the installed copy, not the repository's editable install
        assert Path(probe.stdout.strip()).resolve().is_relative_to(install.resolve()), \
            probe.stdout
    run = subprocess.run([str(script), "--help"], env=env, cwd=built["ws"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "usage" in run.stdout.lower()
