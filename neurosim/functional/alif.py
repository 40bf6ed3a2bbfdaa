"""Adaptive-threshold LIF (ALIF, Bellec et al. 2018 "LSNN"): every spike raises the threshold.

.. math::
    h_t = \\beta v_{t-1} + x_t, \\qquad
    \\theta_t = \\theta_0 + \\kappa a_{t-1}, \\qquad
    S_t = H(h_t - \\theta_t), \\\\
    v_t = \\text{reset}(h_t, S_t, \\theta_t), \\qquad
    a_t = \\rho a_{t-1} + S_t

with membrane decay ``beta``, baseline threshold ``theta_0`` (``threshold``), adaptation decay
``rho`` (``exp(-dt / tau_adapt)``) and adaptation strength ``kappa`` (``adaptation``). The
reset is immediate, as :mod:`neurosim.functional.lif` with ``delayed_reset=False``; the subtract
reset removes the current threshold ``theta_t``. With ``adaptation = 0`` this is the LIF.

State: membrane ``v`` and adaptation ``a``. Shapes: single step ``x [B, *F]``, multi-step
``x [T, B, *F]``. The multi-step path is the step loop (autograd through the surrogate); the
threshold couples the recurrence to the spikes, so it is not a single LIF scan.

Example: ``beta = 1``, ``threshold = 1``, ``adaptation = 1``, ``rho = 1`` and a constant input 1:
spikes at steps 1, 3, 6 (strictly above a threshold that climbs 1, 2, 3).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from neurosim.backend import InputError, check_tensor
from neurosim.functional.lif import (
    RESETS,
    NeuronSequence,
    ParamValue,
    check_option,
    check_parameter,
    check_state_shape,
)
from neurosim.functional.surrogate import DEFAULT_SURROGATE, Surrogate, check_surrogate, spike


class ALIFParameters(NamedTuple):
    """Parameters of an adaptive-threshold LIF neuron.

    Attributes:
        beta: membrane decay per step in ``[0, 1]``.
        threshold: baseline threshold ``theta_0``.
        rho: adaptation decay per step in ``[0, 1]`` (``exp(-dt / tau_adapt)``).
        adaptation: threshold increase per unit of adaptation ``kappa`` (``>= 0``).
        reset: ``"subtract"`` (``v -= theta_t``), ``"zero"`` or ``"none"``.
        detach_reset: no gradient through the reset term.
        surrogate: surrogate gradient of the spike.
    """

    beta: ParamValue = 0.9
    threshold: ParamValue = 1.0
    rho: ParamValue = 0.97
    adaptation: ParamValue = 0.2
    reset: str = "subtract"
    detach_reset: bool = False
    surrogate: Surrogate = DEFAULT_SURROGATE

    @classmethod
    def bellec2018(cls, dt: float = 1.0, **kwargs: object) -> ALIFParameters:
        """LSNN values: ``tau_mem = 20 ms``, ``tau_adapt = 200 ms``, ``beta_a = 1.8``,
        baseline threshold 0.01 (``dt`` in ms)."""
        beta = float(torch.exp(torch.tensor(-dt / 20.0)))
        rho = float(torch.exp(torch.tensor(-dt / 200.0)))
        values: dict[str, object] = dict(beta=beta, threshold=0.01, rho=rho, adaptation=1.8)
        values.update(kwargs)
        return cls(**values)  # type: ignore[arg-type]


DEFAULT_ALIF = ALIFParameters()


class ALIFState(NamedTuple):
    """State of an ALIF neuron: membrane ``v [B, *F]`` and adaptation ``a [B, *F]``."""

    v: torch.Tensor
    a: torch.Tensor

    @classmethod
    def zeros_like(cls, x: torch.Tensor) -> ALIFState:
        """Resting state shaped like one step ``x``."""
        return cls(torch.zeros_like(x), torch.zeros_like(x))


def _check(p: object, x: torch.Tensor, shape: torch.Size) -> ALIFParameters:
    if not isinstance(p, ALIFParameters):
        raise InputError(f"ALIF parameters must be ALIFParameters, got {type(p).__name__}")
    for name in ("beta", "threshold", "rho", "adaptation"):
        check_parameter(getattr(p, name), f"ALIF {name}", shape, x.device)
    check_option(p.reset, "ALIF reset", RESETS)
    check_surrogate(p.surrogate, "ALIF surrogate")
    return p


def _tensor(value: ParamValue, x: torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(x.dtype)
    return torch.tensor(float(value), dtype=x.dtype, device=x.device)


def _step(x: torch.Tensor, st: ALIFState, p: ALIFParameters) -> tuple[torch.Tensor, ALIFState]:
    beta, theta0 = _tensor(p.beta, x), _tensor(p.threshold, x)
    rho, kappa = _tensor(p.rho, x), _tensor(p.adaptation, x)
    h = beta * st.v + x
    theta = theta0 + kappa * st.a
    s = spike(h - theta, p.surrogate)
    sr = s.detach() if p.detach_reset else s
    if p.reset == "subtract":
        v = h - theta * sr
    elif p.reset == "zero":
        v = h * (1 - sr)
    else:
        v = h
    return s, ALIFState(v, rho * st.a + s)


def _state(state: object, x: torch.Tensor, multi_step: bool) -> ALIFState:
    step = x[0] if multi_step else x
    if state is None:
        return ALIFState.zeros_like(step)
    if not isinstance(state, ALIFState):
        raise InputError(f"ALIF state must be an ALIFState, got {type(state).__name__}")
    check_state_shape(state.v, "ALIF state v", x, multi_step=multi_step)
    check_state_shape(state.a, "ALIF state a", x, multi_step=multi_step)
    return ALIFState(state.v.to(x.dtype), state.a.to(x.dtype))


def alif_step(
    x: torch.Tensor, state: ALIFState | None, p: ALIFParameters = DEFAULT_ALIF
) -> tuple[torch.Tensor, ALIFState]:
    """One ALIF step (see the module docstring). Returns ``(spikes [B, *F], ALIFState)``."""
    check_tensor(x, "ALIF input x [B, *F]", min_ndim=1)
    _check(p, x, x.shape)
    return _step(x, _state(state, x, False), p)


def alif_multi_step(
    x: torch.Tensor, state: ALIFState | None = None, p: ALIFParameters = DEFAULT_ALIF
) -> NeuronSequence:
    """ALIF over ``x [T, B, *F]``: ``NeuronSequence(spikes, membrane, ALIFState)``."""
    check_tensor(x, "ALIF input x [T, B, *F]", min_ndim=2)
    _check(p, x, x.shape[1:])
    st = _state(state, x, True)
    spikes, mems = [], []
    for t in range(x.shape[0]):
        s, st = _step(x[t], st, p)
        spikes.append(s)
        mems.append(st.v)
    return NeuronSequence(torch.stack(spikes), torch.stack(mems), st)
