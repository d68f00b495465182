"""Option types and option groups several ``crop-weed-seg`` subcommands share."""

from __future__ import annotations

import argparse

#: ``--format`` of train and eval: the dataset layouts :func:`open_dataset` reads, and auto.
LAYOUT_CHOICES = ("auto", "folder", "phenobench", "cwfid", "colour-mask", "supervisely", "cvat",
                  "labelme", "bag")


def parse_size(text: str) -> tuple[int, int]:
    """``HxW`` (e.g. ``512x512``) -> ``(h, w)``; the argparse type of the size options."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like HxW (e.g. 512x512), got {text!r}") \
            from None
    return h, w


def add_tile_options(p: argparse.ArgumentParser) -> None:
    """``--tiles`` and ``--tile-scale`` of predict and eval (docs/TILING.md)."""
    p.add_argument("--tiles", default="auto",
                   help="photos much larger than the model input as overlapping, blended tiles: "
                        "auto (default), off, or RxC (e.g. 3x3); docs/TILING.md")
    p.add_argument("--tile-scale", type=float, default=None,
                   help="--tiles auto: each tile covers this many model inputs per side "
                        "(default 3)")
