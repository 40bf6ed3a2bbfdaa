"""The identity encoding: the raw coordinates as features (SIREN's input), optionally mapped
from the unit cube to another box (SIREN's reference code feeds coordinates in [-1, 1])."""

from __future__ import annotations

import math

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor


class Identity(nn.Module):
    """``x [N, D] -> low + (high - low) x`` (``out_dim = in_dim``): the coordinates themselves
    (``low, high = 0, 1``) or the unit cube mapped onto ``[low, high]^D``; the same input checks
    as every encoding.

    Args:
        in_dim: coordinate dimension ``D``.
        low, high: where 0 and 1 go (``-1, 1`` centres the unit cube, as SIREN expects).
        generator: unused (the registry passes one to every encoding).

    Example: ``Identity(1, low=-1.0, high=1.0)(torch.tensor([[0.25]]))`` is ``[[-0.5]]``.
    """

    def __init__(
        self,
        in_dim: int,
        low: float = 0.0,
        high: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if in_dim < 1:
            raise InputError(f"Identity needs in_dim >= 1, got {in_dim}")
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise InputError(f"Identity needs finite low < high, got {low}, {high}")
        self.in_dim = in_dim
        self.out_dim = in_dim
        self.low = float(low)
        self.high = float(high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "Identity input x [N, D]", ndim=2)
        if x.shape[-1] != self.in_dim:
            raise InputError(
                f"Identity expected {self.in_dim}-D coordinates, got shape {tuple(x.shape)}"
            )
        if self.low == 0.0 and self.high == 1.0:
            return x
        return x * (self.high - self.low) + self.low

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, low={self.low}, high={self.high}"
