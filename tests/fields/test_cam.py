"""Coordinate-aware modulation: interpolation, initial identity, placement in the layer walk."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fields.cam import CAM, CAMDecoder, cam_modulate, interpolate_grid
from fields.decoders import MLP
from fields.siren import Siren
from neurosim.backend import InputError


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_interpolation_is_exact_for_multilinear_functions(d: int) -> None:
    """A grid sampled from ``a + b.u + c prod(u)`` interpolates that function exactly."""
    g = torch.Generator().manual_seed(d)
    res = [3, 4, 5, 3][:d]
    axes = [torch.linspace(0, 1, r, dtype=torch.float64) for r in res]
    mesh = torch.meshgrid(*axes, indexing="ij")
    b = torch.randn(d, generator=g, dtype=torch.float64)

    def f(u: list[torch.Tensor]) -> torch.Tensor:
        return 0.3 + sum(b[i] * u[i] for i in range(d)) + 2.0 * torch.stack(u).prod(0)

    grid = torch.stack([f(list(mesh)), -f(list(mesh))])  # two channels
    u = torch.rand(50, d, generator=g, dtype=torch.float64)
    want = f([u[:, i] for i in range(d)])
    got = interpolate_grid(grid, u, method="gather")
    torch.testing.assert_close(got[:, 0], want)
    torch.testing.assert_close(got[:, 1], -want)
    if d in (2, 3):
        torch.testing.assert_close(interpolate_grid(grid, u, method="grid_sample"), got)


@pytest.mark.parametrize("d", [2, 3])
def test_grid_sample_and_gather_paths_agree_with_gradients(d: int) -> None:
    g = torch.Generator().manual_seed(0)
    grid = torch.randn(6, *([4] * d), generator=g, dtype=torch.float64)
    u = torch.rand(40, d, generator=g, dtype=torch.float64)
    u[0] = 1.0
    u[1] = 0.0
    grads = []
    for method in ("gather", "grid_sample"):
        leaf = grid.clone().requires_grad_()
        uu = u.clone().requires_grad_()
        out = interpolate_grid(leaf, uu, method=method)
        (out * torch.arange(out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        assert uu.grad is not None
        # at the faces u = 0 and u = 1 the two paths take different one-sided derivatives
        grads.append((out.detach(), leaf.grad, uu.grad[2:]))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_worked_example_and_clamping() -> None:
    grid = torch.tensor([[0.0, 2.0]])
    assert interpolate_grid(grid, torch.tensor([[0.25]])).item() == pytest.approx(0.5)
    assert interpolate_grid(grid, torch.tensor([[1.5]])).item() == pytest.approx(2.0)


def test_fresh_cam_is_the_bare_normalisation() -> None:
    cam = CAM((0, 1), 5, layers=2, features=8, per_feature=True)
    x = torch.rand(30, 3)
    gamma, beta = cam(x)
    assert gamma.shape == beta.shape == (2, 30, 8)
    torch.testing.assert_close(gamma, torch.ones_like(gamma))
    torch.testing.assert_close(beta, torch.zeros_like(beta))
    h = torch.randn(30, 8)
    torch.testing.assert_close(
        cam_modulate(h, gamma[0], beta[0]), nn.functional.layer_norm(h, (8,))
    )
    torch.testing.assert_close(cam_modulate(h, 2 * gamma[0], beta[0] + 1, "none"), 2 * h + 1)


def _manual_walk(
    dec: nn.Sequential, cam: CAM, feats: torch.Tensor, coords: torch.Tensor
) -> torch.Tensor:
    gamma, beta = cam(coords)
    linears = [m for m in dec if isinstance(m, nn.Linear)]
    h = feats
    k = 0
    for m in dec:
        h = m(h)
        if isinstance(m, nn.Linear) and m is not linears[-1]:
            h = gamma[k] * nn.functional.layer_norm(h, h.shape[-1:]) + beta[k]
            k += 1
    return h


@pytest.mark.parametrize("per_feature", [False, True], ids=["paper", "per_feature"])
@pytest.mark.parametrize("kind", ["mlp", "siren"])
def test_cam_decoder_modulates_every_hidden_layer_before_its_activation(
    kind: str, per_feature: bool
) -> None:
    torch.manual_seed(0)
    dec: nn.Sequential = (
        MLP(5, 2, hidden=16, layers=4) if kind == "mlp" else Siren(5, 2, hidden=16, layers=4)
    )
    wrapped = CAMDecoder(
        dec, coord_dims=(1,), resolution=6, normalization="layer", per_feature=per_feature
    )
    assert wrapped.cam.scale.shape == (3 * (16 if per_feature else 1), 6)
    with torch.no_grad():
        wrapped.cam.scale.add_(0.3 * torch.randn_like(wrapped.cam.scale))
        wrapped.cam.shift.add_(0.3 * torch.randn_like(wrapped.cam.shift))
    feats, coords = torch.randn(12, 5), torch.rand(12, 2)
    out = wrapped(feats, coords)
    torch.testing.assert_close(out, _manual_walk(dec, wrapped.cam, feats, coords))
    assert wrapped.cam.layers == 3 and wrapped.in_dim == 5 and wrapped.out_dim == 2
    out.square().sum().backward()
    assert wrapped.cam.scale.grad is not None and float(wrapped.cam.scale.grad.abs().sum()) > 0
    assert wrapped.cam.shift.grad is not None and float(wrapped.cam.shift.grad.abs().sum()) > 0


def test_bad_configuration_and_input() -> None:
    with pytest.raises(InputError, match="coord_dims"):
        CAM((0, 0), 4, 1, 4)
    with pytest.raises(InputError, match="resolution"):
        CAM((0,), 1, 1, 4)
    with pytest.raises(InputError, match="normalization"):
        CAM((0,), 4, 1, 4, normalization="batch")
    cam = CAM((2,), 4, 1, 4)
    with pytest.raises(InputError, match="coordinate axes"):
        cam(torch.rand(3, 2))
    with pytest.raises(InputError, match="hidden layer"):
        CAMDecoder(MLP(3, 1, layers=1), (0,))
    wrapped = CAMDecoder(MLP(3, 1, hidden=4, layers=2), (0,))
    with pytest.raises(InputError, match="same number of points"):
        wrapped(torch.rand(4, 3), torch.rand(5, 1))


def _reference_cam_image_mlp(
    linears: list[nn.Linear], grids: list[torch.Tensor], feats: torch.Tensor, coords: torch.Tensor
) -> torch.Tensor:
    """The CAM authors' image network (CAM_image.py), written out here: each hidden layer is
    ``relu(gamma * instance_norm(linear(h)) + beta)`` with ``(gamma, beta)`` sampled from its own
    ``[1, 2, R, R]`` grid by ``grid_sample(align_corners=True, padding_mode="border")`` at the
    coordinates mapped to [-1, 1]; ``instance_norm`` of ``[1, N, F]`` normalises each point over
    its features. The grid's x axis (last) runs along the last coordinate."""
    h = feats
    where = (coords.flip(-1) * 2 - 1).view(1, -1, 1, 2)
    for linear, grid in zip(linears[:-1], grids, strict=True):
        h = nn.functional.instance_norm(linear(h)[None])[0]
        affine = nn.functional.grid_sample(
            grid, where, padding_mode="border", align_corners=True
        ).view(2, -1, 1)
        h = torch.relu(h * affine[0] + affine[1])
    return linears[-1](h)


def test_paper_form_matches_the_reference_image_network() -> None:
    """Default CAM on 2-D coordinates = one scale and shift per layer on a 32 x 32 grid, layer
    normalisation: the authors' image model, computed independently, on the same parameters."""
    gen = torch.Generator().manual_seed(3)
    dec = MLP(12, 3, hidden=20, layers=4)
    wrapped = CAMDecoder(dec, coord_dims=(0, 1))
    cam = wrapped.cam
    assert cam.resolution == (32, 32) and cam.normalization == "layer"
    assert cam.scale.shape == cam.shift.shape == (3, 32, 32)
    with torch.no_grad():
        cam.scale.add_(0.5 * torch.randn(cam.scale.shape, generator=gen))
        cam.shift.add_(0.5 * torch.randn(cam.shift.shape, generator=gen))
    feats = torch.randn(200, 12, generator=gen)
    coords = torch.rand(200, 2, generator=gen)
    grids = [torch.stack([cam.scale[k], cam.shift[k]])[None] for k in range(3)]
    linears = [m for m in dec if isinstance(m, nn.Linear)]
    want = _reference_cam_image_mlp(linears, grids, feats, coords)
    torch.testing.assert_close(wrapped(feats, coords), want, rtol=1e-5, atol=1e-5)


def test_grid_size_does_not_depend_on_the_width() -> None:
    """A 256-wide MLP with 3 modulated layers at 32 x 32 holds 2 * 3 * 32 * 32 = 6,144 grid
    parameters in the paper's form (1,572,864 per feature)."""
    paper = CAMDecoder(MLP(8, 3, hidden=256, layers=4), coord_dims=(0, 1), resolution=32)
    assert sum(p.numel() for p in paper.cam.parameters()) == 6144
    wide = CAM((0, 1), 32, layers=3, features=256, per_feature=True)
    assert sum(p.numel() for p in wide.parameters()) == 1_572_864
    one_d = CAMDecoder(MLP(8, 1, hidden=64, layers=3), coord_dims=(0,))
    assert one_d.cam.resolution == (64,) and one_d.cam.normalization == "none"


def test_sized_ffn_cam_keeps_the_mlp() -> None:
    """At 100K parameters the paper-form grid (6,144) costs the MLP a few units of width, not
    most of it (the per-feature grid gave a 4 x 4 grid and width 151 before)."""
    from fields.models import build_field, sized_model

    plain = sized_model("ffn", 100_000, 2, 3)
    cam = sized_model("ffn_cam", 100_000, 2, 3)
    assert cam["cam"]["resolution"] == 32 and not cam["cam"]["per_feature"]
    # 6,144 grid parameters ~ 6144 / (2 * 160 + 256) ~ 7 units of width at this size
    assert plain["decoder"]["hidden"] - 10 <= cam["decoder"]["hidden"] < plain["decoder"]["hidden"]
    field = build_field(2, 3, **cam)
    total = sum(p.numel() for p in field.parameters())
    assert 0.97 * 100_000 <= total <= 100_000
