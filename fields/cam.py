"""Coordinate-aware modulation (CAM; Lee et al., ICLR 2024).

CAM modulates every hidden layer of a coordinate MLP with a scale and a shift that are read, by
multilinear interpolation, from a small learnable grid over a chosen subset of the input
coordinates ``x_S``:

.. math::

    h_l' = \\gamma_l(x_S)\\, \\mathrm{norm}(W_l h_{l-1} + b_l) + \\beta_l(x_S), \\qquad
    h_l = \\sigma(h_l')

with ``gamma`` initialised to 1 and ``beta`` to 0 (so an untrained CAM is only the normalisation),
``norm`` a normalisation over the layer's features (layer norm without affine parameters, or
none) and ``sigma`` the decoder's activation.

The paper's form, as in the authors' code (github.com/maincold2/CAM), and the default here: each
modulated layer has ONE scale and ONE shift channel on its grid (``gamma_l, beta_l`` are scalars
per point, broadcast over the layer's features), so the grid holds ``2 * layers`` channels at
``prod(resolution)`` vertices whatever the width: 6,144 parameters for 3 layers at 32 x 32.
``per_feature=True`` gives every feature its own pair (``2 * layers * width`` channels), an
option that costs ``width`` times more.

The authors' settings, per task (from their code):

* images (``CAM_image.py``): a 32 x 32 grid over the pixel coordinates for each of the 3 hidden
  layers, each layer's pre-activations normalised per pixel over its features (``instance_norm``
  of a ``[1, N, F]`` tensor: zero mean, unit variance, no affine: ``normalization="layer"``), the
  grid trained with 10x the MLP's learning rate (its own Adam parameter group);
* 1-D signals (``CAM_1D/network.py``): a 64-vertex grid over the coordinate per layer, no
  normalisation (``"none"``);
* NeRF: in mip-NeRF a 10 x 3 grid over the view direction (azimuth x elevation) per layer, with a
  GroupNorm(1) over each ray's samples and features before the modulation; in the nerfacc
  variants a 5-vertex grid over time (T-NeRF) or, for 3-D positions, three 512 x 512 planes whose
  values multiply; no normalisation there. (The ray-wise normalisation needs the
  ``[rays, samples, features]`` layout; here :func:`cam_modulate` normalises per point.)

Defaults here follow them: ``resolution`` 64 for one spanned coordinate, 32 per axis for two,
8 per axis for three (our choice: the dense 3-D grid the paper does not use);
``normalization`` ``"layer"`` for two spanned coordinates (images), ``"none"`` otherwise.

Coordinates are in the unit cube ``[0, 1]^d`` (values outside are clamped to the border) with
grid vertices on the cube's corners (``align_corners=True``, as ``grid_sample`` in the
reference).

Pure functional core: :func:`interpolate_grid` and :func:`cam_modulate`; :class:`CAM` holds the
grid; :class:`CAMDecoder` wraps any decoder built as an ``nn.Sequential`` of ``nn.Linear`` and
activation modules (:class:`fields.decoders.MLP`, :class:`fields.siren.Siren`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor

NORMALIZATIONS = ("layer", "none")

DEFAULT_RESOLUTION = {1: 64, 2: 32, 3: 8}
"""Grid vertices per axis by the number of spanned coordinates (see the module docstring)."""


def default_resolution(dims: int) -> int:
    """The default CAM grid resolution per axis for ``dims`` spanned coordinates."""
    return DEFAULT_RESOLUTION.get(dims, 4)


def default_normalization(dims: int) -> str:
    """``"layer"`` for two spanned coordinates (the reference's images), else ``"none"``."""
    return "layer" if dims == 2 else "none"


def interpolate_grid(grid: torch.Tensor, u: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """Multilinear interpolation of a vertex grid at unit-cube coordinates.

    Args:
        grid: ``[C, R_1, ..., R_d]`` values at the vertices (``R_i >= 2``).
        u: ``[N, d]`` coordinates in ``[0, 1]`` (clamped); ``u_i = 0`` is vertex 0 and ``u_i = 1``
            vertex ``R_i - 1`` of axis ``i``.

    Returns:
        ``[N, C]``: ``sum_corners prod_i w_i * grid[:, corner]`` with ``w_i = t_i`` or ``1 - t_i``.

    ``method="gather"`` sums the ``2^d`` corners explicitly (any ``d``); ``"grid_sample"`` uses
    ``torch.nn.functional.grid_sample`` (``d`` = 2 or 3, ``align_corners=True``, border padding),
    the same values by a faster fused kernel; ``"auto"`` picks it where it applies.

    Example: a ``[1, 2]`` grid ``[[0, 2]]`` at ``u = [[0.25]]`` gives ``[[0.5]]``.
    """
    d = u.shape[-1]
    if grid.dim() != d + 1:
        raise InputError(
            f"interpolate_grid grid must have {d + 1} dimensions [C, R_1..R_{d}] for {d}-D "
            f"coordinates, got shape {tuple(grid.shape)}"
        )
    if method not in ("auto", "gather", "grid_sample"):
        raise InputError(
            f"interpolate_grid method must be auto, gather or grid_sample, got {method!r}"
        )
    if method == "grid_sample" and d not in (2, 3):
        raise InputError(
            f"interpolate_grid method grid_sample needs 2-D or 3-D coordinates, got {d}-D"
        )
    if method == "grid_sample" or (method == "auto" and d in (2, 3)):
        # grid_sample takes (x, y[, z]) = the last axis first, in [-1, 1]
        g = u.clamp(0.0, 1.0).flip(-1).mul(2).sub(1).to(grid.dtype)
        g = g.reshape(1, *([1] * (d - 1)), u.shape[0], d)
        out = torch.nn.functional.grid_sample(
            grid[None], g, mode="bilinear", padding_mode="border", align_corners=True
        )
        return out.reshape(grid.shape[0], u.shape[0]).T
    res = grid.shape[1:]
    channels = grid.shape[0]
    flat = grid.reshape(channels, -1).T.contiguous()  # [V, C]: one row gather per corner
    pos = []
    frac = []
    for i in range(d):
        p = u[:, i].clamp(0.0, 1.0) * (res[i] - 1)
        p0 = p.detach().floor().clamp(max=res[i] - 2).long()
        pos.append(p0)
        frac.append(p - p0.to(p.dtype))
    strides = [1] * d
    for i in range(d - 2, -1, -1):
        strides[i] = strides[i + 1] * res[i + 1]
    out = torch.zeros(u.shape[0], channels, dtype=grid.dtype, device=grid.device)
    for corner in range(1 << d):
        index = torch.zeros_like(pos[0])
        weight = torch.ones_like(frac[0])
        for i in range(d):
            bit = (corner >> i) & 1
            index = index + (pos[i] + bit) * strides[i]
            weight = weight * (frac[i] if bit else 1 - frac[i])
        out = out + weight[:, None].to(grid.dtype) * flat[index]
    return out


def cam_modulate(
    h: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    normalization: str = "layer",
    eps: float = 1e-5,
) -> torch.Tensor:
    """``gamma * norm(h) + beta`` over the last axis.

    Args:
        h: ``[N, F]`` pre-activation features.
        gamma, beta: ``[N, F]`` scale and shift, or ``[N, 1]`` (one per point, broadcast over
            the features: the paper's form).
        normalization: ``"layer"`` (zero mean, unit variance per row, no affine) or ``"none"``.
        eps: variance floor of the layer norm.
    """
    if normalization == "layer":
        h = torch.nn.functional.layer_norm(h, h.shape[-1:], eps=eps)
    elif normalization != "none":
        raise InputError(
            f"unknown CAM normalization {normalization!r}; expected one of {NORMALIZATIONS}"
        )
    return gamma * h + beta


class CAM(nn.Module):
    """The CAM grid: a scale and a shift for each of ``layers`` hidden layers of width ``features``.

    Args:
        coord_dims: which input coordinates the grid spans (e.g. ``(0, 1)`` for both pixel axes,
            ``(2,)`` for time only).
        resolution: vertices per spanned axis (an int for all, or one per axis; each >= 2;
            ``None``: :func:`default_resolution`).
        layers: number of modulated hidden layers.
        features: width of those layers.
        normalization: ``"layer"`` or ``"none"`` (see :func:`cam_modulate`; ``None``:
            :func:`default_normalization`).
        per_feature: one scale/shift pair per feature instead of one per layer.

    Parameters: ``scale`` and ``shift`` of shape ``[layers * channels, *resolution]`` with
    ``channels`` 1 (default) or ``features`` (``per_feature``), initialised to 1 and 0.
    """

    def __init__(
        self,
        coord_dims: Sequence[int],
        resolution: int | Sequence[int] | None,
        layers: int,
        features: int,
        normalization: str | None = None,
        per_feature: bool = False,
    ) -> None:
        super().__init__()
        dims = tuple(int(c) for c in coord_dims)
        if not dims or len(set(dims)) != len(dims) or min(dims) < 0:
            raise InputError(
                f"CAM coord_dims must be distinct non-negative indices, got {coord_dims}"
            )
        if resolution is None:
            resolution = default_resolution(len(dims))
        res = (int(resolution),) * len(dims) if isinstance(resolution, int) else tuple(resolution)
        if len(res) != len(dims) or min(res) < 2:
            raise InputError(
                f"CAM resolution must give >= 2 vertices for each of the {len(dims)} axes, got {resolution}"
            )
        if layers < 1 or features < 1:
            raise InputError(
                f"CAM needs layers >= 1 and features >= 1, got {layers} and {features}"
            )
        if normalization is None:
            normalization = default_normalization(len(dims))
        if normalization not in NORMALIZATIONS:
            raise InputError(
                f"unknown CAM normalization {normalization!r}; expected one of {NORMALIZATIONS}"
            )
        self.coord_dims = dims
        self.resolution = res
        self.layers = layers
        self.features = features
        self.normalization = normalization
        self.per_feature = bool(per_feature)
        self.channels = features if self.per_feature else 1
        self.scale = nn.Parameter(torch.ones(layers * self.channels, *res))
        self.shift = nn.Parameter(torch.zeros(layers * self.channels, *res))

    def forward(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale and shift at ``coords [N, D]``: two ``[layers, N, channels]`` tensors
        (``channels`` 1 broadcasts over the features)."""
        check_tensor(coords, "CAM coordinates [N, D]", ndim=2)
        if coords.shape[1] <= max(self.coord_dims):
            raise InputError(
                f"CAM spans coordinate axes {self.coord_dims} but got coordinates of shape "
                f"{tuple(coords.shape)}"
            )
        u = coords[:, list(self.coord_dims)]
        grid = torch.cat([self.scale, self.shift], dim=0).to(coords.dtype)
        values = interpolate_grid(grid, u)  # [N, 2 * L * C]
        n = coords.shape[0]
        gamma, beta = values.split(self.layers * self.channels, dim=1)
        gamma = gamma.reshape(n, self.layers, self.channels).transpose(0, 1)
        beta = beta.reshape(n, self.layers, self.channels).transpose(0, 1)
        return gamma, beta

    def extra_repr(self) -> str:
        return (
            f"coord_dims={self.coord_dims}, resolution={self.resolution}, layers={self.layers}, "
            f"features={self.features}, normalization={self.normalization!r}, "
            f"per_feature={self.per_feature}"
        )


def hidden_linears(decoder: nn.Sequential) -> list[int]:
    """Positions of the hidden ``nn.Linear`` layers of a sequential decoder (all but the last)."""
    linears = [i for i, m in enumerate(decoder) if isinstance(m, nn.Linear)]
    if not linears:
        raise InputError(f"decoder {type(decoder).__name__} has no nn.Linear layer to modulate")
    return linears[:-1]


class CAMDecoder(nn.Module):
    """A sequential decoder whose hidden layers are modulated by a :class:`CAM`.

    Args:
        decoder: ``nn.Sequential`` of ``nn.Linear`` and activation modules (``MLP``, ``Siren``).
        coord_dims, resolution, normalization, per_feature: passed to :class:`CAM` (defaults:
            the paper's form for the number of spanned coordinates).

    The CAM gets one layer per hidden ``nn.Linear`` of ``decoder`` (all must share one width);
    each modulation is applied right after its linear layer, before the activation.

    Shapes: ``forward(features [N, in_dim], coords [N, D]) -> [N, out_dim]``.
    """

    def __init__(
        self,
        decoder: nn.Sequential,
        coord_dims: Sequence[int],
        resolution: int | Sequence[int] | None = None,
        normalization: str | None = None,
        per_feature: bool = False,
    ) -> None:
        super().__init__()
        positions = hidden_linears(decoder)
        if not positions:
            raise InputError(
                "CAMDecoder needs a decoder with at least one hidden layer (layers >= 2)"
            )
        linears = [m for m in decoder if isinstance(m, nn.Linear)]
        widths = {m.out_features for m in linears[:-1]}
        if len(widths) != 1:
            raise InputError(
                f"CAMDecoder needs hidden layers of one width, got widths {sorted(widths)}"
            )
        self.decoder = decoder
        self.positions = positions
        self.cam = CAM(
            coord_dims, resolution, len(positions), widths.pop(), normalization, per_feature
        )
        self.in_dim = linears[0].in_features
        self.out_dim = linears[-1].out_features

    def forward(self, features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        check_tensor(features, "CAMDecoder features [N, in_dim]", ndim=2, finite=False)
        if coords.shape[0] != features.shape[0]:
            raise InputError(
                f"CAMDecoder features {tuple(features.shape)} and coords {tuple(coords.shape)} "
                "must have the same number of points"
            )
        gamma, beta = self.cam(coords)
        layer = {p: k for k, p in enumerate(self.positions)}
        h = features
        for i, module in enumerate(self.decoder):
            h = module(h)
            if i in layer:
                k = layer[i]
                h = cam_modulate(h, gamma[k], beta[k], self.cam.normalization)
        return h
