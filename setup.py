"""ament_python build of crop_weed_seg (``colcon build``), also installable with ``pip install .``.

Dependencies are listed here without version pins; pinned versions live in the requirements
files. The ROS dependencies are declared in package.xml.
"""

import os
from glob import glob

from setuptools import find_packages, setup

package_name = "crop_weed_seg"
HERE = os.path.dirname(os.path.abspath(__file__))


def _files(*patterns: str) -> list:
    """Files matching ``patterns`` relative to this folder (setuptools wants relative paths)."""
    found = set()
    for pattern in patterns:
        for path in glob(pattern, root_dir=HERE):
            if os.path.isfile(os.path.join(HERE, path)):
                found.add(path)
    return sorted(found)


data_files = [
    ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
    ("share/" + package_name, ["package.xml"]),
    ("share/" + package_name + "/launch", _files("launch/*.launch.py")),
    ("share/" + package_name + "/config", _files("config/*.yaml", "config/*.xml")),
    ("share/" + package_name + "/models/default", _files(
        "models/default/model.yaml",
        "models/default/model.onnx",
        "models/default/*.safetensors",
        "models/default/README.md",
        "models/default/*.png",
        "models/default/*.json",
    )),
]

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=[package_name, package_name + ".*"]),
    data_files=data_files,
    install_requires=["numpy", "opencv-python-headless", "pyyaml", "onnx", "onnxruntime", "tqdm"],
    python_requires=">=3.10",
    zip_safe=True,
    maintainer="crop_weed_seg maintainers",
    maintainer_email="maintainers@crop-weed-seg.invalid",
    description="Per-pixel soil / crop / weed segmentation for agricultural robots (ROS 2).",
    license="Apache-2.0",
    license_files=["LICENSE"],
    tests_require=["pytest"],  # for the older setuptools of ROS 2 Humble / Jazzy
    extras_require={"test": ["pytest"]},  # setuptools >= 72 ignores tests_require (a warning)
    entry_points={
        "console_scripts": [
            "crop-weed-seg = crop_weed_seg.tools.cli:main",
            "segmenter_node = crop_weed_seg.ros.segmenter_node:main",
            "bag_player = crop_weed_seg.tools.bag_player:main",
            "spray_planner = crop_weed_seg.ros.spray_planner_node:main",
        ],
    },
)
