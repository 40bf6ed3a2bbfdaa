"""Synaptic LIF, ALIF, LI and conductance-based LIF: step vs multi-step (gradients included),
modules vs functional, the documented behaviour and bad input."""

from __future__ import annotations

import pytest
import torch

from neurosim.backend import InputError, debug_checks
from neurosim.functional import (
    ALIFParameters,
    ALIFState,
    ConductanceLIFParameters,
    ConductanceLIFState,
    LIFParameters,
    LIParameters,
    LIState,
    SynapticParameters,
    SynapticState,
    alif_multi_step,
    alif_step,
    conductance_lif_multi_step,
    conductance_lif_step,
    li_multi_step,
    li_step,
    lif_multi_step,
    synaptic_multi_step,
    synaptic_step,
)
from neurosim.neurons import ALIF, LI, ConductanceLIF, SynapticLIF
from tests.reference_neurons import leaky as reference_leaky
from tests.reference_neurons import lif as reference_lif


def _x(steps: int = 15, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(steps, 3, 5, generator=g, dtype=torch.float64) * 0.7 + 0.4


def _stack_steps(step_fn, x, state):
    outs, mems = [], []
    for t in range(x.shape[0]):
        s, state = step_fn(x[t], state)
        outs.append(s)
        mems.append(state.v)
    return torch.stack(outs), torch.stack(mems), state


def _grad(fn, x, *params):
    leaves = [x.detach().clone().requires_grad_(True)] + [
        p.detach().clone().requires_grad_(True) for p in params
    ]
    out, mem = fn(*leaves)
    g = torch.Generator().manual_seed(3)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum() + (
        mem * torch.randn(mem.shape, generator=g, dtype=mem.dtype)
    ).sum()
    loss.backward()
    return [out.detach(), mem.detach()] + [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("backend", ["stepped", "torch", "loop", "numba", "triton"])
@pytest.mark.parametrize("delayed", [False, True])
def test_synaptic_matches_the_independent_loop(backend: str, delayed: bool) -> None:
    """Step and multi-step (every backend) against the independent references: the current is
    a leaky integral of the input, the membrane a LIF driven by the current."""
    x = _x()
    alpha = torch.tensor([0.5, 0.6, 0.7, 0.8, 0.3], dtype=torch.float64)
    theta = torch.full((5,), 0.9, dtype=torch.float64)

    def stepped(x, alpha, theta):
        p = SynapticParameters(alpha=alpha, beta=0.8, threshold=theta, delayed_reset=delayed)
        s, m, _ = _stack_steps(lambda xt, st: synaptic_step(xt, st, p), x, None)
        return s, m

    def multi(x, alpha, theta):
        p = SynapticParameters(alpha=alpha, beta=0.8, threshold=theta, delayed_reset=delayed)
        out = synaptic_multi_step(x, None, p, backend=backend)
        assert isinstance(out.state, SynapticState)
        return out.spikes, out.membrane

    def independent(x, alpha, theta):
        current = reference_leaky(x, alpha)
        v0, beta = torch.zeros_like(x[0]), torch.tensor(0.8, dtype=x.dtype)
        return reference_lif(current, v0, beta, theta, delayed_reset=delayed)

    want = _grad(independent, x, alpha, theta)
    got = _grad(stepped if backend == "stepped" else multi, x, alpha, theta)
    assert 0.05 < float(want[0].mean()) < 0.95
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_synaptic_current_is_a_leaky_integral() -> None:
    x = torch.zeros(3, 1, 1, dtype=torch.float64)
    x[0] = 1.0
    p = SynapticParameters(alpha=0.5, beta=0.0, threshold=10.0)
    out = synaptic_multi_step(x, None, p)
    assert out.membrane.flatten().tolist() == [1.0, 0.5, 0.25]
    assert out.state.i.item() == 0.25


def test_alif_example_and_relation_to_lif() -> None:
    x = torch.ones(8, 1, dtype=torch.float64)
    p = ALIFParameters(beta=1.0, threshold=1.0, rho=1.0, adaptation=1.0)
    out = alif_multi_step(x, None, p)
    assert out.spikes.flatten().nonzero().flatten().tolist() == [1, 3, 6]
    # no adaptation -> the immediate-reset LIF
    xs = _x(30)
    no_adapt = alif_multi_step(xs, None, ALIFParameters(beta=0.8, threshold=1.0, adaptation=0.0))
    lif = lif_multi_step(xs, None, LIFParameters(beta=0.8, threshold=1.0), backend="torch")
    torch.testing.assert_close(no_adapt.spikes, lif.spikes)
    torch.testing.assert_close(no_adapt.membrane, lif.membrane)
    adapt = alif_multi_step(xs, None, ALIFParameters(beta=0.8, threshold=1.0, adaptation=0.5))
    assert adapt.spikes.sum() < lif.spikes.sum()


def test_alif_multi_step_equals_stepping_and_module() -> None:
    x = _x()
    adaptation = torch.full((5,), 0.3, dtype=torch.float64)

    def stepped(x, adaptation):
        p = ALIFParameters(beta=0.85, adaptation=adaptation, rho=0.9)
        s, m, _ = _stack_steps(lambda xt, st: alif_step(xt, st, p), x, None)
        return s, m

    def multi(x, adaptation):
        out = alif_multi_step(x, None, ALIFParameters(beta=0.85, adaptation=adaptation, rho=0.9))
        return out.spikes, out.membrane

    for a, b in zip(_grad(multi, x, adaptation), _grad(stepped, x, adaptation), strict=True):
        torch.testing.assert_close(a, b)
    module = ALIF(5, beta=0.85, adaptation=0.3, rho=0.9, learn_adaptation=True).double()
    spikes, state = module(x)
    assert isinstance(state, ALIFState)
    torch.testing.assert_close(spikes, _grad(stepped, x, adaptation)[0])
    spikes.sum().backward()
    assert module.adaptation.grad is not None and module.adaptation.grad.abs().sum() > 0


def test_li_step_multi_step_and_module() -> None:
    x = _x()
    beta = torch.linspace(0.2, 0.9, 5, dtype=torch.float64)

    def stepped(x, beta):
        v, _, _ = _stack_steps(lambda xt, st: li_step(xt, st, LIParameters(beta)), x, None)
        return v, v

    def multi(x, beta):
        out = li_multi_step(x, LIState(torch.zeros(3, 5, dtype=torch.float64)), LIParameters(beta))
        return out.spikes, out.membrane

    for a, b in zip(_grad(multi, x, beta), _grad(stepped, x, beta), strict=True):
        torch.testing.assert_close(a, b)
    li = LI(5, beta=beta, step_mode="single").double()
    v, state = li(x[0])
    torch.testing.assert_close(v, x[0])
    v, state = li(x[1], state)
    torch.testing.assert_close(v, beta * x[0] + x[1])


def test_synaptic_module_single_equals_multi() -> None:
    x = _x().float()
    multi = SynapticLIF(5, alpha=0.6, beta=0.8, learn_alpha=True)
    single = SynapticLIF(5, alpha=0.6, beta=0.8, step_mode="single")
    s_multi, st_multi = multi(x)
    s_single, v_single, st_single = _stack_steps(single, x, None)
    torch.testing.assert_close(s_multi, s_single)
    torch.testing.assert_close(st_multi.v, v_single[-1])
    torch.testing.assert_close(st_multi.i, st_single.i)
    s_multi.sum().backward()
    assert multi.alpha.grad is not None


def test_conductance_lif_behaviour() -> None:
    p = ConductanceLIFParameters.diehl_cook_excitatory(dt=0.5)
    quiet = conductance_lif_multi_step(torch.zeros(50, 2, 3, dtype=torch.float64), None, p)
    torch.testing.assert_close(quiet.membrane, torch.full_like(quiet.membrane, p.v_rest))
    assert quiet.spikes.sum() == 0
    drive = torch.full((400, 2, 3), 0.5, dtype=torch.float64)  # steady g_e ~ 1.3: v -> ~-28 mV
    out = conductance_lif_multi_step(drive, None, p)
    counts = out.spikes.sum(0)
    assert bool((counts > 0).all())
    # refractory: no two spikes closer than refractory / dt steps
    times = out.spikes[:, 0, 0].nonzero().flatten()
    assert int(times.diff().min()) > p.refractory / p.dt
    # each spike raised theta by theta_plus (decay over 200 ms with tau 1e7 ms is negligible)
    torch.testing.assert_close(out.state.theta, counts * p.theta_plus, rtol=1e-4, atol=1e-6)
    # a raised threshold lowers the rate
    start = ConductanceLIFState.rest(drive[0], p, theta=torch.tensor(5.0, dtype=torch.float64))
    slower = conductance_lif_multi_step(drive, start, p)
    assert bool((slower.spikes.sum(0) < counts).all())
    # inhibition lowers the rate too
    inhibited = conductance_lif_multi_step(drive, None, p, x_i=torch.full_like(drive, 0.5))
    assert bool((inhibited.spikes.sum(0) < counts).all())


def test_conductance_step_equals_multi_step_and_module() -> None:
    p = ConductanceLIFParameters.diehl_cook_inhibitory(dt=0.5)
    g = torch.Generator().manual_seed(0)
    x_e = (torch.rand(60, 2, 4, generator=g, dtype=torch.float64) < 0.2).double() * 2.0
    x_i = (torch.rand(60, 2, 4, generator=g, dtype=torch.float64) < 0.1).double()
    state, spikes = None, []
    for t in range(60):
        s, state = conductance_lif_step(x_e[t], state, p, x_i=x_i[t])
        spikes.append(s)
    out = conductance_lif_multi_step(x_e, None, p, x_i=x_i)
    assert out.spikes.sum() > 0
    torch.testing.assert_close(out.spikes, torch.stack(spikes))
    assert state is not None
    for a, b in zip(out.state, state, strict=True):
        torch.testing.assert_close(a, b)
    module = ConductanceLIF(p)
    torch.testing.assert_close(module.multi_step(x_e, None, x_i=x_i).spikes, out.spikes)


def test_family_bad_inputs() -> None:
    x = _x().float()
    with pytest.raises(InputError, match="finite"):
        ConductanceLIFParameters(tau_mem=float("nan")).validate()
    with pytest.raises(InputError, match="dt"):
        ConductanceLIF(ConductanceLIFParameters(dt=2.0))
    with pytest.raises(InputError, match="batch-major"):
        SynapticLIF()(x, SynapticState(torch.zeros(15, 5), torch.zeros(15, 5)))
    with pytest.raises(InputError, match="SynapticState"):
        SynapticLIF()(x, (torch.zeros(3, 5), torch.zeros(3, 5)))
    with debug_checks(), pytest.raises(InputError, match="non-finite"):
        ALIF()(x.clone().fill_(float("inf")))
    with pytest.raises(InputError, match="ALIF adaptation"):
        alif_step(x[0], None, ALIFParameters(adaptation=float("nan")))
    with pytest.raises(InputError, match="alpha"):
        synaptic_step(x[0], None, SynapticParameters(alpha=torch.ones(7)))
    with pytest.raises(InputError, match="x_i"):
        conductance_lif_multi_step(x, None, ConductanceLIFParameters(), x_i=torch.zeros(2, 2))
