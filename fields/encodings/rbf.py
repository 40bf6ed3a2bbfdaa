"""Adaptive radial basis functions (NeuRBF; Chen et al., ICCV 2023).

A field of ``K`` radial kernels with free centres ``c_j`` and anisotropic shapes ``A_j`` (a
``D x D`` matrix; ``Sigma_j^{-1} = A_j^T A_j``) and per-kernel feature vectors ``w_j`` in
``R^C``. A point ``x`` sees only its ``k`` nearest kernels ``N(x)``:

.. math::

    q_j(x) = \\lVert A_j (x - c_j) \\rVert^2, \\qquad
    \\rho_j(x) = \\frac{1}{1 + q_j(x)} \\;\\text{(inverse quadratic)} \\quad\\text{or}\\quad
    e^{-q_j(x)/2} \\;\\text{(Gaussian)},

    \\hat\\rho_j(x) = \\frac{\\rho_j(x)}{\\operatorname{sg}\\left[\\sum_{i \\in N(x)} \\rho_i(x)\\right] + \\epsilon}
    \\quad\\text{(optional normalisation; sg = stop-gradient, as in NeuRBF)},

    f_c(x) = \\sum_{j \\in N(x)} w_{jc}\\, g_c(\\hat\\rho_j(x)), \\qquad
    g_c(r) = \\sin(m_c r) \\text{ if } m_c > 0 \\text{ else } r.

``g`` is the multi-frequency sinusoidal composition: one radial value is lifted to ``C``
channels with frequencies ``m_c`` (log-spaced; a frequency 0 keeps the plain radial value),
so each kernel carries a range of frequencies instead of one bump.

Pieces (pure functions first, thin modules after):

* :func:`rbf_features` (kernel op ``"rbf_features"``, backends ``torch`` reference,
  ``compile`` and ``triton``, forward and backward kernels in :mod:`fields.encodings._triton_rbf`):
  the formula above for given neighbour indices.
* :func:`rbf_features_dense`: the straightforward all-pairs evaluation (every kernel at every
  point); equal to :func:`rbf_features` when ``k = K``, the benchmark's baseline.
* :func:`build_neighbor_table` / :func:`knn_lookup`: grid-bucketed exact ``k``-nearest-kernel
  search on the tensor backend (no CPU KD-tree): the unit cube is cut into ``G^D`` cells; each
  cell stores every kernel that can be among the ``k`` nearest of any point in it (all kernels
  within ``d_k(centre) + 2 h`` of the cell centre, ``h`` the cell's half-diagonal, by the triangle
  inequality), and a point ranks only its cell's candidates.
* :func:`weighted_kmeans` and :func:`kernel_shapes_from_clusters`: NeuRBF's initialisation,
  centres from weighted k-means on the signal (gradient magnitude for images, ``1/|SDF|`` near
  the surface for SDFs) and shapes from each cluster's weighted covariance.
* :class:`AdaptiveRBF`: the encoding module; :class:`NeuRBFHybrid`: adaptive RBF features
  concatenated with a grid encoding (a hash grid), the NeuRBF hybrid.

Input domain: coordinates in the unit cube ``[0, 1]^D`` (like the hash grid).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, cast

import torch
from torch import nn

from neurosim.backend import (
    InputError,
    Operation,
    check_tensor,
    compile_backend,
    kernels,
    triton_backend,
)

KINDS = ("inverse_quadratic", "gaussian")
_EPS = 1e-8


# ---------------------------------------------------------------------------------------------
# radial evaluation (the kernel op)
# ---------------------------------------------------------------------------------------------
def radial_profile(q: torch.Tensor, kind: str) -> torch.Tensor:
    """``rho(q)``: ``1 / (1 + q)`` for ``"inverse_quadratic"``, ``exp(-q / 2)`` for ``"gaussian"``."""
    if kind == "inverse_quadratic":
        return 1.0 / (1.0 + q)
    if kind == "gaussian":
        return torch.exp(-0.5 * q)
    raise InputError(f"unknown radial basis kind {kind!r}; expected one of {KINDS}")


def sinusoidal_composition(r: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """``g_c(r)``: ``[..., 1] x [C] -> [..., C]``, ``sin(m_c r)`` where ``m_c > 0`` and ``r`` where 0."""
    lifted = r * freqs
    return torch.where(freqs > 0, torch.sin(lifted), r.expand_as(lifted))


def validate_rbf_features(
    x: torch.Tensor,
    centers: torch.Tensor,
    shapes: torch.Tensor,
    weights: torch.Tensor,
    freqs: torch.Tensor,
    index: torch.Tensor,
    kind: str = "inverse_quadratic",
    normalize: bool = True,
) -> None:
    """Check the arguments of :func:`rbf_features` (shapes, dtypes, devices, finiteness)."""
    eager = not torch.compiler.is_compiling()  # value checks sync the host: eager mode only
    check_tensor(x, "rbf_features points x [N, D]", ndim=2, finite=eager)
    n, d = x.shape
    check_tensor(centers, "rbf_features centers [K, D]", ndim=2, device=x.device, finite=eager)
    num_k = centers.shape[0]
    if centers.shape[1] != d:
        raise InputError(
            f"rbf_features centers must be [K, {d}] for {d}-D points, got {tuple(centers.shape)}"
        )
    check_tensor(shapes, "rbf_features shapes [K, D, D]", ndim=3, device=x.device, finite=eager)
    if tuple(shapes.shape) != (num_k, d, d):
        raise InputError(
            f"rbf_features shapes must be [{num_k}, {d}, {d}], got {tuple(shapes.shape)}"
        )
    check_tensor(weights, "rbf_features weights [K, C]", ndim=2, device=x.device, finite=eager)
    if weights.shape[0] != num_k:
        raise InputError(
            f"rbf_features weights must have one row per kernel ({num_k}), got {tuple(weights.shape)}"
        )
    check_tensor(freqs, "rbf_features freqs [C]", ndim=1, device=x.device, finite=eager)
    if freqs.shape[0] != weights.shape[1]:
        raise InputError(
            f"rbf_features freqs must have one frequency per channel ({weights.shape[1]}), "
            f"got {tuple(freqs.shape)}"
        )
    check_tensor(
        index, "rbf_features neighbour index [N, k]", ndim=2, floating=False, device=x.device
    )
    if index.dtype not in (torch.int64, torch.int32):
        raise InputError(f"rbf_features neighbour index must be int64 or int32, got {index.dtype}")
    if index.shape[0] != n or index.shape[1] < 1:
        raise InputError(
            f"rbf_features neighbour index must be [{n}, k>=1] for {n} points, got {tuple(index.shape)}"
        )
    if eager and index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_k):
        raise InputError(f"rbf_features neighbour index must lie in [0, {num_k}), the kernel count")
    if kind not in KINDS:
        raise InputError(f"unknown radial basis kind {kind!r}; expected one of {KINDS}")
    for name, t in (
        ("centers", centers),
        ("shapes", shapes),
        ("weights", weights),
        ("freqs", freqs),
    ):
        if t.dtype != x.dtype:
            raise InputError(
                f"rbf_features {name} has dtype {t.dtype} but x has {x.dtype}; expected one dtype"
            )


def rbf_features_reference(
    x: torch.Tensor,
    centers: torch.Tensor,
    shapes: torch.Tensor,
    weights: torch.Tensor,
    freqs: torch.Tensor,
    index: torch.Tensor,
    kind: str = "inverse_quadratic",
    normalize: bool = True,
) -> torch.Tensor:
    """Reference of :func:`rbf_features`: gather the neighbours and apply the module formula."""
    idx = index.long()
    offset = x[:, None, :] - centers[idx]  # [N, k, D]
    z = torch.einsum("nkij,nkj->nki", shapes[idx], offset)
    rho = radial_profile(z.pow(2).sum(-1), kind)  # [N, k]
    if normalize:
        rho = rho / (rho.detach().sum(-1, keepdim=True) + _EPS)
    g = sinusoidal_composition(rho[..., None], freqs)  # [N, k, C]
    return (weights[idx] * g).sum(1)


def rbf_features_dense(
    x: torch.Tensor,
    centers: torch.Tensor,
    shapes: torch.Tensor,
    weights: torch.Tensor,
    freqs: torch.Tensor,
    kind: str = "inverse_quadratic",
    normalize: bool = True,
) -> torch.Tensor:
    """All-pairs evaluation: every kernel at every point (``[N, K, C]`` intermediates).

    The straightforward implementation NeuRBF's nearest-kernel evaluation replaces; equal to
    :func:`rbf_features` with every kernel as a neighbour. ``O(N K C)`` time and memory.
    """
    offset = x[:, None, :] - centers[None]  # [N, K, D]
    z = torch.einsum("kij,nkj->nki", shapes, offset)
    rho = radial_profile(z.pow(2).sum(-1), kind)
    if normalize:
        rho = rho / (rho.detach().sum(-1, keepdim=True) + _EPS)
    g = sinusoidal_composition(rho[..., None], freqs)
    return (weights[None] * g).sum(1)


def _example(
    device: torch.device, dtype: torch.dtype, generator: torch.Generator
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    n, num_k, d, c, k = 57, 23, 2, 6, 4
    x = torch.rand(n, d, generator=generator, dtype=torch.float64)
    centers = torch.rand(num_k, d, generator=generator, dtype=torch.float64)
    shapes = torch.eye(d, dtype=torch.float64) * 4 + 0.5 * torch.randn(
        num_k, d, d, generator=generator, dtype=torch.float64
    )
    weights = torch.randn(num_k, c, generator=generator, dtype=torch.float64)
    freqs = torch.tensor([0.0, 1.0, 2.0, 4.0, 8.0, 16.0], dtype=torch.float64)
    index = torch.cdist(x, centers).topk(k, largest=False).indices
    args = tuple(t.to(device, dtype) for t in (x, centers, shapes, weights, freqs))
    return (*args, index.to(device)), {"kind": "inverse_quadratic", "normalize": True}


def _bad_inputs(device: torch.device) -> list[tuple[tuple[Any, ...], dict[str, Any], str]]:
    x = torch.rand(5, 2, device=device)
    c = torch.rand(3, 2, device=device)
    s = torch.eye(2, device=device).repeat(3, 1, 1)
    w = torch.rand(3, 4, device=device)
    f = torch.ones(4, device=device)
    i = torch.zeros(5, 2, dtype=torch.long, device=device)
    return [
        ((x, c[:, :1], s, w, f, i), {}, "centers must be"),
        ((x, c, s[:, :1], w, f, i), {}, "shapes must be"),
        ((x, c, s, w, f[:2], i), {}, "one frequency per channel"),
        ((x, c, s, w, f, i + 7), {}, "must lie in"),
        ((x.clone().fill_(float("nan")), c, s, w, f, i), {}, "non-finite"),
        ((x, c, s, w, f, i.float()), {}, "int64"),
        ((x, c, s, w, f, i), {"kind": "cubic"}, "unknown radial basis kind"),
    ]


def _load_compile() -> Any:
    return torch.compile(rbf_features_reference, dynamic=True)


def _load_triton() -> Any:
    from fields.encodings._triton_rbf import rbf_features_triton

    return rbf_features_triton


kernels.register(
    Operation(
        name="rbf_features",
        reference=rbf_features_reference,
        validate=validate_rbf_features,
        example=_example,
        bad_inputs=_bad_inputs,
        grad_args=(0, 1, 2, 3),
        doc="NeuRBF: sum over each point's k nearest anisotropic radial kernels, sinusoid-lifted",
    )
)
kernels.register_backend("rbf_features", compile_backend(_load_compile))
kernels.register_backend("rbf_features", triton_backend(_load_triton))


def rbf_features(
    x: torch.Tensor,
    centers: torch.Tensor,
    shapes: torch.Tensor,
    weights: torch.Tensor,
    freqs: torch.Tensor,
    index: torch.Tensor,
    *,
    kind: str = "inverse_quadratic",
    normalize: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """NeuRBF features of points from their nearest kernels (see the module docstring).

    Args:
        x: points ``[N, D]``.
        centers: kernel centres ``[K, D]``.
        shapes: kernel shape matrices ``A_j`` ``[K, D, D]`` (``q = |A (x - c)|^2``).
        weights: kernel feature vectors ``[K, C]``.
        freqs: composition frequencies ``[C]`` (0 keeps the radial value itself).
        index: each point's neighbour kernels ``[N, k]`` (int64/int32), e.g. from :func:`knn_lookup`.
        kind: ``"inverse_quadratic"`` or ``"gaussian"``.
        normalize: divide by the (stop-gradient) sum of the ``k`` radial values.
        backend: ``"auto"``, ``"torch"``, ``"compile"`` or ``"triton"``. Inside ``torch.compile`` the torch
            maths is traced whatever the backend, and value checks are skipped.

    Returns:
        ``[N, C]``. Gradients flow to ``x``, ``centers``, ``shapes`` and ``weights``.

    Example: one kernel at the origin with ``A = I``, ``w = [1]``, ``freqs = [0]``,
    ``normalize=False`` gives ``1 / (1 + |x|^2)``: 0.5 at ``x = (1, 0)``.
    """
    if torch.compiler.is_compiling():  # trace the torch maths: no registry logging in a graph
        validate_rbf_features(x, centers, shapes, weights, freqs, index, kind, normalize)
        return rbf_features_reference(x, centers, shapes, weights, freqs, index, kind, normalize)
    return kernels.call(
        "rbf_features",
        x,
        centers,
        shapes,
        weights,
        freqs,
        index,
        kind=kind,
        normalize=normalize,
        backend=backend,
    )


# ---------------------------------------------------------------------------------------------
# grid-bucketed nearest-kernel search
# ---------------------------------------------------------------------------------------------
class NeighborTable(NamedTuple):
    """Candidate kernels per cell of a ``resolution^D`` grid over ``[0, 1]^D``.

    Attributes:
        candidates: ``[resolution^D, M]`` int64 kernel indices, nearest first, padded with -1.
        overflow: ``[resolution^D]`` bool, cells whose candidate set exceeded ``max_candidates``;
            points there are ranked against every kernel instead (still exact, slower).
        resolution: cells per axis ``G``.
        k: the neighbour count the table was built for.
        any_overflow: whether any cell overflowed (a Python bool: no device sync at lookup).
    """

    candidates: torch.Tensor
    overflow: torch.Tensor
    resolution: int
    k: int
    any_overflow: bool


def default_table_resolution(num_kernels: int, dim: int, per_cell: float | None = None) -> int:
    """A grid with about ``per_cell`` kernels per cell (default 1 in 1-D, 0.5 in 2-D, 0.25
    above: the box bound loosens with the dimension, and k-means places kernels unevenly),
    capped at 512 cells per axis in 2-D, 64 in 3-D, 16 in 4-D."""
    if per_cell is None:
        per_cell = 1.0 if dim == 1 else 0.5 if dim == 2 else 0.25
    cap = {1: 65536, 2: 512, 3: 64}.get(dim, 16)
    return int(max(1, min(cap, round((num_kernels / per_cell) ** (1.0 / dim)))))


def _cell_centers(
    resolution: int, dim: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    axis = (torch.arange(resolution, dtype=dtype, device=device) + 0.5) / resolution
    mesh = torch.meshgrid(*([axis] * dim), indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)  # [G^D, D], last axis fastest


def build_neighbor_table(
    centers: torch.Tensor,
    k: int,
    resolution: int | None = None,
    max_candidates: int = 64,
) -> NeighborTable:
    """Bucket kernel centres for exact ``k``-nearest lookups.

    For a cell box ``B`` let ``U`` be the ``k``-th smallest ``maxdist(B, c_j)`` (no point of
    ``B`` has its ``k``-th neighbour farther than ``U``); kernel ``j`` is a candidate of ``B``
    iff ``mindist(B, c_j) <= U``. Candidates are kept nearest-box first; a cell with more than
    ``max_candidates`` is flagged in ``overflow``.

    Args:
        centers: ``[K, D]`` kernel centres (any position; the grid covers ``[0, 1]^D``).
        k: neighbours per point (``1 <= k <= K``).
        resolution: cells per axis (default :func:`default_table_resolution`).
        max_candidates: cap on candidates per cell (memory bound).

    Cost: ``O(G^D K D)`` on the centres' device, without gradients.
    """
    check_tensor(centers, "neighbour table centers [K, D]", ndim=2)
    num_k, dim = centers.shape
    if not 1 <= k <= num_k:
        raise InputError(f"neighbour count k must be in [1, {num_k}] (the kernel count), got {k}")
    res = default_table_resolution(num_k, dim) if resolution is None else int(resolution)
    if res < 1 or res**dim > 2**24:
        raise InputError(f"neighbour table resolution must be >= 1 with <= 2^24 cells, got {res}")
    cap = max(k, min(num_k, int(max_candidates)))
    pre = min(num_k, 4 * cap)
    c = centers.detach()
    cells = _cell_centers(res, dim, c.dtype, c.device)
    half = 0.5 / res
    half_diag = half * math.sqrt(dim)
    chunk = max(1, 2**24 // num_k)
    lists, overflow = [], []
    with torch.no_grad():
        for start in range(0, cells.shape[0], chunk):
            block = cells[start : start + chunk]
            # pre-selection by distance to the cell centre (a matmul-based cdist), then exact
            # box distances on the pre-selected kernels only
            dc, pidx = torch.cdist(block, c).topk(pre, dim=1, largest=False, sorted=True)
            a = (block[:, None, :] - c[pidx]).abs()  # [B, pre, D]
            mind = (a - half).clamp_min(0).pow(2).sum(-1)
            maxd = (a + half).pow(2).sum(-1)
            bound = maxd.kthvalue(k, dim=1, keepdim=True).values  # >= the exact bound U
            vals, order = mind.topk(cap, dim=1, largest=False, sorted=True)
            idx = pidx.gather(1, order)
            keep = vals <= bound
            full = keep.sum(1) >= cap
            if pre < num_k:  # a kernel outside the pre-selection might still qualify
                full = full | ((dc[:, -1] - half_diag - 1e-3).clamp_min(0).pow(2) <= bound[:, 0])
            overflow.append(full if cap < num_k or pre < num_k else torch.zeros_like(full))
            lists.append(torch.where(keep, idx, torch.full_like(idx, -1)))
            lists[-1] = lists[-1][:, : max(k, int(keep.sum(1).max()))]
    width = max(t.shape[1] for t in lists)
    padded = [
        torch.cat([t, torch.full_like(t[:, :1], -1).expand(-1, width - t.shape[1])], 1)
        for t in lists
    ]
    flags = torch.cat(overflow)
    return NeighborTable(torch.cat(padded).contiguous(), flags, res, k, bool(flags.any()))


def cell_index(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Flat cell index ``[N]`` of points ``[N, D]`` in a ``resolution^D`` grid (last axis fastest;
    points outside ``[0, 1]^D`` use the nearest border cell)."""
    cell = (x.detach() * resolution).floor().long().clamp(0, resolution - 1)
    flat = torch.zeros_like(cell[:, 0])
    for i in range(x.shape[1]):
        flat = flat * resolution + cell[:, i]
    return flat


def knn_lookup(
    x: torch.Tensor, centers: torch.Tensor, table: NeighborTable, k: int | None = None
) -> torch.Tensor:
    """Indices ``[N, k]`` of each point's ``k`` nearest kernel centres, nearest first.

    Ranks the candidates of the point's cell (exact for points inside ``[0, 1]^D``; points in
    overflow cells are ranked against every kernel). No gradients flow through the indices.
    Ties between equidistant kernels may be broken differently from :func:`knn_bruteforce`.
    """
    k = table.k if k is None else k
    if k > table.k:
        raise InputError(f"knn_lookup k={k} exceeds the k={table.k} the table was built for")
    with torch.no_grad():
        cells = cell_index(x, table.resolution)
        cand = table.candidates[cells]  # [N, M]
        valid = cand >= 0
        cand = cand.clamp_min(0)
        d2 = (x.detach()[:, None, :] - centers.detach()[cand]).pow(2).sum(-1)
        d2 = d2.masked_fill(~valid, float("inf"))
        order = d2.topk(k, dim=1, largest=False, sorted=True).indices
        out = cand.gather(1, order)
        if not table.any_overflow:
            return out
        spill = table.overflow[cells]
        if torch.compiler.is_compiling():  # no data-dependent branch inside a graph
            exact = knn_bruteforce(x.detach(), centers, k)
            return torch.where(spill[:, None], exact, out)
        if bool(spill.any()):
            out[spill] = knn_bruteforce(x.detach()[spill], centers, k)
        return out


def knn_bruteforce(
    x: torch.Tensor, centers: torch.Tensor, k: int, chunk: int = 8192
) -> torch.Tensor:
    """Reference nearest-kernel search over all pairs (``[N, k]``, nearest first)."""
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], chunk):
            dist = torch.cdist(
                x[start : start + chunk].detach(),
                centers.detach(),
                compute_mode="donot_use_mm_for_euclid_dist",
            )
            out.append(dist.topk(k, dim=1, largest=False, sorted=True).indices)
    return torch.cat(out) if out else torch.zeros(0, k, dtype=torch.long, device=x.device)


# ---------------------------------------------------------------------------------------------
# initialisation from the signal
# ---------------------------------------------------------------------------------------------
def weighted_kmeans(
    points: torch.Tensor,
    weights: torch.Tensor,
    num_clusters: int,
    iterations: int = 10,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's algorithm minimising ``sum_i w_i |p_i - c_{a(i)}|^2`` on the tensor backend.

    Seeds are drawn from the points with probability proportional to ``w`` (without
    replacement); each assignment step uses the grid-bucketed nearest-centre search; an empty
    cluster keeps its previous centre.

    Args:
        points: ``[P, D]`` in ``[0, 1]^D``.
        weights: ``[P]`` non-negative, not all zero.
        num_clusters: ``K <= P``.
        iterations: Lloyd iterations.
        generator: CPU RNG for the seeding.

    Returns:
        ``(centers [K, D], assignment [P])``.
    """
    check_tensor(points, "weighted_kmeans points [P, D]", ndim=2)
    check_tensor(weights, "weighted_kmeans weights [P]", ndim=1, device=points.device)
    n = points.shape[0]
    if weights.shape[0] != n:
        raise InputError(
            f"weighted_kmeans needs one weight per point ({n}), got {weights.shape[0]}"
        )
    if bool((weights < 0).any()) or float(weights.sum()) <= 0:
        raise InputError("weighted_kmeans weights must be non-negative and not all zero")
    if not 1 <= num_clusters <= n:
        raise InputError(
            f"weighted_kmeans needs 1 <= num_clusters <= {n} points, got {num_clusters}"
        )
    w = weights.to(points.dtype)
    probs = (w + 1e-12 * float(w.max())).double().cpu()
    seeds = torch.multinomial(probs, num_clusters, replacement=False, generator=generator)
    centers = points[seeds.to(points.device)].clone()
    assign = torch.zeros(n, dtype=torch.long, device=points.device)
    for _ in range(max(iterations, 1)):
        table = build_neighbor_table(centers, 1)
        assign = knn_lookup(points, centers, table, 1)[:, 0]
        mass = torch.zeros(num_clusters, dtype=points.dtype, device=points.device).index_add_(
            0, assign, w
        )
        total = torch.zeros_like(centers).index_add_(0, assign, points * w[:, None])
        filled = mass > 0
        centers[filled] = total[filled] / mass[filled, None]
    return centers, assign


def kernel_shapes_from_clusters(
    points: torch.Tensor,
    weights: torch.Tensor,
    centers: torch.Tensor,
    assign: torch.Tensor,
    alpha: float = 0.5,
    min_std: float | None = None,
    max_std: float = 0.5,
) -> torch.Tensor:
    """Shape matrices ``A_j`` ``[K, D, D]`` from each cluster's weighted covariance.

    ``Sigma_j = sum_i w_i (p_i - c_j)(p_i - c_j)^T / sum_i w_i`` over the cluster's points; its
    eigenvalues are clamped to ``[min_std^2, max_std^2]`` (``min_std`` defaults to half the
    mean kernel spacing ``K^{-1/D}``, which also covers empty or one-point clusters) and
    ``A_j = (alpha * Sigma_j)^{-1/2}``, so that ``q = 1`` on the ``sqrt(alpha)``-sigma ellipsoid.
    """
    num_k, dim = centers.shape
    if min_std is None:
        min_std = 0.5 * num_k ** (-1.0 / dim)
    w = weights.to(points.dtype)
    diff = points - centers[assign]
    outer = diff[:, :, None] * diff[:, None, :] * w[:, None, None]
    cov = torch.zeros(num_k, dim, dim, dtype=points.dtype, device=points.device).index_add_(
        0, assign, outer
    )
    mass = torch.zeros(num_k, dtype=points.dtype, device=points.device).index_add_(0, assign, w)
    cov = cov / mass.clamp_min(1e-12)[:, None, None]
    evals, evecs = torch.linalg.eigh(cov.double())
    evals = evals.clamp(min_std**2, max_std**2) * alpha
    inv_sqrt = evecs @ torch.diag_embed(evals.rsqrt()) @ evecs.transpose(-1, -2)
    return inv_sqrt.to(points.dtype)


def image_gradient_weights(image: torch.Tensor) -> torch.Tensor:
    """NeuRBF's image weighting: the gradient magnitude ``[H * W]`` of an image ``[H, W(, C)]``
    (central differences, summed over channels), row-major like the pixel grid."""
    img = image if image.dim() == 3 else image[..., None]
    gy = torch.zeros_like(img)
    gx = torch.zeros_like(img)
    gy[1:-1] = 0.5 * (img[2:] - img[:-2])
    gx[:, 1:-1] = 0.5 * (img[:, 2:] - img[:, :-2])
    return (gx.pow(2) + gy.pow(2)).sum(-1).sqrt().reshape(-1)


def sdf_surface_weights(sdf: torch.Tensor, threshold: float = 0.01) -> torch.Tensor:
    """NeuRBF's SDF weighting ``1 / (|sdf| + threshold)`` (kernels gather near the surface)."""
    return 1.0 / (sdf.abs().reshape(-1) + threshold)


# ---------------------------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------------------------
def log_frequencies(channels: int, low: float, high: float, keep: int = 0) -> torch.Tensor:
    """``keep`` zeros (plain radial channels) then ``channels - keep`` log-spaced frequencies."""
    if not 0 <= keep <= channels or channels < 1:
        raise InputError(
            f"need 0 <= keep <= channels and channels >= 1, got keep={keep}, channels={channels}"
        )
    if not (0 < low <= high):
        raise InputError(f"frequency range must satisfy 0 < low <= high, got ({low}, {high})")
    n = channels - keep
    sines = (
        torch.logspace(math.log10(low), math.log10(high), n, dtype=torch.float64)
        if n
        else torch.zeros(0)
    )
    return torch.cat([torch.zeros(keep, dtype=torch.float64), sines.double()]).float()


def _forget_table(module: nn.Module, _keys: Any) -> None:
    """After ``load_state_dict`` the centres may differ: rebuild the grid on next use."""
    if isinstance(module, AdaptiveRBF):
        module._table = None
        module.table_centers = None


class AdaptiveRBF(nn.Module):
    """NeuRBF adaptive radial-basis encoding of points in ``[0, 1]^D``.

    Args:
        in_dim: coordinate dimension ``D`` (1-4).
        num_kernels: ``K``.
        features: output channels ``C`` (per-kernel feature vector length).
        kind: ``"inverse_quadratic"`` (NeuRBF's default) or ``"gaussian"``.
        neighbors: ``k`` nearest kernels per point (4 in NeuRBF's image setting).
        freq_range: ``(low, high)`` of the log-spaced composition frequencies.
        keep: channels without a sinusoid (the plain radial value).
        normalize: normalise the ``k`` radial values by their stop-gradient sum.
        learn_positions: train centres and shapes too (NeuRBF keeps them at their
            initialisation for images; when trained, call :meth:`refresh_neighbors` now and then).
        feature_init: weights start uniform in ``[-feature_init, feature_init]``.
        table_resolution: cells per axis of the neighbour grid (default: about 2 kernels per cell).
        backend: backend of the ``rbf_features`` op.
        generator: RNG for the initial layout and weights.

    Until :meth:`init_from_signal` runs, centres sit on a regular (or, for a non-power ``K``,
    uniform random) layout with isotropic shapes matched to the spacing.

    Shapes: ``x [N, D] -> [N, C]``.
    """

    freqs: torch.Tensor

    def __init__(
        self,
        in_dim: int,
        num_kernels: int,
        features: int = 32,
        kind: str = "inverse_quadratic",
        neighbors: int = 4,
        freq_range: tuple[float, float] = (0.125, 4096.0),
        keep: int = 0,
        normalize: bool = True,
        learn_positions: bool = False,
        feature_init: float = 1e-4,
        table_resolution: int | None = None,
        backend: str = "auto",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= in_dim <= 4:
            raise InputError(f"AdaptiveRBF supports 1-4 D coordinates, got in_dim={in_dim}")
        if num_kernels < 1 or features < 1:
            raise InputError(
                f"AdaptiveRBF needs num_kernels >= 1 and features >= 1, got {num_kernels}, {features}"
            )
        if not 1 <= neighbors <= num_kernels:
            raise InputError(
                f"AdaptiveRBF neighbors must be in [1, {num_kernels}], got {neighbors}"
            )
        if kind not in KINDS:
            raise InputError(f"unknown radial basis kind {kind!r}; expected one of {KINDS}")
        self.in_dim = in_dim
        self.num_kernels = num_kernels
        self.out_dim = features
        self.kind = kind
        self.neighbors = neighbors
        self.normalize = normalize
        self.backend = backend
        self.table_resolution = table_resolution
        per_axis = round(num_kernels ** (1.0 / in_dim))
        if per_axis**in_dim == num_kernels:
            axis = (torch.arange(per_axis, dtype=torch.float64) + 0.5) / per_axis
            mesh = torch.meshgrid(*([axis] * in_dim), indexing="ij")
            centers = torch.stack([m.reshape(-1) for m in mesh], -1)
        else:
            centers = torch.rand(num_kernels, in_dim, generator=generator, dtype=torch.float64)
        spacing = num_kernels ** (-1.0 / in_dim)
        shapes = torch.eye(in_dim, dtype=torch.float64).repeat(num_kernels, 1, 1) / spacing
        w = (
            torch.rand(num_kernels, features, generator=generator, dtype=torch.float64) * 2 - 1
        ) * feature_init
        self.centers = nn.Parameter(centers.float(), requires_grad=learn_positions)
        self.shapes = nn.Parameter(shapes.float(), requires_grad=learn_positions)
        self.weights = nn.Parameter(w.float())
        self.register_buffer("freqs", log_frequencies(features, *freq_range, keep=keep))
        self._table: NeighborTable | None = None
        self.table_centers: torch.Tensor | None = None
        """The centres the current neighbour grid was built from."""
        self.register_load_state_dict_post_hook(_forget_table)

    @property
    def learn_positions(self) -> bool:
        """Whether centres and shapes are trained."""
        return bool(self.centers.requires_grad)

    def refresh_neighbors(self, centers: torch.Tensor | None = None) -> NeighborTable:
        """Rebuild the neighbour grid from the current centres (after they moved), or from
        ``centers`` (e.g. :attr:`table_centers` of a checkpoint, to resume exactly)."""
        source = (self.centers if centers is None else centers).detach().to(self.centers.device)
        self.table_centers = source.clone()
        self._table = build_neighbor_table(source, self.neighbors, self.table_resolution)
        return self._table

    def neighbor_table(self) -> NeighborTable:
        """The current neighbour grid (built on first use, or when the device changed)."""
        if self._table is None or self._table.candidates.device != self.centers.device:
            return self.refresh_neighbors()
        return self._table

    @torch.no_grad()
    def init_from_signal(
        self,
        points: torch.Tensor,
        weights: torch.Tensor,
        iterations: int = 10,
        alpha: float = 0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        """NeuRBF initialisation: weighted k-means centres and cluster-covariance shapes.

        Args:
            points: ``[P, D]`` sample positions in ``[0, 1]^D`` (pixel centres, SDF samples).
            weights: ``[P]`` importance (:func:`image_gradient_weights`, :func:`sdf_surface_weights`).
            iterations: Lloyd iterations.
            alpha: shape scale (see :func:`kernel_shapes_from_clusters`).
            generator: RNG for the k-means seeding.
        """
        check_tensor(points, "AdaptiveRBF init points [P, D]", ndim=2)
        if points.shape[1] != self.in_dim:
            raise InputError(
                f"AdaptiveRBF expected {self.in_dim}-D points, got {tuple(points.shape)}"
            )
        p = points.to(self.centers.device, torch.float32)
        w = weights.to(self.centers.device, torch.float32)
        centers, assign = weighted_kmeans(p, w, self.num_kernels, iterations, generator)
        shapes = kernel_shapes_from_clusters(p, w, centers, assign, alpha=alpha)
        self.centers.copy_(centers)
        self.shapes.copy_(shapes)
        self.refresh_neighbors()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eager = not torch.compiler.is_compiling()  # value checks sync: eager mode only
        check_tensor(x, "AdaptiveRBF input x [N, D]", ndim=2, finite=eager)
        if x.shape[1] != self.in_dim:
            raise InputError(
                f"AdaptiveRBF expected {self.in_dim}-D coordinates, got shape {tuple(x.shape)}"
            )
        if eager and x.numel():
            lo, hi = (float(v) for v in torch.aminmax(x.detach()))
            if lo < 0.0 or hi > 1.0:
                raise InputError(
                    f"AdaptiveRBF input must lie in the unit cube [0, 1]^{self.in_dim}; got "
                    f"values in [{lo:.4g}, {hi:.4g}]; rescale (e.g. (x - lo) / (hi - lo))"
                )
        index = knn_lookup(x, self.centers, self.neighbor_table(), self.neighbors)
        dtype = x.dtype
        return rbf_features(
            x,
            self.centers.to(dtype),
            self.shapes.to(dtype),
            self.weights.to(dtype),
            self.freqs.to(dtype),
            index,
            kind=self.kind,
            normalize=self.normalize,
            backend=self.backend,
        )

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, num_kernels={self.num_kernels}, features={self.out_dim}, "
            f"kind={self.kind!r}, neighbors={self.neighbors}, learn_positions={self.learn_positions}"
        )


class NeuRBFHybrid(nn.Module):
    """NeuRBF's hybrid: adaptive RBF features next to a grid encoding's features, plus a bias.

    .. math:: \\phi(x) = [\\,\\mathrm{grid}(x),\\; f_{\\mathrm{RBF}}(x)\\,] + b

    Args:
        rbf: the adaptive part.
        grid: any encoding with ``out_dim`` (a small :class:`~fields.encodings.hashgrid.HashGrid`
            in NeuRBF); ``None`` for RBF features alone.
        bias_init: ``b`` starts uniform in ``[-bias_init, bias_init]``.
        generator: RNG for ``b``.

    Shapes: ``x [N, D] -> [N, grid.out_dim + rbf.out_dim]``.
    """

    def __init__(
        self,
        rbf: AdaptiveRBF,
        grid: nn.Module | None = None,
        bias_init: float = 1e-4,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.rbf = rbf
        self.grid = grid
        self.in_dim = rbf.in_dim
        grid_dim = 0 if grid is None else int(cast(int, grid.out_dim))
        self.out_dim = rbf.out_dim + grid_dim
        b = (torch.rand(self.out_dim, generator=generator, dtype=torch.float64) * 2 - 1) * bias_init
        self.bias = nn.Parameter(b.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [] if self.grid is None else [self.grid(x).to(x.dtype)]
        parts.append(self.rbf(x))
        return torch.cat(parts, dim=-1) + self.bias.to(x.dtype)
