"""numba kernels for the ``lif_scan`` operation on the CPU (:mod:`neurosim.functional.lif`).

Imported lazily by the registry (never by ``import neurosim``). The forward splits the neurons
of the flattened per-step shape ``[B * F]`` into blocks of :data:`BLOCK`; each block walks time
with its membranes in a small buffer that stays in the L1 cache (one pass over the input and the
outputs). The backward walks time in reverse over whole rows, with the surrogate evaluated once
per element. The loops over neurons are branch-free and touch few arrays, so LLVM vectorises
them. The kernels run on one
thread: numba's parallel regions start their own OpenMP thread pool beside torch's, and on a
busy 2-core machine the two pools' spin-waiting cost tens of milliseconds per call (measured),
far more than a second thread saves on a scan that is a tenth of the layer's matmul.
Without autograd there is no per-step graph; the maths are those of
:func:`~neurosim.functional.lif.lif_forward_step` and
:func:`~neurosim.functional.lif.lif_backward_step`.

The forward does the same floating-point operations in the same order as the reference
(``beta * v + x``, then ``- theta``; no fused multiply-add: numba compiles without fast-math), so
spikes and membranes are bitwise those of the ``torch`` backend. bf16/fp16 inputs are integrated
in fp32 (converted on the way in and out). The first call of each dtype compiles (a few seconds);
numba caches the machine code on disk for later processes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numba import njit

from neurosim.backend import memory
from neurosim.functional.common import RESETS, compute_dtype
from neurosim.functional.surrogate import SURROGATES

BLOCK = 512
_OPTIONS: dict[str, Any] = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)


@njit(**_OPTIONS)
def _forward(x, v0, beta, theta, s_out, v_out, h_out, reset, delayed, pending, store_h):  # type: ignore[no-untyped-def]
    """Forward over ``x [T, N]``; every inner loop is branch-free over the neurons (selects and
    the reference's arithmetic with 0/1 flags, exact in floating point), so it vectorises."""
    steps, n = x.shape
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    f_sub = one if reset == 0 else zero
    f_zero = one if reset == 1 else zero
    f_pend = one if pending else zero
    scratch = np.empty(n, dtype=x.dtype)
    for block in range((n + BLOCK - 1) // BLOCK):
        lo = block * BLOCK
        hi = min(n, lo + BLOCK)
        v = v0[lo:hi].copy()
        r = np.empty(hi - lo, dtype=x.dtype)
        for j in range(hi - lo):
            r[j] = one if v[j] - theta[lo + j] > zero else zero
        for t in range(steps):
            xt = x[t]
            st = s_out[t]
            vt = v_out[t]
            ht = h_out[t] if store_h else scratch
            if delayed:
                # beta ((1 - R) v) + x - theta R with R applied for the zero / subtract reset
                for j in range(hi - lo):
                    i = lo + j
                    th = theta[i]
                    h = beta[i] * ((one - f_zero * r[j]) * v[j]) + xt[i] - th * (f_sub * r[j])
                    sp = one if h - th > zero else zero
                    st[i] = sp
                    vt[i] = h
                    v[j] = h
                    r[j] = sp
            elif reset == 0:
                for j in range(hi - lo):
                    i = lo + j
                    th = theta[i]
                    vv = v[j]
                    rp = f_pend * (one if vv - th > zero else zero)
                    h = beta[i] * vv + xt[i] - th * rp
                    sp = one if h - th > zero else zero
                    nv = h - th * (sp - rp)
                    st[i] = sp
                    vt[i] = nv
                    ht[i] = h
                    v[j] = nv
            elif reset == 1:
                for j in range(hi - lo):
                    i = lo + j
                    h = beta[i] * v[j] + xt[i]
                    sp = one if h - theta[i] > zero else zero
                    nv = h * (one - sp)
                    st[i] = sp
                    vt[i] = nv
                    ht[i] = h
                    v[j] = nv
            else:
                for j in range(hi - lo):
                    i = lo + j
                    h = beta[i] * v[j] + xt[i]
                    st[i] = one if h - theta[i] > zero else zero
                    vt[i] = h
                    ht[i] = h
                    v[j] = h


@njit(**_OPTIONS)
def _backward(  # type: ignore[no-untyped-def]
    gs, gs_mode, gv, gv_mode, h, s, v, v0, beta, theta, reset, delayed, detach, pending,
    surrogate, slope, gx, gv0, gbeta, gtheta,
):  # fmt: skip
    """Reverse pass, blocked like the forward: each block of :data:`BLOCK` neurons walks time
    backwards with its carried gradient and its temporaries in the L1 cache (one pass over the
    saved rows and the input gradient). Per step a few short loops, each over at most five
    arrays so that LLVM vectorises it (a single fused loop over a dozen arrays is not
    vectorised: alias checks), with the surrogate evaluated once per element. The maths are those
    of ``lif_backward_step``; ``carry`` is the gradient reaching ``v_t`` from step ``t + 1``."""
    steps, n = s.shape
    zero = s.dtype.type(0.0)
    one = s.dtype.type(1.0)
    k = s.dtype.type(slope)
    c = s.dtype.type(np.pi / 2.0 * slope)
    half_k = k / (one + one)
    kg = zero if detach else one
    f_pend = one if pending else zero
    f_sub = one if reset == 0 else zero
    f_zero = one if reset == 1 else zero
    carry = np.empty(BLOCK, s.dtype)
    sg = np.empty(BLOCK, s.dtype)
    coef = np.empty(BLOCK, s.dtype)
    gsr = np.empty(BLOCK, s.dtype)
    gb = np.empty(BLOCK, s.dtype)
    gt = np.empty(BLOCK, s.dtype)
    gs_c = gs[0, 0] if gs_mode == 2 else zero
    gv_c = gv[0, 0] if gv_mode == 2 else zero
    for block in range((n + BLOCK - 1) // BLOCK):
        lo = block * BLOCK
        hi = min(n, lo + BLOCK)
        m = hi - lo
        th = theta[lo:hi]
        be = beta[lo:hi]
        for j in range(m):
            carry[j] = zero
            gb[j] = zero
            gt[j] = zero
        for t in range(steps - 1, -1, -1):
            hh = v[t, lo:hi] if delayed else h[t, lo:hi]
            vp = v[t - 1, lo:hi] if t > 0 else v0[lo:hi]
            gxt = gx[t, lo:hi]
            # 1. surrogate row
            if surrogate == 0:
                for j in range(m):
                    z = c * (hh[j] - th[j])
                    sg[j] = half_k / (one + z * z)
            elif surrogate == 1:
                for j in range(m):
                    a = k * abs(hh[j] - th[j]) + one
                    sg[j] = one / (a * a)
            elif surrogate == 2:
                for j in range(m):
                    e = one / (one + np.exp(-k * (hh[j] - th[j])))
                    sg[j] = k * e * (one - e)
            else:
                for j in range(m):
                    sg[j] = one
            # 2. gs * sg (the spike's gradient through the surrogate)
            if gs_mode == 1:
                gst = gs[t, lo:hi]
                for j in range(m):
                    gsr[j] = gst[j] * sg[j]
            else:
                for j in range(m):
                    gsr[j] = gs_c * sg[j]
            # 3. total membrane gradient g = gv + carry (in place in carry)
            if gv_mode == 1:
                gvt = gv[t, lo:hi]
                for j in range(m):
                    carry[j] += gvt[j]
            elif gv_mode == 2:
                for j in range(m):
                    carry[j] += gv_c
            if delayed:
                # d = g + gs sg; dtheta -= gs sg + [sub] d r; dbeta += d keep v_prev; carry = d beta keep
                for j in range(m):
                    d = carry[j] + gsr[j]
                    gxt[j] = d
                    r = one if vp[j] - th[j] > zero else zero  # the spike of step t - 1
                    gt[j] -= gsr[j] + f_sub * d * r
                    keep = one - f_zero * r
                    gb[j] += d * keep * vp[j]
                    carry[j] = d * be[j] * keep
            else:
                if reset == 0:
                    # gs_tot = gs - kg g theta; dh = g + gs_tot sg; dtheta = -g s - gs_tot sg (1 + pend)
                    for j in range(m):
                        coef[j] = f_pend * (one if vp[j] - th[j] > zero else zero)
                    for j in range(m):
                        sp = one if hh[j] - th[j] > zero else zero
                        gt[j] -= carry[j] * sp + (gsr[j] - kg * carry[j] * th[j] * sg[j]) * (
                            one + coef[j]
                        )
                    for j in range(m):
                        gxt[j] = carry[j] + gsr[j] - kg * carry[j] * th[j] * sg[j]
                elif reset == 1:
                    for j in range(m):
                        coef[j] = gsr[j] - kg * carry[j] * hh[j] * sg[j]
                    for j in range(m):
                        gt[j] -= coef[j]
                    for j in range(m):
                        keep = zero if hh[j] - th[j] > zero else one
                        gxt[j] = carry[j] * keep + coef[j]
                else:
                    for j in range(m):
                        gt[j] -= gsr[j]
                    for j in range(m):
                        gxt[j] = carry[j] + gsr[j]
                for j in range(m):
                    gb[j] += gxt[j] * vp[j]
                for j in range(m):
                    carry[j] = gxt[j] * be[j]
        for j in range(m):
            gv0[lo + j] = carry[j]
            gbeta[lo + j] = gb[j]
            gtheta[lo + j] = gt[j]


def _grad_array(g: torch.Tensor | None, steps: int, n: int, dtype: torch.dtype) -> tuple[Any, int]:
    """``(array, mode)``: mode 0 no gradient, 1 a full ``[T, N]`` array, 2 one broadcast value
    (e.g. the gradient of ``spikes.sum()``, which autograd passes as an expanded scalar)."""
    if g is None:
        return np.zeros((1, 1), dtype=np.float64 if dtype == torch.float64 else np.float32), 0
    flat = g.reshape(steps, n)
    if steps and n and flat.stride() == (0, 0):
        return flat[:1, :1].to(dtype).contiguous().numpy(), 2
    return flat.to(dtype).contiguous().numpy(), 1


class _LIFScanNumba(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        v0: torch.Tensor,
        beta: torch.Tensor,
        theta: torch.Tensor,
        reset: str,
        delayed: bool,
        detach: bool,
        pending: bool,
        surrogate: str,
        slope: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.set_materialize_grads(False)
        steps, shape = x.shape[0], x.shape[1:]
        n = shape.numel()
        cd = compute_dtype(x.dtype)
        xf = x.detach().to(cd).contiguous().view(steps, n)
        v0f = v0.detach().to(cd).expand(shape).contiguous().view(n)
        b = beta.detach().to(cd).expand(shape).contiguous().view(n)
        th = theta.detach().to(cd).expand(shape).contiguous().view(n)
        # written once: huge pages (neurosim.backend.memory) spare most first-touch page faults
        spikes = memory.empty((steps, n), cd)
        mems = memory.empty((steps, n), cd)
        store_h = not delayed and any(ctx.needs_input_grad[:4])
        hs = memory.empty((steps, n), cd) if store_h else torch.empty(1, 1, dtype=cd)
        _forward(xf.numpy(), v0f.numpy(), b.numpy(), th.numpy(), spikes.numpy(), mems.numpy(),
                 hs.numpy(), RESETS.index(reset), bool(delayed), bool(pending), store_h)  # fmt: skip
        ctx.save_for_backward(hs, spikes, mems, v0f, b, th)
        ctx.meta = (x.shape, x.dtype, v0.dtype, beta.shape, beta.dtype, theta.shape, theta.dtype)
        ctx.options = (RESETS.index(reset), bool(delayed), bool(detach), bool(pending),
                       SURROGATES.index(surrogate), float(slope))  # fmt: skip
        return spikes.view(x.shape).to(x.dtype), mems.view(x.shape).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, gs: torch.Tensor | None, gv: torch.Tensor | None) -> tuple[Any, ...]:
        hs, spikes, mems, v0f, b, th = ctx.saved_tensors
        x_shape, x_dtype, v0_dtype, beta_shape, beta_dtype, theta_shape, theta_dtype = ctx.meta
        steps, n = spikes.shape
        cd = spikes.dtype
        gs_arr, gs_mode = _grad_array(gs, steps, n, cd)
        gv_arr, gv_mode = _grad_array(gv, steps, n, cd)
        gx = memory.empty((steps, n), cd)
        gv0, gb, gth = (torch.empty(n, dtype=cd) for _ in range(3))
        _backward(gs_arr, gs_mode, gv_arr, gv_mode, hs.numpy(), spikes.numpy(), mems.numpy(),
                  v0f.numpy(), b.numpy(), th.numpy(), *ctx.options, gx.numpy(), gv0.numpy(),
                  gb.numpy(), gth.numpy())  # fmt: skip
        step_shape = x_shape[1:]
        needs = ctx.needs_input_grad
        return (
            gx.view(x_shape).to(x_dtype) if needs[0] else None,
            gv0.view(step_shape).to(v0_dtype) if needs[1] else None,
            gb.view(step_shape).sum_to_size(beta_shape).to(beta_dtype) if needs[2] else None,
            gth.view(step_shape).sum_to_size(theta_shape).to(theta_dtype) if needs[3] else None,
            None, None, None, None, None, None,
        )  # fmt: skip


def lif_scan_numba(
    x: torch.Tensor,
    v0: torch.Tensor,
    beta: torch.Tensor,
    threshold: torch.Tensor,
    reset: str = "subtract",
    delayed_reset: bool = False,
    detach_reset: bool = False,
    pending_reset: bool = False,
    surrogate: str = "arctan",
    slope: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """numba implementation of ``lif_scan`` (CPU tensors); same contract as the reference."""
    out: tuple[torch.Tensor, torch.Tensor] = _LIFScanNumba.apply(
        x, v0, beta, threshold, reset, bool(delayed_reset), bool(detach_reset),
        bool(pending_reset), surrogate, float(slope),
    )  # fmt: skip
    return out
