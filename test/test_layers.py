"""The dependency rule: the core imports no ROS, torch or TensorRT at module level."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import crop_weed_seg

#: Subpackages allowed to import heavy or ROS modules: everything else is the core.
NON_CORE = ("crop_weed_seg.ros", "crop_weed_seg.tools", "crop_weed_seg.nn", "crop_weed_seg.training")
FORBIDDEN = ("torch", "rclpy", "tensorrt", "onnxruntime", "matplotlib")


def core_modules() -> list[str]:
    names = ["crop_weed_seg"]
    for info in pkgutil.walk_packages(crop_weed_seg.__path__, "crop_weed_seg."):
        if not info.name.startswith(NON_CORE):
            names.append(info.name)
    return names


def test_core_modules_import_no_ros_torch_or_tensorrt() -> None:
    modules = core_modules()
    assert "crop_weed_seg.synthetic.field" in modules and "crop_weed_seg.data.datasets" in modules
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_guard_would_notice_a_forbidden_import() -> None:
    code = "import sys, crop_weed_seg.nn.network; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
