"""Leaky integrate-and-fire (LIF) neuron: single step, and a fused multi-step scan.

Discrete-time LIF with decay ``beta`` (``beta = exp(-dt / tau_mem)``), threshold ``theta`` and
input current ``x_t`` (already multiplied by the synaptic weights). Two reset timings exist.

**Immediate reset** (``delayed_reset=False``, the default; SpikingJelly/Norse style):

.. math::
    h_t = \\beta v_{t-1} + x_t, \\qquad S_t = H(h_t - \\theta), \\qquad
    v_t = \\begin{cases} h_t - \\theta S_t & \\text{subtract} \\\\
                         h_t (1 - S_t)      & \\text{zero} \\\\
                         h_t                & \\text{none} \\end{cases}

**Pending reset** (``pending_reset=True``, subtract only; snnTorch's ``reset_delay=False``
exactly): a membrane still above threshold after its subtraction (it was above ``2 theta``)
leaves a pending reset ``R_t = H(v_{t-1} - \\theta)`` (no gradient) that is subtracted before the
spike decision and added back after it:

.. math::
    h_t = \\beta v_{t-1} + x_t - \\theta R_t, \\qquad S_t = H(h_t - \\theta), \\qquad
    v_t = h_t - \\theta (S_t - R_t) = \\beta v_{t-1} + x_t - \\theta S_t

While ``v`` stays at or below ``theta`` after each reset (always when the input per step is below
``theta``), ``R_t = 0`` and this is the immediate subtract reset, gradients included.

**Delayed reset** (``delayed_reset=True``; snnTorch's default ``reset_delay=True``): the reset of
a spike emitted at ``t - 1`` is applied at ``t``, and the reported membrane is pre-reset:

.. math::
    R_t = H(v_{t-1} - \\theta) \\text{ (no gradient)}, \\qquad
    v_t = \\begin{cases} \\beta v_{t-1} + x_t - \\theta R_t & \\text{subtract} \\\\
                         \\beta (1 - R_t) v_{t-1} + x_t      & \\text{zero} \\\\
                         \\beta v_{t-1} + x_t                & \\text{none} \\end{cases},
    \\qquad S_t = H(v_t - \\theta)

``H`` is the Heaviside step ``[u > 0]`` whose gradient is the surrogate of
:mod:`neurosim.functional.surrogate`. In the immediate forms the reset term carries a gradient
through ``S_t`` unless ``detach_reset=True``.

Shapes: single step ``x [B, *F]``; multi-step ``x [T, B, *F]`` (time-major, ``T = 0`` allowed).
``beta`` and ``threshold`` are floats or tensors broadcastable to the per-step shape ``[B, *F]``
(typically ``[*F]`` for per-neuron values).

Example (immediate subtract reset, beta 0.5, threshold 1): inputs ``[0.6, 0.6, 0.6]`` give
membranes ``h = [0.6, 0.9, 1.05]``, spikes ``[0, 0, 1]`` and ``v = [0.6, 0.9, 0.05]``.

The multi-step path is the kernel-registry operation ``lif_scan``, built by the scan factory
(:mod:`neurosim.functional.scan_ops`) from the step maths below: backends ``torch`` (the
autograd step loop, the reference), ``loop`` (eager step loop with a hand-written backward),
``compile`` (the same loop with ``torch.compile``-fused steps), ``numba`` (compiled CPU loops,
the CPU default) and ``triton`` (one kernel for the forward and one for the backward, the CUDA
default; CPU via ``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from neurosim.backend import InputError
from neurosim.functional.common import (
    RESETS,
    NeuronSequence,
    ParamValue,
    as_tensor,
    check_finite,
    check_input,
    check_option,
    check_parameter,
    check_state_shape,
    compute_dtype,
    step_zeros,
)
from neurosim.functional.scan_ops import ScanSpec, register_scan
from neurosim.functional.surrogate import (
    SURROGATES,
    Surrogate,
    check_surrogate,
    heaviside,
    spike,
    surrogate_derivative,
)

__all__ = [
    "DEFAULT_LIF",
    "RESETS",
    "LIFParameters",
    "LIFState",
    "NeuronSequence",
    "ParamValue",
    "check_finite",
    "check_lif_parameters",
    "check_option",
    "check_parameter",
    "check_state_shape",
    "compute_dtype",
    "lif_backward_step",
    "lif_forward_step",
    "lif_multi_step",
    "lif_scan_reference",
    "lif_step",
]


class LIFParameters(NamedTuple):
    """Parameters of a LIF neuron (immutable; build with keywords or a preset).

    Attributes:
        beta: membrane decay per step in ``[0, 1]`` (``exp(-dt / tau_mem)``); float or tensor
            broadcastable to the per-step shape.
        threshold: firing threshold ``theta`` (same units as the membrane); float or tensor.
        reset: ``"subtract"`` (``v -= theta``), ``"zero"`` (``v = 0``) or ``"none"``.
        delayed_reset: apply the reset one step later (snnTorch's default); see module docstring.
        detach_reset: stop the gradient through the reset term (immediate form only; the
            delayed form always detaches, as snnTorch does).
        surrogate: the surrogate gradient of the spike.
        pending_reset: snnTorch's ``reset_delay=False`` subtract reset (module docstring);
            only with ``reset="subtract"`` and ``delayed_reset=False``.
    """

    beta: ParamValue = 0.9
    threshold: ParamValue = 1.0
    reset: str = "subtract"
    delayed_reset: bool = False
    detach_reset: bool = False
    surrogate: Surrogate = Surrogate()
    pending_reset: bool = False

    @classmethod
    def from_time_constant(
        cls, tau_mem: float, dt: float = 1e-3, threshold: float = 1.0, **kwargs: Any
    ) -> LIFParameters:
        """``beta = exp(-dt / tau_mem)``; ``tau_mem`` and ``dt`` in the same unit (seconds)."""
        if not (tau_mem > 0 and dt > 0):
            raise InputError(f"tau_mem and dt must be positive, got tau_mem={tau_mem}, dt={dt}")
        return cls(beta=math.exp(-dt / tau_mem), threshold=threshold, **kwargs)

    @classmethod
    def snntorch(
        cls,
        beta: ParamValue,
        threshold: ParamValue = 1.0,
        reset_mechanism: str = "subtract",
        reset_delay: bool = True,
        surrogate: Surrogate | None = None,
    ) -> LIFParameters:
        """The parameters that reproduce ``snntorch.Leaky`` with the same arguments exactly
        (``reset_delay=False`` with ``"subtract"`` gives ``pending_reset=True``).

        snnTorch's defaults: ``threshold=1``, ``reset_mechanism="subtract"``,
        ``reset_delay=True``, ``spike_grad=atan(alpha=2)``.
        """
        return cls(
            beta=beta,
            threshold=threshold,
            reset=reset_mechanism,
            delayed_reset=reset_delay,
            detach_reset=False,
            surrogate=surrogate or Surrogate.arctan(2.0),
            pending_reset=(not reset_delay) and reset_mechanism == "subtract",
        )


DEFAULT_LIF = LIFParameters()
"""``beta=0.9``, ``threshold=1``, immediate subtract reset, arctan surrogate."""


class LIFState(NamedTuple):
    """State of a LIF neuron: the membrane potential ``v [B, *F]``.

    With ``delayed_reset`` or ``pending_reset`` the pending reset is recomputed from ``v``
    (``v > theta``), so ``v`` is the whole state in every timing.
    """

    v: torch.Tensor

    @classmethod
    def zeros_like(cls, x: torch.Tensor) -> LIFState:
        """Resting state (``v = 0``) shaped, typed and placed like one time step ``x``."""
        return cls(torch.zeros_like(x))


# --------------------------------------------------------------------------------------------
# validation


def check_reset_timing(reset: object, delayed: object, pending: object, name: str) -> None:
    """``reset`` is known; ``pending_reset`` only with the immediate subtract reset."""
    check_option(reset, f"{name} reset", RESETS)
    if pending and (reset != "subtract" or delayed):
        raise InputError(
            f"{name} pending_reset applies to reset='subtract' with delayed_reset=False "
            f"(snnTorch's reset_delay=False), got reset={reset!r}, delayed_reset={delayed}"
        )


def check_lif_parameters(p: object, shape: Sequence[int], device: torch.device) -> LIFParameters:
    """Validate :class:`LIFParameters` against a per-step input shape and device."""
    if not isinstance(p, LIFParameters):
        raise InputError(f"LIF parameters must be LIFParameters, got {type(p).__name__}")
    check_parameter(p.beta, "LIF beta (decay)", shape, device)
    check_parameter(p.threshold, "LIF threshold", shape, device)
    check_reset_timing(p.reset, p.delayed_reset, p.pending_reset, "LIF")
    check_surrogate(p.surrogate, "LIF surrogate")
    return p


# --------------------------------------------------------------------------------------------
# single step (the reference maths)


def lif_step(
    x: torch.Tensor, state: LIFState | None, p: LIFParameters = DEFAULT_LIF
) -> tuple[torch.Tensor, LIFState]:
    """One LIF step (see the module docstring for the maths).

    Args:
        x: input current ``[B, *F]``.
        state: previous :class:`LIFState` (``None``: resting, ``v = 0``).
        p: :class:`LIFParameters`.

    Returns:
        ``(spikes [B, *F], new_state)``; spikes are ``0``/``1`` in ``x``'s dtype.
    """
    check_input(x, "LIF input x [B, *F]", multi_step=False)
    check_lif_parameters(p, x.shape, x.device)
    if state is None:
        state = LIFState.zeros_like(x)
    elif not isinstance(state, LIFState):
        raise InputError(f"LIF state must be a LIFState, got {type(state).__name__}")
    else:
        check_state_shape(state.v, "LIF state v", x, multi_step=False)
    return _lif_step_unchecked(x, state.v, p)


def _lif_step_unchecked(
    x: torch.Tensor, v: torch.Tensor, p: LIFParameters
) -> tuple[torch.Tensor, LIFState]:
    beta = as_tensor(p.beta, x)
    theta = as_tensor(p.threshold, x)
    v = v.to(x.dtype)
    if p.delayed_reset:
        r = heaviside(v.detach() - theta.detach())
        if p.reset == "subtract":
            h = beta * v + x - theta * r
        elif p.reset == "zero":
            h = beta * ((1 - r) * v) + x
        else:
            h = beta * v + x
        s = spike(h - theta, p.surrogate)
        return s, LIFState(h)
    h = beta * v + x
    if p.pending_reset:
        r = heaviside(v.detach() - theta.detach())
        h = h - theta * r
    s = spike(h - theta, p.surrogate)
    sr = s.detach() if p.detach_reset else s
    if p.reset == "subtract":
        v_new = h - theta * (sr - r) if p.pending_reset else h - theta * sr
    elif p.reset == "zero":
        v_new = h * (1 - sr)
    else:
        v_new = h
    return s, LIFState(v_new)


# --------------------------------------------------------------------------------------------
# the lif_scan operation: the step maths the scan factory builds every backend from

Tensors = tuple[torch.Tensor, ...]


def _initial(states: Tensors, params: Tensors, **_: Any) -> Tensors:
    """Before step 0: the pending reset ``H(v0 - theta)`` and ``v0``."""
    (v0,) = states
    return ((v0 - params[1] > 0).to(v0.dtype), v0)


def _reference_step(
    x: torch.Tensor,
    prev: Tensors,
    params: Tensors,
    *,
    reset: str,
    delayed_reset: bool,
    detach_reset: bool,
    pending_reset: bool,
    surrogate: str,
    slope: float,
) -> Tensors:
    p = LIFParameters(params[0], params[1], reset, delayed_reset, detach_reset,
                      Surrogate(surrogate, slope), pending_reset)  # fmt: skip
    s, state = _lif_step_unchecked(x, prev[1], p)
    return s, state.v


def lif_forward_step(
    x: torch.Tensor,
    prev: Tensors,
    params: Tensors,
    *,
    reset: str,
    delayed_reset: bool,
    pending_reset: bool,
    **_: Any,
) -> tuple[Tensors, Tensors]:
    """One forward step without autograd: ``((S_t, v_t), saved)``; ``saved`` is ``(h_t,)``, the
    pre-reset membrane, in the immediate forms (the delayed form reports ``h_t`` as ``v_t``).

    ``prev = (S_{t-1}, v_{t-1})``: the previous spike is the delayed form's pending reset.
    """
    r, v = prev
    beta, theta = params
    if delayed_reset:
        if reset == "subtract":
            h = beta * v + x - theta * r
        elif reset == "zero":
            h = beta * ((1 - r) * v) + x
        else:
            h = beta * v + x
        return ((h - theta > 0).to(x.dtype), h), ()
    h = beta * v + x
    if pending_reset:
        r = (v - theta > 0).to(x.dtype)
        h = h - theta * r
    s = (h - theta > 0).to(x.dtype)
    if reset == "subtract":
        v = h - theta * (s - r) if pending_reset else h - theta * s
    elif reset == "zero":
        v = h * (1 - s)
    else:
        v = h
    return (s, v), (h,)


def lif_backward_step(
    grads: Tensors,
    outs: Tensors,
    saved: Tensors,
    prev: Tensors,
    params: Tensors,
    *,
    reset: str,
    delayed_reset: bool,
    detach_reset: bool,
    pending_reset: bool,
    surrogate: str,
    slope: float,
) -> tuple[torch.Tensor, tuple[torch.Tensor | None, torch.Tensor], Tensors]:
    """One backward step: ``(dL/dx_t, (None, dL/dv_{t-1}), (dbeta_t, dtheta_t))``.

    ``grads = (gs, g)``: the gradient of ``S_t`` and the total gradient of ``v_t`` (its output
    gradient plus what step ``t + 1`` sent back).
    """
    gs, g = grads
    s, v = outs
    r, v_prev = prev
    beta, theta = params
    if delayed_reset:
        sg = surrogate_derivative(v - theta, surrogate, slope)
        d = g + gs * sg
        dtheta = -gs * sg
        if reset == "subtract":
            dtheta = dtheta - d * r
        if reset == "zero":
            keep = 1 - r
            return d, (None, d * beta * keep), (d * keep * v_prev, dtheta)
        return d, (None, d * beta), (d * v_prev, dtheta)
    (h,) = saved
    sg = surrogate_derivative(h - theta, surrogate, slope)
    if reset == "subtract":
        gs_tot = gs if detach_reset else gs - g * theta
        dh = g + gs_tot * sg
        if pending_reset:
            r = (v_prev - theta > 0).to(h.dtype)
            dtheta = -g * s - gs_tot * sg * (1 + r)
        else:
            dtheta = -g * s - gs_tot * sg
    elif reset == "zero":
        gs_tot = gs if detach_reset else gs - g * h
        dh = g * (1 - s) + gs_tot * sg
        dtheta = -gs_tot * sg
    else:
        dh = g + gs * sg
        dtheta = -gs * sg
    return dh, (None, dh * beta), (dh * v_prev, dtheta)


def _check_options(
    *,
    reset: object,
    delayed_reset: object,
    detach_reset: object,
    pending_reset: object,
    surrogate: object,
    slope: object,
) -> None:
    check_reset_timing(reset, delayed_reset, pending_reset, "lif_scan")
    check_option(surrogate, "lif_scan surrogate", SURROGATES)
    check_surrogate(Surrogate(str(surrogate), slope), "lif_scan surrogate")  # type: ignore[arg-type]


def _load_triton() -> Callable[..., Any]:
    from neurosim.functional._triton_lif import lif_scan_triton

    return lif_scan_triton


def _load_numba() -> Callable[..., Any]:
    from neurosim.functional._numba_lif import lif_scan_numba

    return lif_scan_numba


def _example(
    device: torch.device, dtype: torch.dtype, generator: torch.Generator
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    x = torch.randn(23, 3, 5, generator=generator, dtype=torch.float64).mul(0.8).add(0.3)
    v0 = torch.rand(3, 5, generator=generator, dtype=torch.float64)
    beta = torch.rand(5, generator=generator, dtype=torch.float64).mul(0.5).add(0.45)
    theta = torch.rand(5, generator=generator, dtype=torch.float64).mul(0.5).add(0.75)
    args = tuple(a.to(device, dtype) for a in (x, v0, beta, theta))
    return args, {"reset": "subtract", "surrogate": "arctan", "slope": 2.0}


def _bad_inputs(device: torch.device) -> list[tuple[tuple[Any, ...], dict[str, Any], str]]:
    x = torch.randn(4, 2, 3, device=device)
    v0 = torch.zeros(2, 3, device=device)
    b = torch.full((3,), 0.9, device=device)
    th = torch.ones(3, device=device)
    return [
        ((x.clone().fill_(float("nan")), v0, b, th), {}, "non-finite"),
        ((x, torch.zeros(4, 3, device=device), b, th), {}, "batch-major"),
        ((x, v0, torch.full((4,), 0.9, device=device), th), {}, "does not broadcast"),
        ((x, v0, b, th.clone().fill_(float("inf"))), {}, "non-finite"),
        ((x, v0, b, th), {"reset": "hard"}, "reset must be one of"),
        ((x, v0, b, th), {"surrogate": "erf"}, "surrogate must be one of"),
        ((x, v0, b, th), {"reset": "zero", "pending_reset": True}, "pending_reset applies"),
    ]


LIF_SCAN = register_scan(
    ScanSpec(
        name="lif_scan",
        states=("v0",),
        params=("beta", "threshold"),
        outputs=("spikes", "membrane"),
        state_outputs=(1,),
        options={
            "reset": "subtract",
            "delayed_reset": False,
            "detach_reset": False,
            "pending_reset": False,
            "surrogate": "arctan",
            "slope": 2.0,
        },
        initial=_initial,
        step=_reference_step,
        forward_step=lif_forward_step,
        backward_step=lif_backward_step,
        check_options=_check_options,
        example=_example,
        bad_inputs=_bad_inputs,
        doc="LIF neuron over a time-major [T, B, *F] input: (spikes, membrane)",
        triton=_load_triton,
        numba=_load_numba,
    )
)


def lif_scan_reference(
    x: torch.Tensor,
    v0: torch.Tensor,
    beta: torch.Tensor,
    threshold: torch.Tensor,
    **options: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: :func:`lif_step` applied ``T`` times under autograd. Returns ``(S, v)``."""
    from neurosim.backend import kernels

    spikes, mem = kernels.operation("lif_scan").reference(x, v0, beta, threshold, **options)
    return spikes, mem


# --------------------------------------------------------------------------------------------
# public multi-step API


def lif_multi_step(
    x: torch.Tensor,
    state: LIFState | None = None,
    p: LIFParameters = DEFAULT_LIF,
    *,
    backend: str = "auto",
) -> NeuronSequence:
    """Run the LIF neuron over a time-major sequence in one fused scan.

    Same results as calling :func:`lif_step` ``T`` times (tested, gradients included). ``T = 0``
    gives empty outputs and the unchanged state.

    Args:
        x: input current ``[T, B, *F]``.
        state: initial :class:`LIFState` with ``v [B, *F]`` (``None``: resting).
        p: :class:`LIFParameters`.
        backend: ``"auto"``, ``"torch"``, ``"loop"``, ``"compile"``, ``"numba"`` or ``"triton"``.

    Returns:
        :class:`NeuronSequence` ``(spikes [T, B, *F], membrane [T, B, *F], LIFState)``.
    """
    check_input(x, "LIF input x [T, B, *F]", multi_step=True)
    if state is None:
        v0 = step_zeros(x, multi_step=True)
    elif not isinstance(state, LIFState):
        raise InputError(f"LIF state must be a LIFState, got {type(state).__name__}")
    else:
        v0 = state.v
    if not isinstance(p, LIFParameters):
        raise InputError(f"LIF parameters must be LIFParameters, got {type(p).__name__}")
    check_surrogate(p.surrogate, "LIF surrogate")
    beta = p.beta if isinstance(p.beta, torch.Tensor) else as_tensor(p.beta, x)
    theta = p.threshold if isinstance(p.threshold, torch.Tensor) else as_tensor(p.threshold, x)
    (spikes, mem), (v,) = LIF_SCAN(
        x,
        (v0,),
        (beta, theta),
        backend=backend,
        reset=p.reset,
        delayed_reset=bool(p.delayed_reset),
        detach_reset=bool(p.detach_reset),
        pending_reset=bool(p.pending_reset),
        surrogate=p.surrogate.name,
        slope=float(p.surrogate.slope),
    )
    return NeuronSequence(spikes, mem, LIFState(v))
