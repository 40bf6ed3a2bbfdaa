"""Sampling: box intersection, marching, the occupancy grid, contraction, PDF resampling and the
proposal loss."""

from __future__ import annotations

import math

import pytest
import torch

from fields.rendering.cameras import Rays
from fields.rendering.render import weights_packed
from fields.rendering.sampling import (
    OccupancyGrid,
    ProposalSampler,
    contract,
    distance_to_spacing,
    interlevel_loss,
    intersect_aabb,
    march,
    outer_weights,
    sample_pdf,
    spacing_to_distance,
)
from neurosim.backend import InputError

BOX = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])


def test_box_intersection_of_known_rays() -> None:
    origins = torch.tensor([[0.0, 0.0, -3.0], [-3.0, -3.0, -3.0], [0.0, 2.0, -3.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    t0, t1 = intersect_aabb(origins, dirs, BOX)
    assert t0[0].item() == pytest.approx(2.0) and t1[0].item() == pytest.approx(4.0)
    # the diagonal ray enters at (-1,-1,-1) and leaves at (1,1,1): 2 sqrt(3) and 4 sqrt(3)
    assert t0[1].item() == pytest.approx(2 * math.sqrt(3)) and t1[1].item() == pytest.approx(
        4 * math.sqrt(3)
    )
    assert t1[2] <= t0[2]  # misses


def test_march_covers_the_box_span_in_whole_steps() -> None:
    rays = Rays(
        torch.tensor([[0.0, 0.0, -3.0], [0.0, 5.0, 0.0]]),
        torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
    )
    s = march(rays, BOX, 0.3)
    assert s.ray_indices.tolist() == [0] * 7  # span 2 in steps of 0.3: ceil(6.67) = 7
    assert s.t_starts[0].item() == pytest.approx(2.0)
    assert s.t_ends[-1].item() == pytest.approx(4.0)  # the last interval is clipped to the exit
    assert torch.allclose(s.t_starts[1:], s.t_ends[:-1])
    assert torch.allclose(s.positions, 0.5 * (s.t_starts + s.t_ends))


def _sphere_density(x: torch.Tensor) -> torch.Tensor:
    return torch.where((x - torch.tensor([0.3, -0.2, 0.1])).norm(dim=-1) < 0.35, 30.0, 0.0)


def test_occupancy_grid_keeps_the_sphere_and_skipping_changes_no_pixel() -> None:
    grid = OccupancyGrid(BOX, resolution=32, warmup_steps=100)
    gen = torch.Generator().manual_seed(0)
    step = 2 / 128
    for k in range(10):
        grid.update(_sphere_density, k, step, gen)
    cells = torch.arange(32**3)
    centres = grid.cell_points(cells, torch.full((32**3, 3), 0.5))
    dist = (centres - torch.tensor([0.3, -0.2, 0.1])).norm(dim=-1)
    half_diag = math.sqrt(3) / 32
    # every cell wholly inside the sphere is occupied, every cell far outside is empty
    assert bool(grid.occupied[dist < 0.35 - half_diag].all())
    assert not bool(grid.occupied[dist > 0.35 + half_diag].any())
    assert 0.0 < grid.occupied_fraction < 0.05
    # rendering with and without empty-space skipping gives the same opacity
    g = torch.Generator().manual_seed(1)
    origins = (
        torch.tensor([[0.0, 0.0, -3.0]]).repeat(200, 1) + torch.randn(200, 3, generator=g) * 0.2
    )
    targets = torch.tensor([0.3, -0.2, 0.1]) + torch.randn(200, 3, generator=g) * 0.25
    dirs = targets - origins
    rays = Rays(origins, dirs / dirs.norm(dim=-1, keepdim=True))
    results = []
    for use_grid in (None, grid):
        s = march(rays, BOX, step, use_grid)
        dens = _sphere_density(s.points(rays))
        w, _, _ = weights_packed(dens, s.t_starts, s.t_ends, s.ray_indices, 200)
        results.append((torch.zeros(200).index_add(0, s.ray_indices, w), len(s.ray_indices)))
    (full, n_full), (skipped, n_skipped) = results
    # cells the sphere only grazes may be missed by the random update points: tiny differences
    assert float((full - skipped).abs().max()) < 0.01
    assert float((full - skipped).abs().mean()) < 1e-4
    assert float(full.max()) > 0.99  # some rays hit the sphere
    assert n_skipped < n_full / 4  # and far fewer samples were needed


def test_occupancy_grid_bad_options() -> None:
    with pytest.raises(InputError, match="resolution"):
        OccupancyGrid(BOX, resolution=0)
    with pytest.raises(InputError, match="aabb"):
        OccupancyGrid([1.0, 0.0, 0.0, 0.0, 1.0, 1.0])


def test_contraction_by_hand() -> None:
    x = torch.tensor([[0.5, -0.2, 0.1], [2.0, 0.0, 0.0], [4.0, 1.0, -2.0]])
    out = contract(x)  # L-inf
    assert torch.allclose(out[0], x[0])
    assert torch.allclose(out[1], torch.tensor([1.5, 0.0, 0.0]))  # (2 - 1/2) * x / 2
    assert torch.allclose(out[2], (2 - 1 / 4) * x[2] / 4)
    euclid = contract(torch.tensor([[3.0, 4.0, 0.0]]), order=2)  # |x| = 5
    assert torch.allclose(euclid, torch.tensor([[(2 - 0.2) * 0.6, (2 - 0.2) * 0.8, 0.0]]))
    assert float(contract(torch.full((1, 3), 1e9)).abs().max()) <= 2.0


def test_spacing_roundtrip() -> None:
    t = torch.tensor([0.1, 0.5, 1.0, 2.0, 10.0, 1000.0], dtype=torch.float64)
    assert torch.allclose(spacing_to_distance(distance_to_spacing(t)), t, rtol=1e-5)
    assert distance_to_spacing(torch.tensor([4.0])).item() == pytest.approx(1.75)


def test_sample_pdf_inverts_a_piecewise_constant_cdf() -> None:
    # bins [0, 1, 2] with masses 3 : 1 -> CDF 0.75 at t = 1; quantile q maps to q / 0.75 below
    # and 1 + (q - 0.75) / 0.25 above
    bins = torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
    weights = torch.tensor([[3.0, 1.0]], dtype=torch.float64)
    edges = sample_pdf(bins, weights, 8, padding=0.0)
    q = torch.linspace(0, 1, 9, dtype=torch.float64)
    expected = torch.where(q <= 0.75, q / 0.75, 1 + (q - 0.75) / 0.25)
    assert torch.allclose(edges[0], expected, atol=1e-12)
    jittered = sample_pdf(bins, weights, 64, generator=torch.Generator().manual_seed(0))
    assert bool((jittered[:, 1:] >= jittered[:, :-1]).all())
    assert float(jittered.min()) >= 0.0 and float(jittered.max()) <= 2.0
    with pytest.raises(InputError, match="weights"):
        sample_pdf(bins, weights[:, :1], 4)


def test_interlevel_loss_is_zero_for_a_bounding_proposal_and_positive_otherwise() -> None:
    t = torch.linspace(0, 1, 9)[None]
    w = torch.tensor([[0.0, 0.1, 0.4, 0.3, 0.1, 0.0, 0.0, 0.0]])
    assert interlevel_loss(t, w, t, w).item() == pytest.approx(0.0, abs=1e-9)
    coarse_t = torch.linspace(0, 1, 3)[None]
    coarse_w = torch.tensor([[0.9, 0.1]])
    bound = outer_weights(t, coarse_t, coarse_w)
    assert torch.allclose(bound[0, :4], torch.full((4,), 0.9))
    assert torch.allclose(bound[0, 4:], torch.full((4,), 0.1))
    missing = torch.tensor([[0.0, 0.0]])
    assert interlevel_loss(t, w, coarse_t, missing).item() > 0.5


def test_proposal_sampler_resamples_towards_the_density() -> None:
    class Shell(torch.nn.Module):
        def forward(self, u: torch.Tensor) -> torch.Tensor:  # dense shell at |x| = 1 (u-space)
            x = u * 4.0 - 2.0
            return torch.where((x.norm(dim=-1) - 0.5).abs() < 0.05, 200.0, 0.0)

    sampler = ProposalSampler([Shell()], (64, 16), near=0.05, far=10.0, order=2)
    rays = Rays(torch.zeros(4, 3), torch.eye(3)[[0, 1, 2, 0]])
    s_bins, history = sampler(rays)
    t = sampler.to_distance(s_bins)
    assert s_bins.shape == (4, 17) and len(history) == 1
    mids = 0.5 * (t[:, 1:] + t[:, :-1])
    # the shell is at distance 0.5 (inside the unit ball contraction is the identity)
    near_shell = ((mids - 0.5).abs() < 0.1).float().mean()
    assert float(near_shell) > 0.6  # uniform samples over [0.05, 10] would put < 5% there
