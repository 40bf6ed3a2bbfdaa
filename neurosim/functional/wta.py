"""Winner-take-all circuit of Diehl & Cook (2015): excitatory <-> inhibitory conductance LIF.

An excitatory layer of :mod:`conductance LIF <neurosim.functional.conductance>` neurons with
adaptive thresholds drives, one to one, an inhibitory layer of the same size; each inhibitory
neuron inhibits every excitatory neuron except its partner. So the first excitatory neurons to
fire silence the others (soft winner-take-all), and the adaptive threshold ``theta`` keeps any
one neuron from winning every input.

Per step ``t`` (all tensors ``[..., N]``, any leading dimensions such as batch and module)::

    x_i_exc[t] = w_inh_exc * (sum_k s_inh[t-1, k] - s_inh[t-1, j])   (lateral inhibition)
    s_exc[t]   = ConductanceLIF_exc(x_e = input[t], x_i = x_i_exc[t])
    s_inh[t]   = ConductanceLIF_inh(x_e = w_exc_inh * s_exc[t-1])

A spike is delivered one step after it is emitted, in both directions (as in Brian2, where a
spike increments the target conductance after the target's update of that step).

:func:`wta_run` runs the loop over ``T`` steps of precomputed excitatory input conductances
and returns the excitatory spikes ``[T, ..., N]`` and the final state; it is the inner loop of
:class:`neurosim.plasticity.DiehlCookEnsemble`. It validates nothing (the ensemble validates
its inputs once); :func:`wta_step` is the checked single step.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from neurosim.backend import InputError, Operation, check_tensor, kernels, numba_backend
from neurosim.functional.conductance import (
    ConductanceLIFParameters,
    ConductanceLIFState,
    _step,
)
from neurosim.functional.plasticity import lateral_inhibition

INTEGRATORS = ("euler", "exponential")


class WTAParameters(NamedTuple):
    """Parameters of the excitatory-inhibitory circuit.

    Attributes:
        exc: excitatory neurons (default: Diehl & Cook excitatory, ``theta_plus = 0.05 mV``).
        inh: inhibitory neurons (default: Diehl & Cook inhibitory).
        w_exc_inh: one-to-one excitatory -> inhibitory weight (Diehl & Cook: 10.4).
        w_inh_exc: all-but-self inhibitory -> excitatory weight (Diehl & Cook: 17).
        integrator: ``"euler"`` (forward Euler, as :func:`conductance_lif_step` and Brian2's
            ``method='euler'``) or ``"exponential"`` (exponential Euler: with the
            conductances held over the step, ``v`` relaxes exactly towards
            ``v_inf = (v_rest + g_e E_exc + g_i E_inh) / (1 + g_e + g_i)`` with time constant
            ``tau_mem / (1 + g_e + g_i)``; unconditionally stable). Forward Euler overshoots
            when ``dt (1 + g_e + g_i) / tau_mem > 2``, which happens when hundreds of
            inhibitory neurons fire together (dense inputs), and then oscillates without bound.
    """

    exc: ConductanceLIFParameters = ConductanceLIFParameters.diehl_cook_excitatory()
    inh: ConductanceLIFParameters = ConductanceLIFParameters.diehl_cook_inhibitory()
    w_exc_inh: float = 10.4
    w_inh_exc: float = 17.0
    integrator: str = "euler"

    def validate(self) -> WTAParameters:
        """Return ``self`` or raise :class:`InputError`."""
        for name in ("exc", "inh"):
            value = getattr(self, name)
            if not isinstance(value, ConductanceLIFParameters):
                raise InputError(
                    f"WTAParameters.{name} must be ConductanceLIFParameters, got "
                    f"{type(value).__name__}"
                )
            value.validate()
        if self.exc.dt != self.inh.dt:
            raise InputError(
                f"WTAParameters: excitatory dt={self.exc.dt} and inhibitory dt={self.inh.dt} "
                "must agree"
            )
        for name in ("w_exc_inh", "w_inh_exc"):
            if not getattr(self, name) >= 0:
                raise InputError(f"WTAParameters.{name} must be >= 0, got {getattr(self, name)}")
        if self.integrator not in INTEGRATORS:
            raise InputError(
                f"WTAParameters.integrator must be one of {INTEGRATORS}, got {self.integrator!r}"
            )
        return self


class WTAState(NamedTuple):
    """Both layers' states and the spikes they emitted at the previous step (to deliver)."""

    exc: ConductanceLIFState
    inh: ConductanceLIFState
    s_exc: torch.Tensor
    s_inh: torch.Tensor

    @classmethod
    def rest(
        cls, like: torch.Tensor, p: WTAParameters, theta: torch.Tensor | None = None
    ) -> WTAState:
        """Both layers at rest, shaped like one step of input ``like [..., N]``; the
        excitatory threshold adaptation ``theta`` (broadcast to ``like``) is kept."""
        zeros = torch.zeros_like(like)
        return cls(
            ConductanceLIFState.rest(like, p.exc, theta=theta),
            ConductanceLIFState.rest(like, p.inh),
            zeros,
            zeros.clone(),
        )


def _wta_step(x: torch.Tensor, st: WTAState, p: WTAParameters) -> tuple[torch.Tensor, WTAState]:
    x_i = lateral_inhibition(st.s_inh, p.w_inh_exc)
    s_exc, exc = _step(x, x_i, st.exc, p.exc)
    s_inh, inh = _step(p.w_exc_inh * st.s_exc, None, st.inh, p.inh)
    return s_exc, WTAState(exc, inh, s_exc, s_inh)


def wta_step(
    x: torch.Tensor,
    state: WTAState | None,
    p: WTAParameters = WTAParameters(),  # noqa: B008
) -> tuple[torch.Tensor, WTAState]:
    """One step with excitatory input conductance increments ``x [..., N]``.

    Returns ``(excitatory spikes [..., N], new_state)``; ``state=None`` starts at rest.
    """
    check_tensor(x, "wta_step input x [..., N]", min_ndim=1)
    if not isinstance(p, WTAParameters):
        raise InputError(f"expected WTAParameters, got {type(p).__name__}")
    p.validate()
    if state is None:
        state = WTAState.rest(x, p)
    elif not isinstance(state, WTAState):
        raise InputError(f"wta_step state must be a WTAState, got {type(state).__name__}")
    elif state.exc.v.shape != x.shape:
        raise InputError(
            f"wta_step state has shape {tuple(state.exc.v.shape)} but x has {tuple(x.shape)}"
        )
    return _wta_step(x, state, p)


def wta_run(
    x: torch.Tensor, state: WTAState, p: WTAParameters, *, fused: bool = True
) -> tuple[torch.Tensor, WTAState]:
    """The loop over ``x [T, ..., N]`` (unchecked: the caller validated ``x``, ``state``, ``p``).

    ``fused=True`` runs the same equations with in-place updates of private copies of the state
    (about half the tensor operations of composing :func:`conductance_lif_step` twice, which
    ``fused=False`` does; the two agree to rounding, ``tests/spiking/test_plasticity.py``).

    Returns ``(excitatory spikes [T, ..., N], final state)``.
    """
    out = torch.empty_like(x)
    if p.integrator == "exponential":
        fused = True
    if not fused:
        for t in range(x.shape[0]):
            out[t], state = _wta_step(x[t], state, p)
        return out, state
    e, i = p.exc, p.inh
    ve, gee, gie, th, re = (t.clone() for t in state.exc)
    vi, gei, gii, _, ri = (t.clone() for t in state.inh)
    s_exc, s_inh = state.s_exc.clone(), state.s_inh.clone()
    ke, ki = e.dt / e.tau_mem, i.dt / i.tau_mem
    dec = (
        math.exp(-e.dt / e.tau_exc),
        math.exp(-e.dt / e.tau_inh),
        math.exp(-i.dt / i.tau_exc),
        math.exp(-i.dt / i.tau_inh),
        math.exp(-e.dt / e.tau_theta),
    )
    layer = _exponential_layer if p.integrator == "exponential" else _fused_layer
    for t in range(x.shape[0]):
        # inputs delivered this step: lateral inhibition and the one-to-one excitation
        gie.add_((s_inh.sum(-1, keepdim=True) - s_inh).mul_(p.w_inh_exc))
        gee.add_(x[t])
        gei.add_(s_exc, alpha=p.w_exc_inh)
        s_exc = layer(ve, gee, gie, th, re, e, ke)
        s_inh = layer(vi, gei, gii, None, ri, i, ki)
        gee.mul_(dec[0])
        gie.mul_(dec[1])
        gei.mul_(dec[2])
        gii.mul_(dec[3])
        if e.theta_plus or dec[4] != 1.0:
            th.mul_(dec[4]).add_(s_exc, alpha=e.theta_plus)
        out[t] = s_exc
    exc = ConductanceLIFState(ve, gee, gie, th, re)
    inh = ConductanceLIFState(vi, gei, gii, state.inh.theta, ri)
    return out, WTAState(exc, inh, s_exc, s_inh)


def _exponential_layer(
    v: torch.Tensor,
    g_e: torch.Tensor,
    g_i: torch.Tensor,
    theta: torch.Tensor | None,
    refractory: torch.Tensor,
    p: ConductanceLIFParameters,
    k: float,
) -> torch.Tensor:
    """In place, exponential Euler: ``v <- v_inf + (v - v_inf) exp(-k (1 + g_e + g_i))``."""
    a = torch.add(g_e, g_i).add_(1.0)
    v_inf = torch.mul(g_e, p.e_exc).add_(g_i, alpha=p.e_inh).add_(p.v_rest).div_(a)
    decay = a.mul_(-k).exp_()
    step = torch.sub(v_inf, v).mul_(decay.neg_().add_(1.0))  # (v_inf - v)(1 - e^{-k a})
    v.add_(step.mul_(refractory <= 0))
    threshold = p.v_thresh if theta is None else theta + p.v_thresh
    fired = v > threshold
    v.masked_fill_(fired, p.v_reset)
    refractory.sub_(p.dt).clamp_(min=0.0).masked_fill_(fired, p.refractory)
    return fired.to(v.dtype)


def _fused_layer(
    v: torch.Tensor,
    g_e: torch.Tensor,
    g_i: torch.Tensor,
    theta: torch.Tensor | None,
    refractory: torch.Tensor,
    p: ConductanceLIFParameters,
    k: float,
) -> torch.Tensor:
    """In place: the membrane and refractory update of one layer; returns its spikes."""
    # drive = (v_rest - v) + g_e (E_e - v) + g_i (E_i - v)
    #       = v_rest + g_e E_e + g_i E_i - v (1 + g_e + g_i)
    drive = torch.add(g_e, g_i).add_(1.0).mul_(v).neg_()
    drive.add_(g_e, alpha=p.e_exc).add_(g_i, alpha=p.e_inh).add_(p.v_rest)
    drive.mul_(refractory <= 0)
    v.add_(drive, alpha=k)
    threshold = p.v_thresh if theta is None else theta + p.v_thresh
    fired = v > threshold
    v.masked_fill_(fired, p.v_reset)
    refractory.sub_(p.dt).clamp_(min=0.0).masked_fill_(fired, p.refractory)
    return fired.to(v.dtype)


# ---------------------------------------------------------------------- one presentation
def validate_wta_present(
    pre: torch.Tensor,
    weight: torch.Tensor,
    theta: torch.Tensor,
    p: WTAParameters,
    counts: bool = False,
    *,
    time_chunk: int = 64,
) -> None:
    """Check the arguments of ``wta_present`` (shapes, dtypes, parameters)."""
    if not isinstance(time_chunk, int) or time_chunk < 1:
        raise InputError(f"wta_present time_chunk must be a positive int, got {time_chunk!r}")
    check_tensor(pre, "wta_present input spikes pre [T, B, S, n_in]", ndim=4, floating=False)
    check_tensor(weight, "wta_present weight [M, n_in, N]", ndim=3)
    check_tensor(theta, "wta_present theta [B, M, N]", min_ndim=1, device=weight.device)
    if pre.device != weight.device:
        raise InputError(f"wta_present pre is on {pre.device}, weight on {weight.device}")
    if not isinstance(p, WTAParameters):
        raise InputError(f"wta_present expected WTAParameters, got {type(p).__name__}")
    p.validate()
    _, batch, sources, n_in = pre.shape
    n_modules, w_in, n = weight.shape
    if w_in != n_in:
        raise InputError(
            f"wta_present pre has {n_in} input neurons but weight [M, n_in, N] has {w_in}"
        )
    if sources not in (1, n_modules):
        raise InputError(
            f"wta_present pre [T, B, S, n_in] has S={sources}; expected 1 (every module sees "
            f"the same input) or M={n_modules} (one input per module)"
        )
    try:
        torch.broadcast_shapes(theta.shape, (batch, n_modules, n))
    except RuntimeError as exc:
        raise InputError(
            f"wta_present theta of shape {tuple(theta.shape)} does not broadcast to "
            f"[B, M, N] = {(batch, n_modules, n)}"
        ) from exc
    if theta.dim() > 3:
        raise InputError(f"wta_present theta has {theta.dim()} dimensions; expected at most 3")


def wta_present_reference(
    pre: torch.Tensor,
    weight: torch.Tensor,
    theta: torch.Tensor,
    p: WTAParameters,
    counts: bool = False,
    *,
    time_chunk: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One presentation of input spike trains to ``M`` WTA circuits, from rest.

    ``pre [T, B, S, n_in]`` (0/1 spikes; ``S = 1``: every module sees the same input,
    ``S = M``: one input per module) drives the excitatory layer of every module through
    ``weight [M, n_in, N]`` (input conductance increments ``pre[t] @ weight[m]``); both layers
    start at rest with the excitatory thresholds ``theta`` (broadcast to ``[B, M, N]``), which
    adapt by ``p.exc.theta_plus`` per spike. The input currents are computed ``time_chunk``
    steps at a time (bounded memory), the state carried between chunks (:func:`wta_run`).

    Returns ``(spikes [T, B, M, N]`` or, with ``counts``, spike counts ``[B, M, N]``,
    ``theta after the presentation [B, M, N])``.
    """
    steps, batch, sources, n_in = pre.shape
    n_modules, _, n = weight.shape
    like = theta.to(weight.dtype).expand(batch, n_modules, n)
    state = WTAState.rest(like, p, theta=like)
    flat = weight.permute(1, 0, 2).reshape(n_in, -1) if sources == 1 else weight
    out = (
        torch.zeros_like(like)
        if counts
        else torch.empty(steps, *like.shape, dtype=like.dtype, device=like.device)
    )
    for t0 in range(0, steps, time_chunk):
        x = pre[t0 : t0 + time_chunk].to(weight.dtype)
        if sources == 1:
            current = (x[:, :, 0] @ flat).view(x.shape[0], batch, n_modules, n)
        else:
            current = torch.einsum("tbmi,min->tbmn", x, weight)
        spikes, state = wta_run(current, state, p)
        if counts:
            out += spikes.sum(0)
        else:
            out[t0 : t0 + x.shape[0]] = spikes
    return out, state.exc.theta


def _present_example(
    device: torch.device, dtype: torch.dtype, generator: torch.Generator
) -> tuple[tuple[object, ...], dict[str, object]]:
    # weights in multiples of 1/4 and 0/1 spikes: every input current is summed exactly in any
    # order, so the backends see the same conductances
    steps, batch, n_modules, n_in, n = 60, 2, 3, 40, 7
    pre = (torch.rand(steps, batch, n_modules, n_in, generator=generator) < 0.3).to(dtype)
    weight = torch.randint(0, 9, (n_modules, n_in, n), generator=generator).to(dtype) / 4.0
    theta = torch.rand(1, n_modules, n, generator=generator, dtype=torch.float64).to(dtype) * 4
    p = WTAParameters(
        exc=ConductanceLIFParameters.diehl_cook_excitatory(dt=1.0, theta_plus=0.5),
        inh=ConductanceLIFParameters.diehl_cook_inhibitory(dt=1.0),
        integrator="exponential",
    )
    return (pre.to(device), weight.to(device), theta.to(device), p), {}


def _present_bad_inputs(device: torch.device) -> list[tuple[tuple[object, ...], dict, str]]:
    pre = torch.zeros(5, 2, 1, 4, device=device)
    weight = torch.zeros(3, 4, 6, device=device)
    theta = torch.zeros(3, 6, device=device)
    p = WTAParameters()
    return [
        ((pre[0], weight, theta, p), {}, r"pre \[T, B, S, n_in\]"),
        ((pre, weight[:, :3], theta, p), {}, "has 4 input neurons"),
        ((torch.zeros(5, 2, 2, 4, device=device), weight, theta, p), {}, "has S=2"),
        ((pre, weight, torch.zeros(2, 6, device=device), p), {}, "does not broadcast"),
        ((pre, weight, theta, "p"), {}, "expected WTAParameters"),
        ((pre, weight, theta, WTAParameters(integrator="rk4")), {}, "integrator must be one of"),
    ]


def _load_present_numba() -> Any:
    from neurosim.functional._numba_wta import wta_present_numba

    return wta_present_numba


kernels.register(
    Operation(
        name="wta_present",
        reference=wta_present_reference,
        validate=validate_wta_present,
        example=_present_example,
        bad_inputs=_present_bad_inputs,
        grad_args=(),
        doc="one presentation of input spikes to M Diehl & Cook WTA circuits (spikes, theta)",
    )
)
kernels.register_backend("wta_present", numba_backend(_load_present_numba))
