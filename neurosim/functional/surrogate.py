"""Surrogate gradients: a Heaviside spike in the forward pass, a smooth derivative in the backward.

.. math:: S = H(u) = [u > 0], \\qquad \\frac{\\partial S}{\\partial u} := \\sigma'(u)

where ``u = v - threshold`` is the membrane distance to threshold. The forward pass is exactly the
strict step ``u > 0`` (snnTorch's convention); only the backward pass changes with the surrogate:

=================  ============================================================  ==============
name               :math:`\\sigma'(u)` with slope :math:`k`                         default ``k``
=================  ============================================================  ==============
``arctan``         :math:`\\frac{k}{2} \\, / \\, (1 + (\\frac{\\pi}{2} k u)^2)`          2.0
``fast_sigmoid``   :math:`1 / (k |u| + 1)^2`                                        25.0
``sigmoid``        :math:`k \\, \\mathrm{sig}(k u) (1 - \\mathrm{sig}(k u))`            25.0
``straight_through``  :math:`1` (the gradient passes unchanged)                       1.0
=================  ============================================================  ==============

The defaults and formulas are those of ``snntorch.surrogate.atan`` / ``fast_sigmoid`` /
``sigmoid`` / ``straight_through_estimator``, so gradients agree with snnTorch for the same slope.

A :class:`Surrogate` is plain data (a NamedTuple of a name and a slope) so that the fused kernels
(:mod:`neurosim.functional.lif`) can evaluate the same derivative inside Triton or compiled code.

>>> s = Surrogate.arctan(alpha=2.0)
>>> u = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
>>> spike(u, s).tolist()
[0.0, 0.0, 1.0]
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from neurosim.backend import InputError

SURROGATES: tuple[str, ...] = ("arctan", "fast_sigmoid", "sigmoid", "straight_through")
"""Names of the surrogate gradients, in the order of their integer codes used by the kernels."""


class Surrogate(NamedTuple):
    """A surrogate gradient: which derivative stands in for the Heaviside step, and its slope.

    Attributes:
        name: one of :data:`SURROGATES`.
        slope: sharpness ``k`` (snnTorch's ``alpha`` for arctan, ``slope`` for the sigmoids);
            ignored by ``straight_through``.
    """

    name: str = "arctan"
    slope: float = 2.0

    @classmethod
    def arctan(cls, alpha: float = 2.0) -> Surrogate:
        """Arctan surrogate ``k/2 / (1 + (pi/2 k u)^2)`` (snnTorch ``surrogate.atan``)."""
        return cls("arctan", float(alpha))

    @classmethod
    def fast_sigmoid(cls, slope: float = 25.0) -> Surrogate:
        """Fast sigmoid ``1 / (k|u| + 1)^2`` (Zenke & Ganguli 2018; snnTorch ``fast_sigmoid``)."""
        return cls("fast_sigmoid", float(slope))

    @classmethod
    def sigmoid(cls, slope: float = 25.0) -> Surrogate:
        """Logistic-sigmoid derivative ``k sig(ku)(1 - sig(ku))`` (snnTorch ``sigmoid``)."""
        return cls("sigmoid", float(slope))

    @classmethod
    def straight_through(cls) -> Surrogate:
        """Straight-through estimator: the derivative is 1 everywhere."""
        return cls("straight_through", 1.0)

    @property
    def code(self) -> int:
        """Integer code of :attr:`name` used by the fused kernels."""
        return SURROGATES.index(self.name)

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        """The surrogate derivative ``sigma'(u)`` evaluated element-wise."""
        return surrogate_derivative(u, self.name, self.slope)

    def validate(self, name: str = "surrogate") -> Surrogate:
        """Return ``self`` or raise :class:`InputError` for an unknown name or a bad slope."""
        check_surrogate(self, name)
        return self


def check_surrogate(surrogate: object, name: str = "surrogate") -> Surrogate:
    """Raise :class:`InputError` unless ``surrogate`` is a valid :class:`Surrogate`."""
    if not isinstance(surrogate, Surrogate):
        raise InputError(
            f"{name} must be a neurosim Surrogate (e.g. Surrogate.arctan()), "
            f"got {type(surrogate).__name__}"
        )
    if surrogate.name not in SURROGATES:
        raise InputError(f"{name} name {surrogate.name!r} is unknown; expected one of {SURROGATES}")
    if not (isinstance(surrogate.slope, (int, float)) and math.isfinite(surrogate.slope)):
        raise InputError(f"{name} slope must be a finite number, got {surrogate.slope!r}")
    if surrogate.slope <= 0:
        raise InputError(f"{name} slope must be positive, got {surrogate.slope}")
    return surrogate


def surrogate_derivative(u: torch.Tensor, name: str, slope: float) -> torch.Tensor:
    """``sigma'(u)`` for the surrogate called ``name`` with slope ``slope`` (see the module table).

    Args:
        u: distance to threshold ``v - threshold``, any shape.
        name: one of :data:`SURROGATES`.
        slope: the sharpness ``k``.

    Returns:
        A tensor shaped like ``u``.
    """
    if name == "arctan":
        return (slope / 2.0) / (1.0 + (math.pi / 2.0 * slope * u) ** 2)
    if name == "fast_sigmoid":
        return 1.0 / (slope * u.abs() + 1.0) ** 2
    if name == "sigmoid":
        sig = torch.sigmoid(slope * u)
        return slope * sig * (1.0 - sig)
    if name == "straight_through":
        return torch.ones_like(u)
    raise InputError(f"surrogate name {name!r} is unknown; expected one of {SURROGATES}")


class _Spike(torch.autograd.Function):
    """Heaviside ``[u > 0]`` forward, ``grad * sigma'(u)`` backward."""

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, name: str, slope: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.name = name
        ctx.slope = slope
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (u,) = ctx.saved_tensors
        return grad * surrogate_derivative(u, ctx.name, ctx.slope), None, None


DEFAULT_SURROGATE = Surrogate()
"""Arctan with slope 2 (snnTorch's default ``spike_grad``)."""


def spike(u: torch.Tensor, surrogate: Surrogate = DEFAULT_SURROGATE) -> torch.Tensor:
    """Emit spikes ``S = [u > 0]`` (same dtype as ``u``) with the surrogate gradient in backward.

    Args:
        u: distance to threshold ``v - threshold``, any shape, floating point.
        surrogate: which derivative to use in the backward pass.

    Returns:
        ``S`` shaped like ``u`` with values in ``{0, 1}``.
    """
    out: torch.Tensor = _Spike.apply(u, surrogate.name, float(surrogate.slope))
    return out


def heaviside(u: torch.Tensor) -> torch.Tensor:
    """The step ``[u > 0]`` with no gradient (used for detached resets)."""
    return (u > 0).to(u.dtype)
