"""What the tests share: paths, model folders, ROS and DDS helpers, node harness, fakes.

- :mod:`support.models`: an untrained but complete model folder (torch);
- :mod:`support.ros`: ROS contexts, domain ids, spinning, parameter calls;
- :mod:`support.nodes`: a node in its own process, a probe node, message builders;
- :mod:`support.dds`: Fast DDS environments and the image flood (``image_flood.py``, run as a
  separate process);
- :mod:`support.fake_tensorrt`: a CPU fake of ``tensorrt`` backed by ONNX Runtime (test code:
  TensorRT cannot run here);
- :mod:`support.fake_launch`: recording fakes of ``launch``/``launch_ros`` for the launch-file
  tests (test code: they cannot be installed here).
"""

from __future__ import annotations

from pathlib import Path

#: The repository root.
REPO = Path(__file__).resolve().parents[2]
#: Test inputs and golden outputs (sample bag, goldens, label-format samples).
FIXTURES = REPO / "test" / "fixtures"
