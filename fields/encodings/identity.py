"""The identity encoding: the raw coordinates as features (SIREN's input)."""

from __future__ import annotations

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor


class Identity(nn.Module):
    """``x [N, D] -> x`` (``out_dim = in_dim``), with the same input checks as every encoding.

    Args:
        in_dim: coordinate dimension ``D``.
        generator: unused (the registry passes one to every encoding).
    """

    def __init__(self, in_dim: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if in_dim < 1:
            raise InputError(f"Identity needs in_dim >= 1, got {in_dim}")
        self.in_dim = in_dim
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "Identity input x [N, D]", ndim=2)
        if x.shape[-1] != self.in_dim:
            raise InputError(
                f"Identity expected {self.in_dim}-D coordinates, got shape {tuple(x.shape)}"
            )
        return x
