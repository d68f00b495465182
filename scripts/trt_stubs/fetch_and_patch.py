#!/usr/bin/env python3
"""Fetch the ``tensorrt-stubs`` wheels and patch a copy so that ``mypy --strict`` accepts them.

Development tooling, not part of the package. The stubs describe the real TensorRT Python API
(10.8 ... 10.13), which lets mypy check ``crop_weed_seg/backends/tensorrt_backend.py`` on a
machine without TensorRT (docs/TENSORRT.md, "Verification ladder", step 1).

The wheel is never installed: ``pip install tensorrt-stubs`` would pull in the real TensorRT.
``pip download --no-deps`` fetches it, this script unpacks ``tensorrt/`` and ``tensorrt_bindings/``
into ``<dest>/<version>/`` (used through ``MYPYPATH``) and applies these fixes:

- layout: the wheel ships ``tensorrt/__init__.pyi`` without ``py.typed`` (only its helper
  package ``tensorrt_stubs`` has one), so an installed copy is ignored by mypy; a plain folder
  on ``MYPYPATH`` needs no ``py.typed``;
- parameters named ``in`` (a keyword: a syntax error) are renamed ``in_``;
- a parameter without default after defaulted ones (``add_scale_nd``) gets its ``= ...``
  removed from the earlier ones (positional order is what the binding takes);
- the module-level ``bool: DataType`` shadows the builtin, so every ``-> bool`` in the stub
  would read as ``DataType``: it is renamed ``bool_`` (our code never uses ``trt.bool``);
- ``typing_extensions`` and ``capsule`` are used without being imported / defined;
- ``Dims`` parameters accept tuples and lists of ints, as the binding does (pybind11 implicit
  conversion): ``set_input_shape(name, (1, 3, 384, 512))``;
- ``Runtime.deserialize_cuda_engine`` and ``Builder.build_serialized_network`` return None on
  failure: their return types become ``... | None`` so mypy insists on the check.

Usage: ``python scripts/trt_stubs/fetch_and_patch.py [--dest .venv/trt-stubs] [--wheels DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

#: Two ends of the range the stubs exist for (10.8 is the oldest on PyPI; 10.13 is JetPack 7.0).
VERSIONS = ("10.8.0.43.1", "10.13.0.35.1")
REPO = Path(__file__).resolve().parents[2]
DEFAULT_DEST = REPO / ".venv" / "trt-stubs"
PACKAGES = ("tensorrt", "tensorrt_bindings")
MARKER = "PATCHED"

_DIMS_LIKE = "_DimsLike"
_PRELUDE = (
    "import typing_extensions\n"
    "capsule = typing.Any\n"
    f"{_DIMS_LIKE} = typing.Union[Dims, typing.Sequence[int]]  # patched: tuples are accepted\n"
)


def script_digest() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def download(version: str, into: Path) -> Path:
    """``pip download --no-deps tensorrt-stubs==version`` into ``into``; the wheel's path."""
    into.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "-q",
           "--no-deps", "--only-binary", ":all:", f"tensorrt-stubs=={version}", "-d", str(into)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(into.glob(f"tensorrt_stubs-{version}-*.whl"))
    if result.returncode != 0 or not wheels:
        raise SystemExit(f"could not download tensorrt-stubs=={version} (needs the package "
                         f"registry):\n{result.stderr.strip()}")
    return wheels[0]


def _fix_in_params(text: str) -> str:
    return re.sub(r"(?m)^(\s*def \w+\(.*?)\bin: ", r"\1in_: ", text)


def _fix_default_order(text: str) -> str:
    """In a ``def`` line, drop ``= default`` from parameters that precede a non-default one."""
    out = []
    for line in text.splitlines(keepends=True):
        m = re.match(r"^(\s*def \w+\()(.*)(\) -> .*)$", line.rstrip("\n"))
        if m and "=" in m.group(2) and "*" not in m.group(2):
            params = [p.strip() for p in m.group(2).split(", ")]
            has_default = ["=" in p for p in params]
            if any(d and not later for i, d in enumerate(has_default)
                   for later in has_default[i + 1:]):
                last_plain = max(i for i, d in enumerate(has_default) if not d)
                params = [p.split(" = ")[0] if i < last_plain else p
                          for i, p in enumerate(params)]
                line = f"{m.group(1)}{', '.join(params)}{m.group(3)}\n"
        out.append(line)
    return "".join(out)


def _fix_bool(text: str) -> str:
    text = re.sub(r"(?m)^bool: ", "bool_: ", text)
    return text.replace("'bool', ", "'bool_', ")


def _fix_dims_params(text: str) -> str:
    def params(match: re.Match[str]) -> str:
        head, args, tail = match.group(1), match.group(2), match.group(3)
        return head + re.sub(r": Dims\b(?!\w)", f": {_DIMS_LIKE}", args) + tail
    return re.sub(r"(?m)^(\s*def \w+\()(.*)(\) -> .*)$", params, text)


def _fix_optional_returns(text: str) -> str:
    text = re.sub(r"(def deserialize_cuda_engine\(self, [^)]*\)) -> ICudaEngine:",
                  r"\1 -> ICudaEngine | None:", text)
    return re.sub(r"(def build_serialized_network\(self, [^)]*\)) -> IHostMemory:",
                  r"\1 -> IHostMemory | None:", text)


def _add_prelude(text: str) -> str:
    """Imports the stub uses without importing, after its own ``import typing``."""
    return text.replace("import typing\n", "import typing\n" + _PRELUDE, 1)


def patch_bindings(text: str) -> str:
    """All fixes for ``tensorrt_bindings/tensorrt.pyi``."""
    for fix in (_fix_in_params, _fix_default_order, _fix_bool, _fix_dims_params,
                _fix_optional_returns, _add_prelude):
        text = fix(text)
    return text


def patch_reexports(text: str) -> str:
    """Fixes for ``tensorrt/__init__.pyi`` and ``tensorrt_bindings/__init__.pyi``."""
    return _fix_bool(_fix_in_params(text))


def unpack_and_patch(wheel: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tmp)
        staging = Path(tmp) / "out"
        staging.mkdir()
        for pkg in PACKAGES:
            shutil.copytree(Path(tmp) / pkg, staging / pkg)
        core = staging / "tensorrt_bindings" / "tensorrt.pyi"
        core.write_text(patch_bindings(core.read_text()))
        for init in (staging / "tensorrt" / "__init__.pyi",
                     staging / "tensorrt_bindings" / "__init__.pyi"):
            init.write_text(patch_reexports(init.read_text()))
        (staging / MARKER).write_text(f"{wheel.name}\npatched by fetch_and_patch.py "
                                      f"{script_digest()}\n")
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), str(target))


def is_current(target: Path) -> bool:
    marker = target / MARKER
    return marker.is_file() and script_digest() in marker.read_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--versions", nargs="+", default=list(VERSIONS))
    parser.add_argument("--wheels", type=Path, default=None,
                        help="folder with the wheels already downloaded (default: "
                             "<dest>/wheels, fetched with pip when missing)")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    wheels = args.wheels or args.dest / "wheels"
    for version in args.versions:
        target = args.dest / version
        if is_current(target) and not args.force:
            print(f"tensorrt-stubs {version}: up to date in {target}")
            continue
        found = sorted(wheels.glob(f"tensorrt_stubs-{version}-*.whl"))
        wheel = found[0] if found else download(version, wheels)
        unpack_and_patch(wheel, target)
        print(f"tensorrt-stubs {version}: patched copy in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
