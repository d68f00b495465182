"""``crop-weed-seg quantize``: an FP16 or INT8 (Q/DQ) ONNX of a model folder, checked on CPU.

    crop-weed-seg quantize --model models/default --precision fp16 --out model_fp16.onnx
    crop-weed-seg quantize --model models/default --precision int8 --calib data/field/images \\
        --out model_int8.onnx

The result is compared with the FP32 ONNX under ONNX Runtime on held-out synthetic frames
(``--check N``, 0 to skip): per-pixel argmax agreement, NaN count and mIoU change. FP16 below
99.5 % agreement (``--min-agreement``) exits 1. The output is a plain ONNX file for a TensorRT
build with the STRONGLY_TYPED flag (TensorRT ≥ 10.12); the model folder is not changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from crop_weed_seg.model.contract import load_model_contract
from crop_weed_seg.tools.onnx_lint import ERROR, lint_onnx
from crop_weed_seg.training import precision

HELP = "FP16 or INT8 (Q/DQ) ONNX for TensorRT, checked against FP32 on CPU"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser("quantize", help=HELP)
    p.add_argument("--model", type=Path, required=True, help="model folder (model.yaml)")
    p.add_argument("--precision", choices=("fp16", "int8"), required=True)
    p.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    p.add_argument("--calib", type=Path,
                   help="folder of representative field images (or a dataset with images/); "
                        "required for int8")
    p.add_argument("--calib-limit", type=int, default=200,
                   help="use at most this many calibration images (default 200)")
    p.add_argument("--check", type=int, default=50,
                   help="held-out synthetic frames to compare on (default 50; 0: no check)")
    p.add_argument("--min-agreement", type=float, default=None,
                   help="fail below this argmax agreement (default 0.995 for fp16, none for "
                        "int8)")
    p.add_argument("--json", type=Path, help="write the comparison as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    contract = load_model_contract(args.model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.precision == "fp16":
        precision.convert_fp16(contract.onnx_path, args.out)
    else:
        if args.calib is None:
            print("error: --precision int8 needs --calib FOLDER of representative images",
                  file=sys.stderr)
            return 2
        calib = precision.tensors_from_folder(args.calib, contract, args.calib_limit)
        print(f"calibrating on {len(calib)} image(s) from {args.calib}")
        precision.quantize_int8(contract.onnx_path, args.out, contract, calib)
        qdq = precision.count_qdq(args.out)
        print(f"Q/DQ nodes: {qdq['QuantizeLinear']} QuantizeLinear, "
              f"{qdq['DequantizeLinear']} DequantizeLinear")
    print(f"wrote {args.out} (I/O: {precision.io_types(args.out)})")
    findings = lint_onnx(args.out, input_size=contract.input.size,
                         dynamic_size=contract.dynamic_size)
    for f in findings:
        print(f"  lint {f}")
    status = 1 if any(f.severity == ERROR for f in findings) else 0
    if args.check > 0:
        result = precision.compare(contract.onnx_path, args.out, contract,
                                   precision.synthetic_samples(contract, args.check))
        print(f"{args.precision} vs fp32 on {result.images} held-out synthetic frames: "
              f"argmax agreement {100 * result.agreement:.3f} % (worst image "
              f"{100 * result.min_image_agreement:.3f} %), NaN outputs {result.nan_outputs}, "
              f"mIoU {result.miou_reference:.4f} → {result.miou_candidate:.4f}")
        if args.json:
            args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        floor = args.min_agreement
        if floor is None and args.precision == "fp16":
            floor = precision.FP16_MIN_AGREEMENT
        if result.nan_outputs or (floor is not None and result.agreement < floor):
            print(f"FAILED: agreement below {floor} or NaN outputs", file=sys.stderr)
            status = 1
    return status

