"""One contract over every neuron module: step modes agree, sequences continue, dtypes and layouts
are kept, gradients flow, state_dict round-trips and bad input is a clear error."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from neurosim.backend import InputError
from neurosim.functional import ConductanceLIFParameters
from neurosim.neurons import ALIF, LI, LIF, ConductanceLIF, SpikingNeuron, SynapticLIF

F = 6
NEURONS: dict[str, Callable[..., SpikingNeuron]] = {
    "lif": lambda **kw: LIF(
        F, beta=0.8, threshold=0.7, learn_beta=True, learn_threshold=True, **kw
    ),
    "lif_delayed_zero": lambda **kw: LIF(F, delayed_reset=True, reset="zero", **kw),
    "synaptic": lambda **kw: SynapticLIF(F, alpha=0.6, beta=0.8, learn_alpha=True, **kw),
    "alif": lambda **kw: ALIF(F, beta=0.8, adaptation=0.3, learn_adaptation=True, **kw),
    "li": lambda **kw: LI(F, beta=0.7, learn_beta=True, **kw),
    "conductance": lambda **kw: ConductanceLIF(
        ConductanceLIFParameters.diehl_cook_inhibitory(), **kw
    ),
}


def _input(name: str, steps: int = 12, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(len(name))
    if name == "conductance":  # conductance increments from presynaptic spikes
        return ((torch.rand(steps, 3, F, generator=g) < 0.3).float() * 3.0).to(dtype)
    return (torch.randn(steps, 3, F, generator=g) * 0.6 + 0.4).to(dtype)


def _stepped(module: SpikingNeuron, x: torch.Tensor, state=None):
    outs = []
    for t in range(x.shape[0]):
        out, state = module.step(x[t], state)
        outs.append(out)
    return torch.stack(outs), state


def _assert_state_close(a, b) -> None:
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v)


@pytest.mark.parametrize("name", sorted(NEURONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_step_modes_agree_and_keep_dtype(name: str, dtype: torch.dtype) -> None:
    module = NEURONS[name]().to(dtype)
    x = _input(name, dtype=dtype)
    multi, state_multi = module(x)
    single, state_single = _stepped(module, x)
    assert multi.dtype == dtype and multi.shape == x.shape
    torch.testing.assert_close(multi, single)
    _assert_state_close(state_multi, state_single)
    if name != "li":
        assert 0 < float(multi.detach().float().mean()) < 1  # spikes happen, not always
    single_module = NEURONS[name](step_mode="single").to(dtype)
    out, _ = single_module(x[0])
    torch.testing.assert_close(out, single[0])


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_sequences_continue_from_the_returned_state(name: str) -> None:
    module = NEURONS[name]()
    x = _input(name, steps=14)
    whole, state = module(x)
    first, mid = module(x[:5])
    second, end = module(x[5:], mid)
    torch.testing.assert_close(torch.cat([first, second]), whole)
    _assert_state_close(end, state)


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_batch_major_layout(name: str) -> None:
    x = _input(name)
    want = NEURONS[name]().simulate(x)
    got = NEURONS[name](time_major=False).simulate(x.transpose(0, 1))
    torch.testing.assert_close(got.spikes.transpose(0, 1), want.spikes)
    torch.testing.assert_close(got.membrane.transpose(0, 1), want.membrane)


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_gradients_flow_and_state_dict_round_trips(name: str) -> None:
    module = NEURONS[name]()
    x = _input(name).requires_grad_(True)
    out = module.simulate(x)
    (out.spikes.sum() + out.membrane.sum()).backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all()) and x.grad.abs().sum() > 0
    for p in module.parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all())
    clone = NEURONS[name]()
    with torch.no_grad():
        for p in clone.parameters():
            p.add_(0.05)
    clone.load_state_dict(module.state_dict())
    torch.testing.assert_close(clone(x.detach())[0], module(x.detach())[0])


@pytest.mark.parametrize("name", sorted(NEURONS))
def test_bad_input_is_a_clear_error(name: str) -> None:
    module = NEURONS[name]()
    x = _input(name)
    with pytest.raises(InputError, match="non-finite"):
        module(x.clone().index_fill_(0, torch.tensor([3]), float("nan")))
    _, state = module(x)
    batch_major = x.transpose(0, 1).contiguous()  # [B, T, F] with a [B, F] state
    with pytest.raises(InputError, match="batch-major"):
        module(batch_major, state)
    with pytest.raises(InputError, match="state"):
        module(x, tuple(state))  # a plain tuple is not the neuron's state type
    with pytest.raises(InputError):
        module(torch.zeros(5))  # multi-step needs [T, B, ...]
