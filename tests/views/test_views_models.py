"""Radiance-field models, spherical harmonics, the tri-plane encoding and its export."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fields.encodings.triplane import TriPlane
from fields.rendering.radiance import (
    MODELS,
    radiance_field,
    spherical_harmonics,
    trunc_exp,
)
from neurosim.backend import InputError

AABB = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)


def test_spherical_harmonics_are_orthonormal_on_the_sphere() -> None:
    # midpoint quadrature in (theta, phi): int Y_i Y_j sin(theta) dtheta dphi = delta_ij
    n = 400
    theta = (torch.arange(n, dtype=torch.float64) + 0.5) * math.pi / n
    phi = (torch.arange(2 * n, dtype=torch.float64) + 0.5) * math.pi / n
    th, ph = torch.meshgrid(theta, phi, indexing="ij")
    d = torch.stack((th.sin() * ph.cos(), th.sin() * ph.sin(), th.cos()), dim=-1).reshape(-1, 3)
    y = spherical_harmonics(d, 4)
    area = (th.sin() * (math.pi / n) ** 2).reshape(-1, 1)
    gram = (y * area).T @ y
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=1e-4)


def test_trunc_exp_value_and_clamped_gradient() -> None:
    x = torch.tensor([0.0, 1.0, 20.0], requires_grad=True)
    y = trunc_exp(x)
    assert torch.allclose(y, torch.exp(x.detach()))
    y.sum().backward()
    assert x.grad is not None
    assert torch.allclose(x.grad, torch.tensor([1.0, math.e, math.exp(15.0)]))


@pytest.mark.parametrize("model", MODELS)
def test_every_model_maps_points_and_directions_with_gradients(model: str) -> None:
    options = {"rbf_kernels": 64, "levels": 4, "log2_hashmap_size": 10} if model == "neurbf" else {}
    if model in ("hashgrid", "cam", "cam_position"):
        options = {"levels": 4, "log2_hashmap_size": 10, "max_resolution": 64}
    if model == "cam_position":
        options["cam_resolution"] = 16
    if model == "triplane":
        options = {"plane_resolution": 16}
    field = radiance_field(model, AABB, generator=torch.Generator().manual_seed(0), **options)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(50, 3, generator=gen) - 0.5) * 2.5
    d = torch.randn(50, 3, generator=gen)
    d = d / d.norm(dim=-1, keepdim=True)
    sigma, rgb = field(x, d)
    assert sigma.shape == (50,) and rgb.shape == (50, 3)
    assert bool((sigma >= 0).all()) and bool(((rgb > 0) & (rgb < 1)).all())
    (sigma.sum() + rgb.sum()).backward()
    grads = [p.grad for p in field.parameters() if p.requires_grad]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    # the density never depends on the view direction (the occupancy grid relies on it)
    sigma2, _ = field(x, -d)
    assert torch.equal(sigma.detach(), sigma2.detach())
    if model == "cam":
        assert field.direction_cam is not None
        with torch.no_grad():
            field.direction_cam.shift.add_(0.5)
        assert not torch.allclose(field(x, d)[1], rgb.detach())


def test_unknown_model_and_option_are_clear_errors() -> None:
    with pytest.raises(InputError, match="unknown radiance field"):
        radiance_field("nerfacto", AABB)
    with pytest.raises(InputError, match="unknown option"):
        radiance_field("hashgrid", AABB, levls=4)


def test_triplane_interpolates_bilinearly_and_aggregates() -> None:
    # planes set to a linear function of their two coordinates: bilinear interpolation is exact
    res = 5
    grid = torch.linspace(0, 1, res)
    rows, cols = torch.meshgrid(grid, grid, indexing="ij")
    plane = torch.stack((rows, cols))  # channel 0 = first coordinate, 1 = second
    for agg in ("sum", "product", "concat"):
        tp = TriPlane(3, res, 2, agg)
        with torch.no_grad():
            tp.planes.copy_(plane.expand(3, 2, res, res))
        x = torch.tensor([[0.1, 0.6, 0.35], [0.9, 0.2, 0.75]])
        out = tp(x)
        # plane (0,1) gives (x0, x1), plane (0,2) gives (x0, x2), plane (1,2) gives (x1, x2)
        per = torch.stack(
            (
                torch.stack((x[:, 0], x[:, 1]), -1),
                torch.stack((x[:, 0], x[:, 2]), -1),
                torch.stack((x[:, 1], x[:, 2]), -1),
            )
        )
        if agg == "sum":
            expected = per.sum(0)
        elif agg == "product":
            expected = per.prod(0)
        else:
            expected = per.permute(1, 0, 2).reshape(2, 6)
        assert torch.allclose(out, expected, atol=1e-6), agg
    with pytest.raises(InputError, match="unit cube"):
        tp(torch.tensor([[1.2, 0.0, 0.0]]))
    with pytest.raises(InputError, match="aggregation"):
        TriPlane(3, 4, 2, "max")  # type: ignore[arg-type]


def test_trained_triplane_planes_export_as_an_array() -> None:
    field = radiance_field(
        "triplane",
        AABB,
        generator=torch.Generator().manual_seed(0),
        plane_resolution=8,
        plane_features=4,
    )
    opt = torch.optim.Adam(field.parameters(), lr=1e-2)
    x = torch.rand(64, 3) * 3 - 1.5
    d = torch.nn.functional.normalize(torch.randn(64, 3), dim=-1)
    before = field.encoding.export()
    for _ in range(3):
        opt.zero_grad()
        sigma, rgb = field(x, d)
        (rgb.mean() - sigma.mean()).backward()
        opt.step()
    planes = field.encoding.export()
    assert isinstance(planes, np.ndarray) and planes.dtype == np.float32
    assert planes.shape == (3, 4, 8, 8)
    assert not np.allclose(planes, before)
    assert np.array_equal(planes, field.encoding.planes.detach().numpy())
