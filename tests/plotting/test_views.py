"""View-synthesis plots render to non-empty images of the expected size; the GIF writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neurosim.backend import InputError
from neurosim.plotting.style import save_figure
from neurosim.plotting.views import (
    plot_depth,
    plot_psnr_vs_time,
    plot_render_comparison,
    plot_turntable_strip,
    save_gif,
)


def _images(n: int = 3, size: int = 20) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(0)
    truth = gen.random((n, size, size, 3))
    return np.clip(truth + gen.normal(0, 0.05, truth.shape), 0, 1), truth


def test_render_comparison(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    pred, truth = _images()
    depth = np.random.default_rng(1).random((3, 20, 20)) * 4
    fig = plot_render_comparison(pred, truth, depth=depth, title="run x: test views")
    assert len(fig.axes) == 3 * 4 + 3 * 2  # 4 panels per view plus 2 colour bars
    png_check(save_figure(fig, tmp_path / "cmp.png"), min_size=(600, 500))
    with pytest.raises(InputError, match="one shape"):
        plot_render_comparison(pred, truth[:2])


def test_psnr_curve_depth_and_turntable(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    fig = plot_psnr_vs_time([10, 60, 120], [20.0, 27.0, 29.5], targets=[(120, 29.0)], title="run x")
    png_check(save_figure(fig, tmp_path / "curve.png"))
    png_check(save_figure(plot_depth(np.outer(np.arange(20), np.ones(20))), tmp_path / "depth.png"))
    frames, _ = _images(8)
    png_check(
        save_figure(plot_turntable_strip(frames, count=4), tmp_path / "strip.png"),
        min_size=(300, 100),
    )
    with pytest.raises(InputError):
        plot_psnr_vs_time([1, 2], [3.0])


def test_gif_has_every_frame(tmp_path: Path) -> None:
    frames, _ = _images(5, 12)
    path = save_gif(frames, tmp_path / "turn.gif", fps=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size == (12, 12)
        gif.seek(2)
        back = np.asarray(gif.convert("RGB"), dtype=np.float64) / 255.0
    # GIF quantises colours to a 256-entry palette: close, not exact
    assert np.abs(back - frames[2]).mean() < 0.05
