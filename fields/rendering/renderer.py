"""Rendering rays of a :class:`~fields.rendering.radiance.RadianceField`: sampling, the field,
compositing, and whole images under a fixed memory ceiling.

Bounded scenes (:func:`render_occupancy`): ray marching through an
:class:`~fields.rendering.sampling.OccupancyGrid`; with ``early_stop`` the densities of all marched
samples are first evaluated without gradient, and only the samples that the ray's light still
reaches (transmittance above ``early_stop``) and that are not transparent (``alpha >
alpha_threshold``) are evaluated again with gradient and composited: the tensor version of
nerfacc's ``sigma_fn`` pruning (samples behind opaque surfaces cost a forward pass, not a
backward one).

Unbounded scenes (:func:`render_proposal`): proposal sampling with scene contraction; returns the
proposal histories for :func:`~fields.rendering.sampling.interlevel_loss`.

:func:`render_image` renders any number of rays in chunks of ``chunk`` rays whose samples are
evaluated at most ``max_samples`` at a time, so the memory of a full test view is bounded whatever
its size (evaluation only, no gradient).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from fields.rendering.cameras import Rays
from fields.rendering.radiance import RadianceField
from fields.rendering.render import (
    composite_dense,
    composite_packed,
    weights_dense,
    weights_packed,
)
from fields.rendering.sampling import (
    OccupancyGrid,
    ProposalSampler,
    Samples,
    intersect_aabb,
    march,
)
from neurosim.backend import InputError


@dataclass
class RayOutput:
    """Per-ray results: ``rgb [N, 3]``, ``depth [N]``, ``opacity [N]`` and the number of samples
    the field was evaluated at with gradient (``samples``) and without (``marched``)."""

    rgb: torch.Tensor
    depth: torch.Tensor
    opacity: torch.Tensor
    samples: int = 0
    marched: int = 0
    proposals: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    bins: torch.Tensor | None = None
    weights: torch.Tensor | None = None


def _chunked(fn: Any, x: torch.Tensor, max_samples: int) -> torch.Tensor:
    if x.shape[0] <= max_samples:
        out: torch.Tensor = fn(x)
        return out
    return torch.cat([fn(x[i : i + max_samples]) for i in range(0, x.shape[0], max_samples)])


@torch.no_grad()
def march_visible(
    density_fn: Any,
    rays: Rays,
    aabb: torch.Tensor,
    step_size: float,
    grid: OccupancyGrid | None = None,
    *,
    near: float = 0.0,
    generator: torch.Generator | None = None,
    jitter: torch.Tensor | None = None,
    early_stop: float = 1e-4,
    alpha_threshold: float = 0.0,
    segment: int = 64,
    max_steps: int = 4096,
    max_samples: int = 1 << 20,
) -> tuple[Samples, torch.Tensor, int]:
    """The marched samples that the light of their ray still reaches, found segment by segment.

    Rays are marched ``segment`` steps at a time; after each segment the densities of its samples
    (``density_fn(points) -> (sigma [M], extra [M, F])``) are evaluated, the transmittance is
    carried over, and rays whose transmittance fell below ``early_stop`` stop: samples behind an
    opaque surface are never evaluated (Instant-NGP's compaction, in tensor code). Kept are the
    samples with transmittance above ``early_stop`` and alpha above ``alpha_threshold``.

    Returns ``(samples, extra of the kept samples, number of samples evaluated)``; the samples are
    packed (sorted by ray, in order along each ray) with the same positions as :func:`march`
    would give without a generator.
    """
    o, d = rays.origins, rays.directions
    n = o.shape[0]
    t0, t1 = intersect_aabb(o, d, aabb)
    t0 = t0.clamp(min=near)
    tau = torch.zeros(n, dtype=torch.float64, device=o.device)
    alive = torch.nonzero(t1 > t0).squeeze(-1)
    parts: list[tuple[Samples, torch.Tensor]] = []
    evaluated = 0
    k0 = 0
    while alive.numel() and k0 < max_steps:
        seg_near = t0[alive] + k0 * step_size
        seg_far = torch.minimum(t1[alive], seg_near + segment * step_size)
        sub = Rays(o[alive], d[alive])
        s = march(
            sub,
            aabb,
            step_size,
            grid,
            near=seg_near,
            far=seg_far,
            generator=generator,
            jitter=None if jitter is None else jitter[alive],
        )
        m = s.ray_indices.shape[0]
        if m:
            evaluated += m
            points = s.points(sub)
            outs = [density_fn(points[i : i + max_samples]) for i in range(0, m, max_samples)]
            sigma = torch.cat([x[0] for x in outs]).float()
            extra = torch.cat([x[1] for x in outs])
            part_tau = sigma.double() * (s.t_ends - s.t_starts).double()
            _, trans, alphas = weights_packed(
                sigma, s.t_starts, s.t_ends, s.ray_indices, alive.shape[0]
            )
            carried = torch.exp(-tau[alive][s.ray_indices]).to(trans.dtype)
            keep = (trans * carried > early_stop) & (alphas > alpha_threshold)
            global_idx = alive[s.ray_indices]
            parts.append(
                (
                    Samples(
                        global_idx[keep], s.t_starts[keep], s.t_ends[keep], s.positions[keep], n
                    ),
                    extra[keep],
                )
            )
            tau.index_add_(0, global_idx, part_tau)
        k0 += segment
        more = (torch.exp(-tau[alive]) > early_stop) & (seg_far < t1[alive])
        alive = alive[more]
    if not parts:
        empty = o.new_zeros(0)
        return Samples(alive.new_zeros(0), empty, empty, empty, n), o.new_zeros(0, 1), evaluated
    ray_indices = torch.cat([p[0].ray_indices for p in parts])
    order = torch.sort(ray_indices, stable=True).indices
    samples = Samples(
        ray_indices[order],
        torch.cat([p[0].t_starts for p in parts])[order],
        torch.cat([p[0].t_ends for p in parts])[order],
        torch.cat([p[0].positions for p in parts])[order],
        n,
    )
    return samples, torch.cat([p[1] for p in parts])[order], evaluated


def render_occupancy(
    field_: RadianceField,
    rays: Rays,
    grid: OccupancyGrid | None,
    step_size: float,
    *,
    background: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    jitter: torch.Tensor | None = None,
    near: float = 0.0,
    early_stop: float = 1e-4,
    alpha_threshold: float = 0.0,
    max_samples: int = 1 << 20,
) -> RayOutput:
    """Render ``rays`` of a bounded scene (see the module docstring).

    ``background``: ``[3]`` or ``[N, 3]`` colour behind the scene (``None``: black).
    ``generator``: stratified sample positions (training); ``None`` uses interval midpoints.
    ``jitter``: ``[N]`` per-ray sample positions in their intervals (see :func:`march`).
    ``early_stop``: 0 disables the pruning pass.
    """
    if early_stop > 0:
        samples, _, marched = march_visible(
            lambda x: (field_.density(x), x[:, :0]),
            rays,
            field_.aabb,
            step_size,
            grid,
            near=near,
            generator=generator,
            jitter=jitter,
            early_stop=early_stop,
            alpha_threshold=alpha_threshold,
            max_samples=max_samples,
        )
    else:
        samples = march(
            rays, field_.aabb, step_size, grid, near=near, generator=generator, jitter=jitter
        )
        marched = int(samples.ray_indices.shape[0])
    return _shade(field_, rays, samples, background, marched)


def _shade(
    field_: RadianceField,
    rays: Rays,
    samples: Samples,
    background: torch.Tensor | None,
    marched: int,
) -> RayOutput:
    n = len(rays)
    points = samples.points(rays)
    dirs = rays.directions[samples.ray_indices]
    sigma, rgb = field_(points, dirs)
    weights, _, _ = weights_packed(
        sigma.float(), samples.t_starts, samples.t_ends, samples.ray_indices, n
    )
    out = composite_packed(
        weights,
        rgb.float(),
        samples.t_starts,
        samples.t_ends,
        samples.ray_indices,
        n,
        background,
    )
    return RayOutput(out.rgb, out.depth, out.opacity, int(points.shape[0]), marched)


def render_proposal(
    field_: RadianceField,
    sampler: ProposalSampler,
    rays: Rays,
    *,
    background: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> RayOutput:
    """Render ``rays`` with proposal sampling (unbounded scenes; ``field_.contraction`` on)."""
    s_bins, history = sampler(rays, generator)
    t = sampler.to_distance(s_bins)
    mids = 0.5 * (t[:, 1:] + t[:, :-1])
    n, m = mids.shape
    points = rays.origins[:, None, :] + rays.directions[:, None, :] * mids[..., None]
    dirs = rays.directions[:, None, :].expand(n, m, 3)
    sigma, rgb = field_(points.reshape(-1, 3), dirs.reshape(-1, 3))
    sigma = sigma.float().reshape(n, m)
    weights, _, _ = weights_dense(sigma, t[:, :-1], t[:, 1:])
    out = composite_dense(weights, rgb.float().reshape(n, m, 3), t[:, :-1], t[:, 1:], background)
    return RayOutput(
        out.rgb, out.depth, out.opacity, n * m, n * m, history, bins=s_bins, weights=weights
    )


@torch.no_grad()
def render_image(
    field_: RadianceField,
    rays: Rays,
    *,
    grid: OccupancyGrid | None = None,
    step_size: float | None = None,
    sampler: ProposalSampler | None = None,
    background: torch.Tensor | None = None,
    chunk: int = 4096,
    max_samples: int = 1 << 18,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rgb [N, 3], depth [N], opacity [N])`` of any number of rays, in chunks (no gradient).

    Pass ``step_size`` (and optionally ``grid``) for occupancy marching, or ``sampler`` for
    proposal sampling.
    """
    if (sampler is None) == (step_size is None):
        raise InputError("render_image needs exactly one of step_size (marching) or sampler")
    parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for i in range(0, len(rays), chunk):
        part = rays[i : i + chunk]
        bg = background
        if bg is not None and bg.dim() == 2:
            bg = bg[i : i + chunk]
        if sampler is not None:
            out = render_proposal(field_, sampler, part, background=bg)
        else:
            assert step_size is not None
            out = _render_eval(field_, part, grid, step_size, bg, max_samples)
        parts.append((out.rgb, out.depth, out.opacity))
    if not parts:
        empty = torch.zeros(0, device=rays.origins.device)
        return empty.reshape(0, 3), empty, empty
    rgb, depth, opacity = (torch.cat(p) for p in zip(*parts, strict=True))
    return rgb, depth, opacity


def _render_eval(
    field_: RadianceField,
    rays: Rays,
    grid: OccupancyGrid | None,
    step_size: float,
    background: torch.Tensor | None,
    max_samples: int,
    early_stop: float = 1e-4,
) -> RayOutput:
    """Evaluation: densities up to where each ray turns opaque, colours of what is visible."""
    samples, geo, evaluated = march_visible(
        field_.geometry,
        rays,
        field_.aabb,
        step_size,
        grid,
        early_stop=early_stop,
        max_samples=max_samples,
    )
    n = len(rays)
    # the kept samples' densities are the first geometry feature's activation: recompute the
    # weights from sigma (the field's own density of the kept points)
    sigma = field_.density_from_features(geo)
    weights, _, _ = weights_packed(
        sigma.float(), samples.t_starts, samples.t_ends, samples.ray_indices, n
    )
    dirs = rays.directions[samples.ray_indices]
    rgb = _chunked_color(field_, geo, dirs, max_samples)
    out = composite_packed(
        weights, rgb, samples.t_starts, samples.t_ends, samples.ray_indices, n, background
    )
    return RayOutput(out.rgb, out.depth, out.opacity, int(samples.ray_indices.shape[0]), evaluated)


def _chunked_color(
    field_: RadianceField, geo: torch.Tensor, dirs: torch.Tensor, max_samples: int
) -> torch.Tensor:
    if geo.shape[0] == 0:
        return geo.new_zeros(0, 3).float()
    return torch.cat(
        [
            field_.color(geo[i : i + max_samples], dirs[i : i + max_samples]).float()
            for i in range(0, geo.shape[0], max_samples)
        ]
    )
