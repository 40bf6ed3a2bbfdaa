"""Monitors: HDF5 recording equals the neuron outputs, no autograd graph kept, plots."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from neurosim.backend import InputError
from neurosim.monitors import (
    Monitor,
    plot_membrane_traces,
    plot_spike_raster,
    read_monitor,
    save_figure,
)
from neurosim.neurons import LI, LIF, SpikingSequential


class _ToyNeuron(nn.Module):
    """A stand-in neuron: (spikes, membrane) from an input current, with an autograd graph."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = torch.tanh(x) * 2.0
        return (v > 0.5).to(x.dtype) + 0.0 * v, v


def _run(steps: int, mon_s: Monitor, mon_v: Monitor, w: torch.Tensor) -> tuple[list, list]:
    neuron = _ToyNeuron()
    mon_s.attach(neuron)
    mon_v.attach(neuron, pick=lambda out: out[1])
    gen = torch.Generator().manual_seed(0)
    spikes, volts = [], []
    for _ in range(steps):
        s, v = neuron(torch.randn(3, 5, generator=gen) @ w)
        spikes.append(s.detach().clone())
        volts.append(v.detach().clone())
    mon_s.close()
    mon_v.close()
    return spikes, volts


def test_recorded_arrays_equal_neuron_outputs(tmp_path: Path) -> None:
    path = tmp_path / "results.h5"
    w = torch.randn(5, 4, requires_grad=True)
    mon_s = Monitor("spikes", target=path, dtype="uint8", flush_frames=4)
    mon_v = Monitor("v", target=path, flush_frames=3)
    spikes, volts = _run(10, mon_s, mon_v, w)
    with h5py.File(path, "r") as fh:  # reopen the file
        s = fh["arrays/spikes"][()]
        v = fh["arrays/v"][()]
        assert fh["arrays/spikes"].attrs["kind"] == "neurosim-monitor"
    assert s.dtype == np.uint8 and s.shape == (10, 3, 4)
    assert v.dtype == np.float32 and v.shape == (10, 3, 4)
    np.testing.assert_array_equal(s, torch.stack(spikes).numpy().astype(np.uint8))
    np.testing.assert_array_equal(v, torch.stack(volts).numpy())
    np.testing.assert_array_equal(read_monitor(path, "v"), v)


def test_subsampling_in_time_and_neurons(tmp_path: Path) -> None:
    x = torch.randn(11, 2, 6)
    mon = Monitor("v", target=tmp_path / "r.h5", every=3, select=(1, slice(0, 4)))
    mon.record_sequence(x[:4])  # steps 0..3 -> keeps 0, 3
    for t in range(4, 11):  # keeps 6, 9
        mon.record(x[t])
    out = mon.to_numpy()
    np.testing.assert_array_equal(out, x[[0, 3, 6, 9]][:, 1, :4].numpy())
    assert mon.frames == 4 and mon.steps_seen == 11


def test_group_and_memory_targets(tmp_path: Path) -> None:
    x = torch.randn(5, 3)
    mem = Monitor("m")
    mem.record_sequence(x)
    np.testing.assert_array_equal(mem.to_numpy(), x.numpy())
    with h5py.File(tmp_path / "own.h5", "w") as fh:
        mon = Monitor("m", target=fh, flush_frames=2)
        mon.record_sequence(x[:3])
        mon.record_sequence(x[3:])
        np.testing.assert_array_equal(mon.to_numpy(), x.numpy())
        assert fh["arrays/m"].shape == (5, 3)


def test_recording_keeps_no_graph_alive() -> None:
    w = torch.randn(4, 4, requires_grad=True)
    mon = Monitor("v", flush_frames=1000)
    refs = []
    for _ in range(5):
        v = torch.sigmoid(torch.randn(2, 4) @ w)  # part of an autograd graph
        assert v.requires_grad
        mon.record(v)
        refs.append(weakref.ref(v))
        del v
    gc.collect()
    assert all(r() is None for r in refs)  # the monitor held no reference to the outputs
    assert all(not t.requires_grad and t.grad_fn is None for t in mon._buffer)
    assert mon.to_numpy().shape == (5, 2, 4)


def test_resume_truncates_frames_written_after_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    x = torch.randn(8, 3)
    mon = Monitor("v", target=path, flush_frames=1)
    mon.record_sequence(x[:4])
    state = mon.state_dict()
    mon.record_sequence(x[4:6])  # progress lost by an interrupted run
    mon.flush()
    resumed = Monitor("v", target=path, flush_frames=1)
    resumed.load_state_dict(state)
    resumed.record_sequence(x[4:])
    np.testing.assert_array_equal(resumed.to_numpy(), x.numpy())


def test_monitor_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="name"):
        Monitor("a/b")
    with pytest.raises(InputError, match="every"):
        Monitor("a", every=0)
    mon = Monitor("a")
    mon.record(torch.zeros(3))
    with pytest.raises(InputError, match="same shape"):
        mon.record(torch.zeros(4))
    with pytest.raises(InputError, match="select"):
        Monitor("b", select=(5,)).record(torch.zeros(3))
    with pytest.raises(InputError, match="not a readable HDF5"):
        read_monitor(tmp_path / "missing.h5", "c")
    other = Monitor("c", target=tmp_path / "r.h5")
    other.record(torch.zeros(2))
    other.close()
    with pytest.raises(InputError, match="no monitor array 'd'"):
        read_monitor(tmp_path / "r.h5", "d")


def test_plots_render(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    spikes = (torch.rand(50, 2, 20, generator=gen) < 0.1).float()
    v = torch.randn(50, 2, 20, generator=gen)
    fig = plot_spike_raster(spikes, sample=1)
    offsets = fig.axes[0].collections[0].get_offsets()
    assert len(offsets) == int(spikes[:, 1].sum())
    out = save_figure(fig, tmp_path / "raster.png")
    assert out.stat().st_size > 1000
    fig2 = plot_membrane_traces(v, sample=0, neurons=[0, 3], threshold=1.0, spikes=spikes)
    np.testing.assert_allclose(fig2.axes[0].lines[0].get_ydata(), v[:, 0, 0].numpy())
    save_figure(fig2, tmp_path / "traces.png")
    with pytest.raises(InputError, match="sample"):
        plot_spike_raster(spikes)
    with pytest.raises(InputError, match="out of range"):
        plot_membrane_traces(v, sample=0, neurons=[99])


@pytest.mark.parametrize("step_mode", ["multi", "single"])
def test_monitor_on_lif_inside_spiking_sequential(tmp_path: Path, step_mode: str) -> None:
    torch.manual_seed(0)
    lif = LIF(beta=0.8)
    net = SpikingSequential(nn.Linear(3, 6), lif, nn.Linear(6, 2), LI(beta=0.5))
    x = torch.rand(9, 4, 3) * 2
    reference = lif.simulate(net.layers[0](x))  # the hidden layer's spikes and membrane
    path = tmp_path / "results.h5"
    spikes = Monitor("s", target=path, dtype="uint8")
    volts = Monitor("v", target=path, select=(slice(1, 3),))
    h1 = spikes.attach(lif)
    volts.attach(lif, signal="membrane")
    net.step_mode = step_mode
    if step_mode == "multi":
        net(x)
    else:
        states = None
        for t in range(x.shape[0]):
            _, states = net(x[t], states)
    h1.remove()
    net.step_mode = "multi"
    net(x)  # recorded by the membrane monitor only
    spikes.close()
    volts.close()
    np.testing.assert_array_equal(read_monitor(path, "s"), reference.spikes.detach().numpy())
    v = read_monitor(path, "v")
    expected_v = reference.membrane[:, 1:3].detach().numpy()
    np.testing.assert_allclose(v, np.concatenate([expected_v, expected_v]), atol=1e-6)
    assert "step" not in lif.__dict__ and "multi_step" not in lif.__dict__  # restored


def test_neuron_outputs_are_not_kept_alive_by_a_monitor() -> None:
    lif = LIF(beta=0.9)
    w = torch.randn(4, 5, requires_grad=True)
    mon = Monitor("s", flush_frames=10_000)
    mon.attach(lif)
    mon2 = Monitor("v", flush_frames=10_000)
    mon2.attach(lif, signal="membrane")
    refs = []
    for _ in range(3):
        spikes, _ = lif(torch.rand(6, 2, 4) @ w)
        assert spikes.requires_grad
        refs.append(weakref.ref(spikes))
        del spikes, _
    gc.collect()
    assert all(r() is None for r in refs)
    assert mon.frames == 18 and mon2.frames == 18
    assert all(t.grad_fn is None for t in mon._buffer + mon2._buffer)
    with pytest.raises(InputError, match="signal"):
        mon.attach(lif, signal="voltage")
