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
from typing import NamedTuple

import torch

from neurosim.backend import InputError, check_tensor
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
