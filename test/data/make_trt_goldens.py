"""Regenerate the TensorRT golden inputs/outputs in ``test/data/trt_goldens/``.

Run after retraining or re-exporting the default model (and say so in the commit):
    .venv/bin/python test/data/make_trt_goldens.py

``goldens.npz`` holds, for a few sample frames, the model-resolution RGB frame (uint8, exactly
what ``to_tensor`` normalises into the model input, so the float32 input is rebuilt bit-exact)
and ONNX Runtime (CPU, FP32) outputs: ``labels`` int32 and ``confidence`` float32, plus the
ONNX sha256 they came from. A device run replays them (``tools/jetson_acceptance.py``).

Polygraphy's JSON (``save_json`` of a list of feed dicts; base64 of uncompressed ``.npy``) is
about 5 MB per 384x512 frame, too big to commit, so it is written on demand:
    .venv/bin/python test/data/make_trt_goldens.py --polygraphy-json OUT_DIR
writes ``OUT_DIR/inputs.json`` and ``OUT_DIR/outputs.json`` from the npz (no model run), for
    polygraphy run models/default/model.onnx --trt \\
        --trt-min-shapes image:[1,3,384,512] --trt-opt-shapes image:[1,3,384,512] \\
        --trt-max-shapes image:[1,3,384,512] \\
        --load-inputs OUT_DIR/inputs.json --load-outputs OUT_DIR/outputs.json --atol 1e-3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GOLDEN_DIR = HERE / "trt_goldens"
NPZ = GOLDEN_DIR / "goldens.npz"
FRAMES = ("field_000000", "field_000003", "field_000005")


def load_goldens(path: Path = NPZ) -> dict[str, Any]:
    """The npz as a dict: names, frames (N, h, w, 3) uint8, labels (N, 1, h, w) int32,
    confidence (N, 1, h, w) float32, model_sha256, input_name, output names."""
    with np.load(path, allow_pickle=False) as data:
        doc = {k: data[k] for k in data.files}
    doc["names"] = [str(n) for n in doc["names"]]
    for key in ("model_sha256", "input_name", "labels_output", "confidence_output"):
        doc[key] = str(doc[key])
    return doc


def input_tensor(frame: np.ndarray, spec: Any) -> np.ndarray:
    """Model-resolution uint8 RGB frame → (1, 3, h, w) float32 model input."""
    from crop_weed_seg.model.preprocess import to_tensor

    return to_tensor(np.ascontiguousarray(frame), spec)


def make(model_dir: Path = REPO / "models/default", out: Path = NPZ) -> Path:
    import onnxruntime as ort

    from crop_weed_seg.image_files import read_rgb
    from crop_weed_seg.model.contract import load_model_contract
    from crop_weed_seg.model.preprocess import resize_to_input

    contract = load_model_contract(model_dir)
    session = ort.InferenceSession(str(contract.onnx_path), providers=["CPUExecutionProvider"])
    frames, labels, confidence = [], [], []
    for stem in FRAMES:
        rgb = read_rgb(REPO / "samples/field/images" / f"{stem}.png")
        small = np.ascontiguousarray(resize_to_input(rgb, contract.input))
        lab, conf = session.run([contract.labels_output, contract.confidence_output],
                                {contract.input_name: input_tensor(small, contract.input)})
        frames.append(small)
        labels.append(lab.astype(np.int32))
        confidence.append(conf.astype(np.float32))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out, names=np.array(FRAMES), frames=np.stack(frames), labels=np.stack(labels),
        confidence=np.stack(confidence), model_sha256=np.array(contract.onnx_sha256),
        input_name=np.array(contract.input_name),
        labels_output=np.array(contract.labels_output),
        confidence_output=np.array(contract.confidence_output))
    return out


def write_polygraphy_json(out_dir: Path, npz: Path = NPZ,
                          model_dir: Path = REPO / "models/default") -> tuple[Path, Path]:
    """inputs.json / outputs.json in polygraphy's format (``polygraphy.json.save_json``)."""
    from polygraphy.comparator import RunResults
    from polygraphy.json import save_json

    from crop_weed_seg.model.contract import load_model_contract

    contract = load_model_contract(model_dir, check_files=False, check_onnx=False)
    doc = load_goldens(npz)
    feeds = [{doc["input_name"]: input_tensor(f, contract.input)} for f in doc["frames"]]
    iterations = [{doc["labels_output"]: lab, doc["confidence_output"]: conf}
                  for lab, conf in zip(doc["labels"], doc["confidence"])]
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs, outputs = out_dir / "inputs.json", out_dir / "outputs.json"
    save_json(feeds, str(inputs), description="crop_weed_seg golden inputs")
    results = RunResults()
    results.append(("onnxrt-fp32-golden", iterations))
    results.save(str(outputs))
    return inputs, outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polygraphy-json", type=Path, metavar="OUT_DIR",
                        help="write polygraphy inputs.json/outputs.json from the npz instead")
    args = parser.parse_args(argv)
    if args.polygraphy_json:
        paths = write_polygraphy_json(args.polygraphy_json)
        print("wrote " + ", ".join(str(p) for p in paths))
        return 0
    path = make()
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) for {FRAMES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
