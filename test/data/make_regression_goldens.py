"""Write ``test/data/regression/``: golden outputs of ``process_bag`` on ``test/data/sample_bag``
with the shipped default model on ONNX Runtime (CPU), checked by ``test/test_bag_regression.py``.

Regenerate (only when the model, the preprocessing, the target extraction or the sample bag
change on purpose; say so in the commit):
    .venv/bin/python test/data/make_regression_goldens.py

Files:
- ``goldens.json``: per frame (in bag order) the header stamp, the sha256 of the ``labels``
  Image data, the pixel count per class, the sha256 of the ``spray_targets`` cloud data, and the
  targets as readable records (floats rounded to 5 decimals, NaN as null); plus the run's
  environment (onnxruntime, numpy, OpenCV versions, CPU) for judging a failure elsewhere;
- ``labels.npz``: every frame's labels (compressed), so a failing test can say how many pixels
  of which frame changed.

ONNX Runtime on CPU can differ between machines in rare near-tie pixels; on the machine that
made the goldens the outputs are byte-identical from run to run (the test tolerates nothing).
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BAG = HERE / "sample_bag"
OUT = HERE / "regression"
MODEL = REPO / "models" / "default"
BACKEND = "onnxruntime"


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 5)
    return v


def records_json(records: np.ndarray) -> list[dict[str, Any]]:
    return [{name: _round(records[name][i].item()) for name in records.dtype.names}
            for i in range(len(records))]


def collect(out_bag: Path) -> tuple[list[dict[str, Any]], np.ndarray]:
    """(per-frame golden entries, labels stacked (N, H, W)) from a processed bag."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    from crop_weed_seg.spray.records import records_from_bytes

    ts = get_typestore(Stores.ROS2_HUMBLE)
    frames: dict[int, dict[str, Any]] = {}
    labels: dict[int, np.ndarray] = {}
    with Reader(out_bag) as reader:
        conns = [c for c in reader.connections
                 if c.topic in ("/camera/labels", "/camera/spray_targets")]
        for conn, _t, raw in reader.messages(connections=conns):
            msg = ts.deserialize_cdr(raw, conn.msgtype)
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            entry = frames.setdefault(stamp, {"stamp_ns": stamp})
            data = bytes(np.asarray(msg.data, np.uint8))
            if conn.topic.endswith("/labels"):
                arr = np.frombuffer(data, np.uint8).reshape(msg.height, msg.width)
                labels[stamp] = arr
                entry["labels_sha256"] = hashlib.sha256(data).hexdigest()
                entry["label_counts"] = np.bincount(arr.ravel(), minlength=3).tolist()
            else:
                entry["targets_sha256"] = hashlib.sha256(data).hexdigest()
                entry["targets"] = records_json(records_from_bytes(data))
    order = sorted(frames)
    return [frames[s] for s in order], np.stack([labels[s] for s in order])


def dumps(doc: dict[str, Any]) -> str:
    """JSON with one frame's summary per line and one target per line (readable diffs)."""
    head = {k: v for k, v in doc.items() if k != "frames"}
    parts = []
    for f in doc["frames"]:
        summary = json.dumps({k: v for k, v in f.items() if k != "targets"})[:-1]
        targets = ",\n".join("   " + json.dumps(t) for t in f["targets"])
        parts.append(f"  {summary}, \"targets\": [\n{targets}\n  ]}}" if targets
                     else f"  {summary}, \"targets\": []}}")
    return json.dumps(head, indent=1)[:-2] + ',\n "frames": [\n' + ",\n".join(parts) + "\n ]\n}\n"


def run(workdir: Path, segmenter: Any = None) -> tuple[list[dict[str, Any]], np.ndarray, Any]:
    from crop_weed_seg.bags.processing import process_bag

    report = process_bag(BAG, workdir / "out", model_dir=MODEL, backend=BACKEND,
                         segmenter=segmenter)
    frames, labels = collect(workdir / "out")
    return frames, labels, report


def main() -> int:
    import cv2
    import onnxruntime

    with tempfile.TemporaryDirectory() as tmp:
        frames, labels, report = run(Path(tmp))
        frames2, _, _ = run(Path(tmp) / "again")
    if frames != frames2:
        print("two runs on this machine differ; goldens not written", file=sys.stderr)
        return 1
    OUT.mkdir(exist_ok=True)
    doc = {"bag": "test/data/sample_bag", "model": "models/default", "backend": BACKEND,
           "environment": {"onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
                           "opencv": cv2.__version__, "machine": platform.machine(),
                           "processor": platform.processor() or platform.machine()},
           "frames": frames}
    (OUT / "goldens.json").write_text(dumps(doc))
    np.savez_compressed(OUT / "labels.npz", labels=labels)
    print(f"wrote {OUT}: {len(frames)} frames, {sum(len(f['targets']) for f in frames)} "
          f"targets ({report.total_s:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
