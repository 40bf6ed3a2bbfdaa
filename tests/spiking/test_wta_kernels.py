"""The numba kernels of a Diehl & Cook presentation against the torch reference, and the
CPU Poisson sampler against the binomial and geometric laws."""

from __future__ import annotations

import math

import pytest
import torch

from neurosim.backend import kernels
from neurosim.functional.conductance import ConductanceLIFParameters
from neurosim.functional.plasticity import STDPParameters, stdp_step, stdp_window
from neurosim.functional.wta import WTAParameters
from neurosim.plasticity import DiehlCookEnsemble, poisson_spikes

WTA = WTAParameters(
    exc=ConductanceLIFParameters.diehl_cook_excitatory(dt=1.0, theta_plus=0.5),
    inh=ConductanceLIFParameters.diehl_cook_inhibitory(dt=1.0),
    integrator="exponential",
)


@pytest.mark.parametrize("integrator", ["exponential", "euler"])
@pytest.mark.parametrize("shared", [True, False])
def test_wta_present_numba_equals_reference(integrator: str, shared: bool) -> None:
    g = torch.Generator().manual_seed(3)
    steps, batch, modules, n_in, n = 80, 3, 4, 30, 9
    sources = 1 if shared else modules
    pre = torch.rand(steps, batch, sources, n_in, generator=g) < 0.25
    # quarter-integer weights: every current is an exact sum, in any order
    weight = torch.randint(0, 9, (modules, n_in, n), generator=g).double() / 4.0
    theta = torch.rand(batch, modules, n, generator=g, dtype=torch.float64) * 3.0
    p = WTA._replace(integrator=integrator)
    for counts in (False, True):
        ref = kernels.call("wta_present", pre, weight, theta, p, counts, backend="torch")
        new = kernels.call("wta_present", pre, weight, theta, p, counts, backend="numba")
        assert float(ref[0].sum()) > 20  # the circuits fire
        torch.testing.assert_close(new[0], ref[0], rtol=0, atol=0)
        torch.testing.assert_close(new[1], ref[1], rtol=1e-12, atol=1e-12)
    # theta adapts by theta_plus per spike (tau_theta = 1e7 ms: decay below 1e-5 here)
    spikes, after = kernels.call("wta_present", pre, weight, theta, p, backend="numba")
    torch.testing.assert_close(after, theta + 0.5 * spikes.sum(0), rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    "params",
    [
        STDPParameters(dt=1.0),
        STDPParameters(dt=1.0, trace="add"),
        STDPParameters(dt=0.5, triplet=False, nu_pre=3e-3),
    ],
)
def test_stdp_window_numba_equals_the_summed_steps(params: STDPParameters) -> None:
    g = torch.Generator().manual_seed(5)
    pre = (torch.rand(60, 2, 13, generator=g) < 0.2).double()
    post = (torch.rand(60, 2, 7, generator=g) < 0.1).double()
    total, state = torch.zeros(2, 13, 7, dtype=torch.float64), None
    for t in range(60):  # the one-step rule, summed by hand
        dw, state = stdp_step(pre[t], post[t], state, params)
        total += dw
    assert state is not None
    for backend in ("torch", "numba"):
        window, end = stdp_window(pre, post, None, params, backend=backend)
        torch.testing.assert_close(window, total, rtol=1e-12, atol=1e-15)
        for a, b in zip(end, state, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


def test_ensemble_backends_learn_and_respond_alike() -> None:
    images = torch.rand(6, 24, generator=torch.Generator().manual_seed(0))
    stdp = STDPParameters.diehl_cook(dt=1.0, triplet=False, nu_post=0.1)
    out = {}
    for backend in ("torch", "numba"):
        g = torch.Generator().manual_seed(1)
        net = DiehlCookEnsemble(
            3, 24, 8, wta=WTA, stdp=stdp, weight_sum=6.0, presentation_ms=60.0,
            max_rate_hz=200.0, generator=g, dtype=torch.float64, backend=backend,
        )  # fmt: skip
        counts = [net.learn(images[k : k + 3], generator=g) for k in (0, 3, 0, 3)]
        out[backend] = (
            torch.stack(counts),
            net.weight,
            net.theta,
            net.respond(images, generator=g),
        )
    assert float(out["torch"][0].sum()) > 10
    for a, b in zip(out["numba"], out["torch"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_cpu_poisson_trains_follow_the_bernoulli_law_and_are_reproducible() -> None:
    intensity = torch.tensor([0.0, 0.05, 0.3, 1.0]).repeat(500)  # 2000 inputs
    steps, rate = 400, 250.0  # p = intensity / 4 per 1 ms step
    g = torch.Generator().manual_seed(11)
    trains = poisson_spikes(intensity, steps, max_rate_hz=rate, dt_ms=1.0, generator=g)
    assert trains.shape == (steps, 2000) and trains.dtype == torch.float32
    again = poisson_spikes(
        intensity, steps, max_rate_hz=rate, dt_ms=1.0, generator=torch.Generator().manual_seed(11)
    )
    assert torch.equal(trains, again)
    for k, inten in enumerate((0.0, 0.05, 0.3, 1.0)):
        p = inten * rate / 1000.0
        x = trains[:, k::4]  # [400, 500] trains of probability p
        n = x.numel()
        mean = float(x.mean())
        bound = 5.0 * math.sqrt(max(p * (1 - p), 1e-12) / n)  # 5 sigma of the binomial mean
        assert abs(mean - p) <= bound + 1e-12, (inten, mean, p)
        if 0 < p < 1:
            # independence in time: P(spike at t+1 | spike at t) = p
            both = float((x[1:] * x[:-1]).sum()) / float(x[:-1].sum())
            assert abs(both - p) < 5.0 * math.sqrt(p * (1 - p) / float(x[:-1].sum()))
            # one train's spike count over 400 steps has the binomial variance
            var = float(x.sum(0).var())
            assert abs(var / (steps * p * (1 - p)) - 1.0) < 0.25


def _quarter_net(device: str = "cpu") -> DiehlCookEnsemble:
    g = torch.Generator().manual_seed(4)
    net = DiehlCookEnsemble(
        3, 20, 6, wta=WTA, weight_sum=6.0, presentation_ms=90.0, max_rate_hz=300.0,
        generator=g, dtype=torch.float64,
    )  # fmt: skip
    # quarter-integer weights summing to 6 per neuron: exact currents in any summation order
    w = torch.zeros(3, 20, 6, dtype=torch.float64)
    w[:, :12] = 0.5
    net.weight.copy_(w[:, torch.randperm(20, generator=g)])
    return net.to(device)


def test_streaming_respond_equals_the_whole_presentation_for_regular_trains() -> None:
    net = _quarter_net()
    images = torch.rand(5, 20, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    frozen = net.wta._replace(exc=net.wta.exc._replace(theta_plus=0.0))
    whole = net.respond(
        images, generator=torch.Generator().manual_seed(9), code="regular", w_inh_exc=3.0
    )
    assert float(whole.sum()) > 10
    streamed = net._respond_streaming(
        images, net.query_weights(None), net.theta, frozen._replace(w_inh_exc=3.0), net.steps,
        300.0, "regular", torch.Generator().manual_seed(9), 2, 7, True,
    )  # fmt: skip
    torch.testing.assert_close(streamed, whole, rtol=0, atol=0)


@pytest.mark.gpu
def test_cuda_respond_equals_the_cpu_for_regular_trains() -> None:
    images = torch.rand(5, 20, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    kwargs = dict(code="regular", w_inh_exc=3.0, batch_size=4)
    cpu = _quarter_net().respond(images, generator=torch.Generator().manual_seed(9), **kwargs)
    gpu = _quarter_net("cuda").respond(
        images.cuda(), generator=torch.Generator().manual_seed(9), **kwargs
    )
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=0)
