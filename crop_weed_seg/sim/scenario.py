"""A simulation scenario: the field, camera, boom, drive and planner settings of one simulated
drive, in one object that every simulator reads the same way.

``crop-weed-seg simulate`` (in-process), the ``field_sim`` node (over ROS), the scorer node and
``crop-weed-seg gazebo-world`` all build their field, camera, boom and drive from a
:class:`Scenario`, so the same scenario gives the same plants, the same scored span and the same
node parameters everywhere.

The **field file** (``field.json``) is a scenario plus, when written from a generated field, the
drive and every plant's ground position and class (for a scorer, for Gazebo). Reading one
regenerates the field from the scenario (deterministic for its seed) and, when the file lists
plants, checks that the regenerated plants are the listed ones: a field file from another
version of the generator is an error, never a silently different field.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.image_files import write_bytes_atomic
from crop_weed_seg.sim.camera import SimCamera
from crop_weed_seg.sim.drive import Drive, plan_drive
from crop_weed_seg.sim.world import FieldConfig, SimField, generate_field
from crop_weed_seg.spray.geometry import Boom, CameraIntrinsics, CameraMount, GroundProjector
from crop_weed_seg.spray.mount_tf import mount_parameters
from crop_weed_seg.spray.planner import PlannerConfig

FIELD_FILE_SCHEMA = 1
#: Plant positions in a field file must match the regenerated field to this [m].
_PLANT_TOLERANCE_M = 1e-4


@dataclass(frozen=True)
class CameraSpec:
    """The simulated camera: image size, horizontal field of view, mount on ``base_link`` and
    exposure (motion blur)."""

    width: int = 640
    height: int = 480
    hfov_deg: float = 60.0
    x_m: float = 0.0
    y_m: float = 0.0
    height_m: float = 0.8
    pitch_deg: float = 0.0
    roll_deg: float = 0.0
    yaw_deg: float = 0.0
    exposure_ms: float = 2.0

    def mount(self) -> CameraMount:
        """The camera's mount on ``base_link`` (ConfigError for an impossible orientation)."""
        return CameraMount(self.x_m, self.y_m, self.height_m, self.pitch_deg, self.roll_deg,
                           self.yaw_deg)

    def build(self) -> SimCamera:
        if not (self.width >= 16 and self.height >= 16):
            raise ConfigError(f"camera image {self.width}x{self.height} is too small (16x16 "
                              "at least)")
        if not 1.0 <= self.hfov_deg <= 170.0:
            raise ConfigError(f"camera hfov_deg {self.hfov_deg} must lie in [1, 170]")
        if not self.exposure_ms >= 0:
            raise ConfigError(f"camera exposure_ms {self.exposure_ms} must not be negative")
        cam = SimCamera(GroundProjector(CameraIntrinsics.from_fov(self.width, self.height,
                                                                  self.hfov_deg), self.mount()),
                        exposure_s=self.exposure_ms / 1000.0)
        try:
            cam.footprint_x()
        except ConfigError as e:
            raise ConfigError(f"the camera does not see the ground everywhere ({e})") from None
        return cam


@dataclass(frozen=True)
class BoomSpec:
    """The spray boom: nozzles, their spacing, the boom's lateral centre and how far the nozzle
    line is behind ``base_link`` (the origin; the camera's position is in :class:`CameraSpec`)."""

    nozzles: int = 12
    spacing_m: float = 0.05
    center_y_m: float = 0.0
    nozzle_offset_m: float = 0.5

    def build(self) -> Boom:
        return Boom(self.nozzles, self.spacing_m, self.center_y_m, -self.nozzle_offset_m)


@dataclass(frozen=True)
class Scenario:
    """One simulated drive (module docstring). ``speed_mps`` and ``frame_rate_hz`` are the
    robot's constant speed and the camera's frame rate; ``valve_latency_ms`` and ``margin_m``
    the planner's settings; ``seed`` makes field and frames reproducible."""

    field: FieldConfig = FieldConfig(length_m=20.0)
    seed: int = 0
    camera: CameraSpec = CameraSpec()
    boom: BoomSpec = BoomSpec()
    speed_mps: float = 1.0
    frame_rate_hz: float = 15.0
    valve_latency_ms: float = 30.0
    margin_m: float = 0.02

    def validate(self) -> "Scenario":
        """Checks what can be checked without generating the field; raises ConfigError."""
        self.field.validate()
        if not (math.isfinite(self.speed_mps) and self.speed_mps > 0):
            raise ConfigError(f"speed_mps {self.speed_mps} must be positive: a drive over "
                              f"{self.field.length_m:g} m at zero speed never ends")
        if not (math.isfinite(self.frame_rate_hz) and self.frame_rate_hz > 0):
            raise ConfigError(f"frame_rate_hz {self.frame_rate_hz} must be positive")
        if not self.valve_latency_ms >= 0:
            raise ConfigError(f"valve_latency_ms {self.valve_latency_ms} must not be negative")
        self.camera.build()
        self.boom.build()
        return self

    # -- what the simulators build from it -------------------------------------------------
    def build_camera(self) -> SimCamera:
        return self.camera.build()

    def build_boom(self) -> Boom:
        return self.boom.build()

    def build_field(self) -> SimField:
        return generate_field(self.field.validate(), seed=self.seed)

    def plan(self, fld: SimField) -> Drive:
        """The drive over ``fld`` that ``simulate`` makes at this speed and frame rate."""
        return plan_drive(fld, self.build_camera(), self.build_boom(), self.speed_mps,
                          self.frame_rate_hz)

    def planner_config(self) -> PlannerConfig:
        return PlannerConfig(valve_latency_s=self.valve_latency_ms / 1000.0,
                             margin_m=self.margin_m)

    def node_parameters(self) -> dict[str, dict[str, Any]]:
        """The segmenter's and the planner's parameters for this camera mount and boom (what a
        launch file passes to them), by executable."""
        c, b = self.camera, self.boom
        geometry = {**mount_parameters(c.mount()), "nozzle_count": b.nozzles,
                    "nozzle_spacing_m": b.spacing_m, "boom_center_y_m": b.center_y_m,
                    "nozzle_offset_m": c.x_m + b.nozzle_offset_m}
        planner = {"camera_x_m": c.x_m, "nozzle_count": b.nozzles, "nozzle_spacing_m": b.spacing_m,
                   "boom_center_y_m": b.center_y_m, "nozzle_offset_m": c.x_m + b.nozzle_offset_m,
                   "valve_latency_s": self.valve_latency_ms / 1000.0, "margin_m": self.margin_m}
        return {"segmenter_node": geometry, "spray_planner": planner}

    # -- (de)serialisation -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["field"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["field"].items()}
        return d

    @classmethod
    def from_json(cls, data: Any, where: str = "scenario") -> "Scenario":
        """The scenario in ``data`` (a dict as :meth:`to_json` writes it; missing keys keep
        their defaults). Unknown keys and wrong types are ConfigErrors naming ``where``."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
        parts = {"field": FieldConfig, "camera": CameraSpec, "boom": BoomSpec}
        kwargs: dict[str, Any] = {}
        names = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in data.items():
            if key not in names:
                raise ConfigError(f"{where}: unknown key {key!r}; valid: {', '.join(names)}")
            if key in parts:
                kwargs[key] = _dataclass_from(parts[key], value, f"{where}.{key}")
            else:
                kwargs[key] = _typed(names[key], value, cls, f"{where}.{key}")
        return cls(**kwargs)


def _typed(f: dataclasses.Field, value: Any, owner: type, where: str) -> Any:
    default = getattr(owner(), f.name)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if (not isinstance(value, (list, tuple)) or len(value) != len(default)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in value)):
            raise ConfigError(f"{where}: expected {len(default)} numbers, got {value!r}")
        return tuple(float(v) for v in value)
    return value


def _dataclass_from(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r}; valid: {', '.join(names)}")
        kwargs[key] = _typed(names[key], value, cls, f"{where}.{key}")
    return cls(**kwargs)


@dataclass
class FieldFile:
    """A field file's content: the scenario, and (when written from a generated field) the
    drive and the plants (id, class, ground position, bounding box, area)."""

    scenario: Scenario
    drive: dict[str, Any] | None = None
    plants: list[dict[str, Any]] = field(default_factory=list)


def field_file_json(scenario: Scenario, fld: SimField | None = None) -> dict[str, Any]:
    """What :func:`write_field_file` writes."""
    out: dict[str, Any] = {"schema": FIELD_FILE_SCHEMA, "scenario": scenario.to_json()}
    if fld is not None:
        drive = scenario.plan(fld)
        out["drive"] = {"start_x_m": drive.start_x, "duration_s": drive.duration_s,
                        "speed_mps": drive.speed_mps, "frame_rate_hz": drive.frame_rate_hz,
                        "scored_span_m": list(drive.scored_span)}
        truth = fld.ground_truth_json()
        out["field"] = {k: v for k, v in truth.items() if k != "plants"}
        out["plants"] = truth["plants"]
    return out


def write_field_file(path: Path, scenario: Scenario, fld: SimField | None = None) -> Path:
    """Write the field file atomically (a reader never sees half a file). ``fld`` adds the
    drive and the plants; without it only the scenario is written."""
    path = Path(path)
    text = json.dumps(field_file_json(scenario, fld), indent=1)
    try:
        write_bytes_atomic(path, text.encode())
    except OSError as e:
        raise ConfigError(f"cannot write the field file {path}: {e.strerror or e}") from None
    return path


def read_field_file(path: Path) -> FieldFile:
    """Read a field file; errors name the file and what is wrong in it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"field file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the field file {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"field file {path} is not JSON: {e}") from None
    if not isinstance(data, dict) or "scenario" not in data:
        raise ConfigError(f"field file {path} has no 'scenario'")
    if data.get("schema", FIELD_FILE_SCHEMA) != FIELD_FILE_SCHEMA:
        raise ConfigError(f"field file {path}: schema {data.get('schema')!r}, this version reads "
                          f"{FIELD_FILE_SCHEMA}")
    scenario = Scenario.from_json(data["scenario"], f"{path}: scenario").validate()
    plants = data.get("plants") or []
    if not isinstance(plants, list):
        raise ConfigError(f"field file {path}: 'plants' must be a list")
    return FieldFile(scenario, data.get("drive"), plants)


def load_field(path: Path) -> tuple[Scenario, SimField]:
    """The scenario of a field file and its regenerated field; when the file lists plants,
    they must be the regenerated ones (same ids, classes and positions)."""
    ff = read_field_file(path)
    fld = ff.scenario.build_field()
    if ff.plants:
        check_plants(fld, ff.plants, str(path))
    return ff.scenario, fld


def check_plants(fld: SimField, plants: list[dict[str, Any]], where: str) -> None:
    """ConfigError unless ``plants`` (a field file's list) are the plants of ``fld``."""
    if len(plants) != len(fld.plants):
        raise ConfigError(f"{where}: lists {len(plants)} plants, the regenerated field has "
                          f"{len(fld.plants)} (written by another generator version?)")
    for listed, p in zip(plants, fld.plants):
        try:
            same = (int(listed["id"]) == p.id and int(listed["class_id"]) == p.class_id
                    and abs(float(listed["x"]) - p.x) <= _PLANT_TOLERANCE_M
                    and abs(float(listed["y"]) - p.y) <= _PLANT_TOLERANCE_M)
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{where}: plant entry {listed!r} is malformed ({e})") from None
        if not same:
            raise ConfigError(f"{where}: plant {listed.get('id')} differs from the regenerated "
                              "field (written by another generator version?)")
