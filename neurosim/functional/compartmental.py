"""A small compartmental neuron with NMDA dendrites: a ground truth for neuron-fitting tasks.

A soma and ``num_branch`` passive dendritic compartments (a "ball and sticks"; one branch is the
classic two-compartment neuron). Presynaptic spikes open conductances on the branches: AMPA and
NMDA from excitatory synapses, GABA_A from inhibitory ones, each an exponential decay incremented
by ``w`` per spike. NMDA carries the voltage-dependent magnesium block of Jahr & Stevens (1990),

.. math:: B(V) = \\frac{1}{1 + \\frac{[\\mathrm{Mg}^{2+}]}{3.57\\,\\mathrm{mM}}\\, e^{-0.062\\,V/\\mathrm{mV}}},

so a branch that is depolarised enough unblocks its NMDA current and regenerates (a dendritic
plateau): coincident input on one branch sums supralinearly. Membrane equations (mV, ms, nS, pF):

.. math::
    C_d \\dot V_d &= -g_{L,d}(V_d - E_L) - g_A (V_d - E_e) - g_N B(V_d)(V_d - E_e)
                    - g_G (V_d - E_i) - g_c (V_d - V_s) \\\\
    C_s \\dot V_s &= -g_{L,s}(V_s - E_L) - \\textstyle\\sum_d g_c (V_s - V_d) - g_{G,s} (V_s - E_i)

The soma fires when ``V_s >= v_threshold``, is reset to ``v_reset`` and held there for
``refractory`` ms. Each step of ``dt`` updates every compartment by exponential Euler with the
other compartments' voltages and the NMDA block frozen over the step (stable for any ``dt``):
``V <- V_inf + (V - V_inf) exp(-dt g_total / C)`` with ``V_inf = sum_k g_k E_k / g_total``.

Shapes: excitatory spikes per branch ``[B, branches]`` per step (counts summed over the
synapses of each branch), inhibitory likewise, plus optional somatic inhibition ``[B]``. The
multi-step :func:`simulate_compartmental` takes presynaptic rasters ``[T, B, N]`` and the
branch of every synapse.

Example: without input the neuron rests at ``E_L`` (no spikes); with the defaults, a volley of 20
synchronous excitatory spikes onto the branch of a two-compartment neuron (one branch) lifts the
branch to about -45 mV (checked against scipy's ODE solver in the tests). 80 spikes onto one of
four branches depolarise the soma longer than the same 80 spread over the four branches (the
NMDA plateau); with NMDA blocked the spread volley wins.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from neurosim.backend import InputError, check_tensor


class CompartmentalParameters(NamedTuple):
    """Parameters (mV, ms, nS, pF, mM) of :func:`compartmental_step`.

    Defaults: membrane time constants 10 ms (soma 200 pF / 20 nS, branches 50 pF / 5 nS),
    coupling 10 nS per branch, AMPA 2 ms, NMDA 50 ms, GABA_A 8 ms.
    """

    c_soma: float = 200.0
    g_leak_soma: float = 20.0
    c_branch: float = 50.0
    g_leak_branch: float = 5.0
    g_couple: float = 10.0
    e_leak: float = -70.0
    e_exc: float = 0.0
    e_inh: float = -80.0
    tau_ampa: float = 2.0
    tau_nmda: float = 50.0
    tau_gaba: float = 8.0
    w_ampa: float = 1.0
    w_nmda: float = 1.0
    w_gaba: float = 2.0
    mg: float = 1.0
    v_threshold: float = -55.0
    v_reset: float = -65.0
    refractory: float = 2.0
    dt: float = 1.0


class CompartmentalState(NamedTuple):
    """Soma voltage ``v_soma [B]``, branch voltages ``v_branch [B, branches]``, conductances
    ``g_ampa, g_nmda, g_gaba [B, branches]`` and somatic GABA ``g_gaba_soma [B]`` (nS), and the
    remaining refractory time ``refractory [B]`` (ms)."""

    v_soma: torch.Tensor
    v_branch: torch.Tensor
    g_ampa: torch.Tensor
    g_nmda: torch.Tensor
    g_gaba: torch.Tensor
    g_gaba_soma: torch.Tensor
    refractory: torch.Tensor

    @classmethod
    def rest(
        cls, batch: int, branches: int, p: CompartmentalParameters, *,
        dtype: torch.dtype = torch.float32, device: torch.device | None = None,
    ) -> CompartmentalState:  # fmt: skip
        """Every compartment at ``e_leak``, all conductances closed."""

        def z(*shape: int) -> torch.Tensor:
            return torch.zeros(*shape, dtype=dtype, device=device)

        return cls(
            z(batch) + p.e_leak, z(batch, branches) + p.e_leak, z(batch, branches),
            z(batch, branches), z(batch, branches), z(batch), z(batch),
        )  # fmt: skip


class CompartmentalTrace(NamedTuple):
    """What :func:`simulate_compartmental` returns: soma spikes and voltage ``[T, B]``, branch
    voltages ``[T, B, branches]`` and the final state."""

    spikes: torch.Tensor
    v_soma: torch.Tensor
    v_branch: torch.Tensor
    state: CompartmentalState


def nmda_block(v: torch.Tensor, mg: float = 1.0) -> torch.Tensor:
    """Fraction of NMDA channels not blocked by magnesium at voltage ``v`` (mV), Jahr & Stevens
    (1990): ``1 / (1 + mg / 3.57 * exp(-0.062 v))``.

    >>> round(float(nmda_block(torch.tensor(0.0))), 4)
    0.7812
    """
    return 1.0 / (1.0 + (mg / 3.57) * torch.exp(-0.062 * v))


def _relax(
    v: torch.Tensor, g_total: torch.Tensor, drive: torch.Tensor, c: float, dt: float
) -> torch.Tensor:
    """Exponential Euler: relax ``v`` towards ``drive / g_total`` with time constant
    ``c / g_total``."""
    v_inf = drive / g_total
    return v_inf + (v - v_inf) * torch.exp(-dt * g_total / c)


def compartmental_step(
    exc: torch.Tensor,
    inh: torch.Tensor,
    state: CompartmentalState,
    p: CompartmentalParameters = CompartmentalParameters(),  # noqa: B008 - immutable NamedTuple
    inh_soma: torch.Tensor | None = None,
) -> tuple[torch.Tensor, CompartmentalState]:
    """One step of ``p.dt`` ms: ``exc, inh [B, branches]`` presynaptic spike counts per branch
    (``inh_soma [B]`` onto the soma). Returns ``(spike [B], new state)``; the state's
    ``v_soma`` is the post-reset voltage."""
    dt = p.dt
    g_a = state.g_ampa * math.exp(-dt / p.tau_ampa) + p.w_ampa * exc
    g_n = state.g_nmda * math.exp(-dt / p.tau_nmda) + p.w_nmda * exc
    g_g = state.g_gaba * math.exp(-dt / p.tau_gaba) + p.w_gaba * inh
    g_gs = state.g_gaba_soma * math.exp(-dt / p.tau_gaba)
    if inh_soma is not None:
        g_gs = g_gs + p.w_gaba * inh_soma
    vd, vs = state.v_branch, state.v_soma
    g_nb = g_n * nmda_block(vd, p.mg)
    g_tot = p.g_leak_branch + g_a + g_nb + g_g + p.g_couple
    drive = (p.g_leak_branch * p.e_leak + (g_a + g_nb) * p.e_exc + g_g * p.e_inh
             + p.g_couple * vs.unsqueeze(-1))  # fmt: skip
    vd_new = _relax(vd, g_tot, drive, p.c_branch, dt)
    branches = vd.shape[-1]
    g_tot_s = p.g_leak_soma + branches * p.g_couple + g_gs
    drive_s = p.g_leak_soma * p.e_leak + p.g_couple * vd.sum(-1) + g_gs * p.e_inh
    vs_new = _relax(vs, g_tot_s, drive_s, p.c_soma, dt)
    refr = (state.refractory - dt).clamp(min=0.0)
    held = refr > 0
    vs_new = torch.where(held, torch.full_like(vs_new, p.v_reset), vs_new)
    spike = (vs_new >= p.v_threshold) & ~held
    vs_new = torch.where(spike, torch.full_like(vs_new, p.v_reset), vs_new)
    refr = torch.where(spike, torch.full_like(refr, p.refractory), refr)
    new = CompartmentalState(vs_new, vd_new, g_a, g_n, g_g, g_gs, refr)
    return spike.to(vs.dtype), new


def simulate_compartmental(
    exc_spikes: torch.Tensor,
    inh_spikes: torch.Tensor,
    exc_branch: torch.Tensor,
    inh_branch: torch.Tensor,
    num_branch: int,
    p: CompartmentalParameters = CompartmentalParameters(),  # noqa: B008 - immutable NamedTuple
    state: CompartmentalState | None = None,
) -> CompartmentalTrace:
    """Drive the neuron with presynaptic rasters ``exc_spikes [T, B, Ne]``, ``inh_spikes
    [T, B, Ni]``; synapse ``j`` sits on branch ``exc_branch[j]`` (``inh_branch[j]``; ``-1`` puts
    an inhibitory synapse on the soma). No gradients are needed here (a ground truth)."""
    check_tensor(exc_spikes, "excitatory spikes [T, B, Ne]", ndim=3)
    check_tensor(inh_spikes, "inhibitory spikes [T, B, Ni]", ndim=3)
    if exc_spikes.shape[:2] != inh_spikes.shape[:2]:
        raise InputError(
            f"excitatory {tuple(exc_spikes.shape)} and inhibitory {tuple(inh_spikes.shape)} "
            "rasters must share T and B"
        )
    for name, raster, where in (("exc_branch", exc_spikes, exc_branch),
                                ("inh_branch", inh_spikes, inh_branch)):  # fmt: skip
        if where.shape != (raster.shape[-1],) or where.dtype != torch.long:
            raise InputError(f"{name} must be a long tensor with one branch per synapse")
        if raster.shape[-1] and (int(where.max()) >= num_branch or int(where.min()) < -1):
            raise InputError(f"{name} holds branches outside -1 .. {num_branch - 1}")
    steps, batch = exc_spikes.shape[:2]
    dtype, dev = exc_spikes.dtype, exc_spikes.device

    def per_branch(raster: torch.Tensor, where: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        onehot = torch.zeros(raster.shape[-1], num_branch + 1, dtype=dtype, device=dev)
        onehot[torch.arange(raster.shape[-1], device=dev), where.to(dev) % (num_branch + 1)] = 1
        counts = raster @ onehot  # [T, B, branches + 1]; column `num_branch` is the soma (-1)
        return counts[..., :num_branch], counts[..., num_branch]

    exc_b, _ = per_branch(exc_spikes, exc_branch)
    inh_b, inh_s = per_branch(inh_spikes, inh_branch)
    st = (
        CompartmentalState.rest(batch, num_branch, p, dtype=dtype, device=dev)
        if state is None
        else state
    )
    spikes = torch.empty(steps, batch, dtype=dtype, device=dev)
    v_soma = torch.empty(steps, batch, dtype=dtype, device=dev)
    v_branch = torch.empty(steps, batch, num_branch, dtype=dtype, device=dev)
    with torch.no_grad():
        for t in range(steps):
            spikes[t], st = compartmental_step(exc_b[t], inh_b[t], st, p, inh_s[t])
            v_soma[t] = st.v_soma
            v_branch[t] = st.v_branch
    return CompartmentalTrace(spikes, v_soma, v_branch, st)
