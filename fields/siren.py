"""SIREN: sinusoidal representation networks (Sitzmann et al. 2020), a coordinate-MLP baseline.

Each hidden layer computes

.. math:: h_{l+1} = \\sin(\\omega_0 (W_l h_l + b_l))

with the paper's initialisation: the first layer's weights are drawn from
``U(-1/fan_in, 1/fan_in)`` and every later layer's from
``U(-sqrt(6/fan_in)/omega_0, sqrt(6/fan_in)/omega_0)``, which keeps the pre-activations
approximately unit-variance arcsine distributed through depth. The last layer is linear.

The network is an ``nn.Sequential`` of ``nn.Linear`` and :class:`Sine` modules, so the same
layer walk that :class:`fields.cam.CAMDecoder` applies to :class:`fields.decoders.MLP` applies to it.

Example: ``Siren(2, 3, hidden=64, layers=3)`` maps ``[N, 2]`` pixel coordinates to ``[N, 3]`` RGB.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor


def sine(x: torch.Tensor, omega_0: float) -> torch.Tensor:
    """``sin(omega_0 * x)``, elementwise (any shape)."""
    return torch.sin(omega_0 * x)


class Sine(nn.Module):
    """The SIREN activation ``sin(omega_0 * x)`` as a module (any shape in, same shape out)."""

    def __init__(self, omega_0: float = 30.0) -> None:
        super().__init__()
        if not math.isfinite(omega_0) or omega_0 <= 0:
            raise InputError(f"Sine omega_0 must be a positive number, got {omega_0}")
        self.omega_0 = float(omega_0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sine(x, self.omega_0)

    def extra_repr(self) -> str:
        return f"omega_0={self.omega_0}"


def siren_init_(
    linear: nn.Linear, *, first: bool, omega_0: float, generator: torch.Generator | None = None
) -> None:
    """Initialise one SIREN layer in place (weights as in the module docstring, biases likewise).

    Args:
        linear: the layer.
        first: the first layer (bound ``1/fan_in``) or a later one (``sqrt(6/fan_in)/omega_0``).
        omega_0: the frequency factor of the following :class:`Sine`.
        generator: RNG for reproducible initialisation.
    """
    fan_in = linear.in_features
    bound = 1.0 / fan_in if first else math.sqrt(6.0 / fan_in) / omega_0
    with torch.no_grad():
        w = torch.rand(linear.weight.shape, generator=generator, dtype=torch.float64) * 2 - 1
        linear.weight.copy_(w * bound)
        b = torch.rand(linear.bias.shape, generator=generator, dtype=torch.float64) * 2 - 1
        linear.bias.copy_(b / math.sqrt(fan_in))


class Siren(nn.Sequential):
    """``in_dim -> hidden x (layers - 1) -> out_dim`` with ``sin(omega_0 .)`` between layers.

    Args:
        in_dim: input features (coordinates, or an encoding's features).
        out_dim: output features.
        hidden: width of hidden layers.
        layers: number of linear layers (>= 2: at least one sine layer).
        omega_0: frequency factor of the first layer (30 in the paper).
        hidden_omega_0: frequency factor of later sine layers (30 in the paper).
        generator: RNG for the initialisation.

    Shapes: ``x [N, in_dim] -> [N, out_dim]``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: int = 64,
        layers: int = 3,
        omega_0: float = 30.0,
        hidden_omega_0: float = 30.0,
        generator: torch.Generator | None = None,
    ) -> None:
        if layers < 2:
            raise InputError(f"Siren needs at least 2 layers, got layers={layers}")
        if in_dim < 1 or out_dim < 1 or hidden < 1:
            raise InputError(
                f"Siren needs positive in_dim, out_dim and hidden, got {in_dim}, {out_dim}, {hidden}"
            )
        dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        modules: list[nn.Module] = []
        for i in range(layers):
            linear = nn.Linear(dims[i], dims[i + 1])
            w0 = omega_0 if i == 0 else hidden_omega_0
            # the last (linear) layer follows a hidden sine layer: same bound as hidden layers
            siren_init_(linear, first=i == 0, omega_0=hidden_omega_0, generator=generator)
            modules.append(linear)
            if i < layers - 1:
                modules.append(Sine(w0))
        super().__init__(*modules)
        self.in_dim = in_dim
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "Siren input [N, in_dim]", ndim=2, finite=False)
        if x.shape[-1] != self.in_dim:
            raise InputError(
                f"Siren expected {self.in_dim} input features, got shape {tuple(x.shape)}"
            )
        out: torch.Tensor = super().forward(x)
        return out
