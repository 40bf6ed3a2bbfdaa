"""LIF: single step and multi-step (every backend) against the independent plain loop of
``tests/reference_neurons.py`` (gradients included), module vs functional."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from neurosim.backend import InputError, debug_checks
from neurosim.functional import LIFParameters, LIFState, Surrogate, lif_multi_step, lif_step
from neurosim.functional.lif import RESETS
from neurosim.neurons import LIF, MultiStep, SpikingSequential
from tests.reference_neurons import lif as reference_lif


def _inputs(seed: int = 0, steps: int = 17, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(steps, 3, 6, generator=g, dtype=torch.float64) * 0.8 + 0.4).to(dtype)
    v0 = (torch.rand(3, 6, generator=g, dtype=torch.float64) * 1.5).to(dtype)
    beta = (torch.rand(6, generator=g, dtype=torch.float64) * 0.5 + 0.45).to(dtype)
    theta = (torch.rand(6, generator=g, dtype=torch.float64) * 0.5 + 0.75).to(dtype)
    return x, v0, beta, theta


def _grads(fn, tensors):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    spikes, mem = fn(*leaves)
    g = torch.Generator().manual_seed(99)
    ws = torch.randn(spikes.shape, generator=g, dtype=spikes.dtype)
    wv = torch.randn(mem.shape, generator=g, dtype=mem.dtype)
    ((spikes * ws).sum() + (mem * wv).sum()).backward()
    return [spikes.detach(), mem.detach()] + [leaf.grad for leaf in leaves]


def _stepwise(p_kwargs):
    def run(x, v0, beta, theta):
        p = LIFParameters(beta=beta, threshold=theta, **p_kwargs)
        state = LIFState(v0)
        spikes, mems = [], []
        for t in range(x.shape[0]):
            s, state = lif_step(x[t], state, p)
            spikes.append(s)
            mems.append(state.v)
        return torch.stack(spikes), torch.stack(mems)

    return run


def _multi(p_kwargs, backend):
    def run(x, v0, beta, theta):
        p = LIFParameters(beta=beta, threshold=theta, **p_kwargs)
        out = lif_multi_step(x, LIFState(v0), p, backend=backend)
        assert torch.equal(out.state.v, out.membrane[-1])
        return out.spikes, out.membrane

    return run


CASES = [
    dict(reset=r, delayed_reset=d, detach_reset=dt, surrogate=s)
    for r, d, dt, s in itertools.product(
        RESETS,
        (False, True),
        (False, True),
        (
            Surrogate.arctan(2.0),
            Surrogate.fast_sigmoid(5.0),
            Surrogate.sigmoid(4.0),
            Surrogate.straight_through(),
        ),
    )
    if not (d and dt)  # the delayed form always detaches; detach_reset changes nothing there
]


def _independent(p_kwargs):
    options = {k: v for k, v in p_kwargs.items() if k != "surrogate"}
    surrogate = p_kwargs["surrogate"]

    def run(x, v0, beta, theta):
        return reference_lif(x, v0, beta, theta, surrogate=surrogate.name,
                             slope=surrogate.slope, **options)  # fmt: skip

    return run


@pytest.mark.parametrize("backend", ["stepped", "torch", "loop", "numba", "triton"])
def test_step_and_multi_step_match_the_independent_loop(backend: str) -> None:
    tensors = _inputs()
    fired = 0.0
    for case in CASES:
        want = _grads(_independent(case), tensors)
        fn = _stepwise(case) if backend == "stepped" else _multi(case, backend)
        got = _grads(fn, tensors)
        fired += float(want[0].mean())
        for name, a, b in zip(
            ("spikes", "v", "dx", "dv0", "dbeta", "dtheta"), got, want, strict=True
        ):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=f"{case} {name}")
    assert 0.05 < fired / len(CASES) < 0.95  # the test inputs do spike, and not always


def test_worked_example_from_docstring() -> None:
    x = torch.full((3, 1), 0.6, dtype=torch.float64)
    out = lif_multi_step(x, None, LIFParameters(beta=0.5, threshold=1.0))
    assert out.spikes.flatten().tolist() == [0.0, 0.0, 1.0]
    torch.testing.assert_close(
        out.membrane.flatten(), torch.tensor([0.6, 0.9, 0.05], dtype=torch.float64)
    )


def test_immediate_reset_keeps_membrane_below_threshold() -> None:
    x, _, beta, theta = _inputs(steps=40)
    for reset in ("subtract", "zero"):
        # inputs below 0.3 < theta keep h below 2 theta, so one subtraction suffices
        small = x.abs().clamp(max=0.3)
        out = lif_multi_step(small, None, LIFParameters(beta=beta, threshold=theta, reset=reset))
        assert out.spikes.sum() > 0
        assert bool((out.membrane <= theta).all())


@pytest.mark.parametrize("step_mode", ["single", "multi"])
def test_module_matches_functional(step_mode: str) -> None:
    x, v0, beta, theta = _inputs(dtype=torch.float32)
    lif = LIF(
        6, beta=beta, threshold=theta, learn_beta=True, learn_threshold=True, step_mode=step_mode
    )
    assert isinstance(lif.beta, nn.Parameter) and isinstance(lif.threshold, nn.Parameter)
    p = LIFParameters(beta=beta, threshold=theta)
    want = lif_multi_step(x, LIFState(v0), p, backend="torch")
    if step_mode == "multi":
        spikes, state = lif(x, LIFState(v0))
    else:
        state, outs = LIFState(v0), []
        for t in range(x.shape[0]):
            s, state = lif(x[t], state)
            outs.append(s)
        spikes = torch.stack(outs)
    torch.testing.assert_close(spikes, want.spikes)
    torch.testing.assert_close(state.v, want.state.v)
    (spikes.sum() + state.v.sum()).backward()
    assert lif.beta.grad is not None and lif.threshold.grad is not None
    assert lif.beta.grad.shape == (6,) and bool(lif.beta.grad.abs().sum() > 0)


def test_batch_major_layout_gives_same_result() -> None:
    x = _inputs(dtype=torch.float32)[0]
    tm = LIF(beta=0.8, threshold=0.9)
    bm = LIF(beta=0.8, threshold=0.9, time_major=False)
    s_tm, st_tm = tm(x)
    s_bm, st_bm = bm(x.transpose(0, 1))
    torch.testing.assert_close(s_bm.transpose(0, 1), s_tm)
    torch.testing.assert_close(st_bm.v, st_tm.v)


def test_sequential_equals_manual_composition() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(5, 7)
    lif = LIF(7, beta=0.85, threshold=0.5)
    net = SpikingSequential(lin, lif)
    x = torch.rand(9, 4, 5)
    y, states = net(x)
    want = lif.multi_step(torch.stack([lin(x[t]) for t in range(9)]))
    torch.testing.assert_close(y, want.spikes)
    torch.testing.assert_close(states[0].v, want.state.v)
    single = SpikingSequential(lin, lif, step_mode="single")
    st, outs = [None], []
    for t in range(9):
        o, st = single(x[t], st)
        outs.append(o)
    torch.testing.assert_close(torch.stack(outs), y)
    torch.testing.assert_close(MultiStep(lin)(x), torch.stack([lin(x[t]) for t in range(9)]))


def test_bad_inputs_are_clear_errors() -> None:
    x = _inputs(dtype=torch.float32)[0]
    lif = LIF()
    with debug_checks(), pytest.raises(InputError, match="non-finite"):
        lif(x.clone().fill_(float("nan")))
    with pytest.raises(InputError, match="pending_reset applies"):
        LIF(reset="zero", pending_reset=True)
    with pytest.raises(InputError, match="batch-major"):
        lif(x, LIFState(torch.zeros(x.shape[0], *x.shape[2:])))
    with pytest.raises(InputError, match="one time step"):
        lif(x, LIFState(torch.zeros(2, 2)))
    with pytest.raises(InputError, match="at least 2 dimensions"):
        lif(torch.zeros(5))
    with pytest.raises(InputError, match="finite"):
        LIF(beta=float("nan"))
    with pytest.raises(InputError, match="reset must be one of"):
        LIF(reset="hard")
    with pytest.raises(InputError, match="surrogate"):
        LIF(surrogate="atan")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="threshold"):
        lif_step(x[0], None, LIFParameters(threshold=torch.ones(5)))
    lif_learn = LIF(6, learn_threshold=True)
    with torch.no_grad():
        lif_learn.threshold[2] = float("inf")
    with debug_checks(), pytest.raises(InputError, match="threshold"):
        lif_learn(x)
    with pytest.raises(InputError, match="step_mode"):
        LIF(step_mode="multistep")
    with pytest.raises(InputError, match="neuron shape"):
        LIF(6, beta=torch.full((5,), 0.9))
    with pytest.raises(InputError, match="does not broadcast"):
        LIF(7)(x)  # 7 neurons' parameters, 6 input features


def test_conv_layers_run_on_all_steps_at_once() -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 4, 3, padding=1)
    lif = LIF((4, 1, 1), beta=0.8, threshold=0.3, learn_threshold=True)
    net = SpikingSequential(conv, lif, nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
    x = torch.rand(6, 2, 2, 5, 5)  # [T, B, C, H, W]
    y, states = net(x)
    assert y.shape == (6, 2, 3) and states[0].v.shape == (2, 4, 5, 5)
    currents = torch.stack([conv(x[t]) for t in range(6)])
    torch.testing.assert_close(MultiStep(conv)(x), currents)
    torch.testing.assert_close(net.layers[1].multi_step(currents).state.v, states[0].v)
    y.sum().backward()
    assert lif.threshold.grad is not None and lif.threshold.grad.shape == (4, 1, 1)
    with pytest.raises(InputError, match="stateless"):
        MultiStep(lif)
    with pytest.raises(InputError, match="1 neuron states"):
        net(x, [None, None])
