"""Leaky integrator (LI): a non-spiking readout whose output is its membrane.

.. math:: v_t = \\beta v_{t-1} + x_t

Shapes: single step ``x [B, *F]``; multi-step ``x [T, B, *F]`` (time-major). ``beta`` is a float
or a tensor broadcastable to ``[B, *F]``. The multi-step path is the ``leaky_scan`` kernel
operation (:mod:`neurosim.functional.scan`). It equals ``snntorch.Leaky(reset_mechanism="none")``
reading its membrane, and NIR's ``LI`` node (see :mod:`neurosim.neurons`).

Example: ``beta = 0.5``, ``x = [1, 0, 0]`` gives ``v = [1, 0.5, 0.25]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from neurosim.backend import InputError
from neurosim.functional.common import (
    NeuronSequence,
    ParamValue,
    check_input,
    check_parameter,
    check_state_shape,
    last_step,
    step_zeros,
)
from neurosim.functional.scan import leaky_scan


class LIParameters(NamedTuple):
    """Parameters of a leaky integrator.

    Attributes:
        beta: decay per step in ``[0, 1]`` (``exp(-dt / tau)``); float or tensor.
    """

    beta: ParamValue = 0.9


DEFAULT_LI = LIParameters()


class LIState(NamedTuple):
    """State of a leaky integrator: ``v [B, *F]``."""

    v: torch.Tensor

    @classmethod
    def zeros_like(cls, x: torch.Tensor) -> LIState:
        """Resting state shaped like one step ``x``."""
        return cls(torch.zeros_like(x))


def _beta(p: LIParameters, x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if not isinstance(p, LIParameters):
        raise InputError(f"LI parameters must be LIParameters, got {type(p).__name__}")
    check_parameter(p.beta, "LI beta (decay)", shape, x.device)
    if isinstance(p.beta, torch.Tensor):
        return p.beta.to(x.dtype)
    return torch.tensor(float(p.beta), dtype=x.dtype, device=x.device)


def li_step(
    x: torch.Tensor, state: LIState | None, p: LIParameters = DEFAULT_LI
) -> tuple[torch.Tensor, LIState]:
    """One step ``v_t = beta v_{t-1} + x_t``; returns ``(v_t, LIState(v_t))``."""
    check_input(x, "LI input x [B, *F]", multi_step=False)
    beta = _beta(p, x, x.shape)
    if state is None:
        v = torch.zeros_like(x)
    elif not isinstance(state, LIState):
        raise InputError(f"LI state must be an LIState, got {type(state).__name__}")
    else:
        check_state_shape(state.v, "LI state v", x, multi_step=False)
        v = state.v.to(x.dtype)
    v = beta * v + x
    return v, LIState(v)


def li_multi_step(
    x: torch.Tensor,
    state: LIState | None = None,
    p: LIParameters = DEFAULT_LI,
    *,
    backend: str = "auto",
) -> NeuronSequence:
    """Leaky integration over ``x [T, B, *F]``; returns ``NeuronSequence(v, v, LIState)``
    (``T = 0``: empty outputs and the unchanged state)."""
    check_input(x, "LI input x [T, B, *F]", multi_step=True)
    beta = _beta(p, x, x.shape[1:])
    v0 = None
    if state is not None:
        if not isinstance(state, LIState):
            raise InputError(f"LI state must be an LIState, got {type(state).__name__}")
        check_state_shape(state.v, "LI state v", x, multi_step=True)
        v0 = state.v.to(x.dtype)
    v = leaky_scan(x, beta, v0, backend=backend)
    return NeuronSequence(
        v, v, LIState(last_step(v, step_zeros(x, multi_step=True) if v0 is None else v0))
    )
