"""Decoders: small MLPs from encoded features to field values."""

from __future__ import annotations

import math

import torch
from torch import nn

from neurosim.backend import InputError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


class MLP(nn.Sequential):
    """``in_dim -> hidden x (layers - 1) -> out_dim`` with an activation between linear layers.

    Args:
        in_dim: input features.
        out_dim: output features.
        hidden: width of hidden layers.
        layers: number of linear layers (>= 1).
        activation: one of ``relu``, ``gelu``, ``silu``, ``tanh``.
        output_activation: optional activation name applied to the output (e.g. ``None``).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: int = 64,
        layers: int = 3,
        activation: str = "relu",
        output_activation: str | None = None,
    ) -> None:
        if layers < 1:
            raise InputError(f"MLP needs at least 1 layer, got layers={layers}")
        for act in (activation, output_activation):
            if act is not None and act not in ACTIVATIONS:
                raise InputError(
                    f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}"
                )
        dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        modules: list[nn.Module] = []
        for i in range(layers):
            modules.append(nn.Linear(dims[i], dims[i + 1]))
            if i < layers - 1:
                modules.append(ACTIVATIONS[activation]())
        if output_activation is not None:
            modules.append(ACTIVATIONS[output_activation]())
        super().__init__(*modules)
        self.in_dim = in_dim
        self.out_dim = out_dim


def reinit_linears(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default ``nn.Linear`` initialisation, drawn from ``generator`` (reproducible)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                m.weight.copy_((torch.rand(m.weight.shape, generator=generator) * 2 - 1) * bound)
                if m.bias is not None:
                    m.bias.copy_((torch.rand(m.bias.shape, generator=generator) * 2 - 1) * bound)
