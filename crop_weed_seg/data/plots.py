"""PNG plots: training curves and confusion matrices (matplotlib, imported lazily)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from crop_weed_seg.classes import CLASS_NAMES
from crop_weed_seg.errors import ConfigError
from crop_weed_seg.image_files import write_bytes_atomic


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; ConfigError when matplotlib is missing (it is a
    training extra: ``pip install .[train]``, requirements-train.txt)."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("PNG plots need matplotlib, which the runtime install leaves out: "
                          "pip install -r requirements-train.txt (or .[train])") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path | str, **savefig: Any) -> Path:
    """Write a matplotlib figure as a PNG atomically (never half-written) and close it."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", **savefig)
    finally:
        pyplot().close(fig)
    write_bytes_atomic(path, buf.getvalue())
    return Path(path)


def plot_confusion(confusion: np.ndarray, path: Path, title: str = "Confusion matrix",
                   names: Sequence[str] = CLASS_NAMES) -> Path:
    """Row-normalised confusion matrix (rows: truth) with pixel counts, as a PNG."""
    plt = pyplot()
    cm = np.asarray(confusion, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.6, 4.0), dpi=120)
    ax.imshow(norm, cmap="Greens", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{norm[i, j]:.3f}\n{int(cm[i, j]):,}", ha="center", va="center",
                    fontsize=8, color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_training_curves(history: list[dict[str, float]], path: Path) -> Path:
    """Loss per epoch (left axis) and validation mIoU / weed IoU (right axis), as a PNG."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=120)
    trained = [h for h in history if "train_loss" in h]  # none for --epochs 0
    ax.plot([h["epoch"] for h in trained], [h["train_loss"] for h in trained], "o-",
            color="tab:blue", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss", color="tab:blue")
    ax2 = ax.twinx()
    for key, colour in (("val_miou", "tab:green"), ("val_weed_iou", "tab:red")):
        pts = [(h["epoch"], h[key]) for h in history if key in h]
        if pts:
            ax2.plot(*zip(*pts), "s-", color=colour, label=key.replace("_", " "))
    ax2.set_ylabel("IoU")
    ax2.set_ylim(0, 1)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right", fontsize=8)
    ax.set_title("Training", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
