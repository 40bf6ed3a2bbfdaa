"""Independent references for the neuron scans, written here from the equations.

Nothing is imported from ``neurosim``: the surrogate derivatives are written from their papers'
formulas (arctan: Fang et al. 2021 / snnTorch ``atan``; fast sigmoid: Zenke & Ganguli 2018;
sigmoid; straight-through), the neurons from their discrete-time equations (LIF with
immediate / pending / delayed reset as documented in ``neurosim.functional.lif`` and snnTorch's
``Leaky``; ALIF from Bellec et al. 2018; the leaky integrator ``y_t = d y_{t-1} + x_t``), each
as a plain Python loop over time with autograd providing the gradients. Kernel and backend tests
compare every path of ``neurosim`` (the torch reference included) with these.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def surrogate_derivative(u: torch.Tensor, name: str, k: float) -> torch.Tensor:
    """d spike / du of the named surrogate with slope ``k``."""
    if name == "arctan":  # derivative of atan(pi/2 k u) / pi + 1/2
        return (k / 2) / (1 + (math.pi / 2 * k * u) ** 2)
    if name == "fast_sigmoid":  # derivative of u / (1 + k |u|)
        return 1 / (1 + k * u.abs()) ** 2
    if name == "sigmoid":
        e = torch.exp(-k * u)
        return k * e / (1 + e) ** 2
    if name == "straight_through":
        return torch.ones_like(u)
    raise ValueError(name)


class _Heaviside(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, name: str, k: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.surrogate = (name, k)
        return torch.where(u > 0, torch.ones_like(u), torch.zeros_like(u))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (u,) = ctx.saved_tensors
        return grad * surrogate_derivative(u, *ctx.surrogate), None, None


def heaviside(u: torch.Tensor, surrogate: tuple[str, float]) -> torch.Tensor:
    """``[u > 0]`` with the surrogate's derivative in the backward pass."""
    out: torch.Tensor = _Heaviside.apply(u, *surrogate)
    return out


def lif(
    x: torch.Tensor,
    v0: torch.Tensor,
    beta: torch.Tensor,
    theta: torch.Tensor,
    *,
    reset: str = "subtract",
    delayed_reset: bool = False,
    detach_reset: bool = False,
    pending_reset: bool = False,
    surrogate: str = "arctan",
    slope: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """LIF over ``x [T, ...]`` (the ``lif_scan`` keyword options); returns spikes and membrane.

    Immediate: ``h = beta v + x``, ``S = H(h - theta)``, ``v = h - theta S`` / ``h (1 - S)`` /
    ``h``. Pending (snnTorch ``reset_delay=False``): ``R = [v > theta]`` (constant), ``h = beta v
    + x - theta R``, ``S = H(h - theta)``, ``v = h - theta (S - R)``. Delayed (snnTorch
    default): ``R = [v > theta]`` (constant), ``v = beta v + x - theta R`` / ``beta (1 - R) v +
    x`` / ``beta v + x``, ``S = H(v - theta)``.
    """
    sur = (surrogate, slope)
    v = v0
    spikes, membrane = [], []
    for t in range(x.shape[0]):
        if delayed_reset:
            r = (v > theta).to(x.dtype).detach()
            if reset == "subtract":
                v = beta * v + x[t] - theta * r
            elif reset == "zero":
                v = beta * ((1 - r) * v) + x[t]
            else:
                v = beta * v + x[t]
            s = heaviside(v - theta, sur)
        else:
            h = beta * v + x[t]
            r = torch.zeros_like(h)
            if pending_reset:
                r = (v > theta).to(x.dtype).detach()
                h = h - theta * r
            s = heaviside(h - theta, sur)
            sr = s.detach() if detach_reset else s
            if reset == "subtract":
                v = h - theta * (sr - r)
            elif reset == "zero":
                v = h * (1 - sr)
            else:
                v = h
        spikes.append(s)
        membrane.append(v)
    return torch.stack(spikes), torch.stack(membrane)


def alif(
    x: torch.Tensor,
    v0: torch.Tensor,
    a0: torch.Tensor,
    beta: torch.Tensor,
    theta0: torch.Tensor,
    rho: torch.Tensor,
    kappa: torch.Tensor,
    *,
    reset: str = "subtract",
    detach_reset: bool = False,
    surrogate: str = "arctan",
    slope: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adaptive LIF (Bellec et al. 2018): ``theta_t = theta0 + kappa a_{t-1}``, ``h = beta v +
    x``, ``S = H(h - theta_t)``, reset as the LIF (subtract removes ``theta_t``),
    ``a_t = rho a_{t-1} + S``. Returns spikes, membrane and adaptation."""
    v, a = v0, a0
    out: tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]] = ([], [], [])
    for t in range(x.shape[0]):
        th = theta0 + kappa * a
        h = beta * v + x[t]
        s = heaviside(h - th, (surrogate, slope))
        sr = s.detach() if detach_reset else s
        if reset == "subtract":
            v = h - th * sr
        elif reset == "zero":
            v = h * (1 - sr)
        else:
            v = h
        a = rho * a + s
        for trace, value in zip(out, (s, v, a), strict=True):
            trace.append(value)
    return torch.stack(out[0]), torch.stack(out[1]), torch.stack(out[2])


def leaky(x: torch.Tensor, decay: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """``y_t = decay y_{t-1} + x_t`` from ``y_{-1} = h0`` (zeros)."""
    y = torch.zeros_like(x[0]) if h0 is None else h0
    out = []
    for t in range(x.shape[0]):
        y = decay * y + x[t]
        out.append(y)
    return torch.stack(out)


REFERENCES = {
    "lif_scan": lif,
    "alif_scan": alif,
    "leaky_scan": leaky,
}
"""Kernel operation name -> its independent reference (same positional arguments)."""
