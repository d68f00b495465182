"""The TensorRT engine cache (DESIGN.md §7, TENSORRT.md "Engine cache"), without TensorRT.

A TensorRT plan is only valid for the TensorRT version and GPU that built it, and building one
takes minutes on a Jetson, so plans are built once on the target device and cached:

- key = sha256 of the ONNX sha256, the canonical build settings (:class:`EngineSettings`), the
  TensorRT version, the GPU name and compute capability and the DLA core (:func:`engine_key`);
- ``<dir>/<model>-<key[:16]>.engine`` with a clear-text JSON sidecar ``<model>-<key[:16]>.json``
  (what went into the key, when it was built, the plan's sha256 and size), one timing cache per
  (TensorRT version, GPU) ``timing-<trt>-<gpu>.cache`` and a lock file ``<plan>.lock``;
- every file is written through a temporary file in the same folder, fsync and ``os.replace``,
  so a killed build never leaves a plan that loads; a plan whose bytes do not match its sidecar,
  or that TensorRT refuses to deserialise (``None``: another TensorRT version or GPU), is
  rebuilt; an exclusive ``fcntl.flock`` around check-and-build makes a second process wait and
  then find the finished plan instead of building it again;
- the cache never lives in the install tree or the temporary directory (:func:`check_cache_dir`)
  and keeps a bounded number of plans per model (:meth:`EngineCache.prune`).

This module never imports ``tensorrt``: the TensorRT backend passes ``deserialize`` and
``build`` callables to :meth:`EngineCache.load_or_build`, and tests pass fakes.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import json
import os
import re
import sys
import sysconfig
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

from crop_weed_seg.errors import BackendError, ConfigError

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_WORKSPACE_BYTES = 1 << 30
#: Environment variable that overrides the default cache folder.
CACHE_DIR_ENV = "CROP_WEED_SEG_ENGINE_CACHE"
#: Bumped when the key derivation changes, so old plans are never mistaken for new ones.
KEY_FORMAT = "crop_weed_seg-engine-key/1"
SIDECAR_FORMAT = 1
DEFAULT_KEEP_PER_MODEL = 3

T = TypeVar("T")
Shape = tuple[int, int]
Shapes = tuple[Shape, Shape, Shape]


def _settings_error(name: str, message: str) -> ConfigError:
    return ConfigError(f"engine setting {name}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class EngineSettings:
    """Everything a TensorRT build depends on besides the ONNX, the TensorRT version and the GPU.

    ``shapes`` is ``((min_h, min_w), (opt_h, opt_w), (max_h, max_w))`` of the image input for a
    model with a dynamic input size (the optimisation profile), ``None`` for a static model.
    ``dla_core`` needs fp16/int8 and a fixed input size (static, or min == opt == max).
    ``tf32`` stays off by default so fp32 engines keep strict parity with ONNX Runtime.
    ``builder_optimization_level`` (0..5, TensorRT ≥ 8.6) ``None`` means TensorRT's default.
    """

    precision: str = "fp32"
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES
    dla_core: int | None = None
    shapes: Shapes | None = None
    strongly_typed: bool = False
    tf32: bool = False
    builder_optimization_level: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise _settings_error("precision", f"must be one of {', '.join(PRECISIONS)}, "
                                               f"got {self.precision!r}")
        if not _is_int(self.workspace_bytes) or self.workspace_bytes <= 0:
            raise _settings_error("workspace_bytes", f"must be a positive number of bytes, got "
                                                     f"{self.workspace_bytes!r}")
        for name in ("strongly_typed", "tf32"):
            if not isinstance(getattr(self, name), bool):
                raise _settings_error(name, f"must be true or false, got {getattr(self, name)!r}")
        level = self.builder_optimization_level
        if level is not None and (not _is_int(level) or not 0 <= level <= 5):
            raise _settings_error("builder_optimization_level",
                                  f"must be 0..5 or unset, got {level!r}")
        if self.shapes is not None:
            object.__setattr__(self, "shapes", _normalise_shapes(self.shapes))
        if self.dla_core is not None:
            if not _is_int(self.dla_core) or self.dla_core < 0:
                raise _settings_error("dla_core", f"must be a DLA core number ≥ 0 or unset, got "
                                                  f"{self.dla_core!r}")
            if self.precision == "fp32":
                raise _settings_error("dla_core", "DLA runs fp16 or int8 only; choose precision "
                                                  "fp16 or int8, or leave the DLA out")
            if self.shapes is not None and len(set(self.shapes)) != 1:
                raise _settings_error("dla_core", f"DLA needs a fixed input size, but shapes "
                                                  f"min/opt/max are {shapes_text(self.shapes)}; "
                                                  "give one size three times")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shapes"] = None if self.shapes is None else [list(s) for s in self.shapes]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineSettings:
        """The inverse of :meth:`to_dict` (for sidecars); unknown keys are a ConfigError."""
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ConfigError(f"engine settings: unknown keys {sorted(unknown)}")
        values = dict(data)
        if values.get("shapes") is not None:
            values["shapes"] = tuple(tuple(s) for s in values["shapes"])
        return cls(**values)

    def canonical(self) -> str:
        """Sorted-key compact JSON: the same settings always give the same text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def describe(self) -> str:
        """One line for progress messages, e.g. ``fp16, DLA 0, 512x512..1024x1024``."""
        parts = [self.precision]
        if self.dla_core is not None:
            parts.append(f"DLA {self.dla_core}")
        if self.shapes is not None:
            parts.append(f"shapes {shapes_text(self.shapes)}")
        if self.strongly_typed:
            parts.append("strongly typed")
        if self.tf32:
            parts.append("tf32")
        return ", ".join(parts)

    @classmethod
    def for_model(cls, input_size: Shape, dynamic_size: bool, *,
                  shapes: Shapes | None = None, **settings: Any) -> EngineSettings:
        """Settings for a model whose contract says ``input.size`` and ``dynamic_size``.

        A dynamic model without ``shapes`` gets min = opt = max = ``input_size`` (the size the
        node feeds it), so the CLI and the node derive the same key. A static model takes no
        shapes (giving its own size three times is accepted and dropped).
        """
        size = (int(input_size[0]), int(input_size[1]))
        if dynamic_size:
            resolved: Shapes | None = shapes if shapes is not None else (size, size, size)
        else:
            resolved = None
            if shapes is not None and _normalise_shapes(shapes) != (size, size, size):
                raise _settings_error("shapes", f"the model has a static input "
                                                f"{size[0]}x{size[1]}; shapes apply only to "
                                                "models exported with a dynamic input size")
        return cls(shapes=resolved, **settings)


def shapes_text(shapes: Shapes) -> str:
    """Shapes as ``MINHxMINW,OPTHxOPTW,MAXHxMAXW`` (the inverse of :func:`parse_shapes`)."""
    return ",".join(f"{h}x{w}" for h, w in shapes)


def _normalise_shapes(shapes: Any) -> Shapes:
    try:
        triple = tuple(tuple(s) for s in shapes)
    except TypeError:
        triple = ()
    if len(triple) != 3 or any(len(s) != 2 or not all(_is_int(v) and v > 0 for v in s)
                               for s in triple):
        raise _settings_error("shapes", "must be three (H, W) pairs of positive integers "
                                        f"(min, opt, max), got {shapes!r}")
    lo, opt, hi = triple
    for axis, label in ((0, "H"), (1, "W")):
        if not lo[axis] <= opt[axis] <= hi[axis]:
            raise _settings_error("shapes", f"need min <= opt <= max for {label}, got "
                                            f"{lo[axis]}, {opt[axis]}, {hi[axis]}")
    return (lo, opt, hi)


def parse_shapes(text: str) -> Shapes:
    """``"MINHxMINW,OPTHxOPTW,MAXHxMAXW"`` → shapes, or ConfigError."""
    try:
        parts = [tuple(int(v) for v in p.strip().lower().split("x")) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3 or any(len(p) != 2 for p in parts):
        raise ConfigError(f"--shapes must look like MINHxMINW,OPTHxOPTW,MAXHxMAXW "
                          f"(e.g. 384x512,512x640,720x1280), got {text!r}")
    return _normalise_shapes(parts)


@dataclass(frozen=True)
class DeviceInfo:
    """What the caller (the TensorRT backend) learnt about this machine.

    ``name`` as CUDA reports it (``"Orin"``), ``compute_capability`` as ``"8.7"``,
    ``trt_version`` as ``tensorrt.__version__`` (``"10.3.0"``).
    """

    name: str
    compute_capability: str
    trt_version: str

    def __post_init__(self) -> None:
        for name in ("name", "trt_version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"device {name} must be a non-empty string, got {value!r}")
        if not isinstance(self.compute_capability, str) or \
                not re.fullmatch(r"\d+\.\d+", self.compute_capability):
            raise ConfigError(f"device compute_capability must look like '8.7', got "
                              f"{self.compute_capability!r}")


def engine_key(onnx_sha256: str, settings: EngineSettings, device: DeviceInfo) -> str:
    """sha256 hex of the canonical concatenation of everything a plan depends on."""
    sha = onnx_sha256.strip().lower() if isinstance(onnx_sha256, str) else ""
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ConfigError(f"onnx_sha256 must be the 64 hex digits of the ONNX file's sha256, got "
                          f"{onnx_sha256!r}")
    text = json.dumps({
        "format": KEY_FORMAT,
        "onnx_sha256": sha,
        "settings": json.loads(settings.canonical()),
        "tensorrt_version": device.trt_version,
        "gpu": device.name,
        "compute_capability": device.compute_capability,
        "dla_core": settings.dla_core,
    }, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def engine_sidecar_info(onnx_sha256: str, settings: EngineSettings, device: DeviceInfo,
                        *, model_dir: Path | str | None = None) -> dict[str, Any]:
    """The clear-text inputs of the key, for :meth:`EngineCache.load_or_build`'s sidecar."""
    info: dict[str, Any] = {
        "onnx_sha256": onnx_sha256,
        "settings": settings.to_dict(),
        "device": asdict(device),
        "tensorrt_version": device.trt_version,
    }
    if model_dir is not None:
        info["model_dir"] = str(model_dir)
    return info


# --- where the cache lives ---------------------------------------------------------------------

def default_cache_dir() -> Path:
    """``$CROP_WEED_SEG_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/crop_weed_seg/engines``, else
    ``~/.cache/crop_weed_seg/engines``."""
    override = os.environ.get(CACHE_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "crop_weed_seg" / "engines"


def _forbidden_roots() -> list[tuple[Path, str]]:
    """(folder, why) pairs that a cache may not be in or under."""
    tmp_why = ("it is in the temporary directory: cleared at reboot (minutes of rebuilding on "
               "every start) and writable by every user (a planted plan would run on the GPU)")
    install_why = "it is inside the installed software, which updates replace or make read-only"
    roots: list[tuple[Path, str]] = [(Path(tempfile.gettempdir()), tmp_why),
                                     (Path("/tmp"), tmp_why), (Path("/dev/shm"), tmp_why),
                                     (Path(__file__).resolve().parents[1], install_why)]
    for prefix in {sys.prefix, sys.base_prefix}:
        roots.append((Path(prefix) / "share", install_why))
    for name in ("purelib", "platlib"):
        roots.append((Path(sysconfig.get_paths()[name]), install_why))
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix.strip():
            roots.append((Path(prefix), install_why))
    # the most specific folder names the reason (a checkout under /tmp is "installed software")
    return sorted(roots, key=lambda r: len(r[0].absolute().parts), reverse=True)


def _is_within(path: Path, root: Path) -> bool:
    try:
        root = root.resolve()
    except OSError:
        return False
    return path == root or root in path.parents


def check_cache_dir(path: Path | str, *, allow_any: bool = False, create: bool = True) -> Path:
    """Validate (and create) an engine cache folder; return it resolved.

    Refuses, with ConfigError naming the reason, the temporary directory
    (``tempfile.gettempdir()``, ``/tmp``, ``/dev/shm``) and the install tree (the
    ``crop_weed_seg`` package folder, ``sys.prefix/share``, site-packages, ament prefixes),
    including anything under them, unless ``allow_any`` (tests, whose ``tmp_path`` lives in
    ``/tmp``). With ``create`` the folder is created and must be writable; a failure is a
    BackendError naming the path and the operating system's reason.
    """
    resolved = Path(path).expanduser().resolve()
    if not allow_any:
        for root, why in _forbidden_roots():
            if _is_within(resolved, root):
                raise ConfigError(f"engine cache directory {resolved} is refused: {why}; use "
                                  f"the default ({default_cache_dir()}), set {CACHE_DIR_ENV} "
                                  "or choose another folder")
    if not create:
        return resolved
    try:
        resolved.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=resolved)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        raise BackendError(f"engine cache directory {resolved} is not usable: {reason} "
                           f"({exc.filename or resolved}); fix its permissions or choose "
                           f"another folder (engine_cache_dir, {CACHE_DIR_ENV})") from None
    return resolved


# --- files -------------------------------------------------------------------------------------

def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_durable(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, chmod 0644, ``os.replace``, fsync the folder.

    Readers see the old file or the new one, never a part; a process killed before the
    replace leaves only a ``.<name>.*.tmp`` file, which nothing loads.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the node may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "unknown"


def _safe_model_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    if not safe:
        raise ConfigError(f"model name {name!r} cannot name an engine file")
    return safe


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """One sidecar in the cache, with what it says (``info``) and whether its plan exists."""

    model: str
    key: str
    plan_path: Path
    sidecar_path: Path
    plan_present: bool
    info: dict[str, Any] = field(default_factory=dict)


class EngineCache:
    """A folder of TensorRT plans keyed by :func:`engine_key`. Safe across processes.

    ``allow_any`` skips the /tmp and install-tree refusal (tests). ``read_only`` never writes,
    locks or builds (``build-engine --list``, a read-only production mount); the folder need
    not exist. ``force_rebuild`` makes every :meth:`load_or_build` of this object rebuild
    (``build-engine --force``). After each build, plans of that model beyond
    ``keep_per_model`` (least recently used first) are pruned.
    """

    def __init__(self, cache_dir: Path | str, *, allow_any: bool = False,
                 read_only: bool = False, force_rebuild: bool = False,
                 keep_per_model: int = DEFAULT_KEEP_PER_MODEL) -> None:
        if not _is_int(keep_per_model) or keep_per_model < 1:
            raise ConfigError(f"keep_per_model must be ≥ 1, got {keep_per_model!r}")
        self.read_only = read_only
        self.force_rebuild = force_rebuild
        self.keep_per_model = keep_per_model
        self.dir = check_cache_dir(cache_dir, allow_any=allow_any, create=not read_only)

    def __repr__(self) -> str:
        return f"EngineCache({str(self.dir)!r})"

    # paths

    def plan_path(self, model_name: str, key: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{16,64}", key):
            raise ConfigError(f"engine key must be hex (at least 16 digits), got {key!r}")
        return self.dir / f"{_safe_model_name(model_name)}-{key[:16]}.engine"

    def sidecar_path(self, model_name: str, key: str) -> Path:
        return self.plan_path(model_name, key).with_suffix(".json")

    def lock_path(self, model_name: str, key: str) -> Path:
        plan = self.plan_path(model_name, key)
        return plan.with_name(plan.name + ".lock")

    def timing_cache_path(self, trt_version: str, gpu_name: str) -> Path:
        return self.dir / f"timing-{_slug(trt_version)}-{_slug(gpu_name)}.cache"

    # the main operation

    def load_or_build(self, model_name: str, key: str, sidecar_info: Mapping[str, Any], *,
                      deserialize: Callable[[bytes], T | None],
                      build: Callable[[bytes | None], tuple[bytes, bytes | None]],
                      allow_build: bool = True, force_rebuild: bool = False,
                      progress: Callable[[str], None] | None = None) -> tuple[T, str]:
        """Return ``(engine, status)``, status ``"hit"``, ``"built"`` or ``"rebuilt: <why>"``.

        ``deserialize(plan)`` returns the engine, or None when TensorRT cannot use the plan
        (another TensorRT version or GPU): then it is rebuilt. ``build(timing_cache)`` gets the
        timing cache bytes for this TensorRT version and GPU (or None) and returns
        ``(plan, new_timing_cache or None)``; it may raise, which leaves the cache as it was.
        ``sidecar_info`` (see :func:`engine_sidecar_info`) goes into the sidecar; its
        ``settings`` and ``device`` entries name the timing cache and the progress messages.
        The check and the build run under an exclusive lock on ``<plan>.lock``: a second
        process waits and then gets a cache hit.
        """
        say = progress or (lambda _message: None)
        force = force_rebuild or self.force_rebuild
        plan = self.plan_path(model_name, key)
        if self.read_only:
            reason = "forced" if force else None
            if not force:
                engine, reason = self._try_load(plan, key, sidecar_info, deserialize)
                if engine is not None:
                    say(f"cache hit: engine {key[:16]} for {model_name} ({plan})")
                    return engine, "hit"
            raise self._no_engine_error(model_name, key, sidecar_info, reason,
                                        "the engine cache is read-only")
        with self._exclusive(self.lock_path(model_name, key), say, model_name, key):
            self._remove_stale_temp_files(plan)
            reason = "forced"
            if not force:
                engine, reason = self._try_load(plan, key, sidecar_info, deserialize)
                if engine is not None:
                    self._touch(plan)
                    say(f"cache hit: engine {key[:16]} for {model_name} ({plan})")
                    return engine, "hit"
            if not allow_build:
                raise self._no_engine_error(model_name, key, sidecar_info, reason,
                                            "allow_engine_build is false")
            engine = self._build(model_name, key, plan, sidecar_info, deserialize, build, say)
            status = "built" if reason is None else f"rebuilt: {reason}"
        self.prune(self.keep_per_model, model_name=model_name)
        return engine, status

    def _try_load(self, plan: Path, key: str, sidecar_info: Mapping[str, Any],
                  deserialize: Callable[[bytes], T | None]) -> tuple[T | None, str | None]:
        """(engine, None) on success; (None, None) when there is no plan; else (None, why)."""
        sidecar = plan.with_suffix(".json")
        if not plan.exists():
            return None, None
        try:
            meta = json.loads(sidecar.read_text())
            expected_sha, expected_size = str(meta["plan_sha256"]), int(meta["plan_bytes"])
            sidecar_key = str(meta["key"])
        except FileNotFoundError:
            return None, f"sidecar {sidecar.name} is missing"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return None, f"sidecar {sidecar.name} is unreadable ({exc.__class__.__name__}: {exc})"
        if sidecar_key != key:
            return None, f"{plan.name} belongs to key {sidecar_key[:16]}… (same 16-digit prefix)"
        try:
            data = plan.read_bytes()
        except OSError as exc:
            return None, f"{plan.name} is unreadable ({exc.strerror or exc})"
        if len(data) != expected_size:
            return None, (f"{plan.name} is truncated or corrupt ({len(data)} bytes, the sidecar "
                          f"says {expected_size})")
        if _sha256(data) != expected_sha:
            return None, f"{plan.name} is corrupt (sha256 differs from its sidecar)"
        try:
            engine = deserialize(data)
        except Exception as exc:  # noqa: BLE001 - a plan TensorRT rejects is stale, not fatal
            return None, f"TensorRT failed to deserialize {plan.name} ({exc})"
        if engine is None:
            was = meta.get("tensorrt_version", "?")
            now = sidecar_info.get("tensorrt_version", "?")
            gpu_was = (meta.get("device") or {}).get("name", "?")
            gpu_now = (sidecar_info.get("device") or {}).get("name", "?")
            return None, (f"TensorRT could not deserialize {plan.name} (built with TensorRT "
                          f"{was} on {gpu_was}; this is TensorRT {now} on {gpu_now})")
        return engine, None

    def _build(self, model_name: str, key: str, plan: Path, sidecar_info: Mapping[str, Any],
               deserialize: Callable[[bytes], T | None],
               build: Callable[[bytes | None], tuple[bytes, bytes | None]],
               say: Callable[[str], None]) -> T:
        settings = sidecar_info.get("settings") or {}
        device = sidecar_info.get("device") or {}
        timing_path = None
        if device.get("trt_version") and device.get("name"):
            timing_path = self.timing_cache_path(str(device["trt_version"]), str(device["name"]))
        timing: bytes | None = None
        if timing_path is not None and timing_path.is_file():
            try:
                timing = timing_path.read_bytes() or None
            except OSError:
                timing = None
        what = EngineSettings.from_dict(settings).describe() if settings else "default settings"
        say(f"building engine {key[:16]} for {model_name} ({what}): this can take minutes")
        t0 = time.monotonic()
        plan_bytes, new_timing = build(timing)
        seconds = time.monotonic() - t0
        if not isinstance(plan_bytes, (bytes, bytearray, memoryview)) or not plan_bytes:
            raise BackendError(f"building engine {key[:16]} for {model_name} returned no plan")
        plan_bytes = bytes(plan_bytes)
        engine = deserialize(plan_bytes)
        if engine is None:
            raise BackendError(f"engine {key[:16]} for {model_name} was built but TensorRT "
                               "cannot deserialize it; nothing was cached")
        now = time.time()
        meta = {"format": SIDECAR_FORMAT, "model": model_name, "key": key,
                **dict(sidecar_info),
                "created": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
                "created_unix": round(now, 3), "build_seconds": round(seconds, 3),
                "plan_sha256": _sha256(plan_bytes), "plan_bytes": len(plan_bytes),
                "plan_file": plan.name}
        # Plan first, then its sidecar: a process killed between the two leaves a plan whose
        # sidecar disagrees (or is missing), which the next start rebuilds.
        write_bytes_durable(plan, plan_bytes)
        write_bytes_durable(plan.with_suffix(".json"),
                            (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode("utf-8"))
        if new_timing and timing_path is not None:
            write_bytes_durable(timing_path, bytes(new_timing))
        say(f"engine built in {seconds:.1f} s ({len(plan_bytes) / 1e6:.1f} MB): {plan}")
        return engine

    def _no_engine_error(self, model_name: str, key: str, sidecar_info: Mapping[str, Any],
                         reason: str | None, why_not: str) -> BackendError:
        settings = sidecar_info.get("settings") or {}
        model_dir = sidecar_info.get("model_dir", "<model folder>")
        command = [f"crop-weed-seg build-engine --model {model_dir}"]
        if sidecar_info.get("build_engine_args"):  # the TensorRT backend says it exactly
            command += [str(arg) for arg in sidecar_info["build_engine_args"]]
        else:
            command.append(f"--precision {settings.get('precision', 'fp32')}")
            if settings.get("dla_core") is not None:
                command.append(f"--dla-core {settings['dla_core']}")
            if settings.get("shapes"):
                command.append("--shapes " + shapes_text(settings["shapes"]))
            if settings.get("workspace_bytes", DEFAULT_WORKSPACE_BYTES) != \
                    DEFAULT_WORKSPACE_BYTES:
                command.append(f"--workspace-mb {int(settings['workspace_bytes']) >> 20}")
        command.append(f"--cache-dir {self.dir}")
        state = "no plan" if reason is None else reason
        return BackendError(f"no usable engine for {model_name} key {key[:16]} in {self.dir} "
                            f"({state}) and {why_not}; build it with {' '.join(command)} on "
                            "this device")

    @contextmanager
    def _exclusive(self, lock: Path, say: Callable[[str], None], model_name: str,
                   key: str) -> Iterator[None]:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BackendError(f"engine cache lock {lock}: {exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                say(f"waiting for another process that is building engine {key[:16]} for "
                    f"{model_name} (lock {lock})")
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _remove_stale_temp_files(self, plan: Path) -> None:
        """Leftovers of a killed writer of this plan (we hold its lock: nobody is writing)."""
        for name in (plan.name, plan.with_suffix(".json").name):
            for tmp in self.dir.glob(f".{glob.escape(name)}.*.tmp"):
                tmp.unlink(missing_ok=True)

    @staticmethod
    def _touch(plan: Path) -> None:
        try:
            os.utime(plan)  # prune drops the least recently used plans first
        except OSError:
            pass

    # listing and bounding

    def entries(self) -> list[CacheEntry]:
        """Every sidecar in the folder, by model then creation time."""
        if not self.dir.is_dir():
            return []
        found: list[CacheEntry] = []
        for sidecar in sorted(self.dir.glob("*.json")):
            plan = sidecar.with_suffix(".engine")
            try:
                info = json.loads(sidecar.read_text())
                if not isinstance(info, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as exc:
                info = {"error": f"unreadable sidecar: {exc}"}
            model, _, key16 = sidecar.stem.rpartition("-")
            found.append(CacheEntry(model=str(info.get("model", model)),
                                    key=str(info.get("key", key16)), plan_path=plan,
                                    sidecar_path=sidecar, plan_present=plan.is_file(), info=info))
        found.sort(key=lambda e: (e.model, float(e.info.get("created_unix", 0.0) or 0.0)))
        return found

    def prune(self, keep_per_model: int = DEFAULT_KEEP_PER_MODEL, *,
              model_name: str | None = None) -> list[Path]:
        """Delete all but the ``keep_per_model`` most recently used plans of each model (or of
        ``model_name`` only), with their sidecars and lock files; return the plans deleted.

        A plan whose lock another process holds (being built or checked) is skipped.
        """
        if self.read_only or not self.dir.is_dir():
            return []
        groups: dict[str, list[Path]] = {}
        for plan in self.dir.glob("*.engine"):
            model = plan.stem.rpartition("-")[0]
            if model_name is None or model == _safe_model_name(model_name):
                groups.setdefault(model, []).append(plan)
        removed: list[Path] = []
        for plans in groups.values():
            plans.sort(key=_mtime, reverse=True)
            for plan in plans[keep_per_model:]:
                if self._remove_plan(plan):
                    removed.append(plan)
        return removed

    def _remove_plan(self, plan: Path) -> bool:
        lock = plan.with_name(plan.name + ".lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            plan.unlink(missing_ok=True)
            plan.with_suffix(".json").unlink(missing_ok=True)
            # A process that opened the lock before this unlink may still build this key while
            # a newcomer locks a fresh file: at worst one redundant build, never a bad plan.
            lock.unlink(missing_ok=True)
            return True
        finally:
            os.close(fd)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
