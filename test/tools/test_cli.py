"""The command line on small real inputs: synth, predict, eval, info, and its error path; the
entry point (one module per subcommand, imported only when it runs)."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crop_weed_seg.image_files import read_label_image, write_image_atomic
from crop_weed_seg.tools.cli import COMMANDS, build_parser, command_module, main

from support import REPO

MODEL = str(REPO / "models/default")


def test_synth_command_writes_a_folder_dataset_and_a_sheet(tmp_path: Path) -> None:
    rc = main(["synth", "--out", str(tmp_path / "d"), "--count", "3", "--seed", "5",
               "--size", "96x128", "--workers", "1", "--quiet", "--sheet",
               str(tmp_path / "sheet.png")])
    assert rc == 0
    labels = read_label_image(tmp_path / "d/labels/field_000002.png")
    assert labels.shape == (96, 128)
    assert (tmp_path / "sheet.png").stat().st_size > 1000


def test_predict_with_the_classical_baseline_writes_labels_overlays_and_stats(
        tiny_field: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["predict", str(tiny_field / "images"), "--model", "classical", "--out", str(out),
               "--quiet"])
    assert rc == 0
    stems = sorted(p.stem for p in (tiny_field / "images").iterdir())
    assert sorted(p.stem for p in (out / "labels").iterdir()) == stems
    assert sorted(p.stem for p in (out / "overlays").iterdir()) == stems
    doc = json.loads((out / "stats.json").read_text())
    row = doc["images"][0]
    assert sum(row["coverage"].values()) == pytest.approx(1.0)
    assert isinstance(row["weed_count"], int)
    with open(out / "stats.csv") as f:
        assert len(list(csv.reader(f))) == len(stems) + 1
    assert "weeds" in capsys.readouterr().out


def test_predict_reports_a_missing_input_and_exits_2(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["predict", str(tmp_path / "nope*.png"), "--model", "classical", "--out",
               str(tmp_path / "o")])
    assert rc == 2
    assert "no such file or folder, and no file matches it" in capsys.readouterr().err


def test_eval_names_the_bad_label_file(tiny_field: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    (bad / "images").mkdir(parents=True)
    (bad / "labels").mkdir()
    write_image_atomic(bad / "images/a.png", np.zeros((8, 8, 3), np.uint8))
    write_image_atomic(bad / "labels/a.png", np.full((8, 8), 7, np.uint8), rgb=False)
    rc = main(["eval", "--model", "classical", "--data", str(bad), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "a.png" in err and "7" in err


def test_eval_of_the_classical_baseline_writes_json_and_png(tiny_field: Path,
                                                             tmp_path: Path) -> None:
    rc = main(["eval", "--model", "classical", "--data", str(tiny_field), "--json",
               str(tmp_path / "e.json"), "--png", str(tmp_path / "cm.png"), "--quiet"])
    assert rc == 0
    doc = json.loads((tmp_path / "e.json").read_text())
    assert doc["images"] == 12 and 0.0 <= doc["miou"] <= 1.0
    assert np.array(doc["confusion"]).shape == (3, 3)
    assert (tmp_path / "cm.png").stat().st_size > 1000


def test_info_lists_runtimes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "tensorrt" in out


def test_bench_writes_the_documented_json_keys_for_each_backend(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    rc = main(["bench", "--model", MODEL, "--backend", "onnxruntime", "--backend",
               "torch", "--sizes", "120x160", "--frames", "3", "--warmup", "1", "--threads", "1",
               "--json", str(out)])
    assert rc == 0
    results = json.loads(out.read_text())["results"]
    assert [r["backend"] for r in results] == ["onnxruntime", "torch"]
    for r in results:
        assert r["input"] == [120, 160]
        for key in ("p50_ms", "p95_ms", "p99_ms", "fps", "preprocess_ms", "infer_ms",
                    "postprocess_ms"):
            assert r[key] > 0, key
        assert r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]


def test_predict_with_the_default_model_records_stage_timings(tmp_path: Path) -> None:
    rc = main(["predict", str(REPO / "samples/field/images/field_000001.png"), "--model", MODEL,
               "--backend", "torch", "--out", str(tmp_path), "--quiet"])
    assert rc == 0
    row = json.loads((tmp_path / "stats.json").read_text())["images"][0]
    assert row["infer_ms"] > 0 and row["total_ms"] >= row["infer_ms"]
    assert read_label_image(tmp_path / "labels/field_000001.png").shape == (480, 640)


def test_bench_compares_two_models_side_by_side_per_size(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    rc = main(["bench", "--model", MODEL, "--model", MODEL, "--backend", "onnxruntime",
               "--sizes", "120x160", "96x128", "--frames", "2", "--warmup", "1", "--threads",
               "1", "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["model"] == [MODEL, MODEL]
    assert [(r["model"], r["input"]) for r in doc["results"]] == [
        (MODEL, [120, 160]), (MODEL, [120, 160]), (MODEL, [96, 128]), (MODEL, [96, 128])]


# --- the entry point: one module per subcommand, imported only when it runs ---------------------

def test_each_subcommand_module_registers_the_help_line_of_the_command_table() -> None:
    for name, (module_name, help_line) in COMMANDS.items():
        module = command_module(name)
        assert module.__name__ == f"crop_weed_seg.tools.{module_name}"
        assert module.HELP == help_line, name
        sub = argparse.ArgumentParser().add_subparsers()
        module.add_parser(sub)
        assert [(a.dest, a.help) for a in sub._choices_actions] == [(name, help_line)]
    assert "train" in build_parser().parse_args(["train", "--data", "d", "--out", "o"]).command


@pytest.mark.parametrize("argv", [["--help"], ["info"], ["synth", "--help"], ["eval", "--help"],
                                  ["predict", "--help"], ["bag", "--help"]])
def test_help_and_light_subcommands_import_no_torch(argv: list[str]) -> None:
    code = ("import sys\n"
            "from crop_weed_seg.tools.cli import main\n"
            "try:\n"
            f"    main({argv!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(sorted(m for m in ('torch', 'matplotlib', 'rclpy', 'tensorrt') "
            "if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_top_level_help_lists_every_subcommand_with_its_help_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name, (_, help_line) in COMMANDS.items():
        assert f"{name} {help_line}" in text


def test_train_help_describes_every_option_with_its_default() -> None:
    """Issue 14: ``train --help`` describes every option, with defaults (a user fine-tuning on
    their own field reads it, not the code)."""
    sub = argparse.ArgumentParser().add_subparsers()
    parser = command_module("train").add_parser(sub)
    undocumented, no_default = [], []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[-1]
        if not action.help or action.help == argparse.SUPPRESS:
            undocumented.append(name)
        elif not action.required and "default" not in action.help:
            no_default.append(name)
    assert undocumented == [] and no_default == []
