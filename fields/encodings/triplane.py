"""Tri-plane encoding: three axis-aligned 2-D feature planes, sampled bilinearly.

A point ``x = (x_0, x_1, x_2)`` in ``[0, 1]^3`` is projected onto the planes ``(x_0, x_1)``,
``(x_0, x_2)`` and ``(x_1, x_2)``; each plane ``P_k [C, R, R]`` is interpolated bilinearly at the
projection (vertices on the cube's faces, ``align_corners=True``), and the three feature vectors
are combined:

* ``sum``: ``f = P_01 + P_02 + P_12`` (``C`` features),
* ``product``: ``f = P_01 * P_02 * P_12`` (``C`` features; TensoRF / K-Planes style),
* ``concat``: ``[P_01, P_02, P_12]`` (``3 C`` features; EG3D style).

Plane ``k``'s first image axis (rows) is the first of its two coordinates. The planes are one
parameter ``planes [3, C, R, R]``; :meth:`TriPlane.export` returns them as a NumPy array for
downstream processing (Cardace et al., ICLR 2024, learn on such planes directly).

Initialisation: ``sum`` and ``concat`` draw ``U(-init_scale, init_scale)``; ``product`` draws
around 1 (``1 + U(-init_scale, init_scale)``) so the product starts near 1, not near 0.

Example: with ``C = 1``, ``R = 2`` and planes of ones, ``sum`` gives 3 and ``product`` 1 everywhere.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from neurosim.backend import InputError, check_tensor

AGGREGATIONS = ("sum", "product", "concat")
PLANE_AXES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2))
"""The coordinate pair of each plane (its row axis first)."""

Aggregation = Literal["sum", "product", "concat"]


def triplane_features(planes: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bilinear samples ``[3, N, C]`` of ``planes [3, C, R, R]`` at points ``x [N, 3]`` in [0, 1]."""
    n = x.shape[0]
    pairs = torch.stack([x[:, list(ax)] for ax in PLANE_AXES])  # [3, N, 2] (row, col)
    # grid_sample reads (x = column, y = row) in [-1, 1]
    grid = pairs.flip(-1).mul(2.0).sub(1.0).to(planes.dtype).view(3, 1, n, 2)
    out = torch.nn.functional.grid_sample(
        planes, grid, mode="bilinear", padding_mode="border", align_corners=True
    )  # [3, C, 1, N]
    return out.squeeze(2).transpose(1, 2)


class TriPlane(nn.Module):
    """Tri-plane encoding ``x [*B, 3] in [0, 1]^3 -> [*B, out_dim]`` (see the module docstring).

    Args:
        in_dim: must be 3.
        resolution: vertices per plane axis ``R`` (>= 2).
        features: channels per plane ``C``.
        aggregation: ``sum``, ``product`` or ``concat``.
        init_scale: half-width of the uniform initialisation.
        generator: RNG of the initialisation.
    """

    def __init__(
        self,
        in_dim: int = 3,
        resolution: int = 128,
        features: int = 16,
        aggregation: Aggregation = "sum",
        init_scale: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if in_dim != 3:
            raise InputError(f"TriPlane encodes 3-D points, got in_dim={in_dim}")
        if resolution < 2 or features < 1:
            raise InputError(
                f"TriPlane needs resolution >= 2 and features >= 1, got {resolution}, {features}"
            )
        if aggregation not in AGGREGATIONS:
            raise InputError(
                f"TriPlane aggregation {aggregation!r} is not known; expected one of {AGGREGATIONS}"
            )
        self.resolution = int(resolution)
        self.features = int(features)
        self.aggregation = aggregation
        init = torch.rand(3, features, resolution, resolution, generator=generator) * 2 - 1
        init = init * init_scale
        if aggregation == "product":
            init = init + 1.0
        self.planes = nn.Parameter(init)

    @property
    def in_dim(self) -> int:
        return 3

    @property
    def out_dim(self) -> int:
        return self.features * (3 if self.aggregation == "concat" else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eager = not torch.compiler.is_compiling()  # value checks sync: eager mode only
        check_tensor(x, "TriPlane input x [*B, 3]", min_ndim=1, finite=eager)
        if x.shape[-1] != 3:
            raise InputError(f"TriPlane expected 3-D points [*B, 3], got shape {tuple(x.shape)}")
        flat = x.reshape(-1, 3)
        if eager and flat.numel():
            lo, hi = float(flat.min()), float(flat.max())
            if lo < 0.0 or hi > 1.0:
                raise InputError(
                    f"TriPlane input must lie in the unit cube [0, 1]^3, got values in "
                    f"[{lo:.6g}, {hi:.6g}]"
                )
        feats = triplane_features(self.planes, flat)  # [3, N, C]
        if self.aggregation == "sum":
            out = feats.sum(0)
        elif self.aggregation == "product":
            out = feats[0] * feats[1] * feats[2]
        else:
            out = feats.permute(1, 0, 2).reshape(flat.shape[0], 3 * self.features)
        return out.reshape(*x.shape[:-1], self.out_dim)

    @torch.no_grad()
    def export(self) -> np.ndarray:
        """The planes as a float32 array ``[3, C, R, R]`` (plane order ``xy, xz, yz``)."""
        return self.planes.detach().float().cpu().numpy().copy()

    def extra_repr(self) -> str:
        return (
            f"resolution={self.resolution}, features={self.features}, "
            f"aggregation={self.aggregation!r}"
        )
