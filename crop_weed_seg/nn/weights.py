"""Saving and loading weights safely: safetensors for shipped models, ``weights_only`` torch
checkpoints for resumable training state. Nothing here unpickles arbitrary objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from crop_weed_seg.errors import ModelContractError


def save_weights(net: torch.nn.Module, path: Path) -> None:
    """Write the state dict as safetensors (atomic: temp file + rename)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.replace(path)


def load_weights(net: torch.nn.Module, path: Path) -> None:
    """Load safetensors weights into ``net``; a missing or mismatching tensor is an error."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelContractError(f"{path}: weights file not found")
    try:
        state = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types
        raise ModelContractError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).strip().splitlines()[1:2] or [str(exc)]
        raise ModelContractError(f"{path}: weights do not fit the architecture in model.yaml "
                                 f"({first[0].strip()})") from None
    if result.missing_keys or result.unexpected_keys:
        raise ModelContractError(
            f"{path}: weights do not fit the architecture in model.yaml "
            f"(missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]})")


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Training state (tensors, numbers, strings, lists, dicts only), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary unpickling)."""
    return torch.load(path, map_location="cpu", weights_only=True)
