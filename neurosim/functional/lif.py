"""Leaky integrate-and-fire (LIF) neuron: single step, and a fused multi-step scan.

Discrete-time LIF with decay ``beta`` (``beta = exp(-dt / tau_mem)``), threshold ``theta`` and
input current ``x_t`` (already multiplied by the synaptic weights). Two reset timings exist.

**Immediate reset** (``delayed_reset=False``, the default; SpikingJelly/Norse style, and
snnTorch's ``reset_delay=False`` while the membrane stays below twice the threshold, see
:mod:`neurosim.neurons`):

.. math::
    h_t = \\beta v_{t-1} + x_t, \\qquad S_t = H(h_t - \\theta), \\qquad
    v_t = \\begin{cases} h_t - \\theta S_t & \\text{subtract} \\\\
                         h_t (1 - S_t)      & \\text{zero} \\\\
                         h_t                & \\text{none} \\end{cases}

**Delayed reset** (``delayed_reset=True``; snnTorch's default ``reset_delay=True``): the reset of
a spike emitted at ``t - 1`` is applied at ``t``, and the reported membrane is pre-reset:

.. math::
    R_t = H(v_{t-1} - \\theta) \\text{ (no gradient)}, \\qquad
    v_t = \\begin{cases} \\beta v_{t-1} + x_t - \\theta R_t & \\text{subtract} \\\\
                         \\beta (1 - R_t) v_{t-1} + x_t      & \\text{zero} \\\\
                         \\beta v_{t-1} + x_t                & \\text{none} \\end{cases},
    \\qquad S_t = H(v_t - \\theta)

``H`` is the Heaviside step ``[u > 0]`` whose gradient is the surrogate of
:mod:`neurosim.functional.surrogate`. In the immediate form the reset term carries a gradient
through ``S_t`` unless ``detach_reset=True``.

Shapes: single step ``x [B, *F]``; multi-step ``x [T, B, *F]`` (time-major). ``beta`` and
``threshold`` are floats or tensors broadcastable to the per-step shape ``[B, *F]`` (typically
``[*F]`` for per-neuron values).

Example (immediate subtract reset, beta 0.5, threshold 1): inputs ``[0.6, 0.6, 0.6]`` give
membranes ``h = [0.6, 0.9, 1.05]``, spikes ``[0, 0, 1]`` and ``v = [0.6, 0.9, 0.05]``.

The multi-step path is the kernel-registry operation ``lif_scan`` with backends ``torch`` (the
autograd step loop, the reference), ``loop`` (eager step loop with a hand-written backward; the
CPU default), ``compile`` (the same loop with ``torch.compile``-fused steps) and ``triton``
(one kernel for the forward and one for the backward, CUDA default; CPU via
``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from neurosim.backend import (
    Backend,
    InputError,
    Operation,
    check_tensor,
    compile_backend,
    kernels,
    triton_backend,
)
from neurosim.functional.surrogate import (
    SURROGATES,
    Surrogate,
    check_surrogate,
    heaviside,
    spike,
    surrogate_derivative,
)

RESETS: tuple[str, ...] = ("subtract", "zero", "none")
"""Reset mechanisms, in the order of their integer codes used by the kernels."""

ParamValue = torch.Tensor | float


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
    """

    beta: ParamValue = 0.9
    threshold: ParamValue = 1.0
    reset: str = "subtract"
    delayed_reset: bool = False
    detach_reset: bool = False
    surrogate: Surrogate = Surrogate()

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
        """The parameters that reproduce ``snntorch.Leaky`` with the same arguments.

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
        )


DEFAULT_LIF = LIFParameters()
"""``beta=0.9``, ``threshold=1``, immediate subtract reset, arctan surrogate."""


class LIFState(NamedTuple):
    """State of a LIF neuron: the membrane potential ``v [B, *F]``.

    With ``delayed_reset`` the pending reset is recomputed from ``v`` (``v > theta``), so ``v``
    is the whole state in both timings.
    """

    v: torch.Tensor

    @classmethod
    def zeros_like(cls, x: torch.Tensor) -> LIFState:
        """Resting state (``v = 0``) shaped, typed and placed like one time step ``x``."""
        return cls(torch.zeros_like(x))


class NeuronSequence(NamedTuple):
    """What a multi-step neuron call returns.

    Attributes:
        spikes: ``[T, B, *F]`` (for a non-spiking readout: the output, e.g. the membrane).
        membrane: membrane trace ``[T, B, *F]`` (post-reset in the immediate form).
        state: the state after the last step, to continue the sequence.
    """

    spikes: torch.Tensor
    membrane: torch.Tensor
    state: Any


# --------------------------------------------------------------------------------------------
# validation


def check_parameter(value: object, name: str, shape: Sequence[int], device: torch.device) -> None:
    """A neuron parameter is a finite float or a finite tensor broadcastable to ``shape``."""
    if isinstance(value, torch.Tensor):
        check_tensor(value, name)
        if value.device != device:
            raise InputError(f"{name} is on {value.device} but the input is on {device}")
        try:
            out = torch.broadcast_shapes(value.shape, tuple(shape))
        except RuntimeError:
            out = None
        if out is None or tuple(out) != tuple(shape):
            raise InputError(
                f"{name} of shape {tuple(value.shape)} does not broadcast to the per-step shape "
                f"{tuple(shape)} [B, *F] of the input"
            )
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InputError(f"{name} must be finite, got {value}")
    else:
        raise InputError(f"{name} must be a float or a tensor, got {type(value).__name__}")


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The arithmetic dtype for a storage dtype: fp64 stays fp64, everything else runs in fp32
    (bf16/fp16 tensors are stored reduced but integrated in fp32, as in the Triton kernel)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise :class:`InputError` if ``x`` holds NaN or inf.

    One sum instead of an element-wise ``isfinite`` pass: any NaN or inf makes the sum non-finite,
    so a finite sum proves every element finite; only a non-finite sum (or an overflow) pays for
    the full element-wise check that counts the bad values. About 30x cheaper on the CPU.
    """
    if x.numel() and x.is_floating_point() and not bool(torch.isfinite(x.sum())):
        check_tensor(x, name)


def check_option(value: object, name: str, allowed: Sequence[str]) -> None:
    """Raise :class:`InputError` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise InputError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


def check_lif_parameters(p: object, shape: Sequence[int], device: torch.device) -> LIFParameters:
    """Validate :class:`LIFParameters` against a per-step input shape and device."""
    if not isinstance(p, LIFParameters):
        raise InputError(f"LIF parameters must be LIFParameters, got {type(p).__name__}")
    check_parameter(p.beta, "LIF beta (decay)", shape, device)
    check_parameter(p.threshold, "LIF threshold", shape, device)
    check_option(p.reset, "LIF reset", RESETS)
    check_surrogate(p.surrogate, "LIF surrogate")
    return p


def check_state_shape(v: torch.Tensor, name: str, x: torch.Tensor, *, multi_step: bool) -> None:
    """A state tensor must match one step of ``x``; explain a time/batch-major mix-up."""
    check_tensor(v, name)
    step_shape = tuple(x.shape[1:]) if multi_step else tuple(x.shape)
    if tuple(v.shape) == step_shape:
        if v.device != x.device:
            raise InputError(f"{name} is on {v.device} but the input is on {x.device}")
        return
    hint = ""
    if multi_step and x.dim() >= 2 and tuple(v.shape) == (x.shape[0], *x.shape[2:]):
        hint = (
            f"; the state's batch size {v.shape[0]} equals the input's first dimension, so the "
            f"input looks batch-major [B, T, ...]: multi-step input is time-major [T, B, ...] "
            f"(transpose it with x.transpose(0, 1) or build the module with time_major=False)"
        )
    raise InputError(
        f"{name} has shape {tuple(v.shape)} but one time step of the input has shape "
        f"{step_shape}" + hint
    )


# --------------------------------------------------------------------------------------------
# single step (the reference maths)


def _as_tensor(value: ParamValue, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(like.dtype)
    return torch.tensor(float(value), dtype=like.dtype, device=like.device)


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
    check_tensor(x, "LIF input x [B, *F]", min_ndim=1, finite=False)
    check_finite(x, "LIF input x [B, *F]")
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
    beta = _as_tensor(p.beta, x)
    theta = _as_tensor(p.threshold, x)
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
    s = spike(h - theta, p.surrogate)
    sr = s.detach() if p.detach_reset else s
    if p.reset == "subtract":
        v_new = h - theta * sr
    elif p.reset == "zero":
        v_new = h * (1 - sr)
    else:
        v_new = h
    return s, LIFState(v_new)


# --------------------------------------------------------------------------------------------
# the lif_scan operation: validation and the reference


def validate_lif_scan(
    x: torch.Tensor,
    v0: torch.Tensor,
    beta: torch.Tensor,
    threshold: torch.Tensor,
    reset: str = "subtract",
    delayed_reset: bool = False,
    detach_reset: bool = False,
    surrogate: str = "arctan",
    slope: float = 2.0,
) -> None:
    """Check the arguments of the ``lif_scan`` operation."""
    check_tensor(x, "lif_scan input x [T, B, *F]", min_ndim=2, finite=False)
    check_finite(x, "lif_scan input x [T, B, *F]")
    check_state_shape(v0, "lif_scan initial membrane v0", x, multi_step=True)
    check_parameter(beta, "lif_scan beta", x.shape[1:], x.device)
    check_parameter(threshold, "lif_scan threshold", x.shape[1:], x.device)
    check_option(reset, "lif_scan reset", RESETS)
    check_option(surrogate, "lif_scan surrogate", SURROGATES)
    check_surrogate(Surrogate(surrogate, slope), "lif_scan surrogate")


def lif_scan_reference(
    x: torch.Tensor,
    v0: torch.Tensor,
    beta: torch.Tensor,
    threshold: torch.Tensor,
    reset: str = "subtract",
    delayed_reset: bool = False,
    detach_reset: bool = False,
    surrogate: str = "arctan",
    slope: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: :func:`lif_step` applied ``T`` times under autograd. Returns ``(S, v)``."""
    p = LIFParameters(
        beta, threshold, reset, delayed_reset, detach_reset, Surrogate(surrogate, slope)
    )
    v = v0
    spikes, mems = [], []
    for t in range(x.shape[0]):
        s, state = _lif_step_unchecked(x[t], v, p)
        v = state.v
        spikes.append(s)
        mems.append(v)
    return torch.stack(spikes), torch.stack(mems)


# --------------------------------------------------------------------------------------------
# hand-written forward/backward steps (shared by the `loop` and `compile` backends; the Triton
# kernel implements the same maths)


def lif_forward_step(
    x: torch.Tensor,
    v: torch.Tensor,
    r: torch.Tensor,
    beta: torch.Tensor,
    theta: torch.Tensor,
    reset: str,
    delayed: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward step without autograd: returns ``(S_t, h_t, v_t)``.

    ``r`` is the pending reset (the previous spike) used by the delayed form.
    """
    if delayed:
        if reset == "subtract":
            h = beta * v + x - theta * r
        elif reset == "zero":
            h = beta * ((1 - r) * v) + x
        else:
            h = beta * v + x
        s = (h - theta > 0).to(x.dtype)
        return s, h, h
    h = beta * v + x
    s = (h - theta > 0).to(x.dtype)
    if reset == "subtract":
        v = h - theta * s
    elif reset == "zero":
        v = h * (1 - s)
    else:
        v = h
    return s, h, v


def lif_backward_step(
    carry: torch.Tensor,
    gs: torch.Tensor,
    gv: torch.Tensor,
    h: torch.Tensor,
    s: torch.Tensor,
    v_prev: torch.Tensor,
    r: torch.Tensor,
    beta: torch.Tensor,
    theta: torch.Tensor,
    reset: str,
    delayed: bool,
    detach_reset: bool,
    surrogate: str,
    slope: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One backward step: returns ``(dL/dx_t, dL/dv_{t-1}, dbeta_t, dtheta_t)``.

    ``carry`` is ``dL/dv_t`` from later steps; ``gs``/``gv`` the output gradients at ``t``.
    """
    sg = surrogate_derivative(h - theta, surrogate, slope)
    if delayed:
        d = gv + carry + gs * sg
        dtheta = -gs * sg
        if reset == "subtract":
            dtheta = dtheta - d * r
        keep = (1 - r) if reset == "zero" else None
        dbeta = d * v_prev if keep is None else d * keep * v_prev
        back = d * beta if keep is None else d * beta * keep
        return d, back, dbeta, dtheta
    g = gv + carry
    if reset == "subtract":
        gs_tot = gs if detach_reset else gs - g * theta
        dh = g + gs_tot * sg
        dtheta = -g * s - gs_tot * sg
    elif reset == "zero":
        gs_tot = gs if detach_reset else gs - g * h
        dh = g * (1 - s) + gs_tot * sg
        dtheta = -gs_tot * sg
    else:
        dh = g + gs * sg
        dtheta = -gs * sg
    return dh, dh * beta, dh * v_prev, dtheta


def _previous_membrane(
    h: torch.Tensor, s: torch.Tensor, theta: torch.Tensor, reset: str, delayed: bool
) -> torch.Tensor:
    """Rebuild the post-step membrane ``v_t`` from the saved ``h_t`` and ``S_t``."""
    if delayed or reset == "none":
        return h
    if reset == "subtract":
        return h - theta * s
    return h * (1 - s)


StepFns = tuple[Callable[..., Any], Callable[..., Any]]


def _make_loop_function(fwd: Callable[..., Any], bwd: Callable[..., Any]) -> type:
    """An autograd.Function that runs the scan with the given (possibly compiled) step fns."""

    class _LIFScanLoop(torch.autograd.Function):
        @staticmethod
        def forward(
            ctx: Any,
            x: torch.Tensor,
            v0: torch.Tensor,
            beta: torch.Tensor,
            theta: torch.Tensor,
            reset: str,
            delayed: bool,
            detach_reset: bool,
            surrogate: str,
            slope: float,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            shape = x.shape[1:]
            cd = compute_dtype(x.dtype)
            b = beta.to(cd).expand(shape)
            th = theta.to(cd).expand(shape)
            v = v0.to(cd)
            r = (v - th > 0).to(cd)
            spikes = torch.empty_like(x)
            mems = torch.empty_like(x)
            store_h = not delayed and any(ctx.needs_input_grad[:4])  # only the backward needs h
            hs = torch.empty_like(x) if store_h else mems
            for t in range(x.shape[0]):
                s, h, v = fwd(x[t].to(cd), v, r, b, th, reset, delayed)
                spikes[t] = s
                mems[t] = v
                if store_h:
                    hs[t] = h
                r = s
            ctx.save_for_backward(hs, spikes, v0, beta, theta)
            ctx.options = (reset, delayed, detach_reset, surrogate, slope)
            return spikes, mems

        @staticmethod
        def backward(ctx: Any, gs: torch.Tensor | None, gv: torch.Tensor | None) -> tuple[Any, ...]:
            hs, spikes, v0, beta, theta = ctx.saved_tensors
            reset, delayed, detach_reset, surrogate, slope = ctx.options
            shape = hs.shape[1:]
            dtype = compute_dtype(hs.dtype)
            b = beta.to(dtype).expand(shape)
            th = theta.to(dtype).expand(shape)
            if gs is None:
                gs = torch.zeros_like(hs)
            if gv is None:
                gv = torch.zeros_like(hs)
            v0c = v0.to(dtype)
            gx = torch.empty_like(hs)
            carry = torch.zeros(shape, dtype=dtype, device=hs.device)
            dbeta = torch.zeros(shape, dtype=dtype, device=hs.device)
            dtheta = torch.zeros(shape, dtype=dtype, device=hs.device)
            steps = hs.shape[0]
            for t in range(steps - 1, -1, -1):
                if t > 0:
                    r = spikes[t - 1].to(dtype)
                    v_prev = _previous_membrane(hs[t - 1].to(dtype), r, th, reset, delayed)
                else:
                    v_prev = v0c
                    r = (v0c - th > 0).to(dtype)
                dx, carry, db, dth = bwd(
                    carry, gs[t].to(dtype), gv[t].to(dtype), hs[t].to(dtype),
                    spikes[t].to(dtype), v_prev, r, b, th,
                    reset, delayed, detach_reset, surrogate, slope,
                )  # fmt: skip
                gx[t] = dx
                dbeta += db
                dtheta += dth
            g_beta = (
                dbeta.sum_to_size(beta.shape).to(beta.dtype) if ctx.needs_input_grad[2] else None
            )
            g_theta = (
                dtheta.sum_to_size(theta.shape).to(theta.dtype) if ctx.needs_input_grad[3] else None
            )
            return gx, carry.to(v0.dtype), g_beta, g_theta, None, None, None, None, None

    return _LIFScanLoop


def _loop_backend(fwd: Callable[..., Any], bwd: Callable[..., Any]) -> Callable[..., Any]:
    fn = _make_loop_function(fwd, bwd)

    def run(
        x: torch.Tensor,
        v0: torch.Tensor,
        beta: torch.Tensor,
        threshold: torch.Tensor,
        reset: str = "subtract",
        delayed_reset: bool = False,
        detach_reset: bool = False,
        surrogate: str = "arctan",
        slope: float = 2.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor] = fn.apply(  # type: ignore[attr-defined]
            x, v0, beta, threshold, reset, delayed_reset, detach_reset, surrogate, float(slope)
        )
        return out

    return run


def _load_loop() -> Callable[..., Any]:
    return _loop_backend(lif_forward_step, lif_backward_step)


def _load_compile() -> Callable[..., Any]:
    fwd = torch.compile(lif_forward_step, dynamic=False)
    bwd = torch.compile(lif_backward_step, dynamic=False)
    return _loop_backend(fwd, bwd)


def _load_triton() -> Callable[..., Any]:
    from neurosim.functional._triton_lif import lif_scan_triton

    return lif_scan_triton


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
    ]


kernels.register(
    Operation(
        name="lif_scan",
        reference=lif_scan_reference,
        validate=validate_lif_scan,
        example=_example,
        bad_inputs=_bad_inputs,
        grad_args=(0, 1, 2, 3),
        doc="LIF neuron over a time-major [T, B, *F] input: (spikes, membrane)",
    )
)
# ``loop`` (eager step loop, hand-written backward: no autograd graph of T steps) is the CPU
# default; on CUDA it is the fallback when neither Triton nor torch.compile is available.
kernels.register_backend("lif_scan", Backend("loop", _load_loop, priority=5))
kernels.register_backend("lif_scan", compile_backend(_load_compile))
kernels.register_backend("lif_scan", triton_backend(_load_triton))


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

    Same results as calling :func:`lif_step` ``T`` times (tested, gradients included).

    Args:
        x: input current ``[T, B, *F]``.
        state: initial :class:`LIFState` with ``v [B, *F]`` (``None``: resting).
        p: :class:`LIFParameters`.
        backend: ``"auto"``, ``"torch"``, ``"loop"``, ``"compile"`` or ``"triton"``.

    Returns:
        :class:`NeuronSequence` ``(spikes [T, B, *F], membrane [T, B, *F], LIFState)``.
    """
    check_tensor(x, "LIF input x [T, B, *F]", min_ndim=2, finite=False)
    if state is None:
        v0 = torch.zeros_like(x[0])
    elif not isinstance(state, LIFState):
        raise InputError(f"LIF state must be a LIFState, got {type(state).__name__}")
    else:
        v0 = state.v
    if not isinstance(p, LIFParameters):
        raise InputError(f"LIF parameters must be LIFParameters, got {type(p).__name__}")
    beta = _as_tensor(p.beta, x) if not isinstance(p.beta, torch.Tensor) else p.beta
    theta = _as_tensor(p.threshold, x) if not isinstance(p.threshold, torch.Tensor) else p.threshold
    spikes, mem = kernels.call(
        "lif_scan",
        x,
        v0,
        beta,
        theta,
        reset=p.reset,
        delayed_reset=bool(p.delayed_reset),
        detach_reset=bool(p.detach_reset),
        surrogate=check_surrogate(p.surrogate, "LIF surrogate").name,
        slope=float(p.surrogate.slope),
        backend=backend,
    )
    return NeuronSequence(spikes, mem, LIFState(mem[-1]))
