"""NeuRBF adaptive radial bases: the op, its paths, the neighbour search, the initialisation."""

from __future__ import annotations

import math

import pytest
import torch

from fields.encodings.hashgrid import HashGrid
from fields.encodings.rbf import (
    AdaptiveRBF,
    NeuRBFHybrid,
    build_neighbor_table,
    image_gradient_weights,
    kernel_shapes_from_clusters,
    knn_bruteforce,
    knn_lookup,
    log_frequencies,
    radial_profile,
    rbf_features,
    rbf_features_dense,
    rbf_features_reference,
    sdf_surface_weights,
    sinusoidal_composition,
    weighted_kmeans,
)
from neurosim.backend import InputError, kernels


def _problem(
    n: int = 41,
    num_k: int = 13,
    d: int = 2,
    c: int = 5,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=torch.float64)
    centers = torch.rand(num_k, d, generator=g, dtype=torch.float64)
    shapes = 3 * torch.eye(d, dtype=torch.float64) + 0.7 * torch.randn(
        num_k, d, d, generator=g, dtype=torch.float64
    )
    weights = torch.randn(num_k, c, generator=g, dtype=torch.float64)
    freqs = torch.cat([torch.zeros(1), torch.logspace(0, 1.5, c - 1)]).double()
    return tuple(t.to(dtype) for t in (x, centers, shapes, weights, freqs))


def test_radial_profiles_and_worked_example() -> None:
    q = torch.tensor([0.0, 1.0, 3.0])
    torch.testing.assert_close(radial_profile(q, "inverse_quadratic"), 1 / (1 + q))
    torch.testing.assert_close(radial_profile(q, "gaussian"), torch.exp(-q / 2))
    # one kernel at the origin, A = I, w = 1, freq 0, no normalisation: 1 / (1 + |x|^2)
    out = rbf_features(
        torch.tensor([[1.0, 0.0]]),
        torch.zeros(1, 2),
        torch.eye(2)[None],
        torch.ones(1, 1),
        torch.zeros(1),
        torch.zeros(1, 1, dtype=torch.long),
        normalize=False,
        backend="torch",
    )
    assert out.item() == pytest.approx(0.5)


def test_sinusoidal_composition_keeps_zero_frequency_channels() -> None:
    r = torch.rand(7, 3, 1)
    freqs = torch.tensor([0.0, 2.0, 5.0])
    g = sinusoidal_composition(r, freqs)
    torch.testing.assert_close(g[..., 0], r[..., 0])
    torch.testing.assert_close(g[..., 2], torch.sin(5.0 * r[..., 0]))
    f = log_frequencies(6, 1.0, 100.0, keep=2)
    assert (
        f[:2].eq(0).all()
        and f[2].item() == pytest.approx(1.0)
        and f[-1].item() == pytest.approx(100.0, rel=1e-5)
    )


@pytest.mark.parametrize("kind", ["inverse_quadratic", "gaussian"])
@pytest.mark.parametrize("normalize", [True, False])
def test_nearest_kernels_with_every_kernel_equal_the_all_pairs_evaluation(
    kind: str, normalize: bool
) -> None:
    """k = K neighbours is the dense sum: values and gradients (stop-gradient included)."""
    x, centers, shapes, weights, freqs = _problem()
    index = torch.arange(centers.shape[0]).expand(x.shape[0], -1).contiguous()
    leaves = [t.clone().requires_grad_() for t in (x, centers, shapes, weights)]
    a = rbf_features(*leaves, freqs, index, kind=kind, normalize=normalize, backend="torch")
    cot = torch.randn(a.shape, dtype=a.dtype, generator=torch.Generator().manual_seed(3))
    ga = torch.autograd.grad((a * cot).sum(), leaves)
    leaves2 = [t.clone().requires_grad_() for t in (x, centers, shapes, weights)]
    b = rbf_features_dense(*leaves2, freqs, kind=kind, normalize=normalize)
    gb = torch.autograd.grad((b * cot).sum(), leaves2)
    torch.testing.assert_close(a, b)
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(u, v)


def test_reference_gradients_pass_gradcheck_without_normalisation() -> None:
    x, centers, shapes, weights, freqs = _problem(n=6, num_k=5, c=3)
    index = knn_bruteforce(x, centers, 3)

    def f(*args: torch.Tensor) -> torch.Tensor:
        return rbf_features_reference(*args, freqs, index, "gaussian", False)

    leaves = tuple(t.clone().requires_grad_() for t in (x, centers, shapes, weights))
    assert torch.autograd.gradcheck(f, leaves)


def test_compile_backend_matches_the_reference_with_gradients() -> None:
    x, centers, shapes, weights, freqs = _problem(dtype=torch.float32)
    index = knn_bruteforce(x, centers, 4)
    outs, grads = [], []
    for backend in ("torch", "compile"):
        leaves = [t.clone().requires_grad_() for t in (x, centers, shapes, weights)]
        y = rbf_features(*leaves, freqs, index, backend=backend)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        outs.append(y.detach())
        grads.append([t.grad for t in leaves])
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-5)
    for u, v in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-5)


def test_op_is_registered_with_a_reference_and_compile_backend() -> None:
    assert {"torch", "compile", "triton"} <= set(kernels.backends("rbf_features"))
    assert kernels.resolve("rbf_features", "auto", torch.device("cpu")).backend == "torch"


@pytest.mark.parametrize(
    ("args_change", "message"),
    [
        ({"kind": "cubic"}, "unknown radial basis kind"),
        ({"index_shift": 100}, "must lie in"),
        ({"freqs_len": 2}, "one frequency per channel"),
        ({"nan": True}, "non-finite"),
        ({"dtype_mismatch": True}, "dtype"),
    ],
)
def test_bad_arguments_are_clear_errors(args_change: dict[str, object], message: str) -> None:
    x, centers, shapes, weights, freqs = _problem(dtype=torch.float32)
    index = knn_bruteforce(x, centers, 2)
    kind = str(args_change.get("kind", "inverse_quadratic"))
    if "index_shift" in args_change:
        index = index + 100
    if "freqs_len" in args_change:
        freqs = freqs[:2]
    if "nan" in args_change:
        x = x.clone()
        x[0, 0] = math.nan
    if "dtype_mismatch" in args_change:
        weights = weights.double()
    with pytest.raises(InputError, match=message):
        rbf_features(x, centers, shapes, weights, freqs, index, kind=kind)


@pytest.mark.parametrize(
    ("d", "k", "skew"), [(1, 3, 1.0), (2, 4, 2.0), (2, 8, 3.0), (3, 4, 1.0), (3, 6, 2.0)]
)
def test_grid_bucketed_lookup_finds_the_exact_nearest_kernels(d: int, k: int, skew: float) -> None:
    g = torch.Generator().manual_seed(d * 10 + k)
    centers = torch.rand(300, d, generator=g, dtype=torch.float64) ** skew  # clustered towards 0
    x = torch.rand(2000, d, generator=g, dtype=torch.float64)
    x[:5] = 0.0
    x[5:10] = 1.0
    table = build_neighbor_table(centers, k)
    got = knn_lookup(x, centers, table)
    want = knn_bruteforce(x, centers, k)
    dist_got = (x[:, None] - centers[got]).norm(dim=-1)
    dist_want = (x[:, None] - centers[want]).norm(dim=-1)
    torch.testing.assert_close(dist_got, dist_want, rtol=0, atol=1e-12)
    assert (got.sort(1).values == want.sort(1).values).float().mean() > 0.999  # ties aside


def test_lookup_is_exact_when_cells_overflow() -> None:
    g = torch.Generator().manual_seed(5)
    centers = torch.rand(400, 2, generator=g, dtype=torch.float64) ** 4
    x = torch.rand(500, 2, generator=g, dtype=torch.float64) ** 3
    table = build_neighbor_table(centers, 4, resolution=6, max_candidates=8)
    assert table.any_overflow and bool(table.overflow.any())
    got = knn_lookup(x, centers, table)
    want = knn_bruteforce(x, centers, 4)
    torch.testing.assert_close(
        (x[:, None] - centers[got]).norm(dim=-1),
        (x[:, None] - centers[want]).norm(dim=-1),
        rtol=0,
        atol=1e-12,
    )


def test_weighted_kmeans_follows_the_weights_and_is_seeded() -> None:
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(4000, 2, generator=g)
    weights = (pts[:, 0] > 0.75).float() + 1e-6  # all mass in the right quarter
    centers, assign = weighted_kmeans(
        pts, weights, 32, iterations=8, generator=torch.Generator().manual_seed(1)
    )
    assert float((centers[:, 0] > 0.7).float().mean()) > 0.9
    assert int(assign.max()) < 32 and assign.shape == (4000,)
    again, _ = weighted_kmeans(
        pts, weights, 32, iterations=8, generator=torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(centers, again)
    # the Lloyd iterations lower the weighted objective from the seeding
    seeds, _ = weighted_kmeans(
        pts, weights, 32, iterations=1, generator=torch.Generator().manual_seed(1)
    )

    def objective(c: torch.Tensor) -> float:
        return float((torch.cdist(pts, c).min(1).values ** 2 * weights).sum())

    assert objective(centers) <= objective(seeds) + 1e-6
    with pytest.raises(InputError, match="non-negative"):
        weighted_kmeans(pts, -weights, 4)


def test_cluster_shapes_recover_an_anisotropic_covariance() -> None:
    g = torch.Generator().manual_seed(2)
    rot = torch.tensor(
        [[math.cos(0.5), -math.sin(0.5)], [math.sin(0.5), math.cos(0.5)]], dtype=torch.float64
    )
    cov = rot @ torch.diag(torch.tensor([0.05, 0.01], dtype=torch.float64) ** 2) @ rot.T
    pts = (
        torch.randn(20000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T + 0.5
    )
    a = kernel_shapes_from_clusters(
        pts,
        torch.ones(20000, dtype=torch.float64),
        pts.mean(0, keepdim=True),
        torch.zeros(20000, dtype=torch.long),
        alpha=1.0,
        min_std=1e-3,
    )
    torch.testing.assert_close(a[0].T @ a[0], torch.linalg.inv(cov), rtol=0.05, atol=1.0)


def test_signal_weights() -> None:
    img = torch.zeros(8, 8)
    img[:, 4:] = 1.0
    w = image_gradient_weights(img).reshape(8, 8)
    assert float(w[:, 3:5].min()) > 0 and float(w[:, :2].abs().max()) == 0.0
    s = sdf_surface_weights(torch.tensor([0.0, 0.5]), threshold=0.01)
    assert s[0] > s[1] > 0


def test_module_init_from_signal_moves_kernels_to_detail_and_stays_exact() -> None:
    g = torch.Generator().manual_seed(0)
    rbf = AdaptiveRBF(2, 64, features=6, neighbors=4, generator=g)
    pts = torch.rand(5000, 2, generator=g)
    weights = torch.exp(-((pts - 0.25) ** 2).sum(-1) / 0.005)
    rbf.init_from_signal(pts, weights, iterations=5, generator=torch.Generator().manual_seed(1))
    assert float(((rbf.centers - 0.25) ** 2).sum(-1).sqrt().median()) < 0.2
    x = torch.rand(300, 2, generator=g)
    y = rbf(x)
    index = knn_bruteforce(x, rbf.centers, 4)
    want = rbf_features(x, rbf.centers, rbf.shapes, rbf.weights, rbf.freqs, index, backend="torch")
    torch.testing.assert_close(y, want)
    assert not rbf.centers.requires_grad  # NeuRBF keeps positions fixed by default


def test_learned_positions_get_gradients_and_state_dict_reload_rebuilds_the_grid() -> None:
    g = torch.Generator().manual_seed(3)
    a = AdaptiveRBF(2, 25, features=4, learn_positions=True, generator=g)
    x = torch.rand(50, 2, generator=g)
    a(x).square().sum().backward()
    assert a.centers.grad is not None and float(a.centers.grad.abs().sum()) > 0
    assert a.shapes.grad is not None and float(a.shapes.grad.abs().sum()) > 0
    b = AdaptiveRBF(
        2, 25, features=4, learn_positions=True, generator=torch.Generator().manual_seed(9)
    )
    b(x)  # builds b's neighbour grid from its own centres
    with torch.no_grad():
        a.centers.add_(0.05 * torch.randn(25, 2, generator=g)).clamp_(0, 1)
    a.refresh_neighbors()
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b(x), a(x))


def test_module_bad_input() -> None:
    rbf = AdaptiveRBF(3, 8, features=2)
    with pytest.raises(InputError, match="unit cube"):
        rbf(torch.full((2, 3), 1.5))
    with pytest.raises(InputError, match="3-D"):
        rbf(torch.rand(2, 2))
    with pytest.raises(InputError, match="neighbors"):
        AdaptiveRBF(2, 4, neighbors=5)
    with pytest.raises(InputError, match="kind"):
        AdaptiveRBF(2, 4, kind="cubic")


def test_hybrid_concatenates_grid_and_rbf_features() -> None:
    g = torch.Generator().manual_seed(0)
    rbf = AdaptiveRBF(2, 16, features=5, generator=g)
    grid = HashGrid(
        2, n_levels=2, n_features_per_level=2, log2_hashmap_size=6, base_resolution=4, generator=g
    )
    hybrid = NeuRBFHybrid(rbf, grid, generator=g)
    x = torch.rand(20, 2, generator=g)
    y = hybrid(x)
    assert y.shape == (20, 4 + 5) and hybrid.out_dim == 9
    torch.testing.assert_close(y[:, :4], grid(x) + hybrid.bias[:4])
    torch.testing.assert_close(y[:, 4:], rbf(x) + hybrid.bias[4:])


@pytest.mark.parametrize(
    ("d", "kind", "normalize", "dtype"),
    [
        (2, "inverse_quadratic", True, torch.float64),
        (3, "gaussian", False, torch.float64),
        (1, "inverse_quadratic", True, torch.float32),
        (4, "gaussian", True, torch.float64),
    ],
)
def test_triton_backend_matches_the_reference_with_gradients(
    d: int, kind: str, normalize: bool, dtype: torch.dtype
) -> None:
    """Runs on CUDA, or on the CPU through the Triton interpreter (tests/conftest.py)."""
    x, centers, shapes, weights, freqs = _problem(n=37, num_k=11, d=d, c=5, dtype=dtype)
    index = knn_bruteforce(x, centers, 3)
    results = []
    for backend in ("torch", "triton"):
        leaves = [t.clone().requires_grad_() for t in (x, centers, shapes, weights)]
        y = rbf_features(*leaves, freqs, index, kind=kind, normalize=normalize, backend=backend)
        (y * torch.linspace(-1, 1, y.numel(), dtype=dtype).view_as(y)).sum().backward()
        results.append([y.detach()] + [t.grad for t in leaves])
    tol = {"rtol": 1e-9, "atol": 1e-9} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-5}
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(b, a, **tol)
    empty = rbf_features(x[:0], centers, shapes, weights, freqs, index[:0], backend="triton")
    assert empty.shape == (0, 5)


def _loop_features(x, centers, shapes, weights, freqs, index, kind, normalize):  # type: ignore[no-untyped-def]
    """NeuRBF's formula written out point by point with Python floats (no code of the module):
    q = |A_j (x - c_j)|^2, rho = 1/(1+q) or exp(-q/2), optionally rho / sum(rho), then
    sum_j w_jc * (sin(m_c rho) if m_c > 0 else rho)."""
    out = []
    for i, row in enumerate(x.tolist()):
        rhos = []
        for j in index[i].tolist():
            diff = [row[a] - centers[j][a].item() for a in range(len(row))]
            z = [
                sum(shapes[j][r][s].item() * diff[s] for s in range(len(row)))
                for r in range(len(row))
            ]
            q = sum(v * v for v in z)
            rhos.append((j, 1.0 / (1.0 + q) if kind == "inverse_quadratic" else math.exp(-q / 2)))
        total = sum(r for _, r in rhos) if normalize else 1.0
        feats = []
        for c, m in enumerate(freqs.tolist()):
            acc = 0.0
            for j, r in rhos:
                r = r / (total + (1e-8 if normalize else 0.0))
                acc += weights[j][c].item() * (math.sin(m * r) if m > 0 else r)
            feats.append(acc)
        out.append(feats)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize(("kind", "normalize"), [("inverse_quadratic", True), ("gaussian", False)])
def test_every_backend_matches_the_formula_written_out(
    backend: str, kind: str, normalize: bool
) -> None:
    """The reference and the Triton kernel (through the interpreter on the CPU) against an
    independent loop, not against each other (``compile`` is checked against the reference
    above, which this test ties to the formula)."""
    x, centers, shapes, weights, freqs = _problem(n=9, num_k=7, d=2, c=4)
    dist = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
    index = torch.from_numpy(dist.numpy().argsort(axis=1)[:, :3].copy())
    want = _loop_features(x, centers, shapes, weights, freqs, index, kind, normalize)
    got = rbf_features(
        x, centers, shapes, weights, freqs, index, kind=kind, normalize=normalize, backend=backend
    )
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_module_matches_the_formula_with_its_own_neighbour_search() -> None:
    """AdaptiveRBF (grid-bucketed k-nearest search + the op) against the written-out formula on
    neighbours found here by sorting distances."""
    g = torch.Generator().manual_seed(4)
    rbf = AdaptiveRBF(2, 25, features=3, neighbors=4, freq_range=(0.5, 8.0), generator=g)
    with torch.no_grad():
        rbf.weights.copy_(torch.randn(rbf.weights.shape, generator=g))
    x = torch.rand(15, 2, generator=g)
    dist = ((x[:, None, :] - rbf.centers[None]) ** 2).sum(-1).detach()
    index = torch.from_numpy(dist.numpy().argsort(axis=1)[:, :4].copy())
    want = _loop_features(
        x.double(),
        rbf.centers.double(),
        rbf.shapes.double(),
        rbf.weights.double(),
        rbf.freqs.double(),
        index,
        "inverse_quadratic",
        True,
    )
    torch.testing.assert_close(rbf(x).double(), want, rtol=1e-5, atol=1e-6)
