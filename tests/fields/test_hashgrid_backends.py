"""Hash grid backends against the torch reference, gradients included: Triton (on the CPU through
the interpreter, TRITON_INTERPRET=1 from conftest, small sizes), torch.compile, and tiny-cuda-nn
(GPU only; it must be importable where the gpu marker runs)."""

from __future__ import annotations

import pytest
import torch

from fields.encodings.hashgrid import HashGrid, HashGridConfig, hashgrid_encode
from neurosim.backend import BackendUnavailableError, kernels

CPU = torch.device("cpu")

TRITON_CASES = [
    HashGridConfig(1, n_levels=3, log2_hashmap_size=4, base_resolution=5, per_level_scale=2.5),
    HashGridConfig(2, n_levels=4, log2_hashmap_size=7, base_resolution=3),
    HashGridConfig(
        3,
        n_levels=3,
        log2_hashmap_size=8,
        base_resolution=2,
        per_level_scale=1.9,
        interpolation="smoothstep",
    ),
    HashGridConfig(4, n_levels=2, n_features_per_level=3, log2_hashmap_size=8, base_resolution=2),
]


def _compare(
    cfg: HashGridConfig,
    backend: str,
    device: torch.device,
    dtype: torch.dtype,
    n: int = 64,
    tol: float | None = None,
) -> None:
    gen = torch.Generator().manual_seed(cfg.in_dim)
    x = torch.rand(n, cfg.in_dim, generator=gen, dtype=torch.float64)
    x[0] = 1.0  # the top face: vertices wrap in dense levels
    params = torch.rand(cfg.n_params, generator=gen, dtype=torch.float64) * 2 - 1
    cot = torch.randn(n, cfg.out_dim, generator=gen, dtype=torch.float64).to(device, dtype)
    results = []
    for name in ("torch", backend):
        xi = x.to(device, dtype).requires_grad_(True)
        pi = params.to(device, dtype).requires_grad_(True)
        y = hashgrid_encode(xi, pi, cfg, backend=name)
        (y * cot).sum().backward()
        assert xi.grad is not None and pi.grad is not None
        results.append((y.detach(), xi.grad, pi.grad))
    rtol = tol if tol is not None else (1e-5 if dtype == torch.float32 else 1e-10)
    for ref, got in zip(results[0], results[1], strict=True):
        assert got.dtype == ref.dtype and got.shape == ref.shape
        scale = max(1.0, float(ref.abs().max()))
        torch.testing.assert_close(got, ref, rtol=rtol, atol=rtol * scale)
    assert float(results[0][2].abs().sum()) > 0 and float(results[0][1].abs().sum()) > 0


@pytest.mark.parametrize("cfg", TRITON_CASES, ids=lambda c: f"{c.in_dim}d-{c.interpolation}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
def test_triton_matches_reference_on_cpu_interpreter(
    cfg: HashGridConfig, dtype: torch.dtype
) -> None:
    _compare(cfg, "triton", CPU, dtype)


def test_triton_only_table_or_only_points_need_gradients() -> None:
    cfg = TRITON_CASES[1]
    x = torch.rand(33, 2, generator=torch.Generator().manual_seed(5))
    params = torch.randn(cfg.n_params, generator=torch.Generator().manual_seed(6))
    for need_x, need_p in [(True, False), (False, True)]:
        grads = []
        for backend in ("torch", "triton"):
            xi = x.clone().requires_grad_(need_x)
            pi = params.clone().requires_grad_(need_p)
            hashgrid_encode(xi, pi, cfg, backend=backend).sum().backward()
            grads.append(xi.grad if need_x else pi.grad)
            assert (xi.grad is None) != need_x and (pi.grad is None) != need_p
        torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5)


def test_module_backends_agree_and_compile_has_no_graph_break() -> None:
    """The module with each CPU backend gives the reference's output; torch.compile traces the
    whole module in one graph (fullgraph=True fails on any break)."""
    gen = torch.Generator().manual_seed(0)
    grid = HashGrid(3, n_levels=3, log2_hashmap_size=8, base_resolution=4, generator=gen)
    x = torch.rand(40, 3, generator=gen)
    ref = grid(x)
    for backend in ("compile", "triton"):
        grid.backend = backend
        torch.testing.assert_close(grid(x), ref, rtol=1e-5, atol=1e-7)
    grid.backend = "torch"
    compiled = torch.compile(grid, fullgraph=True)
    out = compiled(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-7)
    out.sum().backward()
    assert grid.params.grad is not None and float(grid.params.grad.abs().sum()) > 0


@pytest.mark.gpu
@pytest.mark.parametrize("cfg", TRITON_CASES[1:3], ids=lambda c: f"{c.in_dim}d-{c.interpolation}")
def test_triton_matches_reference_on_cuda(cfg: HashGridConfig) -> None:
    _compare(cfg, "triton", torch.device("cuda"), torch.float32, n=5000)


@pytest.mark.gpu
def test_triton_matches_reference_on_cuda_at_benchmark_size() -> None:
    cfg = HashGridConfig.from_max_resolution(3, 2048, n_levels=16, base_resolution=16)
    _compare(cfg, "triton", torch.device("cuda"), torch.float32, n=2**16, tol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize(
    "cfg",
    [
        HashGridConfig.from_max_resolution(3, 2048, n_levels=16, base_resolution=16),
        HashGridConfig(2, n_levels=8, log2_hashmap_size=15, base_resolution=8, per_level_scale=1.5),
        HashGridConfig(
            3, n_levels=4, log2_hashmap_size=12, base_resolution=4, interpolation="smoothstep"
        ),
    ],
    ids=["3d-ngp", "2d", "3d-smoothstep"],
)
def test_tcnn_matches_reference_on_the_same_parameters(cfg: HashGridConfig) -> None:
    """tinycudann.Encoding given our parameters computes our outputs and gradients.

    Where tinycudann does not import, the backend must say so with BackendUnavailableError."""
    device = torch.device("cuda")
    reason = kernels.availability("hashgrid_encode", device)["tcnn"]
    if reason is not None:
        with pytest.raises(BackendUnavailableError, match="tinycudann"):
            kernels.resolve("hashgrid_encode", "tcnn", device)
        return
    from fields.encodings._tcnn import tcnn_encoding

    assert tcnn_encoding(cfg, device).params.numel() == cfg.n_params  # same layout and size
    _compare(cfg, "tcnn", device, torch.float32, n=4096, tol=1e-4)


NUMBA_CASES = [
    HashGridConfig(1, n_levels=3, log2_hashmap_size=4, base_resolution=5, per_level_scale=2.5),
    HashGridConfig(2, n_levels=4, log2_hashmap_size=7, base_resolution=3),
    HashGridConfig(3, n_levels=5, log2_hashmap_size=9, base_resolution=3),
    HashGridConfig(
        3, n_levels=3, log2_hashmap_size=8, base_resolution=2, interpolation="smoothstep"
    ),
    HashGridConfig(4, n_levels=2, n_features_per_level=3, log2_hashmap_size=8, base_resolution=2),
    HashGridConfig(2, n_levels=3, n_features_per_level=1, log2_hashmap_size=6, base_resolution=9),
]


@pytest.mark.parametrize("cfg", NUMBA_CASES, ids=lambda c: f"{c.in_dim}d-F{c.n_features_per_level}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
def test_numba_table_gradient_matches_reference_at_any_thread_count(
    cfg: HashGridConfig, dtype: torch.dtype
) -> None:
    """The numba backend's forward and table gradient against the reference (itself tested
    against a point-by-point tiny-cuda-nn emulation in test_hashgrid.py), with 20,000 points so
    that the work is split over threads; the split (points in the forward, levels in the
    backward) gives the same bits at 1, 2 and 3 threads."""
    gen = torch.Generator().manual_seed(cfg.in_dim)
    n = 20_000
    x = torch.rand(n, cfg.in_dim, generator=gen, dtype=torch.float64).to(dtype)
    x[0] = 1.0
    params = (torch.rand(cfg.n_params, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)
    cot = torch.randn(n, cfg.out_dim, generator=gen, dtype=torch.float64).to(dtype)
    before = torch.get_num_threads()
    runs = []
    try:
        for backend, threads in (("torch", before), ("numba", 1), ("numba", 2), ("numba", 3)):
            torch.set_num_threads(threads)
            p = params.clone().requires_grad_(True)
            y = hashgrid_encode(x, p, cfg, backend=backend)
            (y * cot).sum().backward()
            runs.append((y.detach(), p.grad))
    finally:
        torch.set_num_threads(before)
    from fields.encodings._numba_hashgrid import _threads

    assert _threads(n * cfg.n_levels) >= 1 and min(3, (n * cfg.n_levels) >> 14) >= 2
    for other in runs[2:]:
        assert torch.equal(other[0], runs[1][0]) and torch.equal(other[1], runs[1][1])
    ref_y, ref_g = runs[0]
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(runs[1][0], ref_y, rtol=tol, atol=tol)
    scale = float(ref_g.abs().max())
    assert scale > 0
    torch.testing.assert_close(runs[1][1], ref_g, rtol=tol * 10, atol=tol * 10 * scale)


def test_numba_hands_point_gradients_and_double_backward_to_the_reference() -> None:
    """A gradient for the points (e.g. an eikonal loss) and a recorded backward graph run the
    reference's differentiable maths; the table-only path's gradient equals it."""
    cfg = NUMBA_CASES[2]
    gen = torch.Generator().manual_seed(11)
    x = torch.rand(300, 3, generator=gen, dtype=torch.float64)
    params = torch.rand(cfg.n_params, generator=gen, dtype=torch.float64) * 2 - 1
    grads = {}
    for backend in ("torch", "numba"):
        xi, pi = x.clone().requires_grad_(True), params.clone().requires_grad_(True)
        y = hashgrid_encode(xi, pi, cfg, backend=backend)
        (gx,) = torch.autograd.grad(y.sum(), xi, create_graph=True)
        gx.pow(2).sum().backward()  # a loss on d y / d x reaches the table
        pj = params.clone().requires_grad_(True)
        (gp,) = torch.autograd.grad(
            hashgrid_encode(x, pj, cfg, backend=backend).pow(2).sum(), pj, create_graph=True
        )
        (gpp,) = torch.autograd.grad(gp.pow(2).sum(), pj)
        grads[backend] = (gx.detach(), pi.grad, gp.detach(), gpp)
    for a, b in zip(grads["numba"], grads["torch"], strict=True):
        assert a is not None and b is not None and float(b.abs().sum()) > 0
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_numba_pool_is_recreated_in_a_forked_child() -> None:
    """A forked child (e.g. a data-loader worker) gets its own worker threads: the parent's pool
    copy has none running, and work submitted to it would wait forever. (The child sets one
    torch thread, as torch's DataLoader does: torch's own OpenMP pool does not survive a fork.)"""
    import os
    import select

    from fields.encodings import _numba_hashgrid

    cfg = NUMBA_CASES[2]
    x = torch.rand(40_000, 3, generator=torch.Generator().manual_seed(2))
    params = torch.rand(cfg.n_params, generator=torch.Generator().manual_seed(3))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        want = hashgrid_encode(x, params, cfg, backend="numba")  # the parent's pool exists
    finally:
        torch.set_num_threads(before)
    parent_pool = _numba_hashgrid._pool()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            torch.set_num_threads(1)
            pool = _numba_hashgrid._pool()
            ok = pool is not parent_pool and pool.submit(lambda: 42).result(timeout=20) == 42
            got = hashgrid_encode(x, params, cfg, backend="numba")
            os.write(w, b"1" if ok and torch.equal(got, want) else b"0")
        finally:
            os._exit(0)
    os.close(w)
    ready, _, _ = select.select([r], [], [], 60)
    result = os.read(r, 1) if ready else b""
    if not ready:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    os.close(r)
    assert result == b"1"
