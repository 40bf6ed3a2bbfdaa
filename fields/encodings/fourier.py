"""Random Fourier features (Tancik et al. 2020), the baseline coordinate encoding.

.. math:: \\gamma(x) = [\\cos(2\\pi B x), \\sin(2\\pi B x)],\\quad B_{ij} \\sim \\mathcal{N}(0, \\sigma^2)

With ``include_input`` the raw coordinates are appended.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor


class FourierFeatures(nn.Module):
    """Gaussian random Fourier features of ``in_dim``-D coordinates.

    Args:
        in_dim: coordinate dimension ``D``.
        num_frequencies: rows of ``B`` (output has ``2 * num_frequencies`` features).
        sigma: standard deviation of ``B`` (in cycles per unit of input).
        include_input: append ``x`` itself.
        generator: RNG for ``B`` (a fixed buffer, saved with the module).

    Shapes: ``x [N, D] -> [N, out_dim]``.
    """

    def __init__(
        self,
        in_dim: int,
        num_frequencies: int = 64,
        sigma: float = 10.0,
        include_input: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if in_dim < 1 or num_frequencies < 1:
            raise InputError(
                f"FourierFeatures needs in_dim >= 1 and num_frequencies >= 1, "
                f"got {in_dim} and {num_frequencies}"
            )
        if not math.isfinite(sigma) or sigma <= 0:
            raise InputError(f"FourierFeatures sigma must be a positive number, got {sigma}")
        self.in_dim = in_dim
        self.include_input = include_input
        matrix = torch.randn(num_frequencies, in_dim, generator=generator) * sigma
        self.B: torch.Tensor
        self.register_buffer("B", matrix)
        self.out_dim = 2 * num_frequencies + (in_dim if include_input else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "FourierFeatures input x [N, D]", ndim=2)
        if x.shape[-1] != self.in_dim:
            raise InputError(
                f"FourierFeatures expected {self.in_dim}-D coordinates, got shape {tuple(x.shape)}"
            )
        proj = 2 * math.pi * x @ self.B.to(x.dtype).T
        parts = [torch.cos(proj), torch.sin(proj)]
        if self.include_input:
            parts.append(x)
        return torch.cat(parts, dim=-1)
