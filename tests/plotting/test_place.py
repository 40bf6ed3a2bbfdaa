"""Place-recognition figures render to non-blank images of the expected size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurosim.backend import InputError
from neurosim.metrics.place import ground_truth_matrix
from neurosim.plotting.place import plot_firing_histogram, plot_pr_curves, plot_similarity_matrix
from neurosim.plotting.style import save_figure


def _similarity(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = ground_truth_matrix(40, 40, tolerance=1)
    return rng.random((40, 40)) + 0.8 * gt * rng.random((40, 40)), gt


def test_pr_curves(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    a, gt = _similarity(0)
    b, _ = _similarity(1)
    fig = plot_pr_curves({"snn": a, "sad": b}, gt, title="corridor, run 0")
    ax = fig.axes[0]
    assert [t.get_text().split(" ")[0] for t in ax.get_legend().get_texts()] == ["snn", "sad"]
    assert "recall" in ax.get_xlabel() and "precision" in ax.get_ylabel()
    png_check(save_figure(fig, tmp_path / "pr.png"), min_size=(350, 300))
    with pytest.raises(InputError, match="at least one"):
        plot_pr_curves({}, gt, title="x")


def test_similarity_matrix(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    s, gt = _similarity(2)
    fig = plot_similarity_matrix(s, gt, title="SNN ensemble, corridor")
    assert fig.axes[0].get_xlabel() == "reference place (index)"
    png_check(save_figure(fig, tmp_path / "sim.png"), min_size=(400, 300))
    with pytest.raises(InputError, match="match"):
        plot_similarity_matrix(s, gt[:3], title="x")


def test_firing_histogram(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    counts = np.random.default_rng(0).poisson(3.0, size=(5, 400))
    fig = plot_firing_histogram(counts, title="hyperactive counts, corridor")
    ax = fig.axes[0]
    assert len(ax.patches) == 5 and ax.get_ylabel() == "neurons (count)"
    png_check(save_figure(fig, tmp_path / "hist.png"), min_size=(400, 250))
