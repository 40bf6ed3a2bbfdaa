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
``x [T, B, *F]``. The multi-step path is the kernel operation ``alif_scan`` (backends ``torch``:
the autograd step loop, the reference; ``loop``: eager loop with a hand-written backward, the CPU
default; ``compile``; ``triton``: forward and backward kernels, the CUDA default).

Example: ``beta = 1``, ``threshold = 1``, ``adaptation = 1``, ``rho = 1`` and a constant input 1:
spikes at steps 1, 3, 6 (strictly above a threshold that climbs 1, 2, 3).
"""

from __future__ import annotations

from collections.abc import Callable
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
from neurosim.functional.lif import (
    RESETS,
    NeuronSequence,
    ParamValue,
    check_finite,
    check_option,
    check_parameter,
    check_state_shape,
    compute_dtype,
)
from neurosim.functional.surrogate import (
    DEFAULT_SURROGATE,
    SURROGATES,
    Surrogate,
    check_surrogate,
    spike,
    surrogate_derivative,
)


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


# --------------------------------------------------------------------------------------------
# the alif_scan operation


def validate_alif_scan(
    x: torch.Tensor,
    v0: torch.Tensor,
    a0: torch.Tensor,
    beta: torch.Tensor,
    threshold: torch.Tensor,
    rho: torch.Tensor,
    adaptation: torch.Tensor,
    reset: str = "subtract",
    detach_reset: bool = False,
    surrogate: str = "arctan",
    slope: float = 2.0,
) -> None:
    """Check the arguments of the ``alif_scan`` operation."""
    check_tensor(x, "alif_scan input x [T, B, *F]", min_ndim=2, finite=False)
    check_finite(x, "alif_scan input x [T, B, *F]")
    check_state_shape(v0, "alif_scan initial membrane v0", x, multi_step=True)
    check_state_shape(a0, "alif_scan initial adaptation a0", x, multi_step=True)
    for name, value in (("beta", beta), ("threshold", threshold), ("rho", rho),
                        ("adaptation", adaptation)):  # fmt: skip
        check_parameter(value, f"alif_scan {name}", x.shape[1:], x.device)
    check_option(reset, "alif_scan reset", RESETS)
    check_option(surrogate, "alif_scan surrogate", SURROGATES)
    check_surrogate(Surrogate(surrogate, slope), "alif_scan surrogate")


def alif_scan_reference(
    x: torch.Tensor,
    v0: torch.Tensor,
    a0: torch.Tensor,
    beta: torch.Tensor,
    threshold: torch.Tensor,
    rho: torch.Tensor,
    adaptation: torch.Tensor,
    reset: str = "subtract",
    detach_reset: bool = False,
    surrogate: str = "arctan",
    slope: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference: the ALIF step under autograd ``T`` times. Returns ``(S, v, a)`` ``[T, B, *F]``."""
    p = ALIFParameters(beta, threshold, rho, adaptation, reset, detach_reset,
                       Surrogate(surrogate, slope))  # fmt: skip
    st = ALIFState(v0.to(x.dtype), a0.to(x.dtype))
    spikes, mems, adapt = [], [], []
    for t in range(x.shape[0]):
        s, st = _step(x[t], st, p)
        spikes.append(s)
        mems.append(st.v)
        adapt.append(st.a)
    return torch.stack(spikes), torch.stack(mems), torch.stack(adapt)


def alif_forward_step(
    x: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor,
    beta: torch.Tensor,
    theta0: torch.Tensor,
    rho: torch.Tensor,
    kappa: torch.Tensor,
    reset: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward step without autograd: ``(S_t, h_t, v_t, a_t)``."""
    h = beta * v + x
    theta = theta0 + kappa * a
    s = (h - theta > 0).to(x.dtype)
    if reset == "subtract":
        v = h - theta * s
    elif reset == "zero":
        v = h * (1 - s)
    else:
        v = h
    return s, h, v, rho * a + s


def alif_backward_step(
    carry_v: torch.Tensor,
    carry_a: torch.Tensor,
    gs: torch.Tensor,
    gv: torch.Tensor,
    ga: torch.Tensor,
    h: torch.Tensor,
    s: torch.Tensor,
    v_prev: torch.Tensor,
    a_prev: torch.Tensor,
    beta: torch.Tensor,
    theta0: torch.Tensor,
    rho: torch.Tensor,
    kappa: torch.Tensor,
    reset: str,
    detach_reset: bool,
    surrogate: str,
    slope: float,
) -> tuple[torch.Tensor, ...]:
    """One backward step. Returns ``(dx_t, dL/dv_{t-1}, dL/da_{t-1}, dbeta_t, dtheta0_t,
    drho_t, dkappa_t)``; ``carry_*`` are the gradients arriving from later steps."""
    theta = theta0 + kappa * a_prev
    sg = surrogate_derivative(h - theta, surrogate, slope)
    g_v = gv + carry_v
    g_a = ga + carry_a
    if reset == "subtract":
        gs_tot = gs + g_a if detach_reset else gs + g_a - g_v * theta
        dh = g_v + gs_tot * sg
        dtheta = -g_v * s - gs_tot * sg
    elif reset == "zero":
        gs_tot = gs + g_a if detach_reset else gs + g_a - g_v * h
        dh = g_v * (1 - s) + gs_tot * sg
        dtheta = -gs_tot * sg
    else:
        gs_tot = gs + g_a
        dh = g_v + gs_tot * sg
        dtheta = -gs_tot * sg
    back_a = g_a * rho + dtheta * kappa
    return dh, dh * beta, back_a, dh * v_prev, dtheta, g_a * a_prev, dtheta * a_prev


def _loop_function(fwd: Callable[..., Any], bwd: Callable[..., Any]) -> type:
    class _ALIFScanLoop(torch.autograd.Function):
        @staticmethod
        def forward(
            ctx: Any,
            x: torch.Tensor,
            v0: torch.Tensor,
            a0: torch.Tensor,
            beta: torch.Tensor,
            theta0: torch.Tensor,
            rho: torch.Tensor,
            kappa: torch.Tensor,
            reset: str,
            detach_reset: bool,
            surrogate: str,
            slope: float,
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            shape = x.shape[1:]
            cd = compute_dtype(x.dtype)
            params = [p.to(cd).expand(shape) for p in (beta, theta0, rho, kappa)]
            v, a = v0.to(cd), a0.to(cd)
            spikes, mems, adapt, hs = (torch.empty_like(x) for _ in range(4))
            for t in range(x.shape[0]):
                s, h, v, a = fwd(x[t].to(cd), v, a, *params, reset)
                spikes[t], hs[t], mems[t], adapt[t] = s, h, v, a
            ctx.save_for_backward(hs, spikes, mems, adapt, v0, a0, beta, theta0, rho, kappa)
            ctx.options = (reset, detach_reset, surrogate, slope)
            return spikes, mems, adapt

        @staticmethod
        def backward(
            ctx: Any, gs: torch.Tensor, gv: torch.Tensor, ga: torch.Tensor
        ) -> tuple[Any, ...]:
            hs, spikes, mems, adapt, v0, a0, beta, theta0, rho, kappa = ctx.saved_tensors
            reset, detach_reset, surrogate, slope = ctx.options
            shape = hs.shape[1:]
            cd = compute_dtype(hs.dtype)
            params = [p.to(cd).expand(shape) for p in (beta, theta0, rho, kappa)]
            zero = torch.zeros(shape, dtype=cd, device=hs.device)
            carry_v, carry_a = zero, zero
            sums = [zero.clone() for _ in range(4)]
            gx = torch.empty_like(hs)
            for t in range(hs.shape[0] - 1, -1, -1):
                v_prev = mems[t - 1].to(cd) if t > 0 else v0.to(cd)
                a_prev = adapt[t - 1].to(cd) if t > 0 else a0.to(cd)
                dx, carry_v, carry_a, *grads = bwd(
                    carry_v, carry_a, gs[t].to(cd), gv[t].to(cd), ga[t].to(cd), hs[t].to(cd),
                    spikes[t].to(cd), v_prev, a_prev, *params, reset, detach_reset, surrogate,
                    slope,
                )  # fmt: skip
                gx[t] = dx
                for total, g in zip(sums, grads, strict=True):
                    total += g
            needs = ctx.needs_input_grad
            out = [
                total.sum_to_size(p.shape).to(p.dtype) if needs[3 + i] else None
                for i, (total, p) in enumerate(zip(sums, (beta, theta0, rho, kappa), strict=True))
            ]
            return (gx, carry_v.to(v0.dtype), carry_a.to(a0.dtype), *out, None, None, None, None)

    return _ALIFScanLoop


def _loop_backend(fwd: Callable[..., Any], bwd: Callable[..., Any]) -> Callable[..., Any]:
    fn = _loop_function(fwd, bwd)

    def run(
        x: torch.Tensor,
        v0: torch.Tensor,
        a0: torch.Tensor,
        beta: torch.Tensor,
        threshold: torch.Tensor,
        rho: torch.Tensor,
        adaptation: torch.Tensor,
        reset: str = "subtract",
        detach_reset: bool = False,
        surrogate: str = "arctan",
        slope: float = 2.0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor, torch.Tensor] = fn.apply(  # type: ignore[attr-defined]
            x, v0, a0, beta, threshold, rho, adaptation, reset, detach_reset, surrogate,
            float(slope),
        )  # fmt: skip
        return out

    return run


def _load_loop() -> Callable[..., Any]:
    return _loop_backend(alif_forward_step, alif_backward_step)


def _load_compile() -> Callable[..., Any]:
    fwd = torch.compile(alif_forward_step, dynamic=False)
    bwd = torch.compile(alif_backward_step, dynamic=False)
    return _loop_backend(fwd, bwd)


def _load_triton() -> Callable[..., Any]:
    from neurosim.functional._triton_alif import alif_scan_triton

    return alif_scan_triton


def _example(
    device: torch.device, dtype: torch.dtype, generator: torch.Generator
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    x = torch.randn(21, 3, 5, generator=generator, dtype=torch.float64) * 0.8 + 0.5
    v0 = torch.rand(3, 5, generator=generator, dtype=torch.float64)
    a0 = torch.rand(3, 5, generator=generator, dtype=torch.float64)
    beta = torch.rand(5, generator=generator, dtype=torch.float64) * 0.4 + 0.5
    theta = torch.rand(5, generator=generator, dtype=torch.float64) * 0.5 + 0.75
    rho = torch.rand(5, generator=generator, dtype=torch.float64) * 0.3 + 0.6
    kappa = torch.rand(5, generator=generator, dtype=torch.float64) * 0.5
    args = tuple(t.to(device, dtype) for t in (x, v0, a0, beta, theta, rho, kappa))
    return args, {"reset": "subtract", "surrogate": "arctan", "slope": 2.0}


def _bad_inputs(device: torch.device) -> list[tuple[tuple[Any, ...], dict[str, Any], str]]:
    x = torch.randn(4, 2, 3, device=device)
    z = torch.zeros(2, 3, device=device)
    p = torch.full((3,), 0.5, device=device)
    return [
        ((x.clone().fill_(float("nan")), z, z, p, p, p, p), {}, "non-finite"),
        ((x, torch.zeros(4, 3, device=device), z, p, p, p, p), {}, "batch-major"),
        ((x, z, z, p, p, torch.full((2,), 0.5, device=device), p), {}, "does not broadcast"),
        ((x, z, z, p, p, p, p.clone().fill_(float("inf"))), {}, "non-finite"),
        ((x, z, z, p, p, p, p), {"reset": "hard"}, "reset must be one of"),
    ]


kernels.register(
    Operation(
        name="alif_scan",
        reference=alif_scan_reference,
        validate=validate_alif_scan,
        example=_example,
        bad_inputs=_bad_inputs,
        grad_args=(0, 1, 2, 3, 4, 5, 6),
        doc="adaptive-threshold LIF over a time-major [T, B, *F] input: (spikes, v, a)",
    )
)
kernels.register_backend("alif_scan", Backend("loop", _load_loop, priority=5))
kernels.register_backend("alif_scan", compile_backend(_load_compile))
kernels.register_backend("alif_scan", triton_backend(_load_triton))


def alif_multi_step(
    x: torch.Tensor,
    state: ALIFState | None = None,
    p: ALIFParameters = DEFAULT_ALIF,
    *,
    backend: str = "auto",
) -> NeuronSequence:
    """ALIF over ``x [T, B, *F]`` in one fused scan (the ``alif_scan`` kernel operation).

    Same results as :func:`alif_step` applied ``T`` times (tested, gradients included).
    Returns ``NeuronSequence(spikes, membrane, ALIFState)``.
    """
    check_tensor(x, "ALIF input x [T, B, *F]", min_ndim=2, finite=False)
    _check(p, x, x.shape[1:])
    st = _state(state, x, True)
    params = [_tensor(v, x) if not isinstance(v, torch.Tensor) else v
              for v in (p.beta, p.threshold, p.rho, p.adaptation)]  # fmt: skip
    spikes, mems, adapt = kernels.call(
        "alif_scan", x, st.v, st.a, *params, reset=p.reset, detach_reset=bool(p.detach_reset),
        surrogate=p.surrogate.name, slope=float(p.surrogate.slope), backend=backend,
    )  # fmt: skip
    return NeuronSequence(spikes, mems, ALIFState(mems[-1], adapt[-1]))
