"""Volume rendering: weights, transmittance, accumulated colour, depth and opacity.

Samples along rays are intervals ``[t_start, t_end]`` with density ``sigma``; with
``delta = t_end - t_start`` the quadrature of the volume rendering integral (Max 1995; NeRF) is

.. math::

    \\alpha_i = 1 - e^{-\\sigma_i \\delta_i}, \\qquad
    T_i = \\exp\\Big(-\\sum_{j<i} \\sigma_j \\delta_j\\Big), \\qquad w_i = T_i \\alpha_i

    C = \\sum_i w_i c_i + (1 - O)\\, c_{bg}, \\qquad O = \\sum_i w_i = 1 - T_{n+1}, \\qquad
    D = \\sum_i w_i \\tfrac{t_{start,i} + t_{end,i}}{2}

Two layouts, the same maths:

* **packed**: samples of all rays in one flat list ``[S]`` with ``ray_indices [S]`` (sorted,
  samples of a ray contiguous and in order along it), as ray marching through an occupancy grid
  produces (each ray keeps a different number of samples). The exclusive per-ray sum of
  ``sigma * delta`` is one global cumulative sum in float64 minus its value at each ray's first
  sample (float64 keeps the difference exact to ~1e-12 for millions of samples).
* **dense**: ``[N, S]`` samples per ray (stratified and proposal sampling).

Example: one ray, two samples of ``sigma * delta = ln 2`` each: ``alpha = (0.5, 0.5)``,
``T = (1, 0.5)``, ``w = (0.5, 0.25)``, opacity ``0.75``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class RenderOutput(NamedTuple):
    """Per-ray results of :func:`composite` (``[N, 3]`` colour, ``[N]`` the rest)."""

    rgb: torch.Tensor
    depth: torch.Tensor
    opacity: torch.Tensor


def segment_starts(ray_indices: torch.Tensor, n_rays: int) -> torch.Tensor:
    """Index of each ray's first sample in the packed list ``[n_rays]`` (its count if empty)."""
    counts = torch.bincount(ray_indices, minlength=n_rays)
    return torch.cumsum(counts, 0) - counts


def first_sample(ray_indices: torch.Tensor) -> torch.Tensor:
    """``[S]``: the position of the first sample of each sample's ray (sorted ``ray_indices``).

    A running maximum of the positions where a new ray starts: no host sync.
    """
    position = torch.arange(ray_indices.shape[0], device=ray_indices.device)
    starts = torch.ones_like(ray_indices, dtype=torch.bool)
    starts[1:] = ray_indices[1:] != ray_indices[:-1]
    return torch.cummax(torch.where(starts, position, 0), 0).values


def weights_packed(
    sigmas: torch.Tensor,
    t_starts: torch.Tensor,
    t_ends: torch.Tensor,
    ray_indices: torch.Tensor,
    n_rays: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(weights, transmittance, alphas)``, each ``[S]``, of packed samples.

    ``transmittance[i]`` is ``T_i``, the light reaching sample ``i`` (1 at a ray's first sample).
    Differentiable in ``sigmas``.
    """
    tau = sigmas * (t_ends - t_starts)
    alphas = 1.0 - torch.exp(-tau)
    if tau.numel() == 0:
        return tau, tau, alphas
    csum = torch.cumsum(tau.double(), 0)
    exclusive = csum - tau.double()
    offset = exclusive[first_sample(ray_indices)]
    transmittance = torch.exp(-(exclusive - offset)).to(sigmas.dtype)
    return transmittance * alphas, transmittance, alphas


def weights_dense(
    sigmas: torch.Tensor, t_starts: torch.Tensor, t_ends: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(weights, transmittance, alphas)``, each ``[N, S]``, of samples ``[N, S]`` per ray."""
    tau = sigmas * (t_ends - t_starts)
    alphas = 1.0 - torch.exp(-tau)
    exclusive = torch.cumsum(tau, dim=-1) - tau
    transmittance = torch.exp(-exclusive)
    return transmittance * alphas, transmittance, alphas


def accumulate(
    weights: torch.Tensor, values: torch.Tensor | None, ray_indices: torch.Tensor, n_rays: int
) -> torch.Tensor:
    """Per-ray sum of ``weights [S] * values [S, C]`` (or ``[S]``; ``None``: of the weights)."""
    if values is None or values.dim() == 1:
        term = weights if values is None else weights * values
        out = torch.zeros(n_rays, dtype=term.dtype, device=weights.device)
        return out.index_add(0, ray_indices, term)
    weighted = weights.unsqueeze(-1) * values
    out = torch.zeros(n_rays, values.shape[-1], dtype=weighted.dtype, device=weights.device)
    return out.index_add(0, ray_indices, weighted)


def composite_packed(
    weights: torch.Tensor,
    rgbs: torch.Tensor,
    t_starts: torch.Tensor,
    t_ends: torch.Tensor,
    ray_indices: torch.Tensor,
    n_rays: int,
    background: torch.Tensor | None = None,
) -> RenderOutput:
    """Colour ``[N, 3]``, depth ``[N]`` and opacity ``[N]`` of packed samples.

    ``background`` (``[3]`` or ``[N, 3]``) fills the transparent part: ``C += (1 - O) c_bg``.
    Depth is the expected distance ``sum_i w_i t_mid_i`` (not normalised: 0 for empty rays).
    """
    opacity = accumulate(weights, None, ray_indices, n_rays)
    rgb = accumulate(weights, rgbs, ray_indices, n_rays)
    depth = accumulate(weights, 0.5 * (t_starts + t_ends), ray_indices, n_rays)
    if background is not None:
        rgb = rgb + (1.0 - opacity).unsqueeze(-1) * background
    return RenderOutput(rgb, depth, opacity)


def composite_dense(
    weights: torch.Tensor,
    rgbs: torch.Tensor,
    t_starts: torch.Tensor,
    t_ends: torch.Tensor,
    background: torch.Tensor | None = None,
) -> RenderOutput:
    """:func:`composite_packed` for ``[N, S]`` samples (``rgbs [N, S, 3]``)."""
    opacity = weights.sum(-1)
    rgb = (weights.unsqueeze(-1) * rgbs).sum(-2)
    depth = (weights * 0.5 * (t_starts + t_ends)).sum(-1)
    if background is not None:
        rgb = rgb + (1.0 - opacity).unsqueeze(-1) * background
    return RenderOutput(rgb, depth, opacity)
