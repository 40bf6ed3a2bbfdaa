"""Data for the ELM tasks: the SHD loader, the adding-task generator, the compartmental neuron.

Expected values are by hand (bins, templates, the Jahr-Stevens block at 0 mV, passive decay) or
from scipy's ODE solver run beside the exponential-Euler neuron.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from neurosim.backend import InputError
from neurosim.datasets.shd import (
    SHD_URL,
    SHDFrames,
    bin_spikes,
    load_shd,
    shd_batch,
    shd_path,
)
from neurosim.datasets.simulated_neuron import SimulatedNeuronTask
from neurosim.datasets.spike_adding import SpikeAddingTask
from neurosim.functional.compartmental import (
    CompartmentalParameters,
    CompartmentalState,
    compartmental_step,
    nmda_block,
    simulate_compartmental,
)

# ------------------------------------------------------------------ SHD


def write_shd(
    path: Path, times: list[list[float]], units: list[list[int]], labels: list[int]
) -> None:
    """A file in the layout of the Zenke lab's shd_*.h5 (vlen float times, vlen int units)."""
    with h5py.File(path, "w") as f:
        spikes = f.create_group("spikes")
        t = spikes.create_dataset("times", (len(times),), dtype=h5py.vlen_dtype(np.float16))
        u = spikes.create_dataset("units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (ti, ui) in enumerate(zip(times, units, strict=True)):
            t[i] = np.asarray(ti, dtype=np.float16)
            u[i] = np.asarray(ui, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))
        f.create_group("extra").create_dataset("speaker", data=np.zeros(len(labels), np.uint8))


@pytest.fixture
def shd_file(tmp_path: Path) -> Path:
    path = tmp_path / "shd" / "shd_train.h5"
    path.parent.mkdir()
    write_shd(
        path,
        times=[[0.0, 0.005, 0.0125, 0.5, 1.2], [0.25], []],
        units=[[3, 3, 699, 0, 5], [10], []],
        labels=[7, 19, 0],
    )
    return path


def test_shd_loads_and_bins_by_hand(shd_file: Path) -> None:
    data = load_shd(shd_file)
    assert len(data) == 3 and data.labels.tolist() == [7, 19, 0]
    frames = bin_spikes(data.times[0], data.units[0], bin_size=0.01, max_time=1.0)
    assert frames.shape == (100, 700)
    expected = torch.zeros(100, 700)
    expected[0, 3] = 2  # 0.0 s and 0.005 s share the first 10 ms bin
    expected[1, 699] = 1  # 0.0125 s
    expected[50, 0] = 1  # 0.5 s; 1.2 s is past max_time and dropped
    torch.testing.assert_close(frames, expected)
    sparse = bin_spikes(data.times[0], data.units[0], sparse=True)
    assert sparse.is_sparse and int(sparse._nnz()) == 3
    torch.testing.assert_close(sparse.to_dense(), expected)
    binary = bin_spikes(data.times[0], data.units[0], binary=True)
    assert float(binary.max()) == 1.0 and float(binary.sum()) == 3.0
    assert bin_spikes(data.times[2], data.units[2]).sum() == 0
    coarse = bin_spikes(data.times[0], data.units[0], bin_size=0.25, max_time=1.5)
    assert coarse.shape == (6, 700) and float(coarse[4, 5]) == 1.0  # 1.2 s in [1.0, 1.25)


def test_shd_batch_and_dataset(shd_file: Path) -> None:
    data = load_shd(shd_file)
    x, y = shd_batch(data, [1, 0], bin_size=0.05, max_time=0.5)
    assert x.shape == (10, 2, 700) and y.tolist() == [19, 7]
    assert float(x[5, 0, 10]) == 1.0 and float(x[:, 0].sum()) == 1.0  # 0.25 s -> bin 5
    assert float(x[:, 1].sum()) == 3.0  # 0.5 s and 1.2 s are past 0.5 s
    ds = SHDFrames(shd_file, sparse=True)
    frames, label = ds[1]
    assert label == 19 and frames.is_sparse and frames.shape == (100, 700)
    with pytest.raises(IndexError):
        ds[3]
    assert shd_path(shd_file.parent.parent, "train") == shd_file


def test_shd_missing_and_bad_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        shd_path(tmp_path, "test")
    message = str(info.value)
    assert SHD_URL in message and str(tmp_path / "shd") in message and "shd_test.h5" in message
    with pytest.raises(InputError, match="zenkelab"):
        load_shd(tmp_path / "nope.h5")
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("labels", data=np.zeros(2))
    with pytest.raises(InputError, match="spikes/times"):
        load_shd(bad)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(InputError, match="not an HDF5"):
        load_shd(tmp_path / "text.h5")
    bad_units = tmp_path / "units.h5"
    write_shd(bad_units, [[0.1]], [[700]], [1])
    with pytest.raises(InputError, match=r"units outside 0\.\.699"):
        load_shd(bad_units)
    with pytest.raises(InputError, match="bin_size"):
        bin_spikes(np.zeros(1), np.zeros(1, np.int64), bin_size=0.0)


# ------------------------------------------------------------------ adding task


def test_adding_task_places_the_templates_by_hand() -> None:
    task = SpikeAddingTask(channels=6, n_values=3, pattern_steps=5, delay=7, tail=2, jitter=0,
                           drop=0.0, noise_rate=0.0, template_rate=0.5)  # fmt: skip
    assert task.steps == 2 * 5 + 7 + 2 and task.num_classes == 5 and task.second_onset == 12
    templates = task.templates()
    batch = task.sample(8, templates, torch.Generator().manual_seed(3))
    assert batch.x.shape == (19, 8, 6)
    torch.testing.assert_close(batch.target, batch.values.sum(1))
    for b in range(8):
        a, c = batch.values[b].tolist()
        torch.testing.assert_close(batch.x[0:5, b], templates[a].float())
        torch.testing.assert_close(batch.x[12:17, b], templates[c].float())
        assert float(batch.x[5:12, b].sum()) == 0 and float(batch.x[17:, b].sum()) == 0
    again = task.sample(8, templates, torch.Generator().manual_seed(3))
    torch.testing.assert_close(again.x, batch.x)


def test_adding_task_noise_and_errors() -> None:
    task = SpikeAddingTask(delay=20, noise_rate=0.05, drop=0.5, jitter=2, tail=3)
    batch = task.sample(256, task.templates(), torch.Generator().manual_seed(0))
    silent = batch.x[task.pattern_steps + task.jitter : task.second_onset]
    assert abs(float(silent.mean()) - 0.05) < 0.01  # background rate in the delay
    with pytest.raises(InputError, match="jitter"):
        SpikeAddingTask(jitter=4, tail=3)
    with pytest.raises(InputError, match="probability"):
        SpikeAddingTask(drop=1.5)
    with pytest.raises(InputError, match="templates have shape"):
        task.sample(2, torch.zeros(3, 3, 3, dtype=torch.bool), torch.Generator())


# ------------------------------------------------------------------ compartmental neuron


def test_nmda_block_by_hand() -> None:
    assert float(nmda_block(torch.tensor(0.0))) == pytest.approx(1 / (1 + 1 / 3.57))
    v = torch.tensor(-70.0)
    assert float(nmda_block(v, mg=1.0)) == pytest.approx(1 / (1 + math.exp(0.062 * 70) / 3.57))
    assert float(nmda_block(torch.tensor(-40.0), mg=0.0)) == 1.0


def test_soma_relaxes_exponentially_without_coupling() -> None:
    p = CompartmentalParameters(g_couple=0.0, dt=0.5)
    st = CompartmentalState.rest(1, 2, p, dtype=torch.float64)
    st = st._replace(v_soma=torch.tensor([-60.0], dtype=torch.float64))
    zero = torch.zeros(1, 2, dtype=torch.float64)
    for step in range(1, 11):
        _, st = compartmental_step(zero, zero, st, p)
        expected = -70.0 + 10.0 * math.exp(-step * 0.5 * p.g_leak_soma / p.c_soma)
        assert float(st.v_soma) == pytest.approx(expected, rel=1e-12)


def test_branch_volley_matches_scipy_ode() -> None:
    """A volley of 20 synchronous excitatory spikes onto one branch of a two-compartment neuron
    at t = 0, integrated with dt = 0.005 ms, against scipy's solve_ivp of the same ODEs."""
    from scipy.integrate import solve_ivp

    p = CompartmentalParameters(dt=0.005)
    n = 20.0

    def rhs(t: float, y: np.ndarray) -> list[float]:
        vd, vs = y
        ga = p.w_ampa * n * math.exp(-t / p.tau_ampa)
        gn = p.w_nmda * n * math.exp(-t / p.tau_nmda) * float(nmda_block(torch.tensor(vd), p.mg))
        i_d = (-p.g_leak_branch * (vd - p.e_leak) - (ga + gn) * (vd - p.e_exc)
               - p.g_couple * (vd - vs))  # fmt: skip
        i_s = -p.g_leak_soma * (vs - p.e_leak) - p.g_couple * (vs - vd)
        return [i_d / p.c_branch, i_s / p.c_soma]

    t_eval = np.arange(1, 11) * 1.0
    ode = solve_ivp(rhs, (0, 10.0), [p.e_leak, p.e_leak], t_eval=t_eval, rtol=1e-9, atol=1e-9)
    steps = 2000
    exc = torch.zeros(steps, 1, 1, dtype=torch.float64)
    exc[0, 0, 0] = n
    trace = simulate_compartmental(
        exc, torch.zeros(steps, 1, 0, dtype=torch.float64), torch.zeros(1, dtype=torch.long),
        torch.zeros(0, dtype=torch.long), 1, p,
    )  # fmt: skip
    idx = (t_eval / p.dt).astype(int) - 1
    np.testing.assert_allclose(trace.v_branch[idx, 0, 0].numpy(), ode.y[0], atol=0.05)
    np.testing.assert_allclose(trace.v_soma[idx, 0].numpy(), ode.y[1], atol=0.02)
    assert -46.0 < float(trace.v_branch.max()) < -44.0  # the ODE's peak: about -45 mV


def test_clustered_input_lasts_longer_through_nmda() -> None:
    """The same 80 spikes onto one branch or spread over 4 branches: with NMDA the clustered
    volley depolarises the soma more in total and is still depolarised 60 ms later (a plateau);
    with NMDA blocked (huge [Mg]) the spread volley wins (driving-force saturation) and both
    are back at rest by 60 ms."""

    def run(clustered: bool, mg: float) -> tuple[float, float]:
        p = CompartmentalParameters(mg=mg, v_threshold=100.0)  # no spikes: passive response
        exc = torch.zeros(80, 1, 4, dtype=torch.float64)
        if clustered:
            exc[0, 0, 0] = 80
        else:
            exc[0, 0, :] = 20
        trace = simulate_compartmental(
            exc, torch.zeros(80, 1, 0, dtype=torch.float64), torch.arange(4),
            torch.zeros(0, dtype=torch.long), 4, p,
        )  # fmt: skip
        v = trace.v_soma[:, 0]
        return float((v - p.e_leak).sum()), float(v[59])

    (area_c, late_c), (area_s, late_s) = run(True, 1.0), run(False, 1.0)
    assert area_c > 1.1 * area_s and late_c > late_s + 2.0
    (area_cb, late_cb), (area_sb, late_sb) = run(True, 1e6), run(False, 1e6)
    assert area_cb < area_sb
    assert abs(late_cb + 70.0) < 0.2 and abs(late_sb + 70.0) < 0.2


def test_simulated_neuron_fires_resets_and_is_reproducible() -> None:
    task = SimulatedNeuronTask(branches=4, synapses_per_branch=8, sequence_ms=400,
                               exc_rate_hz=(0.0, 150.0))  # fmt: skip
    data = task.simulate(3, torch.Generator().manual_seed(0))
    assert data.x.shape == (400, 3, 64) and data.spikes.shape == (400, 3)
    t, b = torch.nonzero(data.spikes, as_tuple=True)
    assert t.numel() > 0
    assert torch.all(data.voltage[t, b] == task.neuron.v_reset)  # reset on the spike step
    assert float(data.voltage.max()) < task.neuron.v_threshold
    again = task.simulate(3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(again.spikes, data.spikes)
    with pytest.raises(InputError, match="branches outside"):
        simulate_compartmental(data.x[..., :32], data.x[..., 32:], torch.full((32,), 9),
                               torch.zeros(32, dtype=torch.long), 4)  # fmt: skip
