"""``crop-weed-seg gazebo-world``: the world validates against the SDFormat 1.11 spec (and the
validator catches broken worlds), names only files it wrote, lists the field's plants in
field.json, labels crops 1 and weeds 2, and its cameras see what field_sim's camera sees:
a small reference renderer (pinhole rays onto the world's textured quads, as Gazebo's camera
and OBJ conventions define them) is compared with :meth:`SimCamera.render`. Gazebo itself
cannot run here."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.sim.gazebo_world import (
    GZ_TOPICS,
    OPTICAL_FRAME,
    SEGMENTATION_TOPIC,
    WorldOptions,
    field_length_for_drive,
    gazebo_camera_rotation,
    matrix_from_rpy,
    optical_frame_transform,
    rpy_from_matrix,
    with_overrides,
    write_gazebo_world,
)
from crop_weed_seg.sim.scenario import (
    BoomSpec,
    CameraSpec,
    Scenario,
    load_field,
    read_field_file,
    write_field_file,
)
from crop_weed_seg.sim.world import FieldConfig
from crop_weed_seg.spray.geometry import CameraMount
from crop_weed_seg.spray.mount_tf import matrix_to_quaternion
from crop_weed_seg.tools.cli import main

from support.sdformat import Spec, check_value, named_files, validate

SMALL = Scenario(field=FieldConfig(length_m=3.0, width_m=0.6, gsd_mm=2.0), seed=5,
                 camera=CameraSpec(width=160, height=120, height_m=0.5),
                 boom=BoomSpec(nozzles=6, spacing_m=0.1))
#: Mounts the world must place right: straight down, pitched and yawed, rolled and offset.
MOUNTS = {
    "down": SMALL.camera,
    "pitch_yaw": dataclasses.replace(SMALL.camera, pitch_deg=20.0, yaw_deg=15.0),
    "roll_offset": dataclasses.replace(SMALL.camera, roll_deg=-12.0, x_m=0.3, y_m=-0.05,
                                       hfov_deg=50.0),
}


@pytest.fixture(scope="module")
def small_field() -> Any:
    return SMALL.build_field()


@pytest.fixture(scope="module")
def worlds(small_field: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One world per mount of MOUNTS, on the same field."""
    root = tmp_path_factory.mktemp("worlds")
    return {name: write_gazebo_world(root / name, dataclasses.replace(SMALL, camera=camera),
                                     small_field)
            for name, camera in MOUNTS.items()}


def _tree(world: Any) -> ET.Element:
    return ET.parse(world.world).getroot()


def _models(world: Any) -> dict[str, ET.Element]:
    return {m.get("name", ""): m for m in _tree(world).iter("model")}


# --- the spec ---------------------------------------------------------------------------------

def test_every_generated_world_validates(worlds: dict[str, Any]) -> None:
    for name, world in worlds.items():
        assert validate(world.world) == [], name
        assert _tree(world).get("version") == "1.11"


def _broken(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("<gravity>false</gravity>", "<gravity>false</gravity><wheels>4</wheels>",
     "unknown element <wheels> in <link>"),
    ('<sensor name="camera" type="camera">', '<sensor type="camera">',
     "missing required attribute 'name'"),
    ('<model name="robot">', '<model name="robot" colour="red">', "unknown attribute 'colour'"),
    ("<update_rate>15</update_rate>", "<update_rate>fast</update_rate>", "is not a double"),
    ("<static>true</static>", "<static>yes</static>", "is not a bool"),
    ("<width>160</width>", "<width>160.5</width>", "is not an int"),
    ("<gravity>0 0 -9.8</gravity>", "<gravity>0 -9.8</gravity>", "is not a vector3"),
    ("<pose>0 0 0.5 0 1.57079633 0</pose>", "<pose>0 0 0.5 0 1.57</pose>", "is not a pose"),
    ("<ambient>0.6 0.6 0.6 1</ambient>", "<ambient>bright</ambient>", "is not a color"),
    ("<size>23 20.6</size>", "<size>23</size>", "is not a vector2d"),
    ("<horizontal_fov>1.04719755</horizontal_fov>", "<horizontal_fov>0.01</horizontal_fov>",
     "below its min"),
    ("<near>0.05</near>", "", "missing required element <near>"),
    ("<shadows>false</shadows>", "", "missing required element <shadows>"),
    ("<format>R8G8B8</format>", "<format>R8G8B8</format><format>L8</format>",
     "<format> 2 times"),
    ("<gravity>false</gravity>", "<gravity>false</gravity><gz_frame_id>x</gz_frame_id>",
     "unknown element <gz_frame_id> in <link>"),
    ('<plugin filename="gz-sim-physics-system"', '<plugin', "missing required attribute "
     "'filename'"),
    ("<static>true</static>", "<static>true<static>true</static></static>",
     "unknown element <static> in <static>"),
    ('<model name="robot">', '<model name="ground">', "has the same name"),
])
def test_the_validator_catches_broken_worlds(worlds: dict[str, Any], old: str, new: str,
                                             expected: str) -> None:
    """Each break of the spec is reported (so a passing world means something)."""
    text = worlds["down"].world.read_text()
    errors = validate(_broken(text, old, new))
    assert any(expected in e for e in errors), errors


def test_the_validator_knows_the_harmonic_extension_only_where_listed(
        worlds: dict[str, Any]) -> None:
    errors = validate(worlds["down"].world, extensions={})
    assert len(errors) == 2 and all("gz_frame_id" in e and "<sensor>" in e for e in errors)


def test_plugins_take_anything_inside_but_keep_their_attributes(worlds: dict[str, Any]) -> None:
    text = worlds["down"].world.read_text()
    assert validate(_broken(text, "<render_engine>ogre2</render_engine>",
                            "<render_engine>ogre2</render_engine><any a='1'><b/></any>")) == []


def test_value_types() -> None:
    assert check_value("pose", "1 2 3 0 0 0") is None
    assert check_value("pose", "1 2 3 0 0 0 1", {"rotation_format": "quat_xyzw"}) is None
    assert check_value("pose", "1 2 3 0 0 0 1") is not None
    assert check_value("unsigned int", "-1") is not None
    assert check_value("unsigned int", "4294967295") is None
    assert check_value("double", "nan") is not None
    assert check_value("time", "10 500") is None and check_value("time", "1.5") is None
    assert check_value("vector2i", "1 2") is None and check_value("vector2i", "1 2.5") is not None
    assert check_value("color", "1 0 0") is None and check_value("color", "1 0") is not None
    assert "does not know" in (check_value("matrix", "1") or "")


def test_the_spec_resolves_includes_and_references() -> None:
    spec = Spec()
    world, required = spec.root.children["world"]
    assert required == "*"
    model, _ = world.children["model"]
    nested, _ = model.children["model"]
    assert nested is model                  # ref="model": the same description
    assert world.children["physics"][1] == "+"
    plugin, _ = model.children["plugin"]
    assert plugin.copy_data and plugin.attributes["filename"].required
    assert spec.file("joint.sdf").children["thread_pitch"][1] == "-1"


# --- files, plants, labels, cameras -------------------------------------------------------------

def test_every_named_file_exists_inside_the_world_folder(worlds: dict[str, Any],
                                                         tmp_path: Path) -> None:
    world = worlds["down"]
    named = named_files(world.world)
    assert any(text.endswith(".obj") for text, _ in named)
    assert any(text.startswith("mtllib") for text, _ in named)
    assert sum(text.startswith("textures/plants/") for text, _ in named) == \
        world.crops + world.weeds
    for text, path in named:
        assert path != Path() and not Path(text).is_absolute(), text
        assert path.is_file() and path.stat().st_size > 0, text
        assert path.resolve().is_relative_to(world.out.resolve()), text
    moved = tmp_path / "moved"
    shutil.copytree(world.out, moved)                     # self-contained: relocatable
    assert all(p.is_file() for _, p in named_files(moved / "world.sdf"))


def test_field_json_lists_the_fields_plants_and_the_robot_starts_at_the_drive(
        worlds: dict[str, Any], small_field: Any) -> None:
    world = worlds["down"]
    doc = json.loads(world.field_file.read_text())
    assert [(p["id"], p["class_id"], p["x"], p["y"]) for p in doc["plants"]] == \
        [(p.id, p.class_id, round(p.x, 5), round(p.y, 5)) for p in small_field.plants]
    scenario, again = load_field(world.field_file)
    assert scenario == SMALL and len(again.plants) == len(small_field.plants)
    drive = SMALL.plan(small_field)
    assert doc["drive"]["start_x_m"] == drive.start_x == world.start_x
    robot = _models(world)["robot"]
    x, y, z, *rpy = (float(v) for v in robot.findtext("pose", "").split())
    assert (x, y, z, rpy) == (pytest.approx(drive.start_x, abs=1e-8), 0.0, 0.0, [0, 0, 0])


def test_plants_are_labelled_models_crop_1_weed_2(worlds: dict[str, Any],
                                                  small_field: Any) -> None:
    world = worlds["down"]
    classes = {p.id: p.class_id for p in small_field.plants}
    labelled = {}
    for name, model in _models(world).items():
        labels = [p.findtext("label", "") for p in model.iter("plugin")
                  if p.get("name") == "gz::sim::systems::Label"]
        if not name.startswith("plant_"):
            assert labels == [], name              # ground and robot: background (0)
            continue
        _, pid, kind = name.split("_")
        assert labels == [{"crop": "1", "weed": "2"}[kind]], name
        assert model.findtext("static") == "true"
        assert next(p for p in model.iter("plugin")).get("filename") == "gz-sim-label-system"
        labelled[int(pid)] = int(labels[0])
    assert len(labelled) == world.crops + world.weeds == len(classes) - world.hidden_plants
    assert world.crops > 5 and world.weeds > 5
    assert all(classes[pid] == label for pid, label in labelled.items())


def test_world_systems_and_robot_plugins(worlds: dict[str, Any]) -> None:
    root = _tree(worlds["down"])
    world = root.find("world")
    assert world is not None
    systems = {p.get("name"): p for p in world.findall("plugin")}
    assert {p.get("filename") for p in systems.values()} == {
        "gz-sim-physics-system", "gz-sim-sensors-system", "gz-sim-scene-broadcaster-system",
        "gz-sim-user-commands-system"}
    assert systems["gz::sim::systems::Sensors"].findtext("render_engine") == "ogre2"
    robot = _models(worlds["down"])["robot"]
    plugins = {p.get("filename"): p for p in robot.findall("plugin")}
    assert plugins["gz-sim-velocity-control-system"].findtext("topic") == GZ_TOPICS["cmd_vel"]
    odom = plugins["gz-sim-odometry-publisher-system"]
    assert (odom.findtext("odom_frame"), odom.findtext("robot_base_frame")) == ("odom",
                                                                                "base_link")
    assert odom.findtext("odom_topic") == GZ_TOPICS["/odom"]
    assert odom.findtext("tf_topic") == GZ_TOPICS["/tf"]
    link = robot.find("link")
    assert link is not None and link.get("name") == "base_link"
    assert link.find("collision") is None and link.findtext("gravity") == "false"


def _sensors(world: Any) -> dict[str, ET.Element]:
    return {s.get("type", ""): s for s in _tree(world).iter("sensor")}


def test_cameras_have_the_scenarios_size_fov_rate_and_frame(worlds: dict[str, Any]) -> None:
    for name, world in worlds.items():
        cam = MOUNTS[name]
        sensors = _sensors(world)
        assert set(sensors) == {"camera", "segmentation"}
        for sensor in sensors.values():
            camera = sensor.find("camera")
            assert camera is not None
            assert int(camera.findtext("image/width", "")) == cam.width
            assert int(camera.findtext("image/height", "")) == cam.height
            assert float(camera.findtext("horizontal_fov", "")) == \
                pytest.approx(math.radians(cam.hfov_deg), abs=1e-8)
            assert float(sensor.findtext("update_rate", "")) == SMALL.frame_rate_hz
            assert sensor.findtext("gz_frame_id") == OPTICAL_FRAME
            assert camera.findtext("optical_frame_id") == OPTICAL_FRAME
            assert sensor.findtext("pose") == sensors["camera"].findtext("pose")
        assert sensors["camera"].findtext("topic") == GZ_TOPICS["image"]
        assert sensors["camera"].findtext("camera/camera_info_topic") == GZ_TOPICS["camera_info"]
        assert sensors["segmentation"].findtext("topic", "") + "/labels_map" == \
            GZ_TOPICS["labels_truth"] == SEGMENTATION_TOPIC + "/labels_map"
        assert sensors["segmentation"].findtext("camera/segmentation_type") == "semantic"


# --- geometry: the world shows the camera what field_sim's camera sees ---------------------------

@pytest.mark.parametrize("mount", [
    CameraMount(), CameraMount(0.3, -0.1, 0.6, pitch_deg=25.0),
    CameraMount(0, 0, 1.0, pitch_deg=-30.0, roll_deg=10.0, yaw_deg=90.0),
    CameraMount(0, 0, 1.0, yaw_deg=-135.0), CameraMount(0, 0, 1.0, roll_deg=40.0, yaw_deg=5.0)])
def test_sdf_angles_and_quaternions_reproduce_the_mount(mount: CameraMount) -> None:
    cam = CameraSpec(x_m=mount.x, y_m=mount.y, height_m=mount.height, pitch_deg=mount.pitch_deg,
                     roll_deg=mount.roll_deg, yaw_deg=mount.yaw_deg)
    gz = gazebo_camera_rotation(cam)
    assert np.allclose(matrix_from_rpy(*rpy_from_matrix(gz)), gz, atol=1e-12)
    optical = mount.rotation()
    # Gazebo's camera looks along +x (optical z), image right is -y (optical x).
    assert np.allclose(gz[:, 0], optical[:, 2]) and np.allclose(gz[:, 1], -optical[:, 0])
    (x, y, z), (qx, qy, qz, qw) = optical_frame_transform(cam)
    assert (x, y, z) == (mount.x, mount.y, mount.height)
    xx, yy, zz, xy, xz, yz = qx * qx, qy * qy, qz * qz, qx * qy, qx * qz, qy * qz
    wx, wy, wz = qw * qx, qw * qy, qw * qz
    rot = np.array([[1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy)],
                    [2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx)],
                    [2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy)]])
    assert np.allclose(rot, optical, atol=1e-12) and qw >= 0


def test_a_straight_down_camera_is_the_usual_gazebo_pose() -> None:
    assert rpy_from_matrix(gazebo_camera_rotation(CameraSpec())) == \
        pytest.approx((0.0, math.pi / 2, 0.0))
    assert matrix_to_quaternion(np.eye(3)) == (0.0, 0.0, 0.0, 1.0)


def _pose(text: str | None) -> np.ndarray:
    return np.array([float(v) for v in (text or "0 0 0 0 0 0").split()])


def _quad_uv(obj: Path) -> tuple[np.ndarray, np.ndarray]:
    """The OBJ quad's affine map (lx, ly, 1) -> (u, v), fitted on its vertices."""
    verts, uvs, pairs = [], [], []
    for line in obj.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["v"]:
            verts.append([float(v) for v in parts[1:3]])
        elif parts[:1] == ["vt"]:
            uvs.append([float(v) for v in parts[1:3]])
        elif parts[:1] == ["f"]:
            pairs += [tuple(int(i) - 1 for i in corner.split("/")[:2]) for corner in parts[1:]]
    a = np.array([verts[v] + [1.0] for v, _ in pairs])
    b = np.array([uvs[t] for _, t in pairs])
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    assert np.allclose(a @ coef, b)                       # the texture is affine on the quad
    return coef, np.array(verts)


def reference_render(world_path: Path, robot_x: float) -> tuple[np.ndarray, np.ndarray]:
    """RGB and label image of the world's camera with the robot at field x ``robot_x``: pinhole
    rays (Gazebo camera: looks along +x, image right -y, up +z; square pixels from the
    horizontal fov; principal point at the image centre as SimCamera has it) hit the textured
    quads; texel (u, v) of the OBJ is image row (1 - v)·H, column u·W (gz-common flips v);
    a plant quad's texel with alpha >= 128 is its label, else the ground below shows."""
    root = ET.parse(world_path).getroot()
    folder = world_path.parent
    coef, _ = _quad_uv(folder / "meshes" / "quad.obj")
    robot = next(m for m in root.iter("model") if m.get("name") == "robot")
    sensor = next(s for s in robot.iter("sensor") if s.get("type") == "camera")
    sp = _pose(sensor.findtext("pose"))
    rot = matrix_from_rpy(*sp[3:])
    origin = np.array([robot_x, 0.0, 0.0]) + sp[:3]
    w = int(sensor.findtext("camera/image/width", ""))
    h = int(sensor.findtext("camera/image/height", ""))
    f = (w / 2) / math.tan(float(sensor.findtext("camera/horizontal_fov", "")) / 2)
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    rays = np.stack([np.ones_like(u), -(u - (w - 1) / 2) / f, -(v - (h - 1) / 2) / f], -1) @ rot.T
    rgb = np.zeros((h, w, 3), np.uint8)
    labels = np.zeros((h, w), np.uint8)
    quads = []
    for model in root.iter("model"):
        if model.get("name") == "robot":
            continue
        mp = _pose(model.findtext("pose"))
        label = next((int(p.findtext("label", "")) for p in model.iter("plugin")
                      if p.get("name") == "gz::sim::systems::Label"), None)
        for visual in model.iter("visual"):
            texture = visual.findtext(".//albedo_map")
            if texture is None:
                continue
            centre = mp[:3] + _pose(visual.findtext("pose"))[:3]
            sx, sy, _ = (float(s) for s in visual.findtext(".//scale", "").split())
            image = cv2.imread(str(folder / texture), cv2.IMREAD_UNCHANGED)
            assert image is not None, texture
            quads.append((centre, sx, sy, image, label))
    for centre, sx, sy, image, label in sorted(quads, key=lambda q: q[0][2]):
        t = (centre[2] - origin[2]) / rays[:, :, 2]
        px, py = origin[0] + t * rays[:, :, 0], origin[1] + t * rays[:, :, 1]
        lx, ly = (px - centre[0]) / sx, (py - centre[1]) / sy
        inside = (np.abs(lx) <= 0.5) & (np.abs(ly) <= 0.5) & (t > 0)
        uv = np.stack([lx, ly, np.ones_like(lx)], -1) @ coef
        th, tw = image.shape[:2]
        row = np.clip(np.floor((1.0 - uv[:, :, 1]) * th), 0, th - 1).astype(int)
        col = np.clip(np.floor(uv[:, :, 0] * tw), 0, tw - 1).astype(int)
        texel = image[row, col]
        if label is not None:
            inside &= texel[:, :, 3] >= 128
            labels[inside] = label
        rgb[inside] = texel[inside][:, 2::-1]             # BGR(A) -> RGB
    return rgb, labels


@pytest.mark.parametrize("name", sorted(MOUNTS))
def test_the_world_shows_the_camera_what_field_sim_sees(worlds: dict[str, Any],
                                                        small_field: Any, name: str,
                                                        tmp_path: Path) -> None:
    """Label for label (up to a rounding pixel) with the plant quads (almost) on the ground;
    with the default 0.5 mm their parallax leaves a few plant-edge pixels to the neighbour
    (2 mm mosaic pixels here). The colours differ only where bilinear and nearest sampling
    do."""
    scenario = dataclasses.replace(SMALL, camera=MOUNTS[name])
    flat = write_gazebo_world(tmp_path / "flat", scenario, small_field,
                              WorldOptions(plant_height_m=1e-6))
    camera = scenario.build_camera()
    for travel in (0.0, 1.1):
        x = flat.start_x + travel
        want_rgb, want_labels = camera.render(small_field, x)
        plants = want_labels > 0
        assert plants.mean() > 0.02 and set(np.unique(want_labels)) == {0, 1, 2}
        rgb, labels = reference_render(flat.world, x)
        # Equal but for a pixel whose ray hits a mosaic pixel border (floating point).
        assert float(np.mean(labels == want_labels)) >= 0.9995, (name, travel)
        diff = np.abs(rgb.astype(int) - want_rgb.astype(int))
        assert np.median(diff) <= 1 and diff.mean() < 4, (name, travel, diff.mean())
        labels = reference_render(worlds[name].world, x)[1]
        assert float(np.mean(labels == want_labels)) > 0.99, (name, travel)
        assert float(np.mean(labels[plants] == want_labels[plants])) > 0.97, (name, travel)


def test_a_mirrored_texture_would_be_caught(worlds: dict[str, Any], small_field: Any,
                                            tmp_path: Path) -> None:
    """The comparison above fails when the texture is mirrored along the field (v not
    flipped): it does test the orientation."""
    mirrored = tmp_path / "mirrored"
    shutil.copytree(worlds["down"].out, mirrored)
    obj = mirrored / "meshes" / "quad.obj"
    obj.write_text(obj.read_text().replace("vt 0 1\nvt 0 0\nvt 1 0\nvt 1 1",
                                           "vt 0 0\nvt 0 1\nvt 1 1\nvt 1 0"))
    x = worlds["down"].start_x + 0.5
    labels = reference_render(mirrored / "world.sdf", x)[1]
    assert float(np.mean(labels == SMALL.build_camera().render(small_field, x)[1])) < 0.95


# --- requests that cannot be made ---------------------------------------------------------------

def test_bad_requests_are_clear_errors(tmp_path: Path, small_field: Any) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="cannot write the Gazebo world"):
        write_gazebo_world(a_file / "world", SMALL, small_field)
    with pytest.raises(ConfigError, match="it is a file"):
        write_gazebo_world(a_file, SMALL, small_field)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a Gazebo world"):
        write_gazebo_world(foreign, SMALL, small_field)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    with pytest.raises(ConfigError, match="speed_mps 0.0 must be positive"):
        write_gazebo_world(tmp_path / "w", dataclasses.replace(SMALL, speed_mps=0.0))
    blind = dataclasses.replace(SMALL, camera=dataclasses.replace(SMALL.camera, pitch_deg=70.0))
    with pytest.raises(ConfigError, match="does not see the ground"):
        write_gazebo_world(tmp_path / "w", blind)
    assert not (tmp_path / "w").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp folder left


def test_rewriting_replaces_an_earlier_world_whole(tmp_path: Path) -> None:
    out = tmp_path / "world"
    first = write_gazebo_world(out, SMALL)
    shorter = with_overrides(SMALL, length_m=2.0, seed=9)
    second = write_gazebo_world(out, shorter)
    assert (first.tiles, second.tiles) == (3, 2)
    assert sorted(p.name for p in (out / "textures").glob("ground_*.png")) == \
        ["ground_000.png", "ground_001.png"]
    assert len(list((out / "textures" / "plants").iterdir())) == second.crops + second.weeds
    assert read_field_file(out / "field.json").scenario == shorter
    assert validate(second.world) == []


def test_field_length_for_drive_gives_that_drive(small_field: Any) -> None:
    scenario = with_overrides(SMALL, length_m=field_length_for_drive(SMALL, 2.0))
    drive = scenario.plan(scenario.build_field())
    assert drive.duration_s * drive.speed_mps == pytest.approx(2.0, abs=2 * 0.002)
    with pytest.raises(ConfigError, match="must be positive"):
        field_length_for_drive(SMALL, 0.0)


def test_cli_writes_a_world_from_a_field_file_with_overrides(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    field_file = write_field_file(tmp_path / "scenario.json", SMALL)
    out = tmp_path / "out"
    rc = main(["gazebo-world", str(out), "--field-file", str(field_file), "--length-m", "2.5",
               "--seed", "3", "--speed", "0.5", "--tile-m", "0.5"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "world.sdf" in text and "simulator:=gazebo" in text
    scenario = read_field_file(out / "field.json").scenario
    assert (scenario.field.length_m, scenario.seed, scenario.speed_mps) == (2.5, 3, 0.5)
    assert scenario.camera == SMALL.camera
    assert len(list((out / "textures").glob("ground_*.png"))) == 5
    assert validate(out / "world.sdf") == []


def test_cli_error_for_an_unwritable_folder_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    field_file = write_field_file(tmp_path / "scenario.json", SMALL)
    rc = main(["gazebo-world", str(field_file / "out"), "--field-file", str(field_file)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "crop-weed-seg gazebo-world: error: cannot write the Gazebo world" in err
    rc = main(["gazebo-world", str(tmp_path / "o"), "--field-file", str(tmp_path / "nope.json")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
