"""A Gazebo Harmonic world (SDFormat 1.11) of a simulated field: the same field, camera and drive
that ``field_sim`` and ``simulate`` use, for users who have Gazebo (docs: README, "Simulation").

:func:`write_gazebo_world` writes a self-contained folder ``OUT``:

- ``world.sdf``: the world. Physics, Sensors (render engine ``ogre2``), SceneBroadcaster and
  UserCommands systems; a sun straight above, no shadows (the mosaic has its own);
- the **ground**: the field mosaic (:attr:`SimField.rgb`, plants and their shadows included) cut
  into tiles ``tile_m`` long and the field's width, each a textured quad at z = 0
  (``textures/ground_NNN.png``), on a plain soil-coloured plane that covers the surroundings.
  The full mosaic, not soil only: the field keeps no soil-only layer (plants are painted into
  it, with shadows), and with the plants already in the ground texture the RGB camera sees the
  mosaic even where a plant quad below is left out (hidden plants, alpha edges);
- every **plant** with visible pixels: a static model ``plant_NNNN_crop|weed``, a flat quad
  ``plant_height_m`` (0.5 mm) above the ground textured with the plant's mosaic pixels, alpha-cut to
  its visible footprint (its mask where the mosaic's label is its class, so crop and weed
  quads never overlap), with the ``Label`` system (label 1 crop, 2 weed). A ``segmentation``
  camera (semantic) therefore gives the field's label map: 0 for the unlabelled ground, 1 and 2
  on the plants. One model per plant: panoptic mode gives instance ids too;
- the **robot** ``robot``: one link ``base_link`` (a box above the cameras, where they cannot
  see it; no collision, no gravity: it glides at its commanded velocity), an RGB ``camera`` and
  a ``segmentation`` camera at the scenario's mount with its image size, horizontal field of
  view and frame rate, frame id ``camera_optical_frame`` (the camera's ``optical_frame_id``,
  which Harmonic's camera uses for image and camera_info, and the sensor's ``gz_frame_id``,
  which its segmentation camera uses: an element Gazebo reads that the 1.11 spec does not
  list; libsdformat copies it with a warning); driven by ``cmd_vel`` (``VelocityControl``),
  odometry and TF ``odom`` -> ``base_link`` (``OdometryPublisher``). It starts at the drive's
  start: ``base_link`` at field x = ``drive.start_x``, y = 0, heading +x;
- ``field.json``: the field file (scenario + drive + every plant's ground position and class,
  :func:`~crop_weed_seg.sim.scenario.write_field_file`) for the scorer;
- ``meshes/quad.obj`` (+ ``.mtl``): the unit quad every tile and plant scales. Its texture
  coordinates put the image's top at +x (the far end) and its left at +y, as the mosaic.

Coordinates: Gazebo's world frame is the field frame (x along the strip from its start, y left,
z up; :mod:`crop_weed_seg.sim.world`), so odometry's pose is the field x of ``base_link``.
Gazebo topics are :data:`GZ_TOPICS` (``config/gz_bridge.yaml`` bridges them to the ROS names of
the simulation contract). Paths in the world are relative to its folder (Gazebo Harmonic
resolves them against the world file; ``launch/sim.launch.py`` also puts the folder on
``GZ_SIM_RESOURCE_PATH``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from crop_weed_seg.classes import CROP, PALETTE_RGB, SOIL, WEED
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.sim.drive import DRIVE_MARGIN_M
from crop_weed_seg.sim.scenario import CameraSpec, Scenario, write_field_file
from crop_weed_seg.sim.world import SimField
from crop_weed_seg.spray.mount_tf import transform_from_mount

SDF_VERSION = "1.11"
WORLD_NAME = "crop_weed_field"
ROBOT_MODEL = "robot"
BASE_FRAME = "base_link"
ODOM_FRAME = "odom"
OPTICAL_FRAME = "camera_optical_frame"
#: Label system ids: the segmentation camera's value per class (unlabelled ground = 0).
LABELS = {"soil": SOIL, "crop": CROP, "weed": WEED}
#: The segmentation sensor's topic; it publishes ``<topic>/labels_map`` (label in every
#: channel), ``<topic>/colored_map`` and ``<topic>/camera_info``.
SEGMENTATION_TOPIC = "/crop_weed_seg/segmentation"
#: Gazebo topic of each ROS name of the simulation contract (config/gz_bridge.yaml).
GZ_TOPICS = {
    "/clock": "/clock",                                    # published by gz sim itself
    "image": "/crop_weed_seg/camera/image",
    "camera_info": "/crop_weed_seg/camera/camera_info",
    "labels_truth": SEGMENTATION_TOPIC + "/labels_map",
    "/odom": "/crop_weed_seg/odom",
    "/tf": "/crop_weed_seg/tf",
    "cmd_vel": "/crop_weed_seg/cmd_vel",
}
#: The world's file names (relative to its folder).
WORLD_FILE = "world.sdf"
FIELD_FILE = "field.json"
QUAD_MESH = "meshes/quad.obj"
QUAD_MATERIALS = "meshes/quad.mtl"


@dataclass(frozen=True)
class WorldOptions:
    """How the field is cut into models: ground tile length along x [m] and the height of the
    plant quads above the ground tiles [m]. The height is parallax the camera sees (a quad
    h above the ground shows a ray's plant h·tan(angle off the optical axis) further out than
    field_sim does: 0.3 mm at 30° for 0.5 mm), small against the mosaic's pixel, and far
    above the depth resolution of ogre2's reverse-Z float depth buffer at a camera height of
    tenths of a metre."""

    tile_m: float = 1.0
    plant_height_m: float = 0.0005

    def validate(self) -> WorldOptions:
        if not (math.isfinite(self.tile_m) and self.tile_m >= 0.05):
            raise ConfigError(f"ground tile length {self.tile_m} m must be at least 0.05 m")
        if not (math.isfinite(self.plant_height_m) and 0.0 < self.plant_height_m <= 0.05):
            raise ConfigError(f"plant quad height {self.plant_height_m} m must lie in (0, 0.05]")
        return self


@dataclass(frozen=True)
class GazeboWorld:
    """What :func:`write_gazebo_world` wrote: the folder, its world and field file, and counts."""

    out: Path
    world: Path
    field_file: Path
    tiles: int
    crops: int
    weeds: int
    hidden_plants: int  #: plants without a visible pixel (in field.json, no model)
    start_x: float


@dataclass(frozen=True)
class _Texture:
    path: str          # relative to the world folder
    image: np.ndarray  # RGB or RGBA, uint8


# --- geometry ------------------------------------------------------------------------------------

def rpy_from_matrix(rot: np.ndarray) -> tuple[float, float, float]:
    """Roll, pitch, yaw [rad] of SDFormat's ``euler_rpy`` (R = Rz(yaw)·Ry(pitch)·Rx(roll)) for a
    rotation matrix; at pitch ±90° (a camera looking straight down) yaw is taken as 0."""
    r = np.asarray(rot, np.float64)
    cos_pitch = math.hypot(r[0, 0], r[1, 0])
    pitch = math.atan2(-r[2, 0], cos_pitch)
    if cos_pitch > 1e-9:
        return math.atan2(r[2, 1], r[2, 2]), pitch, math.atan2(r[1, 0], r[0, 0])
    if r[2, 0] < 0:   # pitch +90°: R = Ry(90°)·Rx(roll)
        return math.atan2(r[0, 1], r[1, 1]), pitch, 0.0
    return math.atan2(-r[0, 1], r[1, 1]), pitch, 0.0


def matrix_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Rz(yaw)·Ry(pitch)·Rx(roll), SDFormat's ``euler_rpy``."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    return rz @ ry @ rx


def gazebo_camera_rotation(camera: CameraSpec) -> np.ndarray:
    """The Gazebo camera frame in ``base_link`` (columns: its x, y, z axes). A Gazebo camera
    looks along its +x with +z up in the image and +y to the image's left, so its axes are the
    optical frame's (z, −x, −y) (:meth:`CameraMount.rotation` gives those in base_link)."""
    optical = camera.mount().rotation()
    return np.column_stack((optical[:, 2], -optical[:, 0], -optical[:, 1]))


def camera_sensor_pose(camera: CameraSpec) -> tuple[float, float, float, float, float, float]:
    """The camera sensors' ``<pose>`` in ``base_link``: x, y, z [m], roll, pitch, yaw [rad]."""
    roll, pitch, yaw = rpy_from_matrix(gazebo_camera_rotation(camera))
    return camera.x_m, camera.y_m, camera.height_m, roll, pitch, yaw


def optical_frame_transform(camera: CameraSpec
                            ) -> tuple[tuple[float, float, float],
                                       tuple[float, float, float, float]]:
    """``base_link`` -> ``camera_optical_frame`` as a static TF: translation and quaternion
    (x, y, z, w), from the scenario's mount (what field_sim publishes on /tf_static)."""
    rigid = transform_from_mount(camera.mount())
    return rigid.translation, rigid.rotation


def footprint_length_m(scenario: Scenario) -> float:
    """Along-track length of the camera's view on the ground [m]."""
    dx_min, dx_max = scenario.build_camera().footprint_x()
    return dx_max - dx_min


def field_length_for_drive(scenario: Scenario, distance_m: float) -> float:
    """The field length whose planned drive (:meth:`Scenario.plan`) covers ``distance_m``:
    the drive keeps the whole image on the field, so the field is the footprint and the
    margins longer."""
    if not (math.isfinite(distance_m) and distance_m > 0):
        raise ConfigError(f"drive distance {distance_m} m must be positive")
    return distance_m + footprint_length_m(scenario) + 2 * DRIVE_MARGIN_M


# --- SDF -----------------------------------------------------------------------------------------

def _num(value: float) -> str:
    """A number as SDF text: up to 9 significant digits, no exponent for ordinary values."""
    text = f"{float(value):.9g}"
    if "e" in text:
        text = f"{float(value):.9f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _nums(*values: float) -> str:
    return " ".join(_num(v) for v in values)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    child = ET.SubElement(parent, tag, attrib)
    if text is not None:
        child.text = text
    return child


def _plugin(parent: ET.Element, library: str, name: str,
            settings: dict[str, str] | None = None) -> ET.Element:
    plugin = _sub(parent, "plugin", filename=library, name=name)
    for key, value in (settings or {}).items():
        _sub(plugin, key, value)
    return plugin


def _textured_quad(link: ET.Element, name: str, pose: tuple[float, ...],
                   size: tuple[float, float], texture: str) -> None:
    visual = _sub(link, "visual", name=name)
    _sub(visual, "pose", _nums(*pose))
    _sub(visual, "cast_shadows", "false")
    mesh = _sub(_sub(visual, "geometry"), "mesh")
    _sub(mesh, "uri", QUAD_MESH)
    _sub(mesh, "scale", _nums(size[0], size[1], 1.0))
    material = _sub(visual, "material")
    _sub(material, "ambient", "1 1 1 1")
    _sub(material, "diffuse", "1 1 1 1")
    _sub(material, "specular", "0 0 0 1")
    metal = _sub(_sub(material, "pbr"), "metal")
    _sub(metal, "albedo_map", texture)
    _sub(metal, "roughness", "1")
    _sub(metal, "metalness", "0")


def _world_systems(world: ET.Element) -> None:
    physics = _sub(world, "physics", name="1ms", type="ignored")
    _sub(physics, "max_step_size", "0.001")
    _sub(physics, "real_time_factor", "1.0")
    _sub(physics, "real_time_update_rate", "1000")
    _plugin(world, "gz-sim-physics-system", "gz::sim::systems::Physics")
    _plugin(world, "gz-sim-sensors-system", "gz::sim::systems::Sensors",
            {"render_engine": "ogre2"})
    _plugin(world, "gz-sim-scene-broadcaster-system", "gz::sim::systems::SceneBroadcaster")
    _plugin(world, "gz-sim-user-commands-system", "gz::sim::systems::UserCommands")
    _sub(world, "gravity", "0 0 -9.8")
    _sub(world, "magnetic_field", "5.5645e-6 22.8758e-6 -42.3884e-6")
    _sub(world, "atmosphere", type="adiabatic")
    scene = _sub(world, "scene")
    _sub(scene, "ambient", "0.6 0.6 0.6 1")
    _sub(scene, "background", "0.7 0.8 0.9 1")
    _sub(scene, "shadows", "false")
    _sub(scene, "grid", "false")
    sun = _sub(world, "light", name="sun", type="directional")
    _sub(sun, "cast_shadows", "false")
    _sub(sun, "pose", "0 0 10 0 0 0")
    _sub(sun, "diffuse", "0.9 0.9 0.9 1")
    _sub(sun, "specular", "0.1 0.1 0.1 1")
    _sub(sun, "direction", "0 0 -1")


def _ground(world: ET.Element, fld: SimField, tile_m: float) -> list[_Texture]:
    """The ground model: tiles of the mosaic (pixel-exact extents) on a soil-coloured plane."""
    model = _sub(world, "model", name="ground")
    _sub(model, "static", "true")
    link = _sub(model, "link", name="link")
    g, rows = fld.gsd_m, fld.rgb.shape[0]
    length, width = fld.length_m, fld.width_m
    soil = _sub(link, "visual", name="surroundings")
    _sub(soil, "pose", _nums(length / 2, 0.0, -0.001, 0, 0, 0))
    _sub(soil, "cast_shadows", "false")
    plane = _sub(_sub(soil, "geometry"), "plane")
    _sub(plane, "normal", "0 0 1")
    _sub(plane, "size", _nums(length + 20.0, width + 20.0))
    material = _sub(soil, "material")
    colour = _nums(*(PALETTE_RGB[SOIL] / 255.0), 1.0)
    for tag in ("ambient", "diffuse"):
        _sub(material, tag, colour)
    _sub(material, "specular", "0 0 0 1")

    textures = []
    tile_px = max(1, int(round(tile_m / g)))
    count = math.ceil(rows / tile_px)
    for i in range(count):
        # Tile i holds field x from i·tile to (i+1)·tile: mosaic rows counted from the far end.
        r1 = rows - i * tile_px
        r0 = max(0, r1 - tile_px)
        x_lo, x_hi = (rows - r1) * g, (rows - r0) * g
        path = f"textures/ground_{i:03d}.png"
        textures.append(_Texture(path, fld.rgb[r0:r1]))
        _textured_quad(link, f"tile_{i:03d}", ((x_lo + x_hi) / 2, 0.0, 0.0, 0, 0, 0),
                       (x_hi - x_lo, width), path)
    return textures


def _visible_patch(fld: SimField, plant_index: int
                   ) -> tuple[np.ndarray, tuple[float, float, float, float]] | None:
    """The plant's RGBA patch (mosaic colour, alpha 255 where the plant is the visible class)
    and its extent (x_lo, x_hi, y_lo, y_hi) in field metres; None when nothing is visible."""
    p = fld.plants[plant_index]
    h, w = fld.labels.shape
    r0, c0 = p.row0, p.col0
    r1, c1 = min(r0 + p.mask.shape[0], h), min(c0 + p.mask.shape[1], w)
    a0, b0 = max(r0, 0), max(c0, 0)
    if r1 <= a0 or c1 <= b0:
        return None
    mask = p.mask[a0 - r0:r1 - r0, b0 - c0:c1 - c0]
    visible = mask & (fld.labels[a0:r1, b0:c1] == p.class_id)
    if not visible.any():
        return None
    rr, cc = np.nonzero(visible)
    top, bottom, left, right = rr.min(), rr.max() + 1, cc.min(), cc.max() + 1
    alpha = visible[top:bottom, left:right]
    rows, cols = a0 + top, b0 + left
    rgba = np.empty(alpha.shape + (4,), np.uint8)
    rgba[:, :, :3] = fld.rgb[rows:rows + alpha.shape[0], cols:cols + alpha.shape[1]]
    rgba[:, :, 3] = np.where(alpha, 255, 0)
    g, length, half = fld.gsd_m, fld.length_m, fld.width_m / 2
    extent = (length - (rows + alpha.shape[0]) * g, length - rows * g,
              half - (cols + alpha.shape[1]) * g, half - cols * g)
    return rgba, extent


def _plants(world: ET.Element, fld: SimField, height_m: float
            ) -> tuple[list[_Texture], dict[str, int]]:
    textures = []
    counts = {"crop": 0, "weed": 0, "hidden": 0}
    for index, plant in enumerate(fld.plants):
        found = _visible_patch(fld, index)
        if found is None:
            counts["hidden"] += 1
            continue
        rgba, (x_lo, x_hi, y_lo, y_hi) = found
        kind = "weed" if plant.class_id == WEED else "crop"
        counts[kind] += 1
        path = f"textures/plants/plant_{plant.id:04d}.png"
        textures.append(_Texture(path, rgba))
        model = _sub(world, "model", name=f"plant_{plant.id:04d}_{kind}")
        _sub(model, "static", "true")
        _sub(model, "pose", _nums((x_lo + x_hi) / 2, (y_lo + y_hi) / 2, height_m, 0, 0, 0))
        link = _sub(model, "link", name="link")
        _textured_quad(link, "visual", (0, 0, 0, 0, 0, 0), (x_hi - x_lo, y_hi - y_lo), path)
        _plugin(model, "gz-sim-label-system", "gz::sim::systems::Label",
                {"label": str(LABELS[kind])})
    return textures, counts


def _camera_sensor(link: ET.Element, name: str, sensor_type: str, topic: str,
                   scenario: Scenario) -> ET.Element:
    cam = scenario.camera
    sensor = _sub(link, "sensor", name=name, type=sensor_type)
    _sub(sensor, "pose", _nums(*camera_sensor_pose(cam)))
    _sub(sensor, "always_on", "true")
    _sub(sensor, "update_rate", _num(scenario.frame_rate_hz))
    _sub(sensor, "visualize", "false")
    _sub(sensor, "topic", topic)
    _sub(sensor, "gz_frame_id", OPTICAL_FRAME)   # Harmonic extension (module docstring)
    camera = _sub(sensor, "camera", name=name)
    _sub(camera, "horizontal_fov", _num(math.radians(cam.hfov_deg)))
    image = _sub(camera, "image")
    _sub(image, "width", str(cam.width))
    _sub(image, "height", str(cam.height))
    _sub(image, "format", "R8G8B8")
    clip = _sub(camera, "clip")
    _sub(clip, "near", "0.05")
    _sub(clip, "far", "50")
    _sub(camera, "optical_frame_id", OPTICAL_FRAME)
    return camera


def _robot(world: ET.Element, scenario: Scenario, start_x: float) -> None:
    model = _sub(world, "model", name=ROBOT_MODEL)
    _sub(model, "pose", _nums(start_x, 0.0, 0.0, 0, 0, 0))
    link = _sub(model, "link", name=BASE_FRAME)
    _sub(link, "gravity", "false")
    inertial = _sub(link, "inertial")
    mass, size = 20.0, (0.6, 1.2, 0.2)
    _sub(inertial, "mass", _num(mass))
    inertia = _sub(inertial, "inertia")
    sx, sy, sz = size
    for tag, value in (("ixx", mass * (sy * sy + sz * sz) / 12), ("ixy", 0.0), ("ixz", 0.0),
                       ("iyy", mass * (sx * sx + sz * sz) / 12), ("iyz", 0.0),
                       ("izz", mass * (sx * sx + sy * sy) / 12)):
        _sub(inertia, tag, _num(value))
    # The chassis sits above the cameras: a camera that sees the ground sees nothing above its
    # own height (Scenario refuses a mount that looks above the horizon).
    cam = scenario.camera
    chassis = _sub(link, "visual", name="chassis")
    _sub(chassis, "pose", _nums(cam.x_m, 0.0, cam.height_m + 0.05 + sz / 2, 0, 0, 0))
    _sub(_sub(_sub(chassis, "geometry"), "box"), "size", _nums(*size))
    material = _sub(chassis, "material")
    _sub(material, "ambient", "0.8 0.4 0.1 1")
    _sub(material, "diffuse", "0.8 0.4 0.1 1")
    camera = _camera_sensor(link, "camera", "camera", GZ_TOPICS["image"], scenario)
    _sub(camera, "camera_info_topic", GZ_TOPICS["camera_info"])
    segmentation = _camera_sensor(link, "segmentation", "segmentation", SEGMENTATION_TOPIC,
                                  scenario)
    _sub(segmentation, "segmentation_type", "semantic")
    _plugin(model, "gz-sim-velocity-control-system", "gz::sim::systems::VelocityControl",
            {"topic": GZ_TOPICS["cmd_vel"]})
    _plugin(model, "gz-sim-odometry-publisher-system", "gz::sim::systems::OdometryPublisher",
            {"odom_frame": ODOM_FRAME, "robot_base_frame": BASE_FRAME,
             "odom_publish_frequency": "50", "odom_topic": GZ_TOPICS["/odom"],
             "tf_topic": GZ_TOPICS["/tf"], "dimensions": "3"})


def world_sdf(scenario: Scenario, fld: SimField, options: WorldOptions | None = None
              ) -> tuple[str, list[_Texture], dict[str, int]]:
    """The world file's text, the textures it names and the plant counts (crop, weed,
    hidden). Pure: writes nothing."""
    options = (options or WorldOptions()).validate()
    drive = scenario.plan(fld)
    root = ET.Element("sdf", version=SDF_VERSION)
    world = _sub(root, "world", name=WORLD_NAME)
    _world_systems(world)
    textures = _ground(world, fld, options.tile_m)
    plant_textures, counts = _plants(world, fld, options.plant_height_m)
    _robot(world, scenario, drive.start_x)
    ET.indent(root, space="  ")
    note = (f"Written by crop-weed-seg gazebo-world: {fld.length_m:g} x {fld.width_m:g} m field, "
            f"seed {scenario.seed}, {counts['crop']} crops, {counts['weed']} weeds. Run: ros2 "
            "launch crop_weed_seg sim.launch.py simulator:=gazebo world:=<this folder>/"
            f"{WORLD_FILE} (README, Simulation)").replace("--", "- -")  # no -- in a comment
    text = f"<?xml version=\"1.0\"?>\n<!-- {note} -->\n" + ET.tostring(root, encoding="unicode")
    return text + "\n", textures + plant_textures, counts


QUAD_OBJ = """\
# Unit quad in the xy plane, normal +z, scaled per visual (<mesh><scale>).
# Texture: image top at +x, image left at +y (the field mosaic's orientation).
mtllib quad.mtl
o quad
v 0.5 0.5 0
v -0.5 0.5 0
v -0.5 -0.5 0
v 0.5 -0.5 0
vt 0 1
vt 0 0
vt 1 0
vt 1 1
vn 0 0 1
usemtl white
f 1/1/1 2/2/1 3/3/1
f 1/1/1 3/3/1 4/4/1
"""
QUAD_MTL = """\
newmtl white
Ka 1 1 1
Kd 1 1 1
Ks 0 0 0
d 1
"""


# --- writing -------------------------------------------------------------------------------------

def _write_png(path: Path, image: np.ndarray) -> None:
    code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image), code))
    if not ok:
        raise ConfigError(f"cannot encode the texture {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())


def _is_world_folder(path: Path) -> bool:
    """An empty folder or one an earlier gazebo-world wrote (it may be replaced)."""
    names = {p.name for p in path.iterdir()}
    return not names or WORLD_FILE in names


def write_gazebo_world(out: Path, scenario: Scenario, fld: SimField | None = None,
                       options: WorldOptions | None = None) -> GazeboWorld:
    """Write the world folder ``out`` (module docstring) for ``scenario`` (its generated field
    unless ``fld`` is given). The folder appears complete or not at all: it is written next to
    ``out`` and moved into place; an existing ``out`` is replaced only when it is empty or an
    earlier world. ConfigError names what cannot be made or written."""
    out = Path(out)
    scenario = scenario.validate()
    fld = scenario.build_field() if fld is None else fld
    text, textures, counts = world_sdf(scenario, fld, options)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"cannot write the Gazebo world to {out}: it is a file, not a folder")
    if out.is_dir() and not _is_world_folder(out):
        raise ConfigError(f"{out} holds files that are not a Gazebo world of crop-weed-seg; "
                          "choose a new or empty folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise ConfigError(f"cannot write the Gazebo world to {out}: {e.strerror or e}") from None
    try:
        for texture in textures:
            _write_png(tmp / texture.path, texture.image)
        (tmp / QUAD_MESH).parent.mkdir(parents=True, exist_ok=True)
        (tmp / QUAD_MESH).write_text(QUAD_OBJ)
        (tmp / QUAD_MATERIALS).write_text(QUAD_MTL)
        write_field_file(tmp / FIELD_FILE, scenario, fld)
        (tmp / WORLD_FILE).write_text(text)
        os.chmod(tmp, 0o755)   # mkdtemp makes it private
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"cannot write the Gazebo world to {out}: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return GazeboWorld(out, out / WORLD_FILE, out / FIELD_FILE, sum(
        t.path.startswith("textures/ground_") for t in textures), counts["crop"],
        counts["weed"], counts["hidden"], scenario.plan(fld).start_x)


def with_overrides(scenario: Scenario, *, length_m: float | None = None,
                   seed: int | None = None, speed_mps: float | None = None,
                   frame_rate_hz: float | None = None) -> Scenario:
    """The scenario with the given settings replaced (None keeps them)."""
    if length_m is not None:
        scenario = dataclasses.replace(
            scenario, field=dataclasses.replace(scenario.field, length_m=float(length_m)))
    if seed is not None:
        scenario = dataclasses.replace(scenario, seed=int(seed))
    if speed_mps is not None:
        scenario = dataclasses.replace(scenario, speed_mps=float(speed_mps))
    if frame_rate_hz is not None:
        scenario = dataclasses.replace(scenario, frame_rate_hz=float(frame_rate_hz))
    return scenario
