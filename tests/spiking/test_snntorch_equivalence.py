"""Our LIF reproduces ``snntorch.Leaky`` (spikes, membrane traces and gradients).

snnTorch is stepped one step at a time with explicit ``mem``; ours runs the fused multi-step scan
(the default backend) and, separately, the single-step module, with the mapping documented in
:mod:`neurosim.neurons` (``LIFParameters.snntorch``). Inputs drive membranes past twice the
threshold at times, where snnTorch's ``reset_delay=False`` subtract reset needs
``pending_reset``.
"""

from __future__ import annotations

import itertools

import pytest
import snntorch
import torch
from snntorch import surrogate as snn_surrogate

from neurosim.functional import LIFParameters, Surrogate
from neurosim.neurons import LIF

SURROGATES = {
    "arctan": (lambda: snn_surrogate.atan(alpha=2.0), Surrogate.arctan(2.0)),
    "fast_sigmoid": (lambda: snn_surrogate.fast_sigmoid(slope=25), Surrogate.fast_sigmoid(25.0)),
    "sigmoid": (lambda: snn_surrogate.sigmoid(slope=5), Surrogate.sigmoid(5.0)),
    "straight_through": (snn_surrogate.straight_through_estimator, Surrogate.straight_through()),
}


def _input(seed: int, steps: int = 25) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # mean drive 0.35 with noise: neurons spike sometimes, occasionally twice the threshold
    return torch.randn(steps, 4, 10, generator=g) * 0.7 + 0.35


def _run_snntorch(x: torch.Tensor, beta: float, threshold: float, reset: str, delay: bool,
                  surrogate: str):  # fmt: skip
    layer = snntorch.Leaky(
        beta=beta, threshold=threshold, reset_mechanism=reset, reset_delay=delay,
        spike_grad=SURROGATES[surrogate][0](), learn_beta=True, learn_threshold=True,
    )  # fmt: skip
    x = x.clone().requires_grad_(True)
    mem = layer.init_leaky()
    spikes, mems = [], []
    for t in range(x.shape[0]):
        spk, mem = layer(x[t], mem)
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems), x, layer.beta, layer.threshold


def _run_ours(x: torch.Tensor, beta: float, threshold: float, reset: str, delay: bool,
              surrogate: str, step_mode: str):  # fmt: skip
    p = LIFParameters.snntorch(beta, threshold, reset, delay, SURROGATES[surrogate][1])
    lif = LIF.from_parameters(p, learn_beta=True, learn_threshold=True, step_mode=step_mode)
    x = x.clone().requires_grad_(True)
    if step_mode == "multi":
        out = lif.simulate(x)
        spikes, mems = out.spikes, out.membrane
    else:
        state, s_list, m_list = None, [], []
        for t in range(x.shape[0]):
            s, state = lif(x[t], state)
            s_list.append(s)
            m_list.append(state.v)
        spikes, mems = torch.stack(s_list), torch.stack(m_list)
    return spikes, mems, x, lif.beta, lif.threshold


def _loss(spikes: torch.Tensor, mems: torch.Tensor) -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    return (spikes * torch.randn(spikes.shape, generator=g)).sum() + (
        mems * torch.randn(mems.shape, generator=g)
    ).sum()


@pytest.mark.parametrize(
    ("reset", "delay"), list(itertools.product(("subtract", "zero", "none"), (True, False)))
)
@pytest.mark.parametrize("step_mode", ["multi", "single"])
def test_same_spikes_membranes_and_gradients_as_snntorch_leaky(
    reset: str, delay: bool, step_mode: str
) -> None:
    for seed, (beta, threshold) in enumerate([(0.9, 1.0), (0.6, 0.5)]):
        # membranes pass twice the threshold at times: snnTorch's reset_delay=False "subtract"
        # then skips spikes, which LIFParameters.snntorch reproduces with pending_reset=True
        x = _input(seed) * 1.5
        s_ref, m_ref, x_ref, b_ref, th_ref = _run_snntorch(
            x, beta, threshold, reset, delay, "arctan"
        )
        s, m, x_ours, b, th = _run_ours(x, beta, threshold, reset, delay, "arctan", step_mode)
        assert 0.02 < float(s_ref.detach().mean()) < 0.9  # a meaningful amount of spiking
        assert torch.equal(s, s_ref)
        torch.testing.assert_close(m, m_ref, rtol=1e-5, atol=1e-5)
        _loss(s_ref, m_ref).backward()
        _loss(s, m).backward()
        torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(b.grad, b_ref.grad, rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(th.grad, th_ref.grad, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
def test_surrogates_give_snntorch_gradients(surrogate: str) -> None:
    x = _input(7)
    s_ref, m_ref, x_ref, b_ref, th_ref = _run_snntorch(x, 0.8, 1.0, "subtract", True, surrogate)
    s, m, x_ours, b, th = _run_ours(x, 0.8, 1.0, "subtract", True, surrogate, "multi")
    assert torch.equal(s, s_ref)
    _loss(s_ref, m_ref).backward()
    _loss(s, m).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(b.grad, b_ref.grad, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(th.grad, th_ref.grad, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("reset", ["subtract", "none"])
def test_synaptic_lif_matches_snntorch_synaptic(reset: str) -> None:
    from neurosim.neurons import SynapticLIF

    x = _input(11) * 0.6
    ref = snntorch.Synaptic(alpha=0.7, beta=0.85, threshold=1.0, reset_mechanism=reset,
                            learn_alpha=True, learn_beta=True)  # fmt: skip
    ours = SynapticLIF(alpha=0.7, beta=0.85, threshold=1.0, reset=reset, delayed_reset=True,
                       learn_alpha=True, learn_beta=True)  # fmt: skip
    x_ref, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    syn, mem = ref.init_synaptic()
    spikes, mems = [], []
    for t in range(x.shape[0]):
        spk, syn, mem = ref(x_ref[t], syn, mem)
        spikes.append(spk)
        mems.append(mem)
    s_ref, m_ref = torch.stack(spikes), torch.stack(mems)
    out = ours.simulate(x_ours)
    assert float(s_ref.detach().mean()) > 0.02
    assert torch.equal(out.spikes, s_ref)
    torch.testing.assert_close(out.membrane, m_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.state.i, syn, rtol=1e-5, atol=1e-5)
    _loss(s_ref, m_ref).backward()
    _loss(out.spikes, out.membrane).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours.alpha.grad, ref.alpha.grad, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(ours.beta.grad, ref.beta.grad, rtol=1e-4, atol=1e-3)


def test_li_matches_snntorch_leaky_without_reset() -> None:
    from neurosim.neurons import LI

    x = _input(12)
    ref = snntorch.Leaky(beta=0.8, threshold=1e9, reset_mechanism="none")
    mem = ref.init_leaky()
    mems = []
    for t in range(x.shape[0]):
        _, mem = ref(x[t], mem)
        mems.append(mem)
    v, _ = LI(beta=0.8)(x)
    torch.testing.assert_close(v, torch.stack(mems))
