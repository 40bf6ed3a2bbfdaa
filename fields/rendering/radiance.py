"""Radiance fields built from :mod:`fields` encodings: ``(x, d) -> (sigma, rgb)``.

Every model is an Instant-NGP-style pair of small MLPs on an encoding of the position:

.. math::

    (\\hat\\sigma, g) = \\mathrm{MLP}_\\sigma(\\mathrm{enc}(u(x))), \\qquad
    \\sigma = \\exp(\\hat\\sigma), \\qquad
    c = \\mathrm{sigmoid}(\\mathrm{MLP}_c([g, \\mathrm{direnc}(d)]))

with ``u(x)`` the position mapped into ``[0, 1]^3`` (the scene box, or :func:`contract` for
unbounded scenes), ``g`` the density MLP's output features (the first of which is
``\\hat\\sigma``, as in Instant-NGP), ``exp`` with its input clamped at 15 (:func:`trunc_exp`) and
``direnc`` real spherical harmonics of degree 4 (16 components, tiny-cuda-nn's
``SphericalHarmonics``) or Fourier features of the direction.

Named models (:func:`radiance_field`):

* ``hashgrid``: :class:`~fields.encodings.hashgrid.HashGrid` (Instant-NGP).
* ``neurbf``: :class:`~fields.encodings.rbf.NeuRBFHybrid`: adaptive radial bases (a regular
  3-D layout) beside a small hash grid.
* ``triplane``: :class:`~fields.encodings.triplane.TriPlane` (summed or multiplied planes).
* ``cam``: the hash grid model whose colour MLP is modulated by CAM over the view direction
  (a 2-D ``(azimuth, elevation)`` grid with one scale and one shift per hidden layer, after a
  layer norm: the CAM paper's mip-NeRF variant; we modulate the colour MLP so that the density
  stays view-independent, which the occupancy grid needs).
* ``cam_position``: the hash grid model whose density MLP is modulated by CAM over the position,
  the scales and shifts read from a tri-plane whose three planes are multiplied (the CAM paper's
  static NeRF variant on nerfacc).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from fields.cam import cam_modulate, interpolate_grid
from fields.decoders import MLP, reinit_linears
from fields.encodings.fourier import FourierFeatures
from fields.encodings.hashgrid import HashGrid
from fields.encodings.rbf import AdaptiveRBF, NeuRBFHybrid
from fields.encodings.triplane import TriPlane
from fields.rendering.sampling import check_aabb, contract
from neurosim.backend import InputError

MODELS = ("hashgrid", "neurbf", "triplane", "cam", "cam_position")
DIRECTION_ENCODINGS = ("sh", "fourier")


class _TruncExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(max=15.0))


def trunc_exp(x: torch.Tensor) -> torch.Tensor:
    """``exp(x)`` whose gradient uses ``exp(min(x, 15))`` (Instant-NGP's density activation)."""
    out: torch.Tensor = _TruncExp.apply(x.float())
    return out


def spherical_harmonics(d: torch.Tensor, degree: int = 4) -> torch.Tensor:
    """Real spherical harmonics of unit directions ``d [N, 3]``: ``[N, degree^2]``.

    Bands ``l = 0 .. degree - 1`` (``degree`` 1-4), the orthonormal real basis
    (``int Y_i Y_j dOmega = delta_ij``) in tiny-cuda-nn's order and signs.
    """
    if not 1 <= degree <= 4:
        raise InputError(f"spherical harmonics degree must be 1-4, got {degree}")
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    out = [torch.full_like(x, 0.28209479177387814)]
    if degree > 1:
        out += [-0.48860251190291987 * y, 0.48860251190291987 * z, -0.48860251190291987 * x]
    if degree > 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            1.0925484305920792 * x * y,
            -1.0925484305920792 * y * z,
            0.94617469575755997 * zz - 0.31539156525251999,
            -1.0925484305920792 * x * z,
            0.54627421529603959 * (xx - yy),
        ]
    if degree > 3:
        out += [
            0.59004358992664352 * y * (3.0 * xx - yy),
            2.8906114426405538 * x * y * z,
            0.45704579946446572 * y * (5.0 * zz - 1.0),
            0.3731763325901154 * z * (5.0 * zz - 3.0),
            0.45704579946446572 * x * (5.0 * zz - 1.0),
            1.4453057213202769 * z * (xx - yy),
            0.59004358992664352 * x * (xx - 3.0 * yy),
        ]
    return torch.stack(out, dim=-1)


class SHEncoding(nn.Module):
    """:func:`spherical_harmonics` as a module (``out_dim = degree^2``)."""

    def __init__(self, degree: int = 4) -> None:
        super().__init__()
        if not 1 <= degree <= 4:
            raise InputError(f"spherical harmonics degree must be 1-4, got {degree}")
        self.degree = degree
        self.out_dim = degree * degree

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        return spherical_harmonics(d, self.degree)


def direction_angles(d: torch.Tensor) -> torch.Tensor:
    """``[N, 2]`` (azimuth, elevation) of unit directions, each scaled to ``[0, 1]``."""
    azimuth = torch.atan2(d[..., 1], d[..., 0]) / (2 * math.pi) + 0.5
    elevation = torch.asin(d[..., 2].clamp(-1.0, 1.0)) / math.pi + 0.5
    return torch.stack((azimuth, elevation), dim=-1)


class DirectionCAM(nn.Module):
    """CAM over the view direction: per hidden layer one scale and one shift on a 2-D
    ``(azimuth, elevation)`` grid (initialised to 1 and 0), applied after a layer norm.

    ``forward(d [N, 3]) -> (gamma [L, N, 1], beta [L, N, 1])``.
    """

    def __init__(self, layers: int, resolution: tuple[int, int] = (10, 3)) -> None:
        super().__init__()
        if layers < 1 or min(resolution) < 2:
            raise InputError(
                f"DirectionCAM needs layers >= 1 and a grid of >= 2 vertices per axis, got "
                f"{layers}, {resolution}"
            )
        self.layers = layers
        self.resolution = tuple(int(r) for r in resolution)
        self.scale = nn.Parameter(torch.ones(layers, *self.resolution))
        self.shift = nn.Parameter(torch.zeros(layers, *self.resolution))

    def forward(self, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grid = torch.cat((self.scale, self.shift), dim=0).to(d.dtype)
        values = interpolate_grid(grid, direction_angles(d))  # [N, 2L]
        gamma, beta = values.T.unsqueeze(-1).split(self.layers, dim=0)
        return gamma, beta


class PositionCAM(nn.Module):
    """CAM over the position: per hidden layer one scale and one shift channel of a tri-plane
    whose three planes are multiplied (the CAM paper's static NeRF variant).

    The scale channels start at exactly 1. The shift channels start small and random (a product
    of three planes that all start at 0 would never receive a gradient).
    ``forward(u [N, 3] in [0, 1]) -> (gamma [L, N, 1], beta [L, N, 1])``.
    """

    def __init__(
        self, layers: int, resolution: int = 128, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        if layers < 1:
            raise InputError(f"PositionCAM needs layers >= 1, got {layers}")
        self.layers = layers
        self.planes = TriPlane(3, resolution, 2 * layers, "product", generator=generator)
        with torch.no_grad():
            self.planes.planes[:, :layers] = 1.0
            noise = torch.rand(3, layers, resolution, resolution, generator=generator) * 2 - 1
            self.planes.planes[:, layers:] = 0.3 * noise

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values = self.planes(u.detach())  # [N, 2L]
        gamma, beta = values.T.unsqueeze(-1).split(self.layers, dim=0)
        return gamma, beta


def _run_mlp(
    mlp: nn.Sequential,
    h: torch.Tensor,
    modulation: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run a :class:`~fields.decoders.MLP`, CAM-modulating each hidden layer when given."""
    if modulation is None:
        out: torch.Tensor = mlp(h)
        return out
    gamma, beta = modulation
    linears = [i for i, m in enumerate(mlp) if isinstance(m, nn.Linear)]
    hidden = {p: k for k, p in enumerate(linears[:-1])}
    for i, module in enumerate(mlp):
        h = module(h)
        if i in hidden:
            k = hidden[i]
            h = cam_modulate(h, gamma[k].to(h.dtype), beta[k].to(h.dtype))
    return h


class RadianceField(nn.Module):
    """``(x [M, 3], d [M, 3]) -> (sigma [M], rgb [M, 3])`` (see the module docstring).

    Args:
        encoding: position encoding of points in ``[0, 1]^3`` (has ``out_dim``).
        aabb: scene box; positions are mapped into it (``contraction=False``) or contracted.
        geo_features: width of the density MLP's output ``g`` (its first entry is the density).
        hidden: width of both MLPs.
        density_layers, color_layers: linear layers of each MLP.
        direction_encoding: ``sh`` (degree 4) or ``fourier`` (8 random Fourier features, sigma 1, plus the direction).
        contraction: map positions with :func:`~fields.rendering.sampling.contract` of the box
            coordinates (unbounded scenes) instead of clamping them to the box.
        direction_cam: a :class:`DirectionCAM` for the colour MLP's hidden layers.
        position_cam: a :class:`PositionCAM` for the density MLP's hidden layers.
        density_bias: added to ``\\hat\\sigma`` before ``exp``.
    """

    aabb: torch.Tensor

    def __init__(
        self,
        encoding: nn.Module,
        aabb: torch.Tensor | list[float] | tuple[float, ...],
        *,
        geo_features: int = 16,
        hidden: int = 64,
        density_layers: int = 2,
        color_layers: int = 3,
        direction_encoding: str = "sh",
        contraction: bool = False,
        direction_cam: DirectionCAM | None = None,
        position_cam: PositionCAM | None = None,
        density_bias: float = -1.0,
    ) -> None:
        super().__init__()
        if direction_encoding not in DIRECTION_ENCODINGS:
            raise InputError(
                f"direction_encoding {direction_encoding!r} is not known; expected one of "
                f"{DIRECTION_ENCODINGS}"
            )
        self.register_buffer("aabb", check_aabb(aabb))
        self.encoding = encoding
        self.contraction = contraction
        self.density_bias = float(density_bias)
        enc_dim = int(encoding.out_dim)  # type: ignore[arg-type]
        self.density_mlp = MLP(enc_dim, geo_features, hidden, density_layers)
        self.direction_encoding: nn.Module
        if direction_encoding == "sh":
            self.direction_encoding = SHEncoding(4)
        else:
            self.direction_encoding = FourierFeatures(3, num_frequencies=8, sigma=1.0)
        dir_dim = int(self.direction_encoding.out_dim)  # type: ignore[arg-type]
        self.color_mlp = MLP(geo_features + dir_dim, 3, hidden, color_layers)
        for name, cam, layers in (
            ("direction_cam", direction_cam, color_layers - 1),
            ("position_cam", position_cam, density_layers - 1),
        ):
            if cam is not None and cam.layers != layers:
                raise InputError(f"{name} modulates {cam.layers} layers; the MLP has {layers}")
        self.direction_cam = direction_cam
        self.position_cam = position_cam

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """World points -> the encoding's ``[0, 1]^3``."""
        lo, hi = self.aabb[:3], self.aabb[3:]
        u = (x - lo) / (hi - lo)
        if self.contraction:
            return (contract(u * 2.0 - 1.0) + 2.0) / 4.0
        return u.clamp(0.0, 1.0)

    def geometry(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sigma [M], g [M, geo_features])`` at world points ``x [M, 3]``."""
        u = self.normalize(x)
        features = self.encoding(u)
        modulation = None if self.position_cam is None else self.position_cam(u)
        g = _run_mlp(self.density_mlp, features, modulation)
        return self.density_from_features(g), g

    def density_from_features(self, g: torch.Tensor) -> torch.Tensor:
        """``sigma [M]`` from the geometry features ``g`` that :meth:`geometry` returned."""
        return trunc_exp(g[..., 0] + self.density_bias)

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """``sigma [M]`` at world points ``x [M, 3]``."""
        return self.geometry(x)[0]

    def color(self, g: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """``rgb [M, 3]`` from geometry features ``g`` and unit view directions ``d [M, 3]``."""
        h = torch.cat((g, self.direction_encoding(d).to(g.dtype)), dim=-1)
        modulation = None if self.direction_cam is None else self.direction_cam(d)
        return torch.sigmoid(_run_mlp(self.color_mlp, h, modulation))

    def forward(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sigma, g = self.geometry(x)
        return sigma, self.color(g, d)


def radiance_field(
    model: str,
    aabb: torch.Tensor | list[float] | tuple[float, ...],
    *,
    generator: torch.Generator | None = None,
    **options: Any,
) -> RadianceField:
    """A named radiance field (see the module docstring) over the scene box ``aabb``.

    Options (defaults in brackets): ``levels`` [16], ``features_per_level`` [2],
    ``log2_hashmap_size`` [19], ``base_resolution`` [16], ``max_resolution`` [1024] of the hash
    grid; ``rbf_kernels`` [4096], ``rbf_features`` [16], ``rbf_neighbors`` [4] (``neurbf``, whose
    grid uses ``levels`` [8] and ``log2_hashmap_size`` [17]); ``plane_resolution`` [128],
    ``plane_features`` [16], ``aggregation`` [sum] (``triplane``); ``cam_resolution``
    ([10, 3] for ``cam``, 128 for ``cam_position``); and the :class:`RadianceField` keywords
    ``hidden`` [64], ``geo_features`` [16], ``density_layers`` [2], ``color_layers`` [3],
    ``direction_encoding`` [sh], ``contraction`` [False], ``density_bias`` [-1].
    """
    if model not in MODELS:
        raise InputError(f"unknown radiance field {model!r}; expected one of {MODELS}")
    opts = dict(options)
    field_keys = (
        "hidden",
        "geo_features",
        "density_layers",
        "color_layers",
        "direction_encoding",
        "contraction",
        "density_bias",
    )
    field_opts = {k: opts.pop(k) for k in field_keys if k in opts}
    grid_defaults = (
        {"levels": 16, "log2_hashmap_size": 19}
        if model != "neurbf"
        else {
            "levels": 8,
            "log2_hashmap_size": 17,
        }
    )

    def hash_grid() -> HashGrid:
        return HashGrid(
            3,
            n_levels=int(opts.pop("levels", grid_defaults["levels"])),
            n_features_per_level=int(opts.pop("features_per_level", 2)),
            log2_hashmap_size=int(
                opts.pop("log2_hashmap_size", grid_defaults["log2_hashmap_size"])
            ),
            base_resolution=int(opts.pop("base_resolution", 16)),
            per_level_scale=None,
            max_resolution=int(opts.pop("max_resolution", 1024)),
            backend=str(opts.pop("backend", "auto")),
            generator=generator,
        )

    encoding: nn.Module
    direction_cam = position_cam = None
    if model == "triplane":
        encoding = TriPlane(
            3,
            int(opts.pop("plane_resolution", 128)),
            int(opts.pop("plane_features", 16)),
            opts.pop("aggregation", "sum"),
            generator=generator,
        )
    elif model == "neurbf":
        rbf = AdaptiveRBF(
            3,
            int(opts.pop("rbf_kernels", 4096)),
            features=int(opts.pop("rbf_features", 16)),
            neighbors=int(opts.pop("rbf_neighbors", 4)),
            freq_range=(1.0, 64.0),
            generator=generator,
        )
        encoding = NeuRBFHybrid(rbf, hash_grid(), generator=generator)
    else:
        encoding = hash_grid()
    color_layers = int(field_opts.get("color_layers", 3))
    density_layers = int(field_opts.get("density_layers", 2))
    if model == "cam":
        res = opts.pop("cam_resolution", (10, 3))
        direction_cam = DirectionCAM(color_layers - 1, tuple(res))
    elif model == "cam_position":
        position_cam = PositionCAM(
            density_layers - 1, int(opts.pop("cam_resolution", 128)), generator=generator
        )
    if opts:
        raise InputError(f"unknown option(s) {sorted(opts)} for radiance field {model!r}")
    field = RadianceField(
        encoding, aabb, direction_cam=direction_cam, position_cam=position_cam, **field_opts
    )
    if generator is not None:
        reinit_linears(field, generator)
    return field


class ProposalDensity(nn.Module):
    """A small density field for proposal sampling: ``u [M, 3] in [0, 1]^3 -> sigma [M]``.

    A 5-level hash grid (finest resolution ``max_resolution``) and a one-hidden-layer MLP of
    width 16 with :func:`trunc_exp`, as nerfacto's proposal networks.
    """

    def __init__(
        self,
        max_resolution: int = 128,
        log2_hashmap_size: int = 17,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.encoding = HashGrid(
            3,
            n_levels=5,
            n_features_per_level=2,
            log2_hashmap_size=log2_hashmap_size,
            base_resolution=16,
            per_level_scale=None,
            max_resolution=max_resolution,
            generator=generator,
        )
        self.mlp = MLP(self.encoding.out_dim, 1, 16, 2)
        if generator is not None:
            reinit_linears(self.mlp, generator)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return trunc_exp(self.mlp(self.encoding(u))[..., 0])


def proposal_density_field(
    max_resolution: int = 128, generator: torch.Generator | None = None
) -> ProposalDensity:
    """A :class:`ProposalDensity` (nerfacto's proposal network sizes)."""
    return ProposalDensity(max_resolution, generator=generator)
