"""numba kernels for the ``wta_present`` and ``stdp_window`` operations on the CPU.

Imported lazily by the registry (never by ``import neurosim``). Both operations are driven by
spike trains that are mostly zeros (a Poisson input layer fires on a few percent of its pixels
per step; an excitatory layer with lateral inhibition on a handful of neurons per presentation),
so the kernels work from the spikes instead of dense products:

* ``wta_present``: the input current of a step is the sum of the weight rows of the input
  neurons that fired (a list built once per step and image, shared by every module that sees the
  same image), instead of the reference's ``[T, n_in] @ [n_in, M * N]`` product; then the
  excitatory/inhibitory update of :func:`neurosim.functional.wta.wta_run` (same equations, same
  order of operations, the constants in the tensors' dtype), one module and image at a time with
  its state in a few small buffers.
* ``stdp_window``: potentiation adds the pre trace to the column of each post spike, depression
  the post trace to the row of each pre spike (the reference contracts dense ``[T, n]`` factors).

The sums run in another order than the reference's matrix products, so membranes differ by
rounding (a spike can flip where a membrane lands within rounding of its threshold; the tests
compare in float64 and on weights that sum exactly). One thread, no fast-math; the first call of
a dtype compiles (seconds), numba caches the machine code on disk for later processes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numba import njit

_OPTIONS: dict[str, Any] = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)

# layout of the parameter vector (in the tensors' dtype, so the arithmetic stays in it)
(E_REST, E_RESET, E_THRESH, E_EXC, E_INH, E_K, E_REFR, E_DT) = range(8)
(I_REST, I_RESET, I_THRESH, I_EXC, I_INH, I_K, I_REFR, I_DT) = range(8, 16)
(D_GEE, D_GIE, D_GEI, D_GII, D_THETA, THETA_PLUS, W_EXC_INH, W_INH_EXC) = range(16, 24)
N_PARAMS = 24


@njit(**_OPTIONS)
def _spike_lists(pre):  # type: ignore[no-untyped-def]
    """CSR lists of the nonzero inputs of every ``(t, b, s)`` row of ``pre [T, B, S, n_in]``."""
    steps, batch, sources, n_in = pre.shape
    rows = steps * batch * sources
    offsets = np.zeros(rows + 1, dtype=np.int64)
    count = 0
    for t in range(steps):
        for b in range(batch):
            for s in range(sources):
                for i in range(n_in):
                    if pre[t, b, s, i] != 0:
                        count += 1
                offsets[(t * batch + b) * sources + s + 1] = count
    index = np.empty(count, dtype=np.int64)
    k = 0
    for t in range(steps):
        for b in range(batch):
            for s in range(sources):
                for i in range(n_in):
                    if pre[t, b, s, i] != 0:
                        index[k] = i
                        k += 1
    return offsets, index


@njit(**_OPTIONS)
def _layer(v, g_e, g_i, thresh_add, refr, fired, prm, base, exponential, with_theta):  # type: ignore[no-untyped-def]
    """One layer's membrane and refractory update in place (``_exponential_layer`` /
    ``_fused_layer`` of :mod:`neurosim.functional.wta`); writes 0/1 into ``fired``."""
    one = prm.dtype.type(1.0)
    zero = prm.dtype.type(0.0)
    v_rest, v_reset, v_thresh = prm[base], prm[base + 1], prm[base + 2]
    e_exc, e_inh, k, refractory, dt = (
        prm[base + 3],
        prm[base + 4],
        prm[base + 5],
        prm[base + 6],
        prm[base + 7],
    )
    rest_decay = np.exp(one * -k)  # the decay without conductance (a = 1): no exp per neuron
    for n in range(v.shape[0]):
        ge = g_e[n]
        gi = g_i[n]
        if exponential:
            if ge == zero and gi == zero:  # the same values as the general case with a = 1
                v_inf = v_rest
                decay = rest_decay
            else:
                a = ge + gi + one
                v_inf = (ge * e_exc + gi * e_inh + v_rest) / a
                decay = np.exp(a * -k)
            step = (v_inf - v[n]) * (-decay + one)
            if refr[n] <= zero:
                v[n] = v[n] + step
            else:
                v[n] = v[n] + step * zero
        else:
            drive = -((ge + gi + one) * v[n])
            drive = drive + ge * e_exc + gi * e_inh + v_rest
            if not refr[n] <= zero:
                drive = drive * zero
            v[n] = v[n] + k * drive
        threshold = thresh_add[n] + v_thresh if with_theta else v_thresh
        r = refr[n] - dt
        if r < zero:
            r = zero
        if v[n] > threshold:
            v[n] = v_reset
            refr[n] = refractory
            fired[n] = one
        else:
            refr[n] = r
            fired[n] = zero


@njit(**_OPTIONS)
def _wta_present(pre, weight, theta, prm, out, record, exponential, adapt):  # type: ignore[no-untyped-def]
    """``pre [T, B, S, n_in]``, ``weight [M, n_in, N]``, ``theta [B, M, N]`` (updated in place to
    the thresholds after the presentation); ``out``: spikes ``[T, B, M, N]`` (``record``) or
    counts ``[1, B, M, N]`` (zeroed by the caller)."""
    steps, batch, sources, _ = pre.shape
    n_modules, _, n = weight.shape
    offsets, index = _spike_lists(pre)
    zero = prm.dtype.type(0.0)
    ve = np.empty(n, dtype=weight.dtype)
    gee = np.empty_like(ve)
    gie = np.empty_like(ve)
    re = np.empty_like(ve)
    se = np.empty_like(ve)
    vi = np.empty_like(ve)
    gei = np.empty_like(ve)
    gii = np.empty_like(ve)
    ri = np.empty_like(ve)
    si = np.empty_like(ve)
    th = np.empty_like(ve)
    cur = np.empty_like(ve)
    dummy = np.empty_like(ve)
    for b in range(batch):
        for m in range(n_modules):
            s = 0 if sources == 1 else m
            for j in range(n):
                ve[j] = prm[E_REST]
                vi[j] = prm[I_REST]
                gee[j] = zero
                gie[j] = zero
                re[j] = zero
                se[j] = zero
                gei[j] = zero
                gii[j] = zero
                ri[j] = zero
                si[j] = zero
                th[j] = theta[b, m, j]
            w = weight[m]
            for t in range(steps):
                total = zero
                for j in range(n):
                    total += si[j]
                for j in range(n):
                    gie[j] = gie[j] + (total - si[j]) * prm[W_INH_EXC]
                    cur[j] = zero
                row = (t * batch + b) * sources + s
                for k in range(offsets[row], offsets[row + 1]):
                    i = index[k]
                    x = pre[t, b, s, i]
                    for j in range(n):
                        cur[j] += x * w[i, j]
                for j in range(n):
                    gee[j] = gee[j] + cur[j]
                    gei[j] = gei[j] + prm[W_EXC_INH] * se[j]
                _layer(ve, gee, gie, th, re, se, prm, E_REST, exponential, True)
                _layer(vi, gei, gii, dummy, ri, si, prm, I_REST, exponential, False)
                for j in range(n):
                    gee[j] = gee[j] * prm[D_GEE]
                    gie[j] = gie[j] * prm[D_GIE]
                    gei[j] = gei[j] * prm[D_GEI]
                    gii[j] = gii[j] * prm[D_GII]
                if adapt:
                    for j in range(n):
                        th[j] = th[j] * prm[D_THETA] + prm[THETA_PLUS] * se[j]
                if record:
                    for j in range(n):
                        out[t, b, m, j] = se[j]
                else:
                    for j in range(n):
                        out[0, b, m, j] += se[j]
            for j in range(n):
                theta[b, m, j] = th[j]


def _spike_array(spikes: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    """Spikes as a contiguous NumPy array the kernels read: booleans as bytes (no copy of a
    contiguous tensor), anything else in ``dtype``."""
    x = spikes.detach()
    if x.dtype == torch.bool:
        return x.contiguous().view(torch.uint8).numpy()
    return x.to(dtype).contiguous().numpy()


def wta_present_numba(
    pre: torch.Tensor,
    weight: torch.Tensor,
    theta: torch.Tensor,
    p: Any,
    counts: bool = False,
    *,
    time_chunk: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """numba implementation of ``wta_present`` (CPU tensors); same contract as the reference
    (``time_chunk`` bounds the reference's current buffer; the kernel needs none)."""
    e, i = p.exc, p.inh
    dtype = weight.dtype
    w = weight.detach().contiguous()
    xn = _spike_array(pre, dtype)
    prm = np.array(
        [
            e.v_rest, e.v_reset, e.v_thresh, e.e_exc, e.e_inh, e.dt / e.tau_mem, e.refractory,
            e.dt,
            i.v_rest, i.v_reset, i.v_thresh, i.e_exc, i.e_inh, i.dt / i.tau_mem, i.refractory,
            i.dt,
            np.exp(-e.dt / e.tau_exc), np.exp(-e.dt / e.tau_inh), np.exp(-i.dt / i.tau_exc),
            np.exp(-i.dt / i.tau_inh), np.exp(-e.dt / e.tau_theta), e.theta_plus, p.w_exc_inh,
            p.w_inh_exc,
        ],
        dtype=np.float64,
    ).astype(np.float32 if dtype == torch.float32 else np.float64)  # fmt: skip
    steps, batch = xn.shape[0], xn.shape[1]
    n_modules, _, n = w.shape
    theta_out = theta.detach().to(dtype).expand(batch, n_modules, n).contiguous().clone()
    if counts:
        out = torch.zeros(1, batch, n_modules, n, dtype=dtype)
    else:
        out = torch.empty(steps, batch, n_modules, n, dtype=dtype)
    adapt = bool(e.theta_plus) or math.exp(-e.dt / e.tau_theta) != 1.0
    _wta_present(
        xn,
        w.numpy(),
        theta_out.numpy(),
        prm,
        out.numpy(),
        not counts,
        p.integrator == "exponential",
        adapt,
    )
    return (out[0] if counts else out), theta_out


@njit(**_OPTIONS)
def _stdp_window(pre, post, x_pre, x_post1, x_post2, prm, triplet, set_mode, dw):  # type: ignore[no-untyped-def]
    """``pre [T, R, n_in]``, ``post [T, R, N]``, traces ``[R, n]`` (updated in place);
    accumulates ``dw [R, n_in, N]`` (zeroed by the caller).

    The pre traces are kept lazily (value and time of each input's last change; decayed by a
    table of powers when read), so a step costs its spikes, not ``n_in``; at a step with post
    spikes the decayed pre traces are formed once and added to a transposed potentiation buffer
    ``[N, n_in]`` (contiguous rows), added into ``dw`` at the end; depression visits only the
    post neurons whose trace is not zero (those that fired, or started nonzero)."""
    steps, rows, n_in = pre.shape
    n = post.shape[2]
    a_pre, a_post1, a_post2 = prm[0], prm[1], prm[2]
    nu_post, nu_pre = prm[3], prm[4]
    one = prm.dtype.type(1.0)
    zero = prm.dtype.type(0.0)
    powers = np.empty(steps + 1, dtype=prm.dtype)
    powers[0] = one
    for k in range(1, steps + 1):
        powers[k] = powers[k - 1] * a_pre
    offsets, index = _spike_lists(pre.reshape(steps, 1, rows, n_in))
    value = np.empty(n_in, dtype=prm.dtype)
    last = np.empty(n_in, dtype=np.int64)
    post1_before = np.empty(n, dtype=prm.dtype)
    active = np.empty(n, dtype=np.int64)
    is_active = np.empty(n, dtype=np.bool_)
    trace_now = np.empty(n_in, dtype=prm.dtype)
    pot = np.zeros((n, n_in), dtype=prm.dtype)  # rows of the potentiated neurons, re-zeroed
    potentiated = np.empty(n, dtype=np.int64)
    has_pot = np.zeros(n, dtype=np.bool_)
    for r in range(rows):
        xp = x_pre[r]
        x1 = x_post1[r]
        x2 = x_post2[r]
        w = dw[r]
        n_active = 0
        for j in range(n):
            is_active[j] = x1[j] != zero
            if is_active[j]:
                active[n_active] = j
                n_active += 1
        for i in range(n_in):
            value[i] = xp[i]
            last[i] = -1
        n_pot = 0
        for t in range(steps):
            lo, hi = offsets[t * rows + r], offsets[t * rows + r + 1]
            for k in range(lo, hi):  # this step's pre spikes mark their traces
                i = index[k]
                sp = pre[t, r, i]
                x = value[i] * powers[t - last[i]]
                value[i] = x * (one - sp) + sp if set_mode else x + sp
                last[i] = t
            for j in range(n):
                x1[j] = x1[j] * a_post1
                x2[j] = x2[j] * a_post2
                post1_before[j] = x1[j]
            qt = post[t, r]
            formed = False
            for j in range(n):  # potentiation: the pre traces (after marking) at post spikes
                q = qt[j]
                if q != zero:
                    gate = q * x2[j] if triplet else q
                    if gate != zero:
                        if not formed:
                            for i in range(n_in):
                                trace_now[i] = value[i] * powers[t - last[i]]
                            formed = True
                        if not has_pot[j]:
                            has_pot[j] = True
                            potentiated[n_pot] = j
                            n_pot += 1
                        row = pot[j]
                        for i in range(n_in):
                            row[i] += trace_now[i] * gate
            for k in range(lo, hi):  # depression: the post traces (before marking) at pre spikes
                i = index[k]
                sp = pre[t, r, i]
                for a in range(n_active):
                    j = active[a]
                    w[i, j] -= nu_pre * (sp * post1_before[j])
            for j in range(n):
                q = qt[j]
                if q != zero:
                    if not is_active[j]:
                        is_active[j] = True
                        active[n_active] = j
                        n_active += 1
                    if set_mode:
                        x1[j] = x1[j] * (one - q) + q
                        x2[j] = x2[j] * (one - q) + q
                    else:
                        x1[j] = x1[j] + q
                        x2[j] = x2[j] + q
        for i in range(n_in):
            xp[i] = value[i] * powers[steps - 1 - last[i]]
        for a in range(n_pot):
            j = potentiated[a]
            row = pot[j]
            for i in range(n_in):
                w[i, j] += nu_post * row[i]
                row[i] = zero
            has_pot[j] = False


def stdp_window_numba(
    pre: torch.Tensor,
    post: torch.Tensor,
    x_pre: torch.Tensor,
    x_post1: torch.Tensor,
    x_post2: torch.Tensor,
    p: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """numba implementation of ``stdp_window`` (CPU tensors); same contract as the reference."""
    dtype = x_pre.dtype
    steps = pre.shape[0]
    lead = pre.shape[1:-1]
    n_in, n = pre.shape[-1], post.shape[-1]
    pre3 = _spike_array(pre, dtype).reshape(steps, -1, n_in)
    post3 = _spike_array(post, dtype).reshape(steps, -1, n)
    rows = pre3.shape[1]
    xp = x_pre.detach().to(dtype).expand(*lead, n_in).reshape(rows, n_in).clone()
    x1 = x_post1.detach().to(dtype).expand(*lead, n).reshape(rows, n).clone()
    x2 = x_post2.detach().to(dtype).expand(*lead, n).reshape(rows, n).clone()
    dw = torch.zeros(rows, n_in, n, dtype=dtype)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    prm = np.array([*p.decays(), p.nu_post, p.nu_pre], dtype=np_dtype)
    _stdp_window(
        pre3,
        post3,
        xp.numpy(),
        x1.numpy(),
        x2.numpy(),
        prm,
        bool(p.triplet),
        p.trace == "set",
        dw.numpy(),
    )
    return (
        dw.reshape(*lead, n_in, n),
        xp.reshape(*lead, n_in),
        x1.reshape(*lead, n),
        x2.reshape(*lead, n),
    )


@njit(**_OPTIONS)
def _bernoulli_trains(prob, steps, seed, out):  # type: ignore[no-untyped-def]
    """``out[t, e] = 1`` with probability ``prob[e]``, independently per step: the gaps between
    an element's spikes are geometric, so one random number is drawn per spike (plus one per
    element) instead of one per step and element."""
    np.random.seed(seed)  # noqa: NPY002 - numba's own generator, seeded from torch's
    for e in range(prob.shape[0]):
        q = prob[e]
        if q <= 0.0:
            continue
        if q >= 1.0:
            for t in range(steps):
                out[t, e] = 1
            continue
        t = np.random.geometric(q) - 1  # noqa: NPY002
        while t < steps:
            out[t, e] = 1
            t += np.random.geometric(q)  # noqa: NPY002


def bernoulli_trains(
    prob: torch.Tensor, steps: int, generator: torch.Generator | None
) -> torch.Tensor:
    """Boolean spike trains ``[steps, *prob.shape]`` (CPU): each element fires with probability
    ``prob`` per step. The numba generator is seeded from one draw of ``generator`` (torch's
    default generator when ``None``), so a seeded ``generator`` gives reproducible trains."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    flat = prob.detach().reshape(-1).to(torch.float64).contiguous()
    out = torch.zeros(steps, flat.numel(), dtype=torch.bool)
    _bernoulli_trains(flat.numpy(), int(steps), seed, out.view(torch.uint8).numpy())
    return out.view(steps, *prob.shape)


@njit(**_OPTIONS)
def _regular_trains(prob, phase, steps, start, out):  # type: ignore[no-untyped-def]
    """``out[t, e] = 1`` where ``floor(phase + (start + t + 1) p)`` exceeds
    ``floor(phase + (start + t) p)``: the arithmetic of
    :func:`neurosim.plasticity.regular_spikes` in the arrays' dtype, element by element."""
    for e in range(prob.shape[0]):
        q = prob[e]
        ph = phase[e]
        before = np.floor(ph + prob.dtype.type(start) * q)
        for t in range(steps):
            after = np.floor(ph + prob.dtype.type(start + t + 1) * q)
            if after - before > 0:
                out[t, e] = 1
            before = after


def regular_trains(
    prob: torch.Tensor, phase: torch.Tensor, steps: int, start: int = 0
) -> torch.Tensor:
    """Boolean regular spike trains ``[steps, *prob.shape]`` (CPU), the same spikes as
    :func:`neurosim.plasticity.regular_spikes` computes with tensor operations."""
    flat = prob.detach().reshape(-1).contiguous()
    ph = phase.detach().to(flat.dtype).reshape(-1).contiguous()
    out = torch.zeros(steps, flat.numel(), dtype=torch.bool)
    _regular_trains(flat.numpy(), ph.numpy(), int(steps), int(start), out.view(torch.uint8).numpy())
    return out.view(steps, *prob.shape)
