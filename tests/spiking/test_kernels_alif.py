"""The ``alif_scan`` kernels (loop, torch.compile, Triton via the interpreter) against the torch
reference (the autograd step loop), gradients of every argument included."""

from __future__ import annotations

import itertools

import pytest
import torch

from neurosim.backend import kernels
from neurosim.functional import ALIFParameters, ALIFState, alif_multi_step, alif_step
from neurosim.functional.lif import RESETS

NAMES = ("spikes", "v", "a", "dx", "dv0", "da0", "dbeta", "dtheta", "drho", "dkappa")


def _args(dtype: torch.dtype = torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    args, _ = kernels.operation("alif_scan").example(torch.device("cpu"), dtype, g)
    return list(args)


def _run(backend: str, args, **options):
    leaves = [a.detach().clone().requires_grad_(True) for a in args]
    outs = kernels.call("alif_scan", *leaves, backend=backend, **options)
    g = torch.Generator().manual_seed(4)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype)).sum()
               for o in outs)  # fmt: skip
    loss.backward()
    return [o.detach() for o in outs] + [leaf.grad for leaf in leaves]


OPTIONS = [
    dict(reset=r, detach_reset=d, surrogate=s, slope=k)
    for r, d, (s, k) in itertools.product(
        RESETS, (False, True), (("arctan", 2.0), ("sigmoid", 4.0), ("fast_sigmoid", 8.0))
    )
]


@pytest.mark.parametrize("backend", ["loop", "triton"])
def test_alif_kernel_matches_reference(backend: str) -> None:
    args = _args()
    for options in OPTIONS:
        want = _run("torch", args, **options)
        got = _run(backend, args, **options)
        assert 0.05 < float(want[0].mean()) < 0.95
        for name, a, b in zip(NAMES, got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=f"{options}: {name}")


def test_alif_compile_matches_reference() -> None:
    args = _args(torch.float32)
    want = _run("torch", args, reset="subtract")
    got = _run("compile", args, reset="subtract")
    for name, a, b in zip(NAMES, got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("backend", ["torch", "loop", "triton"])
def test_alif_multi_step_equals_stepping(backend: str) -> None:
    x, v0, a0, beta, theta, rho, kappa = _args()
    p = ALIFParameters(beta=beta, threshold=theta, rho=rho, adaptation=kappa)
    state, spikes = ALIFState(v0, a0), []
    for t in range(x.shape[0]):
        s, state = alif_step(x[t], state, p)
        spikes.append(s)
    out = alif_multi_step(x, ALIFState(v0, a0), p, backend=backend)
    torch.testing.assert_close(out.spikes, torch.stack(spikes))
    torch.testing.assert_close(out.state.v, state.v)
    torch.testing.assert_close(out.state.a, state.a)


@pytest.mark.gpu
def test_alif_cuda_triton_matches_reference() -> None:
    args = [a.cuda() for a in _args(torch.float32)]
    want = _run("torch", args, reset="subtract")
    got = _run("triton", args, reset="subtract")
    same = (got[0] == want[0]).all(0)  # a threshold tie may flip under FMA; compare the rest
    assert float(same.float().mean()) > 0.9
    for name, a, b in zip(NAMES[1:6], got[1:6], want[1:6], strict=True):
        a, b = (a[..., same], b[..., same]) if a.dim() == 3 else (a[same], b[same])
        assert float((a - b).abs().max()) <= 1e-3 * max(1.0, float(b.abs().max())), name
