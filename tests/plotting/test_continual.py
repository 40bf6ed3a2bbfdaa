"""Continual-learning figures render to non-blank images of the expected size."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from neurosim.backend import InputError
from neurosim.plotting.continual import plot_acc_bwt, plot_accuracy_matrix, plot_task_curves
from neurosim.plotting.style import save_figure


def _matrix(t: int) -> np.ndarray:
    r = np.full((t, t), math.nan)
    for i in range(t):
        for j in range(i + 1):
            r[i, j] = 0.95 - 0.04 * (i - j)
    return r


def test_accuracy_matrix_heat_map(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    fig = plot_accuracy_matrix(_matrix(10), title="hlop, permuted MNIST, seed 0")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "tested on task" and ax.get_ylabel() == "after training task"
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 55 and "95.0" in texts  # lower triangle annotated, NaN cells blank
    png_check(save_figure(fig, tmp_path / "matrix.png"), min_size=(400, 300))


def test_acc_bwt_bars_with_seeds(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    methods = ["finetune", "ewc", "gpm", "hlop", "joint"]
    acc = [[0.6, 0.62], [0.8, 0.81], [0.93, 0.92], [0.92, 0.93], [0.95, 0.95]]
    bwt = [[-0.35, -0.33], [-0.1, -0.12], [-0.01, -0.02], [-0.02, -0.01], [math.nan] * 2]
    fig = plot_acc_bwt(methods, acc, bwt, title="permuted MNIST", reference=0.95)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == methods
    assert "%" in ax.get_ylabel()
    png_check(save_figure(fig, tmp_path / "bars.png"), min_size=(400, 250))
    with pytest.raises(InputError, match="methods"):
        plot_acc_bwt(methods, acc[:2], bwt, title="x")


def test_task_curves(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    fig = plot_task_curves(_matrix(5), title="finetune, split MNIST", task_names=list("abcde"))
    ax = fig.axes[0]
    assert len(ax.lines) == 5 and ax.get_ylabel() == "test accuracy (%)"
    png_check(save_figure(fig, tmp_path / "curves.png"), min_size=(400, 250))
    with pytest.raises(InputError, match="task_names"):
        plot_task_curves(_matrix(5), title="x", task_names=["a"])
