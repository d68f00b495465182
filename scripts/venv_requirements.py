"""Requirement and constraint files for a venv on a sourced system ROS 2 (used by the Makefile).

With a system ROS 2 the venv is made with ``--system-site-packages`` and must keep the system's
numpy and OpenCV: rclpy, the message packages and cv_bridge are built against them, and a second
numpy in the venv (pip's pins are NumPy 2) shadows the one they were compiled for. So, for each
module the system Python (the one running this script) provides:

- ``numpy``: its pin is left out of every file, and the constraints pin numpy to the system's
  own version. pip then sees numpy as already satisfied, and a requirement that needs another
  numpy makes pip fail (ResolutionImpossible) instead of installing a second one.
- ``cv2``: the OpenCV pins are left out, and the constraints allow no version of any pip OpenCV
  (``<0``), so nothing can pull one in.

Usage: ``python scripts/venv_requirements.py --out DIR FILE...`` writes ``DIR/<name of FILE>``
for each FILE (a file named ``constraints*.txt`` also gets the system pins).
``--describe`` prints what the system provides (the Makefile keys its stamps on it).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

#: Import name -> the pip distributions that provide it.
SYSTEM_MODULES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "cv2": ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
            "opencv-contrib-python-headless"),
}

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _version(module: str) -> str:
    """The installed distribution's version (what pip compares), else ``__version__``."""
    from importlib import metadata

    try:
        return metadata.version(SYSTEM_MODULES[module][0])
    except metadata.PackageNotFoundError:
        return str(getattr(importlib.import_module(module), "__version__", ""))


def system_provided() -> dict[str, str]:
    """Import name -> version ('' when unknown) of the SYSTEM_MODULES this Python has."""
    found = {}
    for module in SYSTEM_MODULES:
        if importlib.util.find_spec(module) is not None:
            found[module] = _version(module) if module == "numpy" else ""
    return found


def dropped_distributions(provided: dict[str, str]) -> set[str]:
    return {_normalise(d) for module in provided for d in SYSTEM_MODULES[module]}


def filter_lines(text: str, dropped: set[str]) -> list[str]:
    """The lines of a requirements/constraints file, without those naming a ``dropped``
    distribution (comments and blank lines kept)."""
    kept = []
    for line in text.splitlines():
        match = _NAME.match(line.split("#", 1)[0])
        if match and _normalise(match.group(1)) in dropped:
            kept.append(f"# system-provided, left out: {line.strip()}")
        else:
            kept.append(line)
    return kept


def system_pins(provided: dict[str, str]) -> list[str]:
    pins = []
    if "numpy" in provided:
        if provided["numpy"]:
            pins.append(f"numpy=={provided['numpy']}  # the system's numpy, never replaced")
    if "cv2" in provided:
        pins += [f"{d}<0  # the system's OpenCV (cv2) is used: no pip OpenCV"
                 for d in SYSTEM_MODULES["cv2"]]
    return pins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="folder for the filtered files")
    parser.add_argument("--describe", action="store_true",
                        help="print what the system provides, e.g. 'numpy=1.26.4 cv2'")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    provided = system_provided()
    if args.describe:
        print(" ".join(f"{m}={v}" if v else m for m, v in provided.items()) or "none")
        return 0
    if args.out is None or not args.files:
        parser.error("--out DIR and at least one FILE are needed")
    dropped = dropped_distributions(provided)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        lines = filter_lines(path.read_text("utf-8"), dropped)
        if path.name.startswith("constraints"):
            lines += system_pins(provided)
        (args.out / path.name).write_text("\n".join(lines) + "\n", "utf-8")
    if provided:
        print(f"system ROS 2: keeping the system's {', '.join(provided)} (not installed by pip)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
