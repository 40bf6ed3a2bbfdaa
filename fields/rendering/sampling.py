"""Where to sample along rays: an occupancy grid with empty-space-skipping ray marching (bounded
scenes), stratified sampling, scene contraction and proposal (PDF) resampling (unbounded scenes).

Ray marching (:func:`march`): each ray is clipped to the scene's axis-aligned box ``aabb``, cut
into intervals of length ``step_size`` (``[t0 + k dt, t0 + (k + 1) dt]``), and an interval is kept
only where the :class:`OccupancyGrid` marks its sample position occupied. The sample position is
``t0 + (k + u) dt`` with ``u`` uniform per sample in training (stratified) and ``1/2`` for
evaluation. Everything is tensor code (no CUDA extension); nerfacc's CUDA kernels do the same on
GPUs only. Output is the packed layout of :mod:`fields.rendering.render`.

The occupancy grid follows Instant-NGP / nerfacc: a ``R^3`` grid over ``aabb`` holding an
exponential moving maximum of the density seen in each cell; every ``update_every`` steps it
re-evaluates the density at a random point of (during warm-up) every cell or (afterwards) a
quarter of all cells drawn uniformly plus as many occupied ones; a cell is occupied when its
value exceeds ``min(threshold, mean)``, the threshold being on the opacity of one step,
``sigma * step_size``.

Unbounded scenes: :func:`contract` (mip-NeRF 360) maps all of space into a ball of radius 2;
:func:`spacing_to_distance` places samples uniformly in ``s = g(t)`` with
``g(t) = t`` for ``t < 1`` and ``2 - 1/t`` beyond (uniform near the camera, in disparity far
away); :func:`sample_pdf` resamples intervals from the weights of a proposal field, and
:func:`interlevel_loss` (mip-NeRF 360's proposal loss) trains the proposal to bound the fine
weights from above.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn

from fields.rendering.cameras import Rays
from neurosim.backend import InputError, check_tensor


class Samples(NamedTuple):
    """Packed samples: ``[S]`` tensors and the number of rays they belong to.

    ``positions`` is where along the ray the field is evaluated (inside ``[t_starts, t_ends]``).
    """

    ray_indices: torch.Tensor
    t_starts: torch.Tensor
    t_ends: torch.Tensor
    positions: torch.Tensor
    n_rays: int

    def points(self, rays: Rays) -> torch.Tensor:
        """World points ``[S, 3]`` of the samples."""
        return (
            rays.origins[self.ray_indices]
            + rays.directions[self.ray_indices] * self.positions[:, None]
        )

    def select(self, keep: torch.Tensor) -> Samples:
        """The samples where ``keep [S]`` (bool) is true (order kept)."""
        return Samples(
            self.ray_indices[keep],
            self.t_starts[keep],
            self.t_ends[keep],
            self.positions[keep],
            self.n_rays,
        )


def check_aabb(aabb: torch.Tensor | list[float] | tuple[float, ...]) -> torch.Tensor:
    """``[6]`` tensor ``(xmin, ymin, zmin, xmax, ymax, zmax)`` with positive extent."""
    box = torch.as_tensor(aabb, dtype=torch.float32).flatten()
    if box.shape != (6,) or not bool(torch.isfinite(box).all()):
        raise InputError(f"aabb must be 6 finite numbers (min xyz, max xyz), got {aabb}")
    if bool((box[3:] <= box[:3]).any()):
        raise InputError(f"aabb max corner must exceed its min corner, got {box.tolist()}")
    return box


def intersect_aabb(
    origins: torch.Tensor, directions: torch.Tensor, aabb: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit distances ``(t_near, t_far)`` ``[N]`` of rays through a box (slab method).

    A ray that misses the box has ``t_far <= t_near``. Axis-parallel directions are handled by
    IEEE infinities.
    """
    box = aabb.to(origins)
    inv = 1.0 / torch.where(directions == 0, torch.full_like(directions, 1e-12), directions)
    t1 = (box[:3] - origins) * inv
    t2 = (box[3:] - origins) * inv
    t_near = torch.minimum(t1, t2).amax(dim=-1)
    t_far = torch.maximum(t1, t2).amin(dim=-1)
    return t_near, t_far


class OccupancyGrid(nn.Module):
    """Binary occupancy of a ``resolution^3`` grid over ``aabb`` (see the module docstring).

    Args:
        aabb: the scene box ``(xmin, ymin, zmin, xmax, ymax, zmax)``.
        resolution: cells per axis.
        threshold: opacity of one marching step, ``sigma * step_size``, above which a cell is
            occupied (capped by the mean over the grid).
        decay: factor of the moving maximum per update of a cell.
        warmup_steps: updates before this step evaluate every cell.
        update_every: steps between updates (:meth:`maybe_update`).

    Buffers (saved with the model): ``density [R^3]`` (the moving maximum of ``sigma``) and
    ``occupied [R^3]`` (bool; everything starts occupied).
    """

    aabb: torch.Tensor
    density: torch.Tensor
    occupied: torch.Tensor

    def __init__(
        self,
        aabb: torch.Tensor | list[float] | tuple[float, ...],
        resolution: int = 64,
        threshold: float = 0.01,
        decay: float = 0.95,
        warmup_steps: int = 256,
        update_every: int = 16,
    ) -> None:
        super().__init__()
        if resolution < 1 or resolution > 1024:
            raise InputError(f"occupancy grid resolution must be in [1, 1024], got {resolution}")
        if not 0 < decay <= 1:
            raise InputError(f"occupancy grid decay must be in (0, 1], got {decay}")
        if threshold < 0:
            raise InputError(f"occupancy grid threshold must be >= 0, got {threshold}")
        if update_every < 1:
            raise InputError(f"occupancy grid update_every must be >= 1, got {update_every}")
        self.register_buffer("aabb", check_aabb(aabb))
        self.resolution = int(resolution)
        self.threshold = float(threshold)
        self.decay = float(decay)
        self.warmup_steps = int(warmup_steps)
        self.update_every = int(update_every)
        cells = self.resolution**3
        self.register_buffer("density", torch.zeros(cells))
        self.register_buffer("occupied", torch.ones(cells, dtype=torch.bool))

    @property
    def occupied_fraction(self) -> float:
        """Share of occupied cells (a host sync: for logging)."""
        return float(self.occupied.float().mean())

    def cell_index(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat cell index ``[M]`` of world points and whether each lies inside the box."""
        lo, hi = self.aabb[:3], self.aabb[3:]
        u = (points - lo) / (hi - lo)
        inside = ((u >= 0) & (u <= 1)).all(dim=-1)
        r = self.resolution
        ijk = (u * r).long().clamp(0, r - 1)
        return (ijk[:, 0] * r + ijk[:, 1]) * r + ijk[:, 2], inside

    def is_occupied(self, points: torch.Tensor) -> torch.Tensor:
        """``[M]`` bool: the points lie inside the box in an occupied cell."""
        index, inside = self.cell_index(points)
        return self.occupied[index] & inside

    def cell_points(self, cells: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
        """World points ``[M, 3]`` at ``jitter [M, 3]`` (in [0, 1)) inside the given cells."""
        r = self.resolution
        k = cells % r
        j = (cells // r) % r
        i = cells // (r * r)
        ijk = torch.stack((i, j, k), dim=-1).to(jitter.dtype)
        lo, hi = self.aabb[:3], self.aabb[3:]
        return lo + (ijk + jitter) / r * (hi - lo)

    @torch.no_grad()
    def update(
        self,
        density_fn: Callable[[torch.Tensor], torch.Tensor],
        step: int,
        step_size: float,
        generator: torch.Generator,
        chunk: int = 1 << 18,
    ) -> None:
        """Re-evaluate ``density_fn(points [M, 3]) -> sigma [M]`` at random points of cells."""
        device = self.density.device
        cells_total = self.resolution**3
        if step < self.warmup_steps:
            cells = torch.arange(cells_total, device=device)
        else:
            n = max(1, cells_total // 4)
            uniform = torch.randint(0, cells_total, (n,), generator=generator).to(device)
            occupied = torch.nonzero(self.occupied).squeeze(-1)
            if occupied.numel():
                pick = torch.randint(0, occupied.numel(), (n,), generator=generator).to(device)
                cells = torch.cat((uniform, occupied[pick]))
            else:
                cells = uniform
        jitter = torch.rand(cells.shape[0], 3, generator=generator).to(device)
        points = self.cell_points(cells, jitter)
        sigma = torch.cat(
            [
                density_fn(points[i : i + chunk]).float().reshape(-1)
                for i in range(0, len(points), chunk)
            ]
        )
        opacity = sigma * step_size
        # the same cell drawn twice keeps its larger value (scatter_reduce amax)
        decayed = self.density * self.decay
        fresh = torch.full_like(self.density, -1.0).scatter_reduce(
            0, cells, opacity, reduce="amax", include_self=True
        )
        touched = fresh >= 0
        self.density.copy_(torch.where(touched, torch.maximum(decayed, fresh), self.density))
        threshold = torch.clamp(self.density.mean(), max=self.threshold)
        self.occupied.copy_(self.density > threshold)

    def maybe_update(
        self,
        density_fn: Callable[[torch.Tensor], torch.Tensor],
        step: int,
        step_size: float,
        generator: torch.Generator,
    ) -> bool:
        """:meth:`update` when ``step % update_every == 0``; returns whether it did."""
        if step % self.update_every:
            return False
        self.update(density_fn, step, step_size, generator)
        return True


def march(
    rays: Rays,
    aabb: torch.Tensor,
    step_size: float,
    grid: OccupancyGrid | None = None,
    *,
    near: float | torch.Tensor = 0.0,
    far: float | torch.Tensor = math.inf,
    generator: torch.Generator | None = None,
    jitter: torch.Tensor | None = None,
    max_steps: int = 4096,
) -> Samples:
    """Packed samples of ``rays`` inside ``aabb`` every ``step_size``, empty cells skipped.

    Args:
        rays: the rays (unit directions, so ``t`` is a distance).
        aabb: the scene box.
        step_size: interval length ``dt``.
        grid: an :class:`OccupancyGrid` (``None``: keep every interval in the box).
        near, far: clip the rays to ``[near, far]`` as well (numbers, or ``[N]`` per ray).
        generator: draws the position of each sample inside its interval (stratified); ``None``
            evaluates at the interval midpoints (deterministic, for rendering test views).
        jitter: ``[N]`` in ``[0, 1)``: one position per ray for all its intervals
            (``t0 + (k + jitter) dt``; takes precedence over ``generator``). Drawn for a global
            batch and sharded, it makes data-parallel ranks sample exactly as one process.
        max_steps: at most this many intervals per ray.
    """
    if step_size <= 0:
        raise InputError(f"step_size must be positive, got {step_size}")
    o, d = rays.origins, rays.directions
    t0, t1 = intersect_aabb(o, d, aabb)
    t0 = torch.maximum(t0, torch.as_tensor(near, dtype=t0.dtype, device=t0.device))
    t1 = torch.minimum(t1, torch.as_tensor(far, dtype=t1.dtype, device=t1.device))
    span = (t1 - t0).clamp(min=0.0)
    counts = torch.ceil(span / step_size).long().clamp(max=max_steps)
    n_rays = o.shape[0]
    ray_indices = torch.repeat_interleave(torch.arange(n_rays, device=o.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    k = torch.arange(ray_indices.shape[0], device=o.device) - starts[ray_indices]
    base = t0[ray_indices]
    end = t1[ray_indices]
    t_starts = base + k.to(base.dtype) * step_size
    t_ends = torch.minimum(t_starts + step_size, end)
    if jitter is not None:
        u = jitter.to(t_starts.dtype)[ray_indices]
    elif generator is None:
        u = torch.full_like(t_starts, 0.5)
    else:
        u = torch.rand(t_starts.shape[0], generator=generator, dtype=t_starts.dtype).to(o.device)
    positions = t_starts + u * (t_ends - t_starts)
    samples = Samples(ray_indices, t_starts, t_ends, positions, n_rays)
    if grid is not None:
        samples = samples.select(grid.is_occupied(samples.points(rays)))
    return samples


# ---------------------------------------------------------------------------------------------
# unbounded scenes: contraction, spacing, stratified and PDF sampling


def contract(x: torch.Tensor, order: float = math.inf) -> torch.Tensor:
    """mip-NeRF 360's scene contraction into the ball of radius 2 (of the ``order`` norm).

    ``x`` if ``|x| <= 1``, else ``(2 - 1 / |x|) x / |x|``. ``order`` is ``2`` (Euclidean) or
    ``inf`` (the box ``[-2, 2]^3``, which a grid fills without waste; nerfstudio's default).
    """
    norm = torch.linalg.vector_norm(x, ord=order, dim=-1, keepdim=True)
    safe = norm.clamp(min=1.0)
    return torch.where(norm <= 1.0, x, (2.0 - 1.0 / safe) * (x / safe))


def distance_to_spacing(t: torch.Tensor) -> torch.Tensor:
    """``g(t) = t`` for ``t < 1``, ``2 - 1/t`` beyond (linear, then uniform in disparity)."""
    return torch.where(t < 1.0, t, 2.0 - 1.0 / t.clamp(min=1.0))


def spacing_to_distance(s: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`distance_to_spacing` (``s`` in ``[0, 2)``)."""
    return torch.where(s < 1.0, s, 1.0 / (2.0 - s).clamp(min=1e-6))


def stratified_bins(
    n_rays: int,
    n_samples: int,
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``[N, n_samples + 1]`` bin edges in ``[0, 1]``: uniform, each inner edge jittered within
    its stratum when ``generator`` is given (``None``: the exact uniform edges)."""
    edges = torch.linspace(0.0, 1.0, n_samples + 1, device=device, dtype=dtype)
    edges = edges.expand(n_rays, n_samples + 1)
    if generator is None:
        return edges.contiguous()
    jitter = torch.rand(n_rays, n_samples + 1, generator=generator, dtype=dtype).to(device)
    mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
    lower = torch.cat((edges[:, :1], mids), dim=-1)
    upper = torch.cat((mids, edges[:, -1:]), dim=-1)
    return lower + (upper - lower) * jitter


def sample_pdf(
    bins: torch.Tensor,
    weights: torch.Tensor,
    n_samples: int,
    generator: torch.Generator | None = None,
    padding: float = 0.01,
) -> torch.Tensor:
    """Inverse-transform sampling of new bin edges from a piecewise-constant density.

    Args:
        bins: ``[N, B + 1]`` sorted edges.
        weights: ``[N, B]`` non-negative mass of each bin.
        n_samples: number of new intervals (``n_samples + 1`` edges are returned).
        generator: stratified jitter of the quantiles (``None``: evenly spaced quantiles).
        padding: added to every weight before normalising (keeps every bin reachable).

    Returns:
        ``[N, n_samples + 1]`` sorted edges inside ``[bins[:, 0], bins[:, -1]]``, no gradient.
    """
    check_tensor(bins, "sample_pdf bins [N, B + 1]", ndim=2)
    if weights.shape != (bins.shape[0], bins.shape[1] - 1):
        raise InputError(
            f"sample_pdf weights must be [N, B] = {(bins.shape[0], bins.shape[1] - 1)}, "
            f"got {tuple(weights.shape)}"
        )
    bins = bins.detach()
    w = weights.detach().clamp(min=0.0) + padding
    pdf = w / w.sum(-1, keepdim=True)
    cdf = torch.cat((torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)), dim=-1).clamp(max=1.0)
    u = stratified_bins(bins.shape[0], n_samples, generator, bins.device, bins.dtype)
    idx = torch.searchsorted(cdf.contiguous(), u.contiguous(), right=True)
    below = (idx - 1).clamp(0, cdf.shape[-1] - 1)
    above = idx.clamp(0, cdf.shape[-1] - 1)
    cdf_lo, cdf_hi = cdf.gather(-1, below), cdf.gather(-1, above)
    bin_lo, bin_hi = bins.gather(-1, below), bins.gather(-1, above)
    denom = cdf_hi - cdf_lo
    frac = torch.where(denom > 1e-12, (u - cdf_lo) / denom.clamp(min=1e-12), 0.0)
    return bin_lo + frac.clamp(0.0, 1.0) * (bin_hi - bin_lo)


def outer_weights(
    t_fine: torch.Tensor, t_coarse: torch.Tensor, w_coarse: torch.Tensor
) -> torch.Tensor:
    """``[N, F]``: for each fine interval, the coarse mass of every coarse interval overlapping it.

    mip-NeRF 360's outer measure: ``t_fine [N, F + 1]``, ``t_coarse [N, C + 1]``,
    ``w_coarse [N, C]``.
    """
    csum = torch.cat((torch.zeros_like(w_coarse[:, :1]), torch.cumsum(w_coarse, -1)), dim=-1)
    lo = torch.searchsorted(t_coarse.contiguous(), t_fine[:, :-1].contiguous(), right=True) - 1
    hi = torch.searchsorted(t_coarse.contiguous(), t_fine[:, 1:].contiguous(), right=False)
    lo = lo.clamp(0, csum.shape[-1] - 1)
    hi = hi.clamp(0, csum.shape[-1] - 1)
    return csum.gather(-1, hi) - csum.gather(-1, lo)


def interlevel_loss(
    t_fine: torch.Tensor,
    w_fine: torch.Tensor,
    t_coarse: torch.Tensor,
    w_coarse: torch.Tensor,
    eps: float = 1e-7,
) -> torch.Tensor:
    """mip-NeRF 360's proposal loss: ``mean sum max(0, w - outer)^2 / (w + eps)``.

    Zero when the coarse (proposal) weights bound the fine weights from above; the fine weights
    are treated as constants (their gradient flows only to the proposal).
    """
    w = w_fine.detach()
    bound = outer_weights(t_fine.detach(), t_coarse.detach(), w_coarse)
    return ((w - bound).clamp(min=0.0).pow(2) / (w + eps)).sum(-1).mean()


class ProposalSampler(nn.Module):
    """Proposal sampling for unbounded (or bounded) scenes, as mip-NeRF 360 / nerfacto.

    Samples start uniform in the spacing ``s = g(t)`` (:func:`distance_to_spacing`) between
    ``near`` and ``far``; each proposal density field (``[M, 3]`` contracted points in
    ``[0, 1]^3`` -> ``sigma [M]``) is rendered on them and its weights resampled
    (:func:`sample_pdf`) into the next, finer set; the last set goes to the main field.

    Args:
        proposals: the proposal density fields (small, e.g. a 5-level hash grid + tiny MLP).
        samples_per_level: intervals per ray for each proposal, then for the main field
            (``len(proposals) + 1`` numbers, e.g. ``(256, 96, 48)``).
        near, far: the ray range.
        order: norm of :func:`contract`.
    """

    def __init__(
        self,
        proposals: Sequence[nn.Module],
        samples_per_level: tuple[int, ...] = (256, 96, 48),
        near: float = 0.05,
        far: float = 1000.0,
        order: float = math.inf,
    ) -> None:
        super().__init__()
        if len(samples_per_level) != len(proposals) + 1:
            raise InputError(
                f"ProposalSampler needs {len(proposals) + 1} sample counts for "
                f"{len(proposals)} proposal fields, got {samples_per_level}"
            )
        if not 0 < near < far:
            raise InputError(f"ProposalSampler needs 0 < near < far, got {near}, {far}")
        self.proposals = nn.ModuleList(proposals)
        self.samples_per_level = tuple(int(n) for n in samples_per_level)
        self.near = float(near)
        self.far = float(far)
        self.order = order

    def to_distance(self, s: torch.Tensor) -> torch.Tensor:
        g0 = distance_to_spacing(torch.tensor(self.near))
        g1 = distance_to_spacing(torch.tensor(self.far))
        return spacing_to_distance(g0 + s * (g1 - g0))

    def field_input(self, points: torch.Tensor) -> torch.Tensor:
        """Contracted points in the unit cube ``[0, 1]^3``."""
        return ((contract(points, self.order) + 2.0) / 4.0).clamp(0.0, 1.0)

    def forward(
        self, rays: Rays, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """``(s_bins [N, n + 1] of the main field, [(t_bins, weights) per proposal])``.

        The main field's distances are ``self.to_distance(s_bins)``. The proposal list feeds
        :func:`interlevel_loss`.
        """
        n = len(rays)
        device = rays.origins.device
        s = stratified_bins(n, self.samples_per_level[0], generator, device)
        history: list[tuple[torch.Tensor, torch.Tensor]] = []
        for level, proposal in enumerate(self.proposals):
            t = self.to_distance(s)
            mids = 0.5 * (t[:, 1:] + t[:, :-1])
            points = rays.origins[:, None, :] + rays.directions[:, None, :] * mids[..., None]
            sigma = proposal(self.field_input(points.reshape(-1, 3))).reshape(mids.shape)
            tau = sigma * (t[:, 1:] - t[:, :-1])
            weights = (1.0 - torch.exp(-tau)) * torch.exp(-(torch.cumsum(tau, -1) - tau))
            history.append((s, weights))
            s = sample_pdf(s, weights, self.samples_per_level[level + 1], generator)
        return s, history
