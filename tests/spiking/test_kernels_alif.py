"""Every ``alif_scan`` backend (the torch reference, the loop, torch.compile, Triton via the
interpreter) against the independent plain loop of ``tests/reference_neurons.py``, gradients of
every argument included; the functional step and multi-step API against the same loop."""

from __future__ import annotations

import itertools

import pytest
import torch

from neurosim.backend import kernels
from neurosim.functional import ALIFParameters, ALIFState, alif_multi_step, alif_step
from tests.reference_neurons import alif as reference_alif

NAMES = ("spikes", "v", "a", "dx", "dv0", "da0", "dbeta", "dtheta", "drho", "dkappa")


def _args(dtype: torch.dtype = torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(21, 3, 5, generator=g, dtype=torch.float64) * 0.8 + 0.5
    v0 = torch.rand(3, 5, generator=g, dtype=torch.float64)
    a0 = torch.rand(3, 5, generator=g, dtype=torch.float64)
    beta = torch.rand(5, generator=g, dtype=torch.float64) * 0.4 + 0.5
    theta = torch.rand(5, generator=g, dtype=torch.float64) * 0.5 + 0.75
    rho = torch.rand(5, generator=g, dtype=torch.float64) * 0.3 + 0.6
    kappa = torch.rand(5, generator=g, dtype=torch.float64) * 0.5
    return [t.to(dtype) for t in (x, v0, a0, beta, theta, rho, kappa)]


def _run(backend: str, args, **options):
    leaves = [a.detach().clone().requires_grad_(True) for a in args]
    if backend == "independent":
        outs = reference_alif(*leaves, **options)
    else:
        outs = kernels.call("alif_scan", *leaves, backend=backend, **options)
    g = torch.Generator().manual_seed(4)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype)).sum()
               for o in outs)  # fmt: skip
    loss.backward()
    return [o.detach() for o in outs] + [leaf.grad for leaf in leaves]


OPTIONS = [
    dict(reset=r, detach_reset=d, surrogate=s, slope=k)
    for r, d, (s, k) in itertools.product(
        ("subtract", "zero", "none"),
        (False, True),
        (("arctan", 2.0), ("sigmoid", 4.0), ("fast_sigmoid", 8.0)),
    )
]


@pytest.mark.parametrize("backend", ["torch", "loop", "triton"])
def test_alif_backend_matches_independent_loop(backend: str) -> None:
    args = _args()
    for options in OPTIONS:
        want = _run("independent", args, **options)
        got = _run(backend, args, **options)
        assert 0.05 < float(want[0].mean()) < 0.95
        for name, a, b in zip(NAMES, got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=f"{options}: {name}")


def test_alif_compile_matches_independent_loop() -> None:
    args = _args(torch.float32)
    want = _run("independent", args, reset="subtract")
    got = _run("compile", args, reset="subtract")
    for name, a, b in zip(NAMES, got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("backend", ["torch", "loop", "triton"])
def test_alif_step_and_multi_step_match_independent_loop(backend: str) -> None:
    x, v0, a0, beta, theta, rho, kappa = _args()
    want = reference_alif(x, v0, a0, beta, theta, rho, kappa)
    p = ALIFParameters(beta=beta, threshold=theta, rho=rho, adaptation=kappa)
    state, spikes = ALIFState(v0, a0), []
    for t in range(x.shape[0]):
        s, state = alif_step(x[t], state, p)
        spikes.append(s)
    torch.testing.assert_close(torch.stack(spikes), want[0])
    torch.testing.assert_close(state.v, want[1][-1])
    out = alif_multi_step(x, ALIFState(v0, a0), p, backend=backend)
    torch.testing.assert_close(out.spikes, want[0])
    torch.testing.assert_close(out.membrane, want[1])
    torch.testing.assert_close(out.state.a, want[2][-1])


@pytest.mark.gpu
def test_alif_cuda_triton_matches_independent_loop() -> None:
    args = [a.cuda() for a in _args(torch.float32)]
    want = _run("independent", args, reset="subtract")
    got = _run("triton", args, reset="subtract")
    same = (got[0] == want[0]).all(0)  # a threshold tie may flip under FMA; compare the rest
    assert float(same.float().mean()) > 0.9
    for name, a, b in zip(NAMES[1:6], got[1:6], want[1:6], strict=True):
        a, b = (a[..., same], b[..., same]) if a.dim() == 3 else (a[same], b[same])
        assert float((a - b).abs().max()) <= 1e-3 * max(1.0, float(b.abs().max())), name
