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
``x [T, B, *F]``. The multi-step path is the kernel operation ``alif_scan``, built by the scan factory
(:mod:`neurosim.functional.scan_ops`) from the step maths below (backends ``torch``: the autograd
step loop, the reference; ``loop``: eager loop with a hand-written backward, the CPU default;
``compile``; ``triton``: forward and backward kernels, the CUDA default). ``T = 0`` gives empty
outputs and the unchanged state.

Example: ``beta = 1``, ``threshold = 1``, ``adaptation = 1``, ``rho = 1`` and a constant input 1:
spikes at steps 1, 3, 6 (strictly above a threshold that climbs 1, 2, 3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from neurosim.backend import InputError
from neurosim.functional.common import (
    RESETS,
    NeuronSequence,
    ParamValue,
    as_tensor,
    check_input,
    check_option,
    check_parameter,
    check_state_shape,
    step_zeros,
)
from neurosim.functional.scan_ops import ScanSpec, register_scan
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


def _step(x: torch.Tensor, st: ALIFState, p: ALIFParameters) -> tuple[torch.Tensor, ALIFState]:
    beta, theta0 = as_tensor(p.beta, x), as_tensor(p.threshold, x)
    rho, kappa = as_tensor(p.rho, x), as_tensor(p.adaptation, x)
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
    if state is None:
        return ALIFState.zeros_like(step_zeros(x, multi_step=multi_step))
    if not isinstance(state, ALIFState):
        raise InputError(f"ALIF state must be an ALIFState, got {type(state).__name__}")
    check_state_shape(state.v, "ALIF state v", x, multi_step=multi_step)
    check_state_shape(state.a, "ALIF state a", x, multi_step=multi_step)
    return ALIFState(state.v.to(x.dtype), state.a.to(x.dtype))


def alif_step(
    x: torch.Tensor, state: ALIFState | None, p: ALIFParameters = DEFAULT_ALIF
) -> tuple[torch.Tensor, ALIFState]:
    """One ALIF step (see the module docstring). Returns ``(spikes [B, *F], ALIFState)``."""
    check_input(x, "ALIF input x [B, *F]", multi_step=False)
    _check(p, x, x.shape)
    return _step(x, _state(state, x, False), p)


# --------------------------------------------------------------------------------------------
# the alif_scan operation: the step maths the scan factory builds every backend from

Tensors = tuple[torch.Tensor, ...]


def _initial(states: Tensors, params: Tensors, **_: Any) -> Tensors:
    v0, a0 = states
    return (torch.zeros_like(v0), v0, a0)


def _reference_step(
    x: torch.Tensor,
    prev: Tensors,
    params: Tensors,
    *,
    reset: str,
    detach_reset: bool,
    surrogate: str,
    slope: float,
) -> Tensors:
    beta, theta0, rho, kappa = params
    p = ALIFParameters(beta, theta0, rho, kappa, reset, detach_reset, Surrogate(surrogate, slope))
    s, st = _step(x, ALIFState(prev[1], prev[2]), p)
    return s, st.v, st.a


def alif_forward_step(
    x: torch.Tensor, prev: Tensors, params: Tensors, *, reset: str, **options: Any
) -> tuple[Tensors, Tensors]:
    """One forward step without autograd: ``((S_t, v_t, a_t), (h_t,))``."""
    v, a = prev[1], prev[2]
    beta, theta0, rho, kappa = params
    h = beta * v + x
    theta = theta0 + kappa * a
    s = (h - theta > 0).to(x.dtype)
    if reset == "subtract":
        v = h - theta * s
    elif reset == "zero":
        v = h * (1 - s)
    else:
        v = h
    return (s, v, rho * a + s), (h,)


def alif_backward_step(
    grads: Tensors,
    outs: Tensors,
    saved: Tensors,
    prev: Tensors,
    params: Tensors,
    *,
    reset: str,
    detach_reset: bool,
    surrogate: str,
    slope: float,
) -> tuple[torch.Tensor, tuple[torch.Tensor | None, ...], Tensors]:
    """One backward step: ``(dx_t, (None, dL/dv_{t-1}, dL/da_{t-1}), (dbeta_t, dtheta0_t,
    drho_t, dkappa_t))``; ``grads`` are the total gradients of ``(S_t, v_t, a_t)``."""
    gs, g_v, g_a = grads
    s = outs[0]
    (h,) = saved
    _, v_prev, a_prev = prev
    beta, theta0, rho, kappa = params
    theta = theta0 + kappa * a_prev
    sg = surrogate_derivative(h - theta, surrogate, slope)
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
    return dh, (None, dh * beta, back_a), (dh * v_prev, dtheta, g_a * a_prev, dtheta * a_prev)


def _check_options(
    *, reset: object, detach_reset: object, surrogate: object, slope: object
) -> None:
    check_option(reset, "alif_scan reset", RESETS)
    check_option(surrogate, "alif_scan surrogate", SURROGATES)
    check_surrogate(Surrogate(str(surrogate), slope), "alif_scan surrogate")  # type: ignore[arg-type]


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


ALIF_SCAN = register_scan(
    ScanSpec(
        name="alif_scan",
        states=("v0", "a0"),
        params=("beta", "threshold", "rho", "adaptation"),
        outputs=("spikes", "membrane", "adaptation"),
        state_outputs=(1, 2),
        options={"reset": "subtract", "detach_reset": False, "surrogate": "arctan", "slope": 2.0},
        initial=_initial,
        step=_reference_step,
        forward_step=alif_forward_step,
        backward_step=alif_backward_step,
        check_options=_check_options,
        example=_example,
        bad_inputs=_bad_inputs,
        doc="adaptive-threshold LIF over a time-major [T, B, *F] input: (spikes, v, a)",
        triton=_load_triton,
    )
)


def alif_scan_reference(*args: Any, **options: Any) -> tuple[torch.Tensor, ...]:
    """Reference: the ALIF step under autograd ``T`` times. Returns ``(S, v, a)`` ``[T, B, *F]``."""
    from neurosim.backend import kernels

    out: tuple[torch.Tensor, ...] = kernels.operation("alif_scan").reference(*args, **options)
    return out


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
    check_input(x, "ALIF input x [T, B, *F]", multi_step=True)
    _check(p, x, x.shape[1:])
    st = _state(state, x, True)
    params = tuple(v if isinstance(v, torch.Tensor) else as_tensor(v, x)
                   for v in (p.beta, p.threshold, p.rho, p.adaptation))  # fmt: skip
    (spikes, mems, _), (v, a) = ALIF_SCAN(
        x, (st.v, st.a), params, backend=backend, reset=p.reset,
        detach_reset=bool(p.detach_reset), surrogate=p.surrogate.name,
        slope=float(p.surrogate.slope),
    )  # fmt: skip
    return NeuronSequence(spikes, mems, ALIFState(v, a))
