"""Spike plots: rasters draw one point per spike, traces the given potentials, rate histograms
the per-neuron rates computed here by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.colors import to_hex

from neurosim import monitors
from neurosim.backend import InputError
from neurosim.plotting.spikes import plot_firing_rates, plot_membrane_traces, plot_spike_raster
from neurosim.plotting.style import PALETTE, save_figure


def _spikes() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(60, 3, 40, generator=gen) < 0.08).float()  # [T, B, N]


def test_raster_has_one_point_per_spike_and_time_in_ms(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    spikes = _spikes()
    fig = plot_spike_raster(spikes, sample=2, dt=0.5, title="run r1: hidden layer")
    ax = fig.axes[0]
    points = ax.collections[0].get_offsets()
    assert len(points) == int(spikes[:, 2].sum())
    t, n = np.nonzero(spikes[:, 2].numpy())
    np.testing.assert_allclose(np.asarray(points), np.stack([t * 0.5, n], 1))
    assert ax.get_xlabel() == "time (ms)" and ax.get_ylabel() == "neuron index"
    assert ax.get_title() == "run r1: hidden layer"
    png_check(save_figure(fig, tmp_path / "raster.png"), min_size=(500, 200))
    # without dt the axis counts steps
    assert plot_spike_raster(spikes[:, 0]).axes[0].get_xlabel() == "time step"


def test_membrane_traces_draw_the_potentials_in_separate_colours(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(1)
    v = torch.randn(50, 2, 12, generator=gen)
    spikes = (v > 1.0).float()
    fig = plot_membrane_traces(v, sample=1, neurons=[0, 3, 7], threshold=1.0, spikes=spikes,
                               dt=1.0, title="run r1: membranes")  # fmt: skip
    ax = fig.axes[0]
    traces = [line for line in ax.lines if line.get_label().startswith("neuron")]
    assert [line.get_label() for line in traces] == ["neuron 0", "neuron 3", "neuron 7"]
    for line, n in zip(traces, [0, 3, 7], strict=True):
        np.testing.assert_allclose(line.get_ydata(), v[:, 1, n].numpy())
    assert [to_hex(line.get_color()) for line in traces] == [c.lower() for c in PALETTE[:3]]
    assert ax.get_ylabel() == "membrane potential (a.u.)" and ax.get_xlabel() == "time (ms)"
    png_check(save_figure(fig, tmp_path / "traces.png"), min_size=(500, 200))
    # ten traces (a readout layer) still get ten different colours
    ten = plot_membrane_traces(v[:, 0, :10], neurons=range(10), labels=[f"digit {d}" for d in range(10)],
                               title="ten")  # fmt: skip
    colours = {to_hex(line.get_color()) for line in ten.axes[0].lines}
    assert len(colours) == 10


def test_firing_rate_histogram_in_hz_matches_rates_by_hand(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    # 4 neurons over 10 steps of 2 ms (20 ms): 0, 1, 2 and 4 spikes -> 0, 50, 100, 200 Hz
    spikes = np.zeros((10, 4))
    spikes[3, 1] = 1
    spikes[[1, 5], 2] = 1
    spikes[[0, 2, 4, 6], 3] = 1
    fig = plot_firing_rates(spikes, dt=2.0, bins=4, title="run r1: rates")
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [1, 1, 1, 1]  # bins [0,50) [50,100) [100,150) [150,200]
    assert ax.get_xlabel() == "firing rate (Hz)" and ax.get_ylabel() == "neurons (count)"
    assert ax.lines[0].get_xdata()[0] == pytest.approx(87.5)  # mean of 0, 50, 100, 200
    png_check(save_figure(fig, tmp_path / "rates.png"), min_size=(400, 250))
    # a batch is averaged: per step, neuron rates (0 + 1) / 2 / 5 = 0.1 and (2 + 2) / 2 / 5 = 0.4
    batch = np.zeros((5, 2, 2))
    batch[0, 1, 0] = 1
    batch[[0, 3], :, 1] = 1
    per_step = plot_firing_rates(batch, bins=3, title="batch").axes[0]
    assert per_step.get_xlabel() == "firing rate (spikes/step)"
    assert per_step.lines[0].get_xdata()[0] == pytest.approx(0.25)


def test_bad_input_is_named() -> None:
    spikes = _spikes()
    with pytest.raises(InputError, match="pass sample"):
        plot_spike_raster(spikes)
    with pytest.raises(InputError, match="out of range"):
        plot_membrane_traces(spikes, sample=0, neurons=[99])
    with pytest.raises(InputError, match="dt must be a positive"):
        plot_firing_rates(spikes, dt=0.0)
    with pytest.raises(InputError, match="labels has 1 names for 2"):
        plot_membrane_traces(spikes[:, 0], neurons=[0, 1], labels=["a"])


def test_monitors_keeps_exporting_the_plots() -> None:
    assert monitors.plot_spike_raster is plot_spike_raster
    assert monitors.plot_membrane_traces is plot_membrane_traces
