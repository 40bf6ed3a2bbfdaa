"""snnTorch interop: surrogate and parameter conversion both ways, mixed networks (explicit state
in SpikingSequential, and a stepped nn.Sequential with snnTorch's hidden-state neurons)."""

from __future__ import annotations

import itertools

import pytest
import snntorch
import torch
from snntorch import surrogate as snn_surrogate
from torch import nn

from neurosim.backend import InputError
from neurosim.functional import Surrogate
from neurosim.interop.snntorch import (
    SnnTorchNeuron,
    Stateful,
    lif_from_snntorch,
    reset_states,
    snntorch_from_lif,
    snntorch_from_synaptic,
    surrogate_from_snntorch,
    surrogate_to_snntorch,
    synaptic_from_snntorch,
)
from neurosim.neurons import LI, LIF, SpikingSequential
from neurosim.neurons.synaptic import SynapticLIF


def _drive(seed: int, steps: int = 20, batch: int = 3, features: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(steps, batch, features, generator=g) * 0.7 + 0.4


def _step_snn(neuron: nn.Module, x: torch.Tensor, synaptic: bool = False) -> tuple:
    spikes, mems = [], []
    syn = torch.zeros_like(x[0])
    mem = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        if synaptic:
            spk, syn, mem = neuron(x[t], syn, mem)
        else:
            spk, mem = neuron(x[t], mem)
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


@pytest.mark.parametrize(
    "factory, expected",
    [
        (lambda: snn_surrogate.atan(alpha=3.5), Surrogate.arctan(3.5)),
        (lambda: snn_surrogate.fast_sigmoid(slope=12), Surrogate.fast_sigmoid(12.0)),
        (lambda: snn_surrogate.sigmoid(slope=7), Surrogate.sigmoid(7.0)),
        (snn_surrogate.straight_through_estimator, Surrogate.straight_through()),
        (lambda: None, Surrogate.arctan(2.0)),
    ],
)
def test_surrogate_mapping_both_ways(factory: object, expected: Surrogate) -> None:
    grad_fn = factory()  # type: ignore[operator]
    assert surrogate_from_snntorch(grad_fn) == expected
    back = surrogate_to_snntorch(expected)
    assert surrogate_from_snntorch(back) == expected
    u = torch.linspace(-1, 1, 11, requires_grad=True)
    back(u).sum().backward()
    assert torch.allclose(u.grad, expected.derivative(u.detach()), atol=1e-5)


def test_unsupported_surrogate_is_named() -> None:
    with pytest.raises(InputError, match="no neurosim equivalent"):
        surrogate_from_snntorch(snn_surrogate.triangular())
    with pytest.raises(InputError, match="no neurosim equivalent"):
        surrogate_from_snntorch(lambda u: u)


@pytest.mark.parametrize(
    "reset, delay, per_neuron",
    list(itertools.product(["subtract", "zero", "none"], [True, False], [False, True])),
)
def test_leaky_to_lif_and_back_same_outputs_and_gradients(
    reset: str, delay: bool, per_neuron: bool
) -> None:
    g = torch.Generator().manual_seed(1)
    beta = torch.rand(6, generator=g) * 0.5 + 0.4 if per_neuron else 0.8
    threshold = torch.rand(6, generator=g) * 0.5 + 0.75 if per_neuron else 1.1
    leaky = snntorch.Leaky(
        beta=beta, threshold=threshold, reset_mechanism=reset, reset_delay=delay,
        spike_grad=snn_surrogate.fast_sigmoid(slope=10), learn_beta=True,
    )  # fmt: skip
    ours = lif_from_snntorch(leaky, step_mode="multi")
    assert isinstance(ours.beta, nn.Parameter) and not isinstance(ours.threshold, nn.Parameter)
    assert ours.surrogate == Surrogate.fast_sigmoid(10.0)
    assert ours.reset == reset and ours.delayed_reset == delay

    assert ours.pending_reset == ((reset, delay) == ("subtract", False))
    x1 = (_drive(2) * 1.5).requires_grad_(True)  # membranes pass twice the threshold at times
    s_ref, v_ref = _step_snn(leaky, x1)
    assert s_ref.sum() > 5
    x2 = x1.detach().clone().requires_grad_(True)
    out = ours.simulate(x2)
    assert torch.equal(out.spikes, s_ref)
    assert torch.allclose(out.membrane, v_ref, atol=1e-6)
    w = torch.randn_like(v_ref)
    ((s_ref * w).sum() + (v_ref * w).sum()).backward()
    ((out.spikes * w).sum() + (out.membrane * w).sum()).backward()
    assert torch.allclose(x2.grad, x1.grad, atol=1e-5)
    assert torch.allclose(ours.beta.grad, leaky.beta.grad.expand_as(ours.beta.grad), atol=1e-4)

    back = snntorch_from_lif(ours)
    assert isinstance(back, snntorch.Leaky)
    assert back.reset_mechanism == reset and back.reset_delay == delay
    s_back, v_back = _step_snn(back, x1.detach())
    assert torch.equal(s_back, s_ref) and torch.allclose(v_back, v_ref, atol=1e-6)


@pytest.mark.parametrize("reset", ["subtract", "none"])
def test_synaptic_conversion_both_ways(reset: str) -> None:
    syn = snntorch.Synaptic(alpha=0.7, beta=0.85, threshold=0.9, reset_mechanism=reset)
    ours = synaptic_from_snntorch(syn)
    assert float(ours.alpha) == pytest.approx(0.7) and ours.delayed_reset is True
    x = _drive(3)
    s_ref, v_ref = _step_snn(syn, x, synaptic=True)
    out = ours.simulate(x)
    assert torch.equal(out.spikes, s_ref) and torch.allclose(out.membrane, v_ref, atol=1e-5)
    back = snntorch_from_synaptic(ours)
    s_back, v_back = _step_snn(back, x, synaptic=True)
    assert torch.equal(s_back, s_ref) and torch.allclose(v_back, v_ref, atol=1e-6)


def _networks(seed: int) -> tuple[nn.Linear, nn.Linear]:
    torch.manual_seed(seed)
    return nn.Linear(5, 8), nn.Linear(8, 4)


def test_mixed_spiking_sequential_equals_all_ours_with_gradients() -> None:
    fc1, fc2 = _networks(0)
    ours = SpikingSequential(fc1, LIF(beta=0.8), fc2, LIF(beta=0.7, delayed_reset=True))
    fc1m, fc2m = _networks(0)
    mixed = SpikingSequential(fc1m, LIF(beta=0.8), fc2m, SnnTorchNeuron(snntorch.Leaky(beta=0.7)))
    x = torch.rand(15, 3, 5) * 1.5
    y_ours, states_ours = ours(x)
    y_mixed, states_mixed = mixed(x)
    assert y_ours.sum() > 0  # the output layer does spike
    assert torch.equal(y_mixed, y_ours)
    assert torch.allclose(states_mixed[1].v, states_ours[1].v, atol=1e-6)
    y_ours.sum().backward()
    y_mixed.sum().backward()
    for a, b in [(fc1, fc1m), (fc2, fc2m)]:
        assert torch.allclose(a.weight.grad, b.weight.grad, atol=1e-5)
    # single-step mode with explicit states gives the same sequence
    single = SpikingSequential(
        fc1m, LIF(beta=0.8), fc2m, SnnTorchNeuron(snntorch.Leaky(beta=0.7)), step_mode="single"
    )
    states, outs = None, []
    for t in range(x.shape[0]):
        out, states = single(x[t], states)
        outs.append(out)
    assert torch.equal(torch.stack(outs), y_ours.detach())


def test_stepped_nn_sequential_with_snntorch_hidden_state_equals_all_ours() -> None:
    fc1, fc2 = _networks(1)
    reference = SpikingSequential(fc1, LIF(beta=0.8), fc2, LIF(beta=0.7, delayed_reset=True))
    fc1m, fc2m = _networks(1)
    net = nn.Sequential(
        fc1m,
        Stateful(LIF(beta=0.8, step_mode="single")),
        fc2m,
        snntorch.Leaky(beta=0.7, init_hidden=True),
    )
    x = torch.rand(12, 2, 5) * 1.5
    y_ref, _ = reference(x)
    for _ in range(2):  # the second run checks that reset_states clears both kinds of state
        assert reset_states(net) == 2
        y = torch.stack([net(x[t]) for t in range(x.shape[0])])
        assert torch.equal(y, y_ref)
    y.sum().backward()
    y_ref.sum().backward()
    assert torch.allclose(fc1m.weight.grad, fc1.weight.grad, atol=1e-5)
    assert torch.allclose(fc2m.weight.grad, fc2.weight.grad, atol=1e-5)


def test_membrane_readout_and_state_handover() -> None:
    x = _drive(4)
    readout = SnnTorchNeuron(snntorch.Leaky(beta=0.6, reset_mechanism="none"), output="membrane")
    ref = LI(beta=0.6).simulate(x)
    out = readout.simulate(x)
    assert torch.allclose(out.spikes, ref.spikes, atol=1e-6)
    # a state produced by snnTorch continues in our LIF (same LIFState meaning, delayed reset)
    snn_wrapped = SnnTorchNeuron(snntorch.Leaky(beta=0.8))
    ours = LIF(beta=0.8, delayed_reset=True)
    first = snn_wrapped.simulate(x[:10])
    rest = ours.simulate(x[10:], first.state)
    whole = ours.simulate(x)
    assert torch.equal(torch.cat([first.spikes, rest.spikes]), whole.spikes)
    assert snn_wrapped.neuron.mem.numel() == 0  # no graph kept on the snnTorch module


@pytest.mark.filterwarnings("ignore:Inhibition is an unstable feature")
def test_unrepresentable_settings_raise() -> None:
    with pytest.raises(InputError, match="init_hidden"):
        SnnTorchNeuron(snntorch.Leaky(beta=0.5, init_hidden=True))
    with pytest.raises(InputError, match="inhibition"):
        lif_from_snntorch(snntorch.Leaky(beta=0.5, inhibition=True))
    with pytest.raises(InputError, match="graded_spikes_factor"):
        lif_from_snntorch(snntorch.Leaky(beta=0.5, graded_spikes_factor=2.0))
    with pytest.raises(InputError, match="detach_reset"):
        snntorch_from_lif(LIF(detach_reset=True))
    with pytest.raises(InputError, match="zero"):
        synaptic_from_snntorch(snntorch.Synaptic(alpha=0.5, beta=0.5, reset_mechanism="zero"))
    with pytest.raises(InputError, match="expected an snntorch.Leaky"):
        lif_from_snntorch(nn.Linear(2, 2))
    with pytest.raises(InputError, match="SpikingNeuron"):
        Stateful(nn.Linear(2, 2))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="output"):
        SnnTorchNeuron(snntorch.Leaky(beta=0.5), output="both")
    with pytest.warns(UserWarning, match="pending_reset=True"):
        assert isinstance(snntorch_from_synaptic(SynapticLIF()), snntorch.Synaptic)
    with pytest.warns(UserWarning, match="twice the threshold"):
        snntorch_from_lif(LIF(reset="subtract"))


def _snntorch_u02(leaky: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mem = torch.zeros_like(x[0])
    spikes, mems = [], []
    for t in range(x.shape[0]):
        spk, mem = leaky(x[t], mem)
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


def test_reset_delay_false_equals_snntorch_on_u02_input() -> None:
    """Issue 12: on U(0, 2) input (membranes above twice the threshold) snnTorch's
    ``reset_delay=False`` subtract reset skips spikes that one subtraction per step fires. The
    conversion maps it to ``pending_reset=True``: spikes equal, membranes and gradients agree;
    the plain immediate reset differs (as measured in the issue: hundreds of 25,600 spikes)."""
    g = torch.Generator().manual_seed(12)
    x = torch.rand(100, 16, 16, generator=g) * 2.0  # 25,600 spike decisions
    leaky = snntorch.Leaky(beta=0.9, threshold=1.0, reset_mechanism="subtract",
                           reset_delay=False, learn_beta=True, learn_threshold=True)  # fmt: skip
    x_ref = x.clone().requires_grad_(True)
    s_ref, v_ref = _snntorch_u02(leaky, x_ref)
    assert bool((v_ref > 1.0).any())  # the pending-reset regime is reached
    ours = lif_from_snntorch(leaky)
    assert ours.pending_reset
    x_ours = x.clone().requires_grad_(True)
    out = ours.simulate(x_ours)
    assert torch.equal(out.spikes, s_ref)
    torch.testing.assert_close(out.membrane, v_ref, rtol=1e-5, atol=1e-5)
    w = torch.randn(x.shape, generator=g)
    ((s_ref * w).sum() + (v_ref * w).sum()).backward()
    ((out.spikes * w).sum() + (out.membrane * w).sum()).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours.beta.grad, leaky.beta.grad, rtol=1e-4, atol=1e-2)
    torch.testing.assert_close(ours.threshold.grad, leaky.threshold.grad, rtol=1e-4, atol=1e-2)
    plain = LIF(beta=0.9, threshold=1.0, reset="subtract")
    differ = int((plain(x)[0] != s_ref).sum())
    assert differ > 100  # what silent conversion used to give
    # the round trip keeps the exact semantics (no warning: pending_reset maps back exactly)
    back = snntorch_from_lif(ours)
    assert back.reset_delay is False
    s_back, _ = _snntorch_u02(back, x)
    assert torch.equal(s_back, s_ref)
