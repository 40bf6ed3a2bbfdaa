"""Every ``lif_scan`` backend (the torch reference, the hand-written-backward loop, numba,
torch.compile, Triton via the interpreter) against an independent plain loop written in
``tests/reference_neurons.py`` from the equations, gradients included; surrogate gradient
functions; backend selection."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from neurosim.backend import InputError, kernels
from neurosim.functional.surrogate import SURROGATES, Surrogate, spike, surrogate_derivative
from tests.reference_neurons import lif as reference_lif

RESET_NAMES = ("subtract", "zero", "none")
CPU_BACKENDS = ("torch", "loop", "numba", "triton")


def _args(shape=(3, 5), steps: int = 19, dtype=torch.float64, param_shape=None, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    param_shape = param_shape or shape[-1:]
    x = torch.randn(steps, *shape, generator=g, dtype=torch.float64) * 0.8 + 0.35
    x[::5] += 1.6  # some steps drive the membrane past twice the threshold (pending resets)
    v0 = torch.rand(*shape, generator=g, dtype=torch.float64) * 1.5
    beta = torch.rand(*param_shape, generator=g, dtype=torch.float64) * 0.5 + 0.45
    theta = torch.rand(*param_shape, generator=g, dtype=torch.float64) * 0.5 + 0.75
    return [t.to(dtype) for t in (x, v0, beta, theta)]


def _run(backend: str, args, **options):
    """Outputs and gradients of a fixed random loss; ``backend="independent"`` is the plain
    loop of ``tests/reference_neurons.py``."""
    leaves = [a.detach().clone().requires_grad_(True) for a in args]
    if backend == "independent":
        spikes, mem = reference_lif(*leaves, **options)
    else:
        spikes, mem = kernels.call("lif_scan", *leaves, backend=backend, **options)
    g = torch.Generator().manual_seed(7)
    ws = torch.randn(spikes.shape, generator=g, dtype=torch.float64).to(spikes.dtype)
    wv = torch.randn(mem.shape, generator=g, dtype=torch.float64).to(mem.dtype)
    ((spikes * ws).sum() + (mem * wv).sum()).backward()
    return [spikes.detach(), mem.detach()] + [leaf.grad for leaf in leaves]


NAMES = ("spikes", "membrane", "grad x", "grad v0", "grad beta", "grad threshold")
ALL_OPTIONS = [
    dict(reset=r, delayed_reset=d, detach_reset=dt, pending_reset=p, surrogate=s, slope=k)
    for r, d, dt, p, (s, k) in itertools.product(
        RESET_NAMES,
        (False, True),
        (False, True),
        (False, True),
        (("arctan", 2.0), ("fast_sigmoid", 10.0), ("sigmoid", 4.0), ("straight_through", 1.0)),
    )
    if not (d and dt) and not (p and (d or r != "subtract"))
]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_backend_matches_independent_loop_for_every_option(backend: str) -> None:
    args = _args()
    pending_mattered = 0
    for options in ALL_OPTIONS:
        want = _run("independent", args, **options)
        got = _run(backend, args, **options)
        assert 0.05 < float(want[0].mean()) < 0.95
        for name, a, b in zip(NAMES, got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=f"{options}: {name}")
        if options["pending_reset"]:
            plain = _run("independent", args, **{**options, "pending_reset": False})
            pending_mattered += int(not torch.equal(plain[0], want[0]))
    assert pending_mattered > 0  # the inputs reach the regime where the pending reset matters


def test_numba_blocks_cover_neurons_across_block_boundaries() -> None:
    """The numba kernels walk time per block of ``BLOCK`` neurons (forward and backward): with
    1,203 neurons there are three blocks, the last one partial, and every neuron must match."""
    from neurosim.functional._numba_lif import BLOCK

    args = _args(shape=(3, 401), steps=7)
    assert args[0][0].numel() > 2 * BLOCK and args[0][0].numel() % BLOCK
    for options in ALL_OPTIONS[::5]:
        want = _run("independent", args, **options)
        got = _run("numba", args, **options)
        for name, a, b in zip(NAMES, got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=f"{options}: {name}")


def test_compile_matches_independent_loop() -> None:
    """torch.compile costs seconds per configuration on the CPU: three configurations, fp32."""
    args = _args(dtype=torch.float32)
    for options in (
        dict(reset="subtract", delayed_reset=False, pending_reset=True),
        dict(reset="zero", delayed_reset=True, surrogate="sigmoid", slope=4.0),
        dict(reset="none", detach_reset=True, surrogate="fast_sigmoid", slope=10.0),
    ):
        want = _run("independent", args, **options)
        got = _run("compile", args, **options)
        for name, a, b in zip(NAMES, got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=f"{options}: {name}")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_conv_shaped_input_with_per_channel_parameters(backend: str) -> None:
    """``[T, B, C, H, W]`` with ``[C, 1, 1]`` parameters; 2*4*7*11 = 616 neurons > one block."""
    args = _args(shape=(2, 4, 7, 11), steps=6, param_shape=(4, 1, 1))
    want = _run("independent", args, reset="subtract", delayed_reset=True)
    got = _run(backend, args, reset="subtract", delayed_reset=True)
    for name, a, b in zip(NAMES, got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=name)
    assert got[4].shape == (4, 1, 1)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_scalar_parameters_get_scalar_gradients(backend: str) -> None:
    x, v0, _, _ = _args()
    beta, theta = torch.tensor(0.8, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    want = _run("independent", [x, v0, beta, theta])
    got = _run(backend, [x, v0, beta, theta])
    assert got[4].shape == () and got[5].shape == ()
    torch.testing.assert_close(got[4], want[4])
    torch.testing.assert_close(got[5], want[5])


def test_fp32_spikes_and_membranes_are_bitwise_the_reference() -> None:
    """The fast CPU paths do the reference's floating-point operations in the same order (no
    fused multiply-add), so fp32 spikes and membranes are bitwise equal on a large input."""
    x, v0, beta, theta = _args(shape=(16, 256), steps=60, dtype=torch.float32)
    for options in (dict(delayed_reset=True), dict(pending_reset=True), dict(reset="zero")):
        want = reference_lif(x, v0, beta, theta, **options)
        for backend in ("loop", "numba"):
            got = kernels.call("lif_scan", x, v0, beta, theta, backend=backend, **options)
            assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), backend


def test_bf16_storage_matches_fp32_reference() -> None:
    """bf16 storage (fp32 arithmetic): spikes equal the fp32 reference on the same bf16-rounded
    input except for rare threshold ties; membranes within bf16 resolution; the loop, numba and
    the Triton interpreter agree with each other."""
    x, v0, beta, theta = _args(shape=(8, 64), steps=40, dtype=torch.float32)
    x = x.bfloat16().float()  # the same input values in both runs
    v0 = v0.bfloat16().float()
    ref_s, ref_v = reference_lif(x, v0, beta, theta)
    runs = {
        b: _run(b, [x.bfloat16(), v0.bfloat16(), beta, theta]) for b in ("loop", "numba", "triton")
    }
    for backend, got in runs.items():
        s, v = got[0], got[1]
        assert s.dtype == torch.bfloat16 and v.dtype == torch.bfloat16
        assert float((s.float() == ref_s).float().mean()) > 0.99, backend
        close = (v.float() - ref_v).abs() <= 0.02 * ref_v.abs().clamp(min=1.0)
        assert float(close.float().mean()) > 0.98, backend
    assert torch.equal(runs["loop"][0], runs["numba"][0])
    for name, a, b in zip(NAMES[1:], runs["numba"][1:], runs["triton"][1:], strict=True):
        error = float((a.float() - b.float()).abs().max())
        assert error <= 0.03 * float(b.float().abs().max()), name


def test_no_grad_path_matches() -> None:
    args = _args()
    want = reference_lif(*args)
    with torch.no_grad():
        for backend in CPU_BACKENDS:
            got = kernels.call("lif_scan", *args, backend=backend)
            torch.testing.assert_close(got[0], want[0].detach())
            torch.testing.assert_close(got[1], want[1].detach())


def test_auto_backend_on_cpu_is_numba_and_says_so() -> None:
    picked = kernels.resolve("lif_scan", "auto", torch.device("cpu"))
    assert picked.backend == "numba"
    assert "lif_scan" in picked.reason
    assert kernels.backends("lif_scan")[0] == "triton"


# ---------------------------------------------------------------------------------- surrogates


@pytest.mark.parametrize("name", SURROGATES)
def test_spike_forward_is_strict_step_and_backward_is_the_surrogate(name: str) -> None:
    surrogate = Surrogate(name, 3.0) if name != "straight_through" else Surrogate.straight_through()
    u = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    s = spike(u, surrogate)
    assert s.tolist() == [1.0 if float(v) > 0 else 0.0 for v in u.detach()]
    g = torch.randn(41, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    s.backward(g)
    torch.testing.assert_close(u.grad, g * surrogate.derivative(u.detach()))


def test_surrogate_formulas() -> None:
    u = torch.tensor([-0.3, 0.0, 0.2], dtype=torch.float64)
    k = 4.0
    arctan = surrogate_derivative(u, "arctan", k)
    torch.testing.assert_close(arctan, k / 2 / (1 + (math.pi / 2 * k * u) ** 2))
    # arctan surrogate integrates to 1 (it is the derivative of atan(pi/2 k u) / pi + 1/2)
    grid = torch.linspace(-200, 200, 400001, dtype=torch.float64)
    area = torch.trapezoid(surrogate_derivative(grid, "arctan", k), grid)
    assert abs(float(area) - 1.0) < 1e-3
    sig = torch.sigmoid(k * u)
    torch.testing.assert_close(surrogate_derivative(u, "sigmoid", k), k * sig * (1 - sig))
    torch.testing.assert_close(
        surrogate_derivative(u, "fast_sigmoid", k), 1 / (k * u.abs() + 1) ** 2
    )
    assert surrogate_derivative(u, "straight_through", k).tolist() == [1.0, 1.0, 1.0]
    # a steeper slope concentrates the gradient at the threshold
    assert surrogate_derivative(u[:1], "arctan", 10.0) < surrogate_derivative(u[:1], "arctan", 1.0)


def test_surrogate_bad_values() -> None:
    with pytest.raises(InputError, match="unknown"):
        Surrogate("erf", 1.0).validate()
    with pytest.raises(InputError, match="positive"):
        Surrogate.arctan(-1.0).validate()
    with pytest.raises(InputError, match="finite"):
        Surrogate.sigmoid(float("nan")).validate()


@pytest.mark.gpu
def test_cuda_triton_and_compile_match_reference() -> None:
    """On CUDA: Triton and torch.compile against the reference (fp32, gradients) and bf16
    spikes against fp32 on the same rounded input."""
    device = torch.device("cuda")
    args = [a.to(device) for a in _args(shape=(16, 300), steps=50, dtype=torch.float32)]
    for options in (dict(reset="subtract"), dict(reset="zero", delayed_reset=True)):
        want = _run("independent", args, **options)
        for backend in ("triton", "compile"):
            got = _run(backend, args, **options)
            # FMA contraction on the GPU may flip a spike that sits exactly at threshold, after
            # which that neuron's trajectory differs: compare the neurons whose spike trains agree
            same = (got[0] == want[0]).all(0)  # [B, N]; neurons do not interact in the scan
            assert float(same.float().mean()) > 0.99
            for name, a, b in zip(NAMES[1:4], got[1:4], want[1:4], strict=True):
                a, b = (
                    a[..., same] if a.dim() == 3 else a[same],
                    b[..., same] if b.dim() == 3 else b[same],
                )
                error = float((a - b).abs().max())
                assert error <= 1e-3 * max(1.0, float(b.abs().max())), (backend, options, name)
            if bool(same.all()):
                for name, a, b in zip(NAMES[4:], got[4:], want[4:], strict=True):
                    error = float((a - b).abs().max())
                    assert error <= 1e-3 * max(1.0, float(b.abs().max())), (backend, options, name)
    x, v0, beta, theta = args
    x = x.bfloat16().float()
    ref_s, _ = kernels.call("lif_scan", x, v0, beta, theta, backend="torch")
    s, _ = kernels.call("lif_scan", x.bfloat16(), v0.bfloat16(), beta, theta, backend="triton")
    assert float((s.float() == ref_s).float().mean()) > 0.99
