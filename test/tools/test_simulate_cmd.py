"""``crop-weed-seg simulate``: options and a field file describe the same drive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crop_weed_seg.sim.scenario import BoomSpec, CameraSpec, Scenario, write_field_file
from crop_weed_seg.sim.world import FieldConfig
from crop_weed_seg.tools.cli import main

SCENARIO = Scenario(field=FieldConfig(length_m=3.0, width_m=0.6, gsd_mm=2.0), seed=3,
                    camera=CameraSpec(width=160, height=120, height_m=0.6, hfov_deg=55.0),
                    boom=BoomSpec(nozzles=6, spacing_m=0.1, nozzle_offset_m=0.4),
                    speed_mps=1.5, frame_rate_hz=12.0, valve_latency_ms=20.0, margin_m=0.03)
OPTIONS = ["--length-m", "3", "--width-m", "0.6", "--gsd-mm", "2", "--seed", "3",
           "--image-size", "160x120", "--camera-height-m", "0.6", "--hfov-deg", "55",
           "--nozzles", "6", "--nozzle-spacing-m", "0.1", "--nozzle-offset-m", "0.4",
           "--valve-latency-ms", "20", "--margin-m", "0.03"]


TIMINGS = {"render_s", "segment_s", "chain_s", "plan_s", "score_s"}


def _rows(out: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMINGS}
            for row in json.loads((out / "results.json").read_text())["rows"]]


def test_a_field_file_gives_the_drive_its_options_give(tmp_path: Path) -> None:
    field_file = write_field_file(tmp_path / "field.json", SCENARIO, SCENARIO.build_field())
    assert main(["simulate", "--out", str(tmp_path / "a"), "--model", "truth",
                 "--latency-ms", "0", "--field-file", str(field_file)]) == 0
    assert main(["simulate", "--out", str(tmp_path / "b"), "--model", "truth",
                 "--latency-ms", "0", "--speed", "1.5", "--fps", "12", *OPTIONS]) == 0
    a, b = _rows(tmp_path / "a"), _rows(tmp_path / "b")
    assert len(a) == 1 and (a[0]["speed_mps"], a[0]["fps"]) == (1.5, 12.0)
    assert a == b
    assert a[0]["weeds"] > 0


def test_a_bad_field_file_is_an_error_naming_it(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "field.json"
    bad.write_text(json.dumps({"scenario": {"speed_mps": 0}}))
    assert main(["simulate", "--out", str(tmp_path / "o"), "--model", "truth",
                 "--field-file", str(bad)]) == 2
    assert "speed_mps 0.0 must be positive" in capsys.readouterr().err
