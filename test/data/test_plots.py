"""PNG plots are written whole or not at all (a model card never links a half-written PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crop_weed_seg.data.plots import plot_confusion, pyplot, save_figure


def test_a_confusion_plot_is_a_complete_png_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    out = plot_confusion(np.array([[5, 1, 0], [0, 7, 1], [2, 0, 3]]), tmp_path / "sub" / "c.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["c.png"]


def test_a_figure_that_fails_to_render_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "plot.png"
    path.write_bytes(b"previous")
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.set_title("$\\notacommand$")  # mathtext parse error while rendering
    with pytest.raises(ValueError):
        save_figure(fig, path)
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]
