"""Current-based synaptic LIF (CubaLIF): a leaky synaptic current driving a LIF membrane.

.. math::
    i_t = \\alpha i_{t-1} + x_t, \\qquad \\text{then the LIF of } :mod:`neurosim.functional.lif`
    \\text{ with input } i_t: \\quad h_t = \\beta v_{t-1} + i_t, \\; S_t = H(h_t - \\theta), \\ldots

Two state variables: the synaptic current ``i`` and the membrane ``v``. The current has no reset,
so the multi-step path is two fused scans: ``leaky_scan`` for ``i`` and ``lif_scan`` for ``v``.
With ``delayed_reset=True`` and ``reset="subtract"`` or ``"none"`` this is exactly
``snntorch.Synaptic(alpha, beta)`` (snnTorch's ``"zero"`` reset zeroes ``beta v + i`` instead of
``v`` alone). NIR calls it ``CubaLIF`` (``tau_syn``, ``tau_mem``).

Shapes: single step ``x [B, *F]``, multi-step ``x [T, B, *F]``; parameters are floats or tensors
broadcastable to ``[B, *F]``.

Example: ``alpha = 0.5``, ``beta = 0``, ``x = [1, 0, 0]`` gives ``i = v = [1, 0.5, 0.25]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from neurosim.backend import InputError, kernels
from neurosim.functional.common import (
    NeuronSequence,
    ParamValue,
    check_input,
    check_parameter,
    check_state_shape,
    last_step,
    step_zeros,
)
from neurosim.functional.lif import LIFParameters, LIFState, lif_multi_step, lif_step
from neurosim.functional.scan import leaky_scan
from neurosim.functional.surrogate import DEFAULT_SURROGATE, Surrogate


class SynapticParameters(NamedTuple):
    """Parameters of a current-based synaptic LIF neuron.

    Attributes:
        alpha: synaptic current decay per step in ``[0, 1]`` (``exp(-dt / tau_syn)``).
        beta: membrane decay per step in ``[0, 1]`` (``exp(-dt / tau_mem)``).
        threshold, reset, delayed_reset, detach_reset, surrogate, pending_reset: as in
            :class:`LIFParameters`.
    """

    alpha: ParamValue = 0.8
    beta: ParamValue = 0.9
    threshold: ParamValue = 1.0
    reset: str = "subtract"
    delayed_reset: bool = False
    detach_reset: bool = False
    surrogate: Surrogate = DEFAULT_SURROGATE
    pending_reset: bool = False

    @classmethod
    def from_time_constants(
        cls, tau_syn: float, tau_mem: float, dt: float = 1e-3, **kwargs: object
    ) -> SynapticParameters:
        """``alpha = exp(-dt / tau_syn)``, ``beta = exp(-dt / tau_mem)`` (same time unit)."""
        if not (tau_syn > 0 and tau_mem > 0 and dt > 0):
            raise InputError(
                f"time constants and dt must be positive, got tau_syn={tau_syn}, "
                f"tau_mem={tau_mem}, dt={dt}"
            )
        alpha = float(torch.exp(torch.tensor(-dt / tau_syn)))
        beta = float(torch.exp(torch.tensor(-dt / tau_mem)))
        return cls(alpha, beta, **kwargs)  # type: ignore[arg-type]

    def lif(self) -> LIFParameters:
        """The membrane part as :class:`LIFParameters`."""
        return LIFParameters(
            self.beta, self.threshold, self.reset, self.delayed_reset, self.detach_reset,
            self.surrogate, self.pending_reset,
        )  # fmt: skip


DEFAULT_SYNAPTIC = SynapticParameters()


class SynapticState(NamedTuple):
    """State of a synaptic LIF neuron: current ``i [B, *F]`` and membrane ``v [B, *F]``."""

    i: torch.Tensor
    v: torch.Tensor

    @classmethod
    def zeros_like(cls, x: torch.Tensor) -> SynapticState:
        """Resting state shaped like one step ``x``."""
        return cls(torch.zeros_like(x), torch.zeros_like(x))


def _alpha(p: SynapticParameters, x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if not isinstance(p, SynapticParameters):
        raise InputError(f"synaptic parameters must be SynapticParameters, got {type(p).__name__}")
    check_parameter(p.alpha, "SynapticLIF alpha (current decay)", shape, x.device)
    if isinstance(p.alpha, torch.Tensor):
        return p.alpha.to(x.dtype)
    return torch.tensor(float(p.alpha), dtype=x.dtype, device=x.device)


def _check_state(state: object, x: torch.Tensor, multi_step: bool) -> SynapticState | None:
    if state is None:
        return None
    if not isinstance(state, SynapticState):
        raise InputError(f"SynapticLIF state must be a SynapticState, got {type(state).__name__}")
    check_state_shape(state.i, "SynapticLIF state i", x, multi_step=multi_step)
    check_state_shape(state.v, "SynapticLIF state v", x, multi_step=multi_step)
    return state


def synaptic_step(
    x: torch.Tensor, state: SynapticState | None, p: SynapticParameters = DEFAULT_SYNAPTIC
) -> tuple[torch.Tensor, SynapticState]:
    """One step: ``i = alpha i + x`` then a LIF step driven by ``i``. Returns ``(S, state)``."""
    check_input(x, "SynapticLIF input x [B, *F]", multi_step=False)
    alpha = _alpha(p, x, x.shape)
    st = _check_state(state, x, multi_step=False) or SynapticState.zeros_like(x)
    i = alpha * st.i.to(x.dtype) + x
    s, lif_state = lif_step(i, LIFState(st.v), p.lif())
    return s, SynapticState(i, lif_state.v)


def synaptic_multi_step(
    x: torch.Tensor,
    state: SynapticState | None = None,
    p: SynapticParameters = DEFAULT_SYNAPTIC,
    *,
    backend: str = "auto",
) -> NeuronSequence:
    """Run over ``x [T, B, *F]``: ``leaky_scan`` for the current, ``lif_scan`` for the membrane.

    Returns :class:`NeuronSequence` ``(spikes, membrane, SynapticState)``; same results as
    :func:`synaptic_step` applied ``T`` times (``T = 0``: empty outputs, unchanged state).
    """
    check_input(x, "SynapticLIF input x [T, B, *F]", multi_step=True)
    alpha = _alpha(p, x, x.shape[1:])
    st = _check_state(state, x, multi_step=True)
    # the current scan is the leaky_scan operation; a backend it lacks (e.g. "loop") -> auto
    scan_backend = backend if backend in kernels.backends("leaky_scan") else "auto"
    i = leaky_scan(x, alpha, None if st is None else st.i.to(x.dtype), backend=scan_backend)
    out = lif_multi_step(i, None if st is None else LIFState(st.v), p.lif(), backend=backend)
    i0 = step_zeros(x, multi_step=True) if st is None else st.i
    return NeuronSequence(out.spikes, out.membrane, SynapticState(last_step(i, i0), out.state.v))
