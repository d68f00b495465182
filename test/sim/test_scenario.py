"""Scenario and field file: one description of a simulated drive for every simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.sim.scenario import (
    BoomSpec,
    CameraSpec,
    Scenario,
    load_field,
    read_field_file,
    write_field_file,
)
from crop_weed_seg.sim.world import FieldConfig

SMALL = Scenario(field=FieldConfig(length_m=3.0, width_m=0.6, gsd_mm=2.0), seed=5,
                 camera=CameraSpec(width=160, height=120, height_m=0.5),
                 boom=BoomSpec(nozzles=6, spacing_m=0.1))


def test_round_trip_keeps_every_setting(tmp_path: Path) -> None:
    path = write_field_file(tmp_path / "scenario.json", SMALL)
    assert read_field_file(path).scenario == SMALL
    assert Scenario.from_json(json.loads(path.read_text())["scenario"]) == SMALL


def test_field_file_with_plants_regenerates_the_same_field(tmp_path: Path) -> None:
    fld = SMALL.build_field()
    path = write_field_file(tmp_path / "field.json", SMALL, fld)
    data = json.loads(path.read_text())
    assert len(data["plants"]) == len(fld.plants) > 0
    assert data["drive"]["scored_span_m"] == list(SMALL.plan(fld).scored_span)
    scenario, again = load_field(path)
    assert scenario == SMALL
    assert [(p.id, p.class_id, p.x, p.y) for p in again.plants] == \
        [(p.id, p.class_id, p.x, p.y) for p in fld.plants]


def test_a_field_file_whose_plants_differ_is_refused(tmp_path: Path) -> None:
    fld = SMALL.build_field()
    path = write_field_file(tmp_path / "field.json", SMALL, fld)
    data = json.loads(path.read_text())
    data["plants"][0]["x"] += 0.01
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="plant 1 differs"):
        load_field(path)
    data["plants"].pop()
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="regenerated field has"):
        load_field(path)


@pytest.mark.parametrize(("data", "message"), [
    ({"speed_mps": 0.0}, "speed_mps 0.0 must be positive"),
    ({"frame_rate_hz": -1}, "frame_rate_hz -1.0 must be positive"),
    ({"camera": {"pitch_deg": 70.0, "hfov_deg": 90.0}}, "does not see the ground"),
    ({"camera": {"pitch_deg": 95.0}}, "pitch 95.0 deg"),
    ({"field": {"length_m": 0}}, "must be positive"),
    ({"speed": 1.0}, "unknown key 'speed'"),
    ({"camera": {"width": "640"}}, r"scenario\.camera\.width: expected an integer"),
    ({"field": {"row_spacing_m": [0.4]}}, "expected 2 numbers"),
])
def test_impossible_scenarios_are_clear_errors(tmp_path: Path, data: dict, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"scenario": data}))
    with pytest.raises(ConfigError, match=message):
        read_field_file(path)


def test_unreadable_and_unwritable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_field_file(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="broken.json is not JSON"):
        read_field_file(tmp_path / "broken.json")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot write the field file"):
        write_field_file(blocker / "sub" / "field.json", SMALL)


def test_node_parameters_put_the_nozzles_where_the_simulator_has_them() -> None:
    sc = Scenario(camera=CameraSpec(x_m=0.3), boom=BoomSpec(nozzle_offset_m=0.5))
    params = sc.node_parameters()
    seg, planner = params["segmenter_node"], params["spray_planner"]
    boom = sc.build_boom()
    # nodes: nozzles at camera_x_m - nozzle_offset_m; simulator: at boom.nozzle_x
    assert seg["camera_x_m"] - seg["nozzle_offset_m"] == pytest.approx(boom.nozzle_x)
    assert planner["camera_x_m"] - planner["nozzle_offset_m"] == pytest.approx(boom.nozzle_x)
    assert planner["valve_latency_s"] == pytest.approx(0.03)
