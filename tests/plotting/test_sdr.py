"""SDR-theory figures render to non-blank images of the expected size, with labelled axes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurosim.backend import InputError
from neurosim.plotting.sdr import (
    plot_error_vs_threshold,
    plot_false_match_vs_n,
    plot_simulation_check,
    plot_union_capacity,
)
from neurosim.plotting.style import save_figure
from neurosim.sdr.theory import (
    error_curve,
    false_match_probability,
    optimal_threshold,
    union_false_match_probability,
)


def test_error_vs_threshold(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    curves = {f"{p}% noise": error_curve(2048, 128, 30, noise=p / 100) for p in (10, 50)}
    first = next(iter(curves.values()))
    fig = plot_error_vs_threshold(
        first.theta, first.false_match, {k: c.false_negative for k, c in curves.items()},
        optimum={k: optimal_threshold(2048, 128, 30, noise=int(k[:2]) / 100).theta
                 for k in curves},
        title="n=2048, a=128, s=30, run test",
    )  # fmt: skip
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and "threshold" in ax.get_xlabel()
    assert len(ax.get_legend().get_texts()) == 5  # P_fm + (P_fn, total) per noise level
    png_check(save_figure(fig, tmp_path / "error.png"), min_size=(500, 300))


def test_false_match_vs_n_and_union(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    ns = np.geomspace(512, 50_000, 8).astype(int)
    curves = {
        f"a = {a}": [false_match_probability(int(n), a, 24, 12) for n in ns] for a in (64, 128)
    }
    fig = plot_false_match_vs_n(ns, curves, title="s=24, theta=12, run test")
    assert fig.axes[0].get_xscale() == "log" and "n (cells)" in fig.axes[0].get_xlabel()
    png_check(save_figure(fig, tmp_path / "n.png"), min_size=(400, 300))
    ms = np.arange(1, 41)
    union = {"n = 2048": [union_false_match_probability(2048, 64, 24, 12, int(m)) for m in ms]}
    fig = plot_union_capacity(ms, union, simulated={"MC": ([10, 20], [0.05, 0.6], [0.01, 0.02])},
                              title="unions, run test")  # fmt: skip
    assert "M" in fig.axes[0].get_xlabel()
    png_check(save_figure(fig, tmp_path / "union.png"), min_size=(400, 300))


def test_simulation_check_and_bad_input(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    theta = np.arange(1, 6)
    theory = np.array([0.5, 0.2, 0.05, 0.01, 1e-30])
    rate = np.array([0.49, 0.21, 0.05, 0.012, 0.0])
    fig = plot_simulation_check(theta, theory, rate, rate - 0.005, rate + 0.005, title="run test")
    png_check(save_figure(fig, tmp_path / "mc.png"), min_size=(400, 300))
    with pytest.raises(InputError, match=r"false_match must be \[3\]"):
        plot_error_vs_threshold([1, 2, 3], [0.1, 0.2], {"x": [1, 2, 3]}, title="t")
    with pytest.raises(InputError, match="at least one"):
        plot_false_match_vs_n([1, 2], {}, title="t")
