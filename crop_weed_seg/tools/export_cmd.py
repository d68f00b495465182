"""``crop-weed-seg export``: the ONNX of a model folder, rebuilt from its weights, with an ONNX
Runtime vs PyTorch parity check (exit 1 below 99.9 % argmax agreement)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from crop_weed_seg.errors import ConfigError
from crop_weed_seg.model.contract import load_model_contract
from crop_weed_seg.nn.export import export_onnx, onnx_parity
from crop_weed_seg.nn.network import NetworkConfig, build_network
from crop_weed_seg.nn.weights import load_weights
from crop_weed_seg.training.model_folder import PARITY_SIZES

HELP = "ONNX export from the folder's weights, with parity check"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser("export", help=HELP)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, default=None, help="ONNX path (default: the folder's)")
    return p


def run(args: argparse.Namespace) -> int:
    contract = load_model_contract(args.model, check_onnx=False)
    if contract.weights_path is None:
        raise ConfigError(f"{args.model}/model.yaml names no weights file to export from")
    net = build_network(NetworkConfig.from_json(contract.architecture))
    load_weights(net, contract.weights_path)
    out = args.out or contract.onnx_path
    export_onnx(net, out, contract.input.size, contract.name)
    parity = onnx_parity(net, out, PARITY_SIZES)
    print(f"wrote {out}; ONNX Runtime vs PyTorch argmax agreement {parity:.6f}")
    if out == contract.onnx_path:
        print("note: the ONNX bytes changed, update onnx.sha256 in model.yaml "
              "(crop-weed-seg info shows the new hash)")
    return 0 if parity >= 0.999 else 1
