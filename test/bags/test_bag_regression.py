"""Golden-output regression: ``process_bag`` on the committed sample bag with the default model on
ONNX Runtime (CPU) must reproduce ``test/fixtures/regression/`` exactly (labels byte for byte, the
spray-target records). Regenerate with ``test/fixtures/make_regression_goldens.py`` after an
intended change. A failure lists the frames that changed, how many label pixels differ, and
which targets appeared, vanished or moved.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from support import FIXTURES

pytest.importorskip("rosbags")
pytest.importorskip("onnxruntime")

DATA = FIXTURES
GOLDENS = DATA / "regression"


def _script():
    spec = importlib.util.spec_from_file_location("make_regression_goldens",
                                                  DATA / "make_regression_goldens.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _target_key(t: dict) -> tuple:
    return (round(t["u"] or 0, 1), round(t["v"] or 0, 1))


def _diff_targets(old: list[dict], new: list[dict]) -> str:
    a = {_target_key(t): t for t in old}
    b = {_target_key(t): t for t in new}
    parts = []
    for k in sorted(a.keys() - b.keys()):
        parts.append(f"      vanished at (u, v) {k}: {a[k]}")
    for k in sorted(b.keys() - a.keys()):
        parts.append(f"      new at (u, v) {k}: {b[k]}")
    for k in sorted(a.keys() & b.keys()):
        changed = {f: (a[k][f], b[k][f]) for f in a[k] if a[k][f] != b[k][f]}
        if changed:
            parts.append(f"      changed at (u, v) {k}: {changed}")
    return "\n".join(parts[:12]) + (f"\n      ... {len(parts) - 12} more" if len(parts) > 12
                                     else "")


def compare(golden: dict, golden_labels: np.ndarray, frames: list[dict],
            labels: np.ndarray) -> list[str]:
    problems = []
    old_frames = golden["frames"]
    if [f["stamp_ns"] for f in old_frames] != [f["stamp_ns"] for f in frames]:
        return [f"frames differ: golden {len(old_frames)} stamps, now {len(frames)}"]
    for i, (old, new) in enumerate(zip(old_frames, frames)):
        lines = []
        if old["labels_sha256"] != new["labels_sha256"]:
            if golden_labels[i].shape != labels[i].shape:
                lines.append(f"    labels {golden_labels[i].shape} -> {labels[i].shape}")
            else:
                n = int((golden_labels[i] != labels[i]).sum())
                lines.append(f"    labels: {n} pixels differ ({100 * n / labels[i].size:.4f} %), "
                             f"class counts {old['label_counts']} -> {new['label_counts']}")
        if old["targets"] != new["targets"] or old["targets_sha256"] != new["targets_sha256"]:
            detail = _diff_targets(old["targets"], new["targets"])
            lines.append(f"    targets: {len(old['targets'])} -> {len(new['targets'])}"
                         + ("" if detail else " (same when rounded; raw float bytes differ)")
                         + (f"\n{detail}" if detail else ""))
        if lines:
            problems.append(f"  frame {i} (stamp {old['stamp_ns']}):\n" + "\n".join(lines))
    return problems


def test_sample_bag_matches_goldens(tmp_path: Path) -> None:
    script = _script()
    golden = json.loads((GOLDENS / "goldens.json").read_text())
    golden_labels = np.load(GOLDENS / "labels.npz")["labels"]
    frames, labels, report = script.run(tmp_path)
    assert report.processed == 40 and not report.skipped
    problems = compare(golden, golden_labels, frames, labels)
    assert not problems, (
        f"{len(problems)} of {len(frames)} frames differ from test/fixtures/regression "
        f"(goldens made with {golden['environment']}; ONNX Runtime on another CPU may differ in "
        "a few near-tie pixels, on the same machine nothing may differ). If the change is "
        "intended: .venv/bin/python test/fixtures/make_regression_goldens.py\n"
        + "\n".join(problems))


def test_compare_reports_pixels_and_targets() -> None:
    """The failure message itself: a changed pixel and a moved target are named."""
    golden = json.loads((GOLDENS / "goldens.json").read_text())
    golden_labels = np.load(GOLDENS / "labels.npz")["labels"]
    frames = json.loads(json.dumps(golden["frames"]))
    labels = golden_labels.copy()
    labels[3, 0, :5] = (labels[3, 0, :5] + 1) % 3
    frames[3]["labels_sha256"] = "x"
    frames[5]["targets"] = frames[5]["targets"][1:]
    problems = compare(golden, golden_labels, frames, labels)
    text = "\n".join(problems)
    assert len(problems) == 2
    assert "frame 3" in text and "5 pixels differ" in text
    assert "frame 5" in text and "vanished" in text
