"""numba kernels for the ``lif_scan`` operation on the CPU (:mod:`neurosim.functional.lif`).

Imported lazily by the registry (never by ``import neurosim``). The neurons of the flattened
per-step shape ``[B * F]`` are split into blocks of :data:`BLOCK`; the blocks run in parallel
(numba ``prange``, as many threads as torch uses) and each walks time with its membranes in a
small buffer that stays in the L1 cache, so the forward is one pass over the input and the
outputs, and the backward one reverse pass with the surrogate evaluated once per element.
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

import numba
import numpy as np
import torch
from numba import njit, prange

from neurosim.functional.common import RESETS, compute_dtype
from neurosim.functional.surrogate import SURROGATES

BLOCK = 512
_OPTIONS: dict[str, Any] = dict(
    parallel=True, cache=True, nogil=True, error_model="numpy", boundscheck=False
)


@njit(inline="always", cache=True, error_model="numpy")
def _surrogate(u: Any, code: int, slope: Any, c: Any, one: Any) -> Any:
    """The surrogate derivative (``c = pi / 2 * slope``, rounded once, as torch does)."""
    if code == 0:
        z = c * u
        return (slope / (one + one)) / (one + z * z)
    if code == 1:
        a = slope * abs(u) + one
        return one / (a * a)
    if code == 2:
        sig = one / (one + np.exp(-slope * u))
        return slope * sig * (one - sig)
    return one


@njit(**_OPTIONS)
def _forward(x, v0, beta, theta, s_out, v_out, h_out, reset, delayed, pending, store_h):  # type: ignore[no-untyped-def]
    steps, n = x.shape
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    for block in prange((n + BLOCK - 1) // BLOCK):
        lo = block * BLOCK
        hi = min(n, lo + BLOCK)
        v = v0[lo:hi].copy()
        r = np.empty(hi - lo, dtype=np.bool_)
        for j in range(hi - lo):
            r[j] = v[j] - theta[lo + j] > zero
        for t in range(steps):
            for j in range(hi - lo):
                i = lo + j
                b = beta[i]
                th = theta[i]
                vv = v[j]
                xt = x[t, i]
                if delayed:
                    if reset == 1:
                        h = xt if r[j] else b * vv + xt
                    else:
                        h = b * vv + xt
                        if reset == 0 and r[j]:
                            h = h - th
                    fire = h - th > zero
                    s_out[t, i] = one if fire else zero
                    v_out[t, i] = h
                    v[j] = h
                    r[j] = fire
                else:
                    h = b * vv + xt
                    pend = False
                    if pending:
                        pend = vv - th > zero
                        if pend:
                            h = h - th
                    fire = h - th > zero
                    if reset == 0:
                        if fire and not pend:
                            nv = h - th
                        elif pend and not fire:
                            nv = h + th
                        else:
                            nv = h
                    elif reset == 1:
                        nv = zero if fire else h
                    else:
                        nv = h
                    s_out[t, i] = one if fire else zero
                    v_out[t, i] = nv
                    if store_h:
                        h_out[t, i] = h
                    v[j] = nv


@njit(**_OPTIONS)
def _backward(  # type: ignore[no-untyped-def]
    gs, gs_mode, gv, gv_mode, h, s, v, v0, beta, theta, reset, delayed, detach, pending,
    surrogate, slope, gx, gv0, gbeta, gtheta,
):  # fmt: skip
    steps, n = s.shape
    zero = s.dtype.type(0.0)
    one = s.dtype.type(1.0)
    k = s.dtype.type(slope)
    c = s.dtype.type(np.pi / 2.0 * slope)
    for block in prange((n + BLOCK - 1) // BLOCK):
        lo = block * BLOCK
        hi = min(n, lo + BLOCK)
        m = hi - lo
        carry = np.zeros(m, dtype=s.dtype)
        db = np.zeros(m, dtype=s.dtype)
        dth = np.zeros(m, dtype=s.dtype)
        for t in range(steps - 1, -1, -1):
            for j in range(m):
                i = lo + j
                b = beta[i]
                th = theta[i]
                g = carry[j]
                if gv_mode == 1:
                    g = g + gv[t, i]
                elif gv_mode == 2:
                    g = g + gv[0, 0]
                gst = zero
                if gs_mode == 1:
                    gst = gs[t, i]
                elif gs_mode == 2:
                    gst = gs[0, 0]
                vp = v[t - 1, i] if t > 0 else v0[i]
                if delayed:
                    hh = v[t, i]
                    sg = _surrogate(hh - th, surrogate, k, c, one)
                    d = g + gst * sg
                    dt = -gst * sg
                    rp = s[t - 1, i] > zero if t > 0 else vp - th > zero
                    if reset == 0 and rp:
                        dt = dt - d  # dtheta -= d * r with r = 1
                    if reset == 1 and rp:
                        carry[j] = zero
                    else:
                        db[j] += d * vp
                        carry[j] = d * b
                    gx[t, i] = d
                else:
                    hh = h[t, i]
                    sv = s[t, i]
                    sg = _surrogate(hh - th, surrogate, k, c, one)
                    if reset == 0:
                        gs_tot = gst if detach else gst - g * th
                        dh = g + gs_tot * sg
                        dt = -g * sv - gs_tot * sg
                        if pending and vp - th > zero:
                            dt = dt - gs_tot * sg
                    elif reset == 1:
                        gs_tot = gst if detach else gst - g * hh
                        dh = g * (one - sv) + gs_tot * sg
                        dt = -gs_tot * sg
                    else:
                        dh = g + gst * sg
                        dt = -gst * sg
                    db[j] += dh * vp
                    carry[j] = dh * b
                    gx[t, i] = dh
                dth[j] += dt
        for j in range(m):
            gv0[lo + j] = carry[j]
            gbeta[lo + j] = db[j]
            gtheta[lo + j] = dth[j]


def _threads() -> None:
    limit = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    numba.set_num_threads(max(1, min(torch.get_num_threads(), limit)))


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
        spikes = torch.empty(steps, n, dtype=cd)
        mems = torch.empty(steps, n, dtype=cd)
        store_h = not delayed and any(ctx.needs_input_grad[:4])
        hs = torch.empty(steps, n, dtype=cd) if store_h else torch.empty(1, 1, dtype=cd)
        _threads()
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
        gx = torch.empty(steps, n, dtype=cd)
        gv0, gb, gth = (torch.empty(n, dtype=cd) for _ in range(3))
        _threads()
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
