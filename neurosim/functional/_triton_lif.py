# mypy: disable-error-code="no-untyped-def"
"""Triton kernels for the ``lif_scan`` operation (:mod:`neurosim.functional.lif`).

Imported lazily by the registry (never by ``import neurosim``). Each program owns ``BLOCK``
neurons of the flattened per-step shape ``[B * F]`` and walks time sequentially, keeping the
membrane in fp32 registers (fp64 for fp64 storage) whatever the storage dtype. The forward stores
spikes, the membrane and (immediate reset only) the pre-reset membrane ``h``; the backward walks
time in reverse, rebuilds ``v_{t-1}`` from the saved ``h``/spikes and applies the surrogate
derivative, accumulating the per-neuron gradients of ``beta`` and ``threshold`` in registers.
The maths are those of :func:`neurosim.functional.lif.lif_forward_step` and
:func:`neurosim.functional.lif.lif_backward_step`.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from neurosim.functional.common import RESETS, compute_dtype
from neurosim.functional.surrogate import SURROGATES

BLOCK = 128


def _acc(dtype: torch.dtype) -> Any:
    """Accumulate in fp64 for fp64 storage, fp32 otherwise."""
    return tl.float64 if dtype == torch.float64 else tl.float32


@triton.jit
def _lif_fwd(
    x_ptr,
    v0_ptr,
    b_ptr,
    th_ptr,
    s_ptr,
    v_ptr,
    h_ptr,
    T,
    N,
    RESET: tl.constexpr,
    DELAYED: tl.constexpr,
    PENDING: tl.constexpr,
    STORE_H: tl.constexpr,
    BLOCK_N: tl.constexpr,
    ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = offs < N
    b = tl.load(b_ptr + offs, mask=mask, other=0.0).to(ACC)
    th = tl.load(th_ptr + offs, mask=mask, other=1.0).to(ACC)
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(ACC)
    r = (v - th > 0).to(ACC)
    for t in range(T):
        x = tl.load(x_ptr + t * N + offs, mask=mask, other=0.0).to(ACC)
        if DELAYED:
            if RESET == 0:
                h = b * v + x - th * r
            elif RESET == 1:
                h = b * ((1.0 - r) * v) + x
            else:
                h = b * v + x
            s = (h - th > 0).to(ACC)
            v = h
        else:
            h = b * v + x
            if PENDING:
                r = (v - th > 0).to(ACC)
                h = h - th * r
            s = (h - th > 0).to(ACC)
            if RESET == 0:
                if PENDING:
                    v = h - th * (s - r)
                else:
                    v = h - th * s
            elif RESET == 1:
                v = h * (1.0 - s)
            else:
                v = h
        tl.store(s_ptr + t * N + offs, s.to(s_ptr.dtype.element_ty), mask=mask)
        tl.store(v_ptr + t * N + offs, v.to(v_ptr.dtype.element_ty), mask=mask)
        if STORE_H:
            tl.store(h_ptr + t * N + offs, h.to(h_ptr.dtype.element_ty), mask=mask)
        r = s


@triton.jit
def _surrogate(u, SURR: tl.constexpr, slope):
    if SURR == 0:
        z = 1.5707963267948966 * slope * u  # pi / 2 (jit code reads no plain globals)
        g = (slope * 0.5) / (1.0 + z * z)
    elif SURR == 1:
        a = slope * tl.abs(u) + 1.0
        g = 1.0 / (a * a)
    elif SURR == 2:
        sig = 1.0 / (1.0 + tl.exp(-slope * u))
        g = slope * sig * (1.0 - sig)
    else:
        g = u * 0.0 + 1.0
    return g


@triton.jit
def _lif_bwd(
    gs_ptr,
    gv_ptr,
    h_ptr,
    s_ptr,
    v_ptr,
    v0_ptr,
    b_ptr,
    th_ptr,
    gx_ptr,
    gv0_ptr,
    gb_ptr,
    gth_ptr,
    slope,
    T,
    N,
    RESET: tl.constexpr,
    DELAYED: tl.constexpr,
    PENDING: tl.constexpr,
    DETACH: tl.constexpr,
    SURR: tl.constexpr,
    BLOCK_N: tl.constexpr,
    ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = offs < N
    b = tl.load(b_ptr + offs, mask=mask, other=0.0).to(ACC)
    th = tl.load(th_ptr + offs, mask=mask, other=1.0).to(ACC)
    v0 = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(ACC)
    r0 = (v0 - th > 0).to(ACC)
    carry = tl.zeros([BLOCK_N], dtype=ACC)
    db = tl.zeros([BLOCK_N], dtype=ACC)
    dth = tl.zeros([BLOCK_N], dtype=ACC)
    for i in range(T):
        t = T - 1 - i
        h = tl.load(h_ptr + t * N + offs, mask=mask, other=0.0).to(ACC)
        s = tl.load(s_ptr + t * N + offs, mask=mask, other=0.0).to(ACC)
        gs = tl.load(gs_ptr + t * N + offs, mask=mask, other=0.0).to(ACC)
        gv = tl.load(gv_ptr + t * N + offs, mask=mask, other=0.0).to(ACC)
        tp = tl.maximum(t - 1, 0)
        hp = tl.load(h_ptr + tp * N + offs, mask=mask, other=0.0).to(ACC)
        sp = tl.load(s_ptr + tp * N + offs, mask=mask, other=0.0).to(ACC)
        if DELAYED:
            vp = hp
        elif PENDING:
            vp = tl.load(v_ptr + tp * N + offs, mask=mask, other=0.0).to(ACC)
        else:
            if RESET == 0:
                vp = hp - th * sp
            elif RESET == 1:
                vp = hp * (1.0 - sp)
            else:
                vp = hp
        first = t == 0
        v_prev = tl.where(first, v0, vp)
        r = tl.where(first, r0, sp)
        sg = _surrogate(h - th, SURR, slope)
        if DELAYED:
            d = gv + carry + gs * sg
            dth_t = -gs * sg
            if RESET == 0:
                dth_t = dth_t - d * r
            if RESET == 1:
                keep = 1.0 - r
                db += d * keep * v_prev
                carry = d * b * keep
            else:
                db += d * v_prev
                carry = d * b
            dx = d
        else:
            g = gv + carry
            if RESET == 0:
                if DETACH:
                    gst = gs
                else:
                    gst = gs - g * th
                dx = g + gst * sg
                dth_t = -g * s - gst * sg
                if PENDING:
                    dth_t = dth_t - gst * sg * (v_prev - th > 0).to(ACC)
            elif RESET == 1:
                if DETACH:
                    gst = gs
                else:
                    gst = gs - g * h
                dx = g * (1.0 - s) + gst * sg
                dth_t = -gst * sg
            else:
                dx = g + gs * sg
                dth_t = -gs * sg
            db += dx * v_prev
            carry = dx * b
        dth += dth_t
        tl.store(gx_ptr + t * N + offs, dx.to(gx_ptr.dtype.element_ty), mask=mask)
    tl.store(gv0_ptr + offs, carry, mask=mask)
    tl.store(gb_ptr + offs, db, mask=mask)
    tl.store(gth_ptr + offs, dth, mask=mask)


class _LIFScanTriton(torch.autograd.Function):
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
        pending: bool,
        surrogate: str,
        slope: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        steps = x.shape[0]
        shape = x.shape[1:]
        feat = x[0].numel()
        xf = x.contiguous().view(steps, feat)
        cd = compute_dtype(x.dtype)  # parameters and the initial state stay fp32 for bf16 input
        b = beta.to(cd).expand(shape).contiguous().view(feat)
        th = theta.to(cd).expand(shape).contiguous().view(feat)
        v0f = v0.to(cd).contiguous().view(feat)
        spikes = torch.empty_like(xf)
        mems = torch.empty_like(xf)
        # the pre-reset membrane is only needed by the backward (and equals v when delayed)
        store_h = not delayed and any(ctx.needs_input_grad[:4])
        hs = torch.empty_like(xf) if store_h else mems
        grid = (triton.cdiv(feat, BLOCK),)
        _lif_fwd[grid](
            xf, v0f, b, th, spikes, mems, hs, steps, feat,
            RESET=RESETS.index(reset), DELAYED=bool(delayed), PENDING=bool(pending), STORE_H=store_h,
            BLOCK_N=BLOCK, ACC=_acc(x.dtype),
        )  # fmt: skip
        ctx.save_for_backward(hs, spikes, mems, v0f, b, th)
        ctx.meta = (x.shape, v0.dtype, beta.shape, beta.dtype, theta.shape, theta.dtype)
        ctx.options = (reset, bool(delayed), bool(pending), bool(detach_reset), surrogate,
                       float(slope))  # fmt: skip
        return spikes.view(x.shape), mems.view(x.shape)

    @staticmethod
    def backward(ctx: Any, gs: torch.Tensor, gv: torch.Tensor) -> tuple[Any, ...]:
        hs, spikes, mems, v0f, b, th = ctx.saved_tensors
        x_shape, v0_dtype, beta_shape, beta_dtype, theta_shape, theta_dtype = ctx.meta
        reset, delayed, pending, detach_reset, surrogate, slope = ctx.options
        steps, feat = hs.shape
        gsf = gs.contiguous().view(steps, feat)
        gvf = gv.contiguous().view(steps, feat)
        acc = torch.float64 if hs.dtype == torch.float64 else torch.float32
        gx = torch.empty_like(hs)
        gv0 = torch.empty(feat, device=hs.device, dtype=acc)
        gb = torch.empty(feat, device=hs.device, dtype=acc)
        gth = torch.empty(feat, device=hs.device, dtype=acc)
        grid = (triton.cdiv(feat, BLOCK),)
        _lif_bwd[grid](
            gsf, gvf, hs, spikes, mems, v0f, b, th, gx, gv0, gb, gth, slope, steps, feat,
            RESET=RESETS.index(reset), DELAYED=delayed, PENDING=pending, DETACH=detach_reset,
            SURR=SURROGATES.index(surrogate), BLOCK_N=BLOCK, ACC=_acc(hs.dtype),
        )  # fmt: skip
        step_shape = x_shape[1:]
        g_beta = gb.view(step_shape).sum_to_size(beta_shape).to(beta_dtype)
        g_theta = gth.view(step_shape).sum_to_size(theta_shape).to(theta_dtype)
        return (
            gx.view(x_shape),
            gv0.view(step_shape).to(v0_dtype),
            g_beta if ctx.needs_input_grad[2] else None,
            g_theta if ctx.needs_input_grad[3] else None,
            None,
            None,
            None,
            None,
            None,
            None,
        )


def lif_scan_triton(
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
    """Triton implementation of ``lif_scan``; same contract as the reference."""
    out: tuple[torch.Tensor, torch.Tensor] = _LIFScanTriton.apply(
        x, v0, beta, threshold, reset, delayed_reset, detach_reset, pending_reset, surrogate,
        float(slope),
    )  # fmt: skip
    return out
