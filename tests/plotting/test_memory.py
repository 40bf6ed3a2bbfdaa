"""ELM memory and task plots render readable, non-blank images; bad input is a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurosim.backend import InputError
from neurosim.plotting.memory import (
    plot_accuracy_by_delay,
    plot_adding_example,
    plot_fit_vs_params,
    plot_memory_traces,
    plot_neuron_fit,
    plot_task_curves,
)
from neurosim.plotting.style import save_figure

RNG = np.random.default_rng(0)


def test_memory_traces(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    t = np.arange(200)[:, None, None]
    tau = np.logspace(0, 3, 10)
    memory = np.exp(-t / tau[None, None, :]) * np.ones((1, 2, 10))
    fig = plot_memory_traces(memory, tau=tau, sample=1, marks={"pattern 2": 120},
                             title="run-1: memory")  # fmt: skip
    axes = fig.axes[0]
    assert axes.get_xlabel() == "time (steps)" and "memory" in axes.get_ylabel()
    assert len(axes.lines) == 10 + 1  # ten units and the mark
    png_check(save_figure(fig, tmp_path / "memory.png"), min_size=(500, 250))
    with pytest.raises(InputError, match="tau has 3 values"):
        plot_memory_traces(memory, tau=tau[:3])
    with pytest.raises(InputError, match="out of range"):
        plot_memory_traces(memory, sample=5)


def test_adding_example_and_curves(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    x = (RNG.random((160, 32)) < 0.05).astype(np.uint8)
    fig = plot_adding_example(x, onsets=[0, 125], pattern_steps=25, values=[3, 8],
                              title="run-2: input")  # fmt: skip
    assert fig.axes[0].get_ylabel() == "input channel"
    png_check(save_figure(fig, tmp_path / "input.png"), min_size=(500, 200))
    curves = {
        m: (np.arange(50), np.linspace(0.05, v, 50)) for m, v in [("elm", 0.95), ("lstm", 0.2)]
    }
    fig = plot_task_curves(curves, ylabel="accuracy", chance=0.1, title="run-3: curves")
    assert len(fig.axes[0].lines) == 3
    png_check(save_figure(fig, tmp_path / "curves.png"))
    fig = plot_accuracy_by_delay(
        {"elm": {100: [0.97, 0.95], 400: [0.9]}, "lstm": {100: 0.2, 400: 0.1}}, chance=0.1
    )
    assert fig.axes[0].get_ylim()[1] == pytest.approx(1.02)
    png_check(save_figure(fig, tmp_path / "delay.png"))
    with pytest.raises(InputError, match="one sequence"):
        plot_adding_example(x[None], onsets=[0], pattern_steps=5)


def test_neuron_fit_and_size_plots(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    v = -65 + RNG.standard_normal(500)
    spikes = (RNG.random(500) < 0.01).astype(float)
    fig = plot_neuron_fit(v, v + 0.5, spikes, np.clip(spikes * 0.8 + 0.05, 0, 1), title="run-4")
    assert (
        fig.axes[0].get_ylabel() == "soma voltage (mV)" and fig.axes[1].get_xlabel() == "time (ms)"
    )
    png_check(save_figure(fig, tmp_path / "fit.png"), min_size=(500, 300))
    rows = [{"model": m, "params": p, "auc": a, "rmse": r}
            for m, p, a, r in [("elm", 1e3, 0.9, 2.0), ("elm", 1e4, 0.95, 1.5),
                               ("branch_elm", 300, 0.92, 1.8)]]  # fmt: skip
    fig = plot_fit_vs_params(rows, title="run-5: size")
    assert fig.axes[0].get_xscale() == "log"
    png_check(save_figure(fig, tmp_path / "size.png"), min_size=(500, 250))
    with pytest.raises(InputError, match="lacks"):
        plot_fit_vs_params([{"model": "elm"}])
    with pytest.raises(InputError, match="same length"):
        plot_neuron_fit(v, v[:10], spikes, spikes)
