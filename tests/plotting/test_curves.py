"""Training curves and sweep comparisons: the drawn data, smoothing by hand, log axes, labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex

from neurosim.backend import InputError
from neurosim.plotting.curves import plot_sweep_comparison, plot_training_curves, smooth_curve
from neurosim.plotting.style import PALETTE, save_figure


def test_smoothing_is_the_debiased_ema_by_hand() -> None:
    # weight 0.5: m = 0.5, 1.75, 0.875 -> / (1 - 0.5^k) = 1, 2.3333, 1.0
    np.testing.assert_allclose(smooth_curve([1.0, 3.0, 0.0], 0.5), [1.0, 7 / 3, 1.0])
    # a NaN stays a gap and does not enter the average
    out = smooth_curve([2.0, np.nan, 2.0], 0.9)
    assert np.isnan(out[1]) and out[0] == pytest.approx(2.0) and out[2] == pytest.approx(2.0)
    np.testing.assert_array_equal(smooth_curve([1.0, 5.0], 0.0), [1.0, 5.0])
    with pytest.raises(InputError, match=r"\[0, 1\)"):
        smooth_curve([1.0], 1.0)


def test_curves_overlay_runs_with_log_axis_and_smoothing(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    steps = np.arange(0, 200, 5)
    loss_a = np.exp(-steps / 60) + 0.01
    loss_b = np.exp(-steps / 30) + 0.005
    fig = plot_training_curves(
        {"lr 1e-3": (steps, loss_a), "lr 3e-3": (steps, loss_b)},
        ylabel="loss (MSE)",
        log_y=True,
        smoothing=0.5,
        title="image_fit sweep s1: loss",
    )
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "step (optimizer steps)" and ax.get_ylabel() == "loss (MSE)"
    raw_a, smooth_a, raw_b, _ = ax.lines
    np.testing.assert_allclose(raw_a.get_ydata(), loss_a)
    np.testing.assert_allclose(smooth_a.get_ydata(), smooth_curve(loss_a, 0.5))
    assert to_hex(smooth_a.get_color()) == PALETTE[0].lower()
    assert to_hex(raw_b.get_color()) == PALETTE[1].lower()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lr 1e-3", "lr 3e-3"]
    png_check(save_figure(fig, tmp_path / "curves.png"), min_size=(450, 280))


def test_curves_reject_bad_series() -> None:
    with pytest.raises(InputError, match="log_y needs positive"):
        plot_training_curves({"psnr": ([0, 1], [0.0, 3.0])}, ylabel="y", log_y=True, title="t")
    with pytest.raises(InputError, match="2 steps but 3 values"):
        plot_training_curves({"a": ([0, 1], [1, 2, 3])}, ylabel="y", title="t")
    with pytest.raises(InputError, match="at least one series"):
        plot_training_curves({}, ylabel="y", title="t")


def test_sweep_comparison_sorts_numeric_values_and_skips_failed(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    fig = plot_sweep_comparison(
        "lr",
        [1e-2, 1e-4, 1e-3],
        {"hidden=32": [20.0, 15.0, None], "hidden=64": [22.0, 16.0, 19.0]},
        ylabel="PSNR (dB)",
        title="sweep image_fit-s1: final PSNR",
    )
    ax = fig.axes[0]
    first, second = ax.lines
    np.testing.assert_allclose(first.get_xdata(), [1e-4, 1e-2])  # the failed trial is left out
    np.testing.assert_allclose(first.get_ydata(), [15.0, 20.0])
    np.testing.assert_allclose(second.get_xdata(), [1e-4, 1e-3, 1e-2])
    np.testing.assert_allclose(second.get_ydata(), [16.0, 19.0, 22.0])
    assert ax.get_xscale() == "log"  # positive values spanning 100x
    assert ax.get_xlabel() == "lr" and ax.get_ylabel() == "PSNR (dB)"
    png_check(save_figure(fig, tmp_path / "sweep.png"), min_size=(450, 280))
    # category values (model names) keep their order on a category axis
    cat = plot_sweep_comparison("model", ["ffn", "neurbf"], {"psnr": [20.0, 25.0]}, ylabel="dB",
                                title="t").axes[0]  # fmt: skip
    assert [t.get_text() for t in cat.get_xticklabels()] == ["ffn", "neurbf"]
    with pytest.raises(InputError, match="1 values for 2 values of 'model'"):
        plot_sweep_comparison("model", ["a", "b"], {"x": [1.0]}, ylabel="y", title="t")
