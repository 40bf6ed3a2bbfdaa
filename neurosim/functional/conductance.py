"""Conductance-based LIF with an adaptive threshold (Diehl & Cook 2015 STDP networks).

Membrane potential ``v`` in mV, conductances ``g_e``, ``g_i`` (dimensionless, relative to the
leak), times in ms, forward Euler with step ``dt``:

.. math::
    g_e \\leftarrow g_e + x_e, \\quad g_i \\leftarrow g_i + x_i \\quad
    \\text{(presynaptic input arriving this step)} \\\\
    v \\leftarrow v + \\frac{dt}{\\tau_m}\\big[(v_{rest} - v) + g_e (E_{exc} - v)
      + g_i (E_{inh} - v)\\big] \\quad \\text{(only when not refractory)} \\\\
    S = H(v - (v_{thresh} + \\theta)), \\quad
    v \\leftarrow v_{reset} \\text{ where } S, \\quad
    \\theta \\leftarrow \\theta e^{-dt/\\tau_\\theta} + \\theta_+ S \\\\
    r \\leftarrow t_{ref} \\text{ where } S \\text{ else } \\max(r - dt, 0), \\quad
    g_{e,i} \\leftarrow g_{e,i} \\, e^{-dt/\\tau_{e,i}}

``x_e = W_e S_{pre}`` and ``x_i = W_i S_{inh}`` are the conductance increments (synaptic weight
times presynaptic spikes), computed by the caller. ``theta`` is the homeostatic threshold of
Diehl & Cook: each spike raises it by ``theta_plus``; it decays with ``tau_theta`` (1e7 ms: nearly
constant). Set ``theta_plus = 0`` to freeze it (their test phase). The spike has a surrogate
gradient, but these networks usually learn with STDP, not backpropagation.

State: ``(v, g_e, g_i, theta, refractory)`` each ``[B, *F]``. Presets:
:meth:`ConductanceLIFParameters.diehl_cook_excitatory` and ``..._inhibitory``.

Example: a neuron at rest (``v = v_rest``) with ``g_e = 0`` stays at ``v_rest``; a large
``x_e`` pulls ``v`` towards ``E_exc = 0 mV`` and it fires once ``v > v_thresh + theta``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from neurosim.backend import InputError
from neurosim.functional.common import NeuronSequence, check_input, check_state_shape, step_zeros
from neurosim.functional.surrogate import DEFAULT_SURROGATE, Surrogate, check_surrogate, spike


class ConductanceLIFParameters(NamedTuple):
    """Parameters of the conductance-based adaptive LIF (units: mV and ms).

    Attributes:
        v_rest, v_reset, v_thresh: resting, reset and baseline threshold potentials (mV).
        e_exc, e_inh: excitatory and inhibitory reversal potentials (mV).
        tau_mem, tau_exc, tau_inh: membrane and conductance time constants (ms).
        tau_theta: decay time constant of the adaptive threshold (ms).
        theta_plus: threshold increase per spike (mV); 0 freezes ``theta``.
        refractory: refractory period (ms) during which ``v`` does not integrate.
        dt: Euler time step (ms).
        surrogate: surrogate gradient of the spike.
    """

    v_rest: float = -65.0
    v_reset: float = -65.0
    v_thresh: float = -52.0
    e_exc: float = 0.0
    e_inh: float = -100.0
    tau_mem: float = 100.0
    tau_exc: float = 1.0
    tau_inh: float = 2.0
    tau_theta: float = 1e7
    theta_plus: float = 0.05
    refractory: float = 5.0
    dt: float = 0.5
    surrogate: Surrogate = DEFAULT_SURROGATE

    @classmethod
    def diehl_cook_excitatory(cls, dt: float = 0.5, **kwargs: object) -> ConductanceLIFParameters:
        """Excitatory neurons of Diehl & Cook (2015): ``tau_m = 100 ms``, ``v_thresh = -52 mV``,
        ``theta_plus = 0.05 mV``, ``tau_theta = 1e7 ms``, refractory 5 ms."""
        return cls(dt=dt, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def diehl_cook_inhibitory(cls, dt: float = 0.5, **kwargs: object) -> ConductanceLIFParameters:
        """Inhibitory neurons of Diehl & Cook (2015): ``tau_m = 10 ms``, ``v_rest = -60``,
        ``v_reset = -45``, ``v_thresh = -40``, ``E_inh = -85 mV``, refractory 2 ms, no
        adaptation."""
        values: dict[str, object] = dict(
            v_rest=-60.0, v_reset=-45.0, v_thresh=-40.0, e_inh=-85.0, tau_mem=10.0,
            theta_plus=0.0, refractory=2.0, dt=dt,
        )  # fmt: skip
        values.update(kwargs)
        return cls(**values)  # type: ignore[arg-type]

    def validate(self) -> ConductanceLIFParameters:
        """Return ``self`` or raise :class:`InputError` for non-finite or non-positive values."""
        for name, value in self._asdict().items():
            if name == "surrogate":
                continue
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise InputError(f"ConductanceLIF {name} must be a finite number, got {value!r}")
        for name in ("tau_mem", "tau_exc", "tau_inh", "tau_theta", "dt"):
            if getattr(self, name) <= 0:
                raise InputError(
                    f"ConductanceLIF {name} must be positive, got {getattr(self, name)}"
                )
        if self.refractory < 0 or self.theta_plus < 0:
            raise InputError("ConductanceLIF refractory and theta_plus must be >= 0")
        if self.dt > self.tau_exc:
            raise InputError(
                f"ConductanceLIF dt={self.dt} ms exceeds tau_exc={self.tau_exc} ms; forward Euler "
                f"needs dt below the fastest time constant"
            )
        check_surrogate(self.surrogate, "ConductanceLIF surrogate")
        return self


DEFAULT_CONDUCTANCE = ConductanceLIFParameters()


class ConductanceLIFState(NamedTuple):
    """State (each ``[B, *F]``): membrane ``v`` (mV), conductances ``g_e``, ``g_i``, adaptive
    threshold ``theta`` (mV) and remaining refractory time ``refractory`` (ms)."""

    v: torch.Tensor
    g_e: torch.Tensor
    g_i: torch.Tensor
    theta: torch.Tensor
    refractory: torch.Tensor

    @classmethod
    def rest(
        cls,
        x: torch.Tensor,
        p: ConductanceLIFParameters = DEFAULT_CONDUCTANCE,
        theta: torch.Tensor | None = None,
    ) -> ConductanceLIFState:
        """Resting state shaped like one step ``x``: ``v = v_rest``, no conductance, ``theta``
        zero (or the given learned ``theta``, e.g. carried over from training)."""
        zeros = torch.zeros_like(x)
        th = zeros if theta is None else theta.to(x.dtype).expand_as(x).clone()
        return cls(torch.full_like(x, p.v_rest), zeros, zeros.clone(), th, zeros.clone())


def _state(
    state: object, x: torch.Tensor, p: ConductanceLIFParameters, multi_step: bool
) -> ConductanceLIFState:
    if state is None:
        return ConductanceLIFState.rest(step_zeros(x, multi_step=multi_step), p)
    if not isinstance(state, ConductanceLIFState):
        raise InputError(
            f"ConductanceLIF state must be a ConductanceLIFState, got {type(state).__name__}"
        )
    for name, value in state._asdict().items():
        check_state_shape(value, f"ConductanceLIF state {name}", x, multi_step=multi_step)
    return ConductanceLIFState(*(t.to(x.dtype) for t in state))


def _step(
    x_e: torch.Tensor,
    x_i: torch.Tensor | None,
    st: ConductanceLIFState,
    p: ConductanceLIFParameters,
) -> tuple[torch.Tensor, ConductanceLIFState]:
    g_e = st.g_e + x_e
    g_i = st.g_i if x_i is None else st.g_i + x_i
    drive = (p.v_rest - st.v) + g_e * (p.e_exc - st.v) + g_i * (p.e_inh - st.v)
    active = (st.refractory <= 0).to(x_e.dtype)
    v = st.v + active * (p.dt / p.tau_mem) * drive
    s = spike(v - (p.v_thresh + st.theta), p.surrogate)
    v = v * (1 - s) + p.v_reset * s
    theta = st.theta * math.exp(-p.dt / p.tau_theta) + p.theta_plus * s.detach()
    sd = s.detach()
    refractory = sd * p.refractory + (1 - sd) * (st.refractory - p.dt).clamp(min=0.0)
    g_e = g_e * math.exp(-p.dt / p.tau_exc)
    g_i = g_i * math.exp(-p.dt / p.tau_inh)
    return s, ConductanceLIFState(v, g_e, g_i, theta, refractory)


def conductance_lif_step(
    x_e: torch.Tensor,
    state: ConductanceLIFState | None,
    p: ConductanceLIFParameters = DEFAULT_CONDUCTANCE,
    x_i: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ConductanceLIFState]:
    """One Euler step (module docstring). ``x_e``, ``x_i``: conductance increments ``[B, *F]``.

    Returns ``(spikes [B, *F], new_state)``.
    """
    check_input(x_e, "ConductanceLIF excitatory input x_e [B, *F]", multi_step=False)
    if x_i is not None:
        check_input(x_i, "ConductanceLIF inhibitory input x_i [B, *F]", multi_step=False)
        check_state_shape(x_i, "ConductanceLIF inhibitory input x_i", x_e, multi_step=False)
    if not isinstance(p, ConductanceLIFParameters):
        raise InputError(f"expected ConductanceLIFParameters, got {type(p).__name__}")
    p.validate()
    return _step(x_e, x_i, _state(state, x_e, p, False), p)


def conductance_lif_multi_step(
    x_e: torch.Tensor,
    state: ConductanceLIFState | None = None,
    p: ConductanceLIFParameters = DEFAULT_CONDUCTANCE,
    x_i: torch.Tensor | None = None,
) -> NeuronSequence:
    """The step over ``x_e [T, B, *F]`` (and optional ``x_i [T, B, *F]``); returns
    ``NeuronSequence(spikes, membrane, ConductanceLIFState)`` (``T = 0``: empty outputs and the
    unchanged state)."""
    check_input(x_e, "ConductanceLIF excitatory input x_e [T, B, *F]", multi_step=True)
    if x_i is not None:
        check_input(x_i, "ConductanceLIF inhibitory input x_i [T, B, *F]", multi_step=True)
        if x_i.shape != x_e.shape:
            raise InputError(
                f"ConductanceLIF x_i has shape {tuple(x_i.shape)} but x_e has {tuple(x_e.shape)}"
            )
    if not isinstance(p, ConductanceLIFParameters):
        raise InputError(f"expected ConductanceLIFParameters, got {type(p).__name__}")
    p.validate()
    st = _state(state, x_e, p, True)
    if x_e.shape[0] == 0:
        return NeuronSequence(x_e * 0, x_e * 0, st)
    spikes, mems = [], []
    for t in range(x_e.shape[0]):
        s, st = _step(x_e[t], None if x_i is None else x_i[t], st, p)
        spikes.append(s)
        mems.append(st.v)
    return NeuronSequence(torch.stack(spikes), torch.stack(mems), st)
