"""ament_python build of crop_weed_seg (``colcon build``), also installable with ``pip install .``.

Dependencies are listed here by role, without version pins; the pinned versions live in the
requirement file of the same role (test/test_packaging.py checks that they agree):

- ``install_requires``: the runtime (the node, predict, eval, bag, bench, ``make run``),
  pinned in requirements.txt;
- ``extras_require["train"]`` (``pip install .[train]``): training and export (torch, ONNX
  export and FP16 conversion, plots), pinned in requirements-train.txt.

The ROS dependencies are declared in package.xml.
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


#: The node, predict, eval, bag, bench, simulate (requirements.txt).
RUNTIME_REQUIRES = ["numpy", "opencv-python-headless", "pyyaml", "onnxruntime", "tqdm", "rosbags"]
#: train, export, quantize, the torch backend, training plots (requirements-train.txt).
TRAIN_REQUIRES = ["torch", "safetensors", "onnx", "matplotlib", "onnxconverter-common"]

data_files = [
    ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
    ("share/" + package_name, ["package.xml"]),
    ("share/" + package_name + "/launch", _files("launch/*.launch.py")),
    ("share/" + package_name + "/config", _files("config/*.yaml", "config/*.xml", "config/*.json",
                                                     "config/*.rviz")),
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
    install_requires=RUNTIME_REQUIRES,
    python_requires=">=3.10",
    zip_safe=True,
    maintainer="crop_weed_seg maintainers",
    maintainer_email="maintainers@crop-weed-seg.invalid",
    description="Per-pixel soil / crop / weed segmentation for agricultural robots (ROS 2).",
    license="Apache-2.0",
    license_files=["LICENSE"],
    tests_require=["pytest"],  # for the older setuptools of ROS 2 Humble / Jazzy
    # setuptools >= 72 ignores tests_require (a warning)
    extras_require={"train": TRAIN_REQUIRES, "test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "crop-weed-seg = crop_weed_seg.tools.cli:main",
            "segmenter_node = crop_weed_seg.ros.segmenter_node:main",
            "bag_player = crop_weed_seg.tools.bag_player:main",
            "spray_planner = crop_weed_seg.ros.spray_planner_node:main",
            "field_sim = crop_weed_seg.ros.field_sim_node:main",
            "sim_scorer = crop_weed_seg.ros.scorer_node:main",
        ],
    },
)
