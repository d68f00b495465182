"""crop_weed_seg: per-pixel soil / crop / weed segmentation for precision-agriculture robots.

The package root is the pure core: it imports numpy and OpenCV only. ROS lives in
``crop_weed_seg.ros``, the command line in ``crop_weed_seg.tools`` and everything that needs
PyTorch (network, training, export) in ``crop_weed_seg.nn``.
"""

__version__ = "0.1.0"
