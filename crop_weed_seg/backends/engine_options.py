"""What decides a TensorRT engine, said once for ``crop-weed-seg build-engine`` and the node.

:class:`EngineOptions` is what a user chooses for an engine before the model is known: the
precision, the DLA core, the optimisation-profile shapes, the builder workspace, strongly
typed or not, TF32, the builder optimisation level and the ONNX the engine is built from (the
model's own, or an FP16/INT8 ONNX made by ``crop-weed-seg quantize`` for TensorRT >= 10.12).
Resolved against a model it gives the :class:`~crop_weed_seg.backends.engine_cache.EngineSettings`
and the ONNX sha256 that, with the TensorRT version and the GPU, make the engine key
(:meth:`EngineOptions.key`). Both sides build it with one small function each:

- ``build-engine``: :func:`add_cli_arguments` declares the options, :func:`from_cli` reads them;
- the node: :func:`from_node_parameters` reads its ``precision`` and ``engine_*`` parameters
  (:data:`NODE_PARAMETERS`), or ``engine_settings``: the JSON sidecar written next to every
  engine in the cache (:func:`from_sidecar`);

and :meth:`EngineOptions.node_parameters` turns options back into the node's parameters, which
``build-engine`` prints after a build. Pure Python: no TensorRT, no ROS.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from crop_weed_seg.backends.engine_cache import (
    DEFAULT_WORKSPACE_BYTES,
    PRECISIONS,
    DeviceInfo,
    EngineSettings,
    Shapes,
    engine_key,
    parse_shapes,
    shapes_text,
)
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.model.contract import ModelContract, sha256_file

DEFAULT_WORKSPACE_MB = DEFAULT_WORKSPACE_BYTES >> 20
#: Largest builder workspace accepted [MiB] (64 GiB: an AGX Orin has 64 GB in all).
MAX_WORKSPACE_MB = 65536
MAX_DLA_CORE = 7

# The node's parameters (crop_weed_seg/parameters/segmenter.py declares them).
P_PRECISION = "precision"
P_SETTINGS = "engine_settings"
P_ONNX = "engine_onnx"
P_DLA_CORE = "engine_dla_core"
P_SHAPES = "engine_shapes"
P_WORKSPACE_MB = "engine_workspace_mb"
P_STRONGLY_TYPED = "engine_strongly_typed"
P_TF32 = "engine_tf32"
P_OPTIMIZATION_LEVEL = "engine_optimization_level"
#: Every node parameter :func:`from_node_parameters` reads.
NODE_PARAMETERS = (P_PRECISION, P_SETTINGS, P_ONNX, P_DLA_CORE, P_SHAPES, P_WORKSPACE_MB,
                   P_STRONGLY_TYPED, P_TF32, P_OPTIMIZATION_LEVEL)
#: Integer parameter value meaning "unset" (no DLA, TensorRT's default optimisation level).
UNSET = -1

FP16_ROUTE = ("TensorRT >= 10.12 builds FP16 only from an FP16 ONNX as a strongly typed "
              "network: crop-weed-seg quantize --model MODEL --precision fp16 --out "
              "MODEL/model_fp16.onnx, then crop-weed-seg build-engine --model MODEL --precision "
              "fp16 --onnx MODEL/model_fp16.onnx --strongly-typed (node parameters: precision "
              "fp16, engine_onnx model_fp16.onnx, engine_strongly_typed true)")


@dataclass(frozen=True)
class EngineOptions:
    """The user's choice of TensorRT engine, valid for any model (checked on construction).

    ``dla_core``/``optimization_level`` ``None``: no DLA / TensorRT's default level.
    ``shapes`` ``None``: the model's input size (min = opt = max) for a dynamic-size model,
    nothing for a static one. ``onnx`` empty: the model's ONNX; a relative path is relative to
    the model folder. ``source`` (where these came from), ``for_model`` and ``sidecar_key`` (the
    model and key of the sidecar they were read from) only explain and check; they do not
    decide the engine and are not compared.
    """

    precision: str = "fp32"
    dla_core: int | None = None
    shapes: Shapes | None = None
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    strongly_typed: bool = False
    tf32: bool = False
    optimization_level: int | None = None
    onnx: str = ""
    source: str = field(default="", compare=False, repr=False)
    for_model: str | None = field(default=None, compare=False, repr=False)
    sidecar_key: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        mb = self.workspace_mb
        if not isinstance(mb, int) or isinstance(mb, bool) or not 1 <= mb <= MAX_WORKSPACE_MB:
            raise ConfigError(f"engine setting workspace_mb: must be 1..{MAX_WORKSPACE_MB} MiB, "
                              f"got {mb!r}")
        if self.dla_core is not None and isinstance(self.dla_core, int) \
                and self.dla_core > MAX_DLA_CORE:
            raise ConfigError(f"engine setting dla_core: must be 0..{MAX_DLA_CORE} or unset, got "
                              f"{self.dla_core}")
        if not isinstance(self.onnx, str):
            raise ConfigError(f"engine setting onnx: must be a path or empty, got {self.onnx!r}")
        # EngineSettings checks the rest (precision, DLA needs fp16/int8 and a fixed size,
        # shapes, level) and normalises the shapes.
        probe = EngineSettings(precision=self.precision, workspace_bytes=mb << 20,
                               dla_core=self.dla_core, shapes=self.shapes,
                               strongly_typed=self.strongly_typed, tf32=self.tf32,
                               builder_optimization_level=self.optimization_level)
        object.__setattr__(self, "shapes", probe.shapes)
        object.__setattr__(self, "onnx", self.onnx.strip())

    # --- resolved against a model ---------------------------------------------------------

    def onnx_path(self, contract: ModelContract) -> Path:
        """The ONNX the engine is built from; ConfigError when it does not exist."""
        if not self.onnx:
            return contract.onnx_path
        path = Path(self.onnx).expanduser()
        path = path if path.is_absolute() else contract.folder / path
        if not path.is_file():
            raise ConfigError(f"engine ONNX {path} does not exist ({self.source or 'engine_onnx'}"
                              f"; a relative path is relative to the model folder "
                              f"{contract.folder}); {FP16_ROUTE}")
        return path

    def onnx_sha256(self, contract: ModelContract) -> str:
        """sha256 of :meth:`onnx_path` (the contract's recorded one for the model's own ONNX)."""
        path = self.onnx_path(contract)
        if path == contract.onnx_path and contract.onnx_sha256:
            return contract.onnx_sha256
        return sha256_file(path)

    def settings(self, contract: ModelContract) -> EngineSettings:
        """The build settings for ``contract``'s model (ConfigError when they do not fit it,
        or when these options came from a sidecar of another model)."""
        if self.for_model is not None and self.for_model != contract.name:
            raise ConfigError(f"{self.source or 'the engine settings'} describe an engine of "
                              f"model '{self.for_model}', but the model is '{contract.name}' "
                              f"({contract.folder}); name a sidecar of this model or none")
        return EngineSettings.for_model(
            contract.input.size, contract.dynamic_size, shapes=self.shapes,
            precision=self.precision, dla_core=self.dla_core,
            workspace_bytes=self.workspace_mb << 20, strongly_typed=self.strongly_typed,
            tf32=self.tf32, builder_optimization_level=self.optimization_level)

    def key(self, contract: ModelContract, device: DeviceInfo) -> str:
        """The engine key of these options for ``contract`` on ``device``."""
        return engine_key(self.onnx_sha256(contract), self.settings(contract), device)

    # --- back to what the user types -------------------------------------------------------

    def node_parameters(self, model_folder: Path | str | None = None) -> dict[str, Any]:
        """The node's ``precision`` and ``engine_*`` parameters for these options, every one
        (``engine_settings`` excepted). An ONNX inside ``model_folder`` is given relative to it,
        as the node resolves it."""
        return {P_PRECISION: self.precision,
                P_ONNX: _relative_onnx(self.onnx, model_folder),
                P_DLA_CORE: UNSET if self.dla_core is None else self.dla_core,
                P_SHAPES: "" if self.shapes is None else shapes_text(self.shapes),
                P_WORKSPACE_MB: self.workspace_mb,
                P_STRONGLY_TYPED: self.strongly_typed,
                P_TF32: self.tf32,
                P_OPTIMIZATION_LEVEL: UNSET if self.optimization_level is None
                else self.optimization_level}

    def cli_arguments(self) -> list[str]:
        """The ``build-engine`` options for these (``--precision`` always, others when set)."""
        args = ["--precision", self.precision]
        if self.onnx:
            args += ["--onnx", self.onnx]
        if self.dla_core is not None:
            args += ["--dla-core", str(self.dla_core)]
        if self.shapes is not None:
            args += ["--shapes", shapes_text(self.shapes)]
        if self.workspace_mb != DEFAULT_WORKSPACE_MB:
            args += ["--workspace-mb", str(self.workspace_mb)]
        if self.strongly_typed:
            args.append("--strongly-typed")
        if self.tf32:
            args.append("--tf32")
        if self.optimization_level is not None:
            args += ["--optimization-level", str(self.optimization_level)]
        return args


def _relative_onnx(onnx: str, model_folder: Path | str | None) -> str:
    if not onnx or model_folder is None or not Path(onnx).is_absolute():
        return onnx
    folder = Path(model_folder).resolve()
    path = Path(onnx).resolve()
    return str(path.relative_to(folder)) if folder in path.parents else str(path)


# --- build-engine's command line -----------------------------------------------------------

def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """The engine options of ``build-engine`` (one per :class:`EngineOptions` field)."""
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="engine precision (default fp32, as the node's default); on "
                             "TensorRT >= 10.12 fp16/int8 need --onnx of an FP16/Q-DQ ONNX and "
                             "--strongly-typed")
    parser.add_argument("--onnx", default=None, metavar="FILE",
                        help="build from this ONNX instead of the model's (an FP16 or INT8 "
                             "ONNX from `crop-weed-seg quantize`, same inputs and outputs)")
    parser.add_argument("--dla-core", type=int, default=None,
                        help="build for this DLA core (Orin AGX/NX; fp16/int8 and a fixed input "
                             "size only; layers the DLA cannot run fall back to the GPU)")
    parser.add_argument("--shapes", default=None, metavar="MINHxMINW,OPTHxOPTW,MAXHxMAXW",
                        help="optimisation profile of a dynamic-size model (default: the "
                             "contract's input.size for all three)")
    parser.add_argument("--workspace-mb", type=int, default=DEFAULT_WORKSPACE_MB,
                        help=f"builder workspace limit [MiB] (default {DEFAULT_WORKSPACE_MB})")
    parser.add_argument("--strongly-typed", action="store_true",
                        help="strongly typed network: the precision comes from the ONNX's own "
                             "types (TensorRT >= 10.12 needs it for fp16/int8)")
    parser.add_argument("--tf32", action="store_true",
                        help="allow TF32 (off by default for strict FP32 parity)")
    parser.add_argument("--optimization-level", type=int, default=None, metavar="0..5",
                        help="builder optimisation level (TensorRT >= 8.6; default TensorRT's)")


def from_cli(args: argparse.Namespace) -> EngineOptions:
    """The options of a parsed ``build-engine`` command line; ``--onnx`` relative to the
    current folder (made absolute). ConfigError naming what is wrong."""
    onnx = str(Path(args.onnx).expanduser().resolve()) if args.onnx else ""
    return EngineOptions(precision=args.precision, onnx=onnx, dla_core=args.dla_core,
                         shapes=parse_shapes(args.shapes) if args.shapes else None,
                         workspace_mb=args.workspace_mb, strongly_typed=args.strongly_typed,
                         tf32=args.tf32, optimization_level=args.optimization_level,
                         source="build-engine options")


# --- the node's parameters ---------------------------------------------------------------

def _parse_shapes_parameter(text: str) -> Shapes:
    try:
        return parse_shapes(text)
    except ConfigError as exc:  # it names the CLI option
        raise ConfigError(str(exc).replace("--shapes", P_SHAPES)) from None


def _from_parameter_values(values: Mapping[str, Any]) -> EngineOptions:
    defaults = EngineOptions().node_parameters()

    def get(name: str) -> Any:
        return values.get(name, defaults[name])

    dla, level, shapes = int(get(P_DLA_CORE)), int(get(P_OPTIMIZATION_LEVEL)), str(get(P_SHAPES))
    try:
        return EngineOptions(
            precision=str(get(P_PRECISION)), onnx=str(get(P_ONNX)),
            dla_core=None if dla == UNSET else dla,
            shapes=_parse_shapes_parameter(shapes) if shapes.strip() else None,
            workspace_mb=int(get(P_WORKSPACE_MB)), strongly_typed=bool(get(P_STRONGLY_TYPED)),
            tf32=bool(get(P_TF32)), optimization_level=None if level == UNSET else level,
            source="the node's engine parameters")
    except ConfigError as exc:
        raise ConfigError(f"node parameters precision/engine_*: {exc}") from None


def from_node_parameters(values: Mapping[str, Any]) -> EngineOptions:
    """The options the node's parameters ask for (missing ones take their defaults).

    With ``engine_settings`` naming a sidecar, the sidecar decides; the ``precision`` and
    ``engine_*`` parameters must then be left at their defaults or agree with it (ConfigError
    listing each that does not).
    """
    given = _from_parameter_values(values)
    sidecar = str(values.get(P_SETTINGS, "") or "").strip()
    if not sidecar:
        return given
    read = from_sidecar(sidecar)
    defaults = EngineOptions().node_parameters()
    mine, theirs = given.node_parameters(), read.node_parameters()
    conflicts = [f"{name} {mine[name]!r} (the sidecar: {theirs[name]!r})" for name in mine
                 if mine[name] != defaults[name] and mine[name] != theirs[name]]
    if conflicts:
        raise ConfigError(f"engine_settings {sidecar} decides the engine, but "
                          f"{', '.join(conflicts)} disagree: leave them at their defaults or "
                          "clear engine_settings")
    return read


def cache_dir_from_node_parameters(values: Mapping[str, Any]) -> str | None:
    """The engine cache folder the node's parameters name: ``engine_cache_dir``, else the
    folder of the ``engine_settings`` sidecar (the engine lies beside it), else None (the
    default folder)."""
    explicit = str(values.get("engine_cache_dir", "") or "").strip()
    if explicit:
        return explicit
    sidecar = str(values.get(P_SETTINGS, "") or "").strip()
    return str(Path(sidecar).expanduser().parent) if sidecar else None


# --- the sidecar next to each engine -------------------------------------------------------

def sidecar_fields(options: EngineOptions, model_folder: Path | str) -> dict[str, Any]:
    """What the engine cache's sidecar records of ``options`` besides the settings: the ONNX
    it was built from (relative to the model folder when inside it, empty for the model's own)
    and the node parameters that select the engine."""
    return {"onnx_file": _relative_onnx(options.onnx, model_folder),
            "node_parameters": options.node_parameters(model_folder)}


def from_sidecar(path: Path | str) -> EngineOptions:
    """The options of the engine whose JSON sidecar (``<cache>/<model>-<key16>.json``, written by
    ``build-engine`` or the node) is ``path``. The result knows the sidecar's model and key."""
    where = Path(path).expanduser()
    try:
        meta = json.loads(where.read_text())
        settings = EngineSettings.from_dict(meta["settings"])
        model, key = str(meta["model"]), str(meta["key"])
        onnx = str(meta.get("onnx_file", "") or "")
    except FileNotFoundError:
        raise ConfigError(f"engine_settings {where}: no such file (the JSON sidecar next to an "
                          "engine in the engine cache; `crop-weed-seg build-engine --list` "
                          "shows them)") from None
    except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
        raise ConfigError(f"engine_settings {where}: not an engine sidecar "
                          f"({type(exc).__name__}: {exc})") from None
    try:
        return options_from_settings(settings, onnx=onnx, source=f"engine_settings {where}",
                                     for_model=model, sidecar_key=key)
    except ConfigError as exc:
        raise ConfigError(f"engine_settings {where}: {exc}") from None


def options_from_settings(settings: EngineSettings, onnx: str = "",
                          **about: Any) -> EngineOptions:
    """The options that resolve to ``settings`` (with explicit shapes where the settings have
    them) for an engine built from ``onnx``; ``about``: ``source``, ``for_model``,
    ``sidecar_key``. ConfigError when the workspace is not a whole number of MiB."""
    if settings.workspace_bytes % (1 << 20):
        raise ConfigError(f"workspace {settings.workspace_bytes} bytes is not a whole number of "
                          "MiB")
    return EngineOptions(precision=settings.precision, onnx=onnx, dla_core=settings.dla_core,
                         shapes=settings.shapes, workspace_mb=settings.workspace_bytes >> 20,
                         strongly_typed=settings.strongly_typed, tf32=settings.tf32,
                         optimization_level=settings.builder_optimization_level, **about)
