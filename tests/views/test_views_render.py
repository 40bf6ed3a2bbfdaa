"""Volume rendering against closed forms: weights, transmittance, opacity and depth."""

from __future__ import annotations

import math

import pytest
import torch

from fields.rendering.cameras import Rays
from fields.rendering.render import (
    composite_dense,
    composite_packed,
    weights_dense,
    weights_packed,
)
from fields.rendering.sampling import march


def test_worked_example_of_two_samples() -> None:
    # sigma * delta = ln 2 twice: alpha = 0.5, 0.5; T = 1, 0.5; w = 0.5, 0.25; opacity 0.75
    sigma = torch.full((2,), math.log(2.0), dtype=torch.float64)
    t0 = torch.tensor([0.0, 1.0], dtype=torch.float64)
    w, trans, alpha = weights_packed(sigma, t0, t0 + 1.0, torch.zeros(2, dtype=torch.long), 1)
    assert w.tolist() == pytest.approx([0.5, 0.25])
    assert trans.tolist() == pytest.approx([1.0, 0.5])
    assert alpha.tolist() == pytest.approx([0.5, 0.5])


def test_packed_and_dense_agree_and_weights_sum_to_opacity() -> None:
    gen = torch.Generator().manual_seed(0)
    n, s = 7, 11
    sigma = torch.rand(n, s, generator=gen, dtype=torch.float64) * 3
    edges = torch.sort(torch.rand(n, s + 1, generator=gen, dtype=torch.float64) * 4, -1).values
    rgb = torch.rand(n, s, 3, generator=gen, dtype=torch.float64)
    w_d, trans_d, _ = weights_dense(sigma, edges[:, :-1], edges[:, 1:])
    ray_idx = torch.arange(n).repeat_interleave(s)
    w_p, trans_p, _ = weights_packed(
        sigma.reshape(-1), edges[:, :-1].reshape(-1), edges[:, 1:].reshape(-1), ray_idx, n
    )
    assert torch.allclose(w_p.reshape(n, s), w_d, atol=1e-12)
    assert torch.allclose(trans_p.reshape(n, s), trans_d, atol=1e-12)
    out = composite_dense(w_d, rgb, edges[:, :-1], edges[:, 1:], torch.ones(3, dtype=torch.float64))
    # opacity = 1 - T after the last sample = 1 - exp(-sum sigma delta)
    total = (sigma * (edges[:, 1:] - edges[:, :-1])).sum(-1)
    assert torch.allclose(out.opacity, 1.0 - torch.exp(-total), atol=1e-12)
    packed = composite_packed(
        w_p,
        rgb.reshape(-1, 3),
        edges[:, :-1].reshape(-1),
        edges[:, 1:].reshape(-1),
        ray_idx,
        n,
        torch.ones(3, dtype=torch.float64),
    )
    assert torch.allclose(packed.rgb, out.rgb, atol=1e-12)
    assert torch.allclose(packed.depth, out.depth, atol=1e-12)


def test_constant_density_slab_matches_the_closed_form() -> None:
    # density sigma on [a, b], zero elsewhere: opacity 1 - e^{-sigma L}; expected depth
    # int t sigma e^{-sigma (t - a)} dt over [a, b] = a + 1/sigma - L e^{-sigma L} / (1 - e^{-sigma L})
    # divided by the opacity (the depth we return is not normalised: multiply back).
    sigma, a, b = 1.7, 1.0, 2.5
    length = b - a
    n = 20000
    edges = torch.linspace(0.0, 4.0, n + 1, dtype=torch.float64)
    mids = 0.5 * (edges[1:] + edges[:-1])
    dens = torch.where((mids > a) & (mids < b), sigma, 0.0)
    w, _, _ = weights_dense(dens[None], edges[None, :-1], edges[None, 1:])
    out = composite_dense(
        w, torch.ones(1, n, 3, dtype=torch.float64), edges[None, :-1], edges[None, 1:]
    )
    opacity = 1 - math.exp(-sigma * length)
    mean_depth = a + 1 / sigma - length * math.exp(-sigma * length) / opacity
    assert out.opacity.item() == pytest.approx(opacity, abs=1e-7)
    assert out.depth.item() / out.opacity.item() == pytest.approx(mean_depth, abs=1e-6)


def test_marched_sphere_transmittance_matches_the_chord_length() -> None:
    # a sphere of radius R and constant density: a ray at impact parameter b crosses a chord of
    # length 2 sqrt(R^2 - b^2), so its opacity is 1 - exp(-2 sigma sqrt(R^2 - b^2))
    radius, sigma = 0.8, 2.0
    b = torch.tensor([0.0, 0.3, 0.6, 0.79, 0.9], dtype=torch.float64)
    origins = torch.stack((b, torch.zeros_like(b), torch.full_like(b, -3.0)), dim=-1)
    dirs = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).repeat(len(b), 1)
    rays = Rays(origins, dirs)
    aabb = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    samples = march(rays, aabb, 4e-4, max_steps=10000)
    dens = torch.where(samples.points(rays).norm(dim=-1) < radius, sigma, 0.0)
    w, _, _ = weights_packed(dens, samples.t_starts, samples.t_ends, samples.ray_indices, len(b))
    opacity = torch.zeros(len(b), dtype=torch.float64).index_add(0, samples.ray_indices, w)
    chord = 2 * torch.sqrt((radius**2 - b**2).clamp(min=0))
    assert torch.allclose(opacity, 1 - torch.exp(-sigma * chord), atol=5e-4)


def test_weights_are_differentiable_and_match_finite_differences() -> None:
    gen = torch.Generator().manual_seed(3)
    sigma = (torch.rand(9, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    t0 = torch.arange(9, dtype=torch.float64) * 0.3
    ray_idx = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2])

    def fn(s: torch.Tensor) -> torch.Tensor:
        return weights_packed(s, t0, t0 + 0.3, ray_idx, 3)[0]

    assert torch.autograd.gradcheck(fn, (sigma,))


def test_segmented_marching_keeps_exactly_the_visible_prefix_of_each_ray() -> None:
    # an opaque slab at z in [0, 0.2] (sigma 500) inside the box: samples behind it are never
    # evaluated, and the kept samples are those of a full march with transmittance > 1e-4
    from fields.rendering.renderer import march_visible

    def density(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sigma = torch.where((x[:, 2] > 0.0) & (x[:, 2] < 0.2), 500.0, 0.0).double()
        return sigma, x[:, :0]

    aabb = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    origins = torch.cat(
        (
            torch.rand(50, 2, generator=gen, dtype=torch.float64) - 0.5,
            torch.full((50, 1), -3.0, dtype=torch.float64),
        ),
        -1,
    )
    rays = Rays(origins, torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).repeat(50, 1))
    step = 2 / 256
    kept, _, evaluated = march_visible(density, rays, aabb, step, segment=16)
    full = march(rays, aabb, step)
    sigma, _ = density(full.points(rays))
    _, trans, alpha = weights_packed(sigma, full.t_starts, full.t_ends, full.ray_indices, 50)
    visible = full.select((trans > 1e-4) & (alpha > 0))  # empty samples carry no weight
    assert visible.ray_indices.shape[0] == 150
    assert torch.equal(kept.ray_indices, visible.ray_indices)
    assert torch.allclose(kept.t_starts, visible.t_starts)
    # each ray stops within one segment after the slab: about 0.6 of the 2-unit box is marched
    assert evaluated < 0.7 * full.ray_indices.shape[0]
