"""Helpers for tests (not fixtures): an untrained but complete model folder."""

from __future__ import annotations

from pathlib import Path

import torch

from crop_weed_seg.model.preprocess import InputSpec
from crop_weed_seg.nn.network import NetworkConfig, build_network
from crop_weed_seg.training.model_folder import write_model_folder


def write_untrained_model(folder: Path, size: tuple[int, int] = (96, 128)) -> Path:
    """A model folder with random weights: right contract, meaningless labels."""
    torch.manual_seed(0)
    cfg = NetworkConfig()
    net = build_network(cfg).eval()
    write_model_folder(folder, "untrained", net, cfg, InputSpec(size=size),
                       {"command": "test fixture"}, {}, None)
    return folder
