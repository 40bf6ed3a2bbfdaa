# mypy: disable-error-code="no-untyped-def"
"""Triton kernels for the ``alif_scan`` operation (:mod:`neurosim.functional.alif`).

Imported lazily by the registry. As the LIF kernels (:mod:`neurosim.functional._triton_lif`):
each program owns ``BLOCK`` neurons of the flattened per-step shape and walks time, with the
membrane ``v`` and adaptation ``a`` in fp32 registers (fp64 for fp64 storage). The forward stores
spikes, ``v``, ``a`` and the pre-reset membrane ``h``; the backward walks time in reverse with the
two adjoints (membrane and adaptation), following :func:`~neurosim.functional.alif.
alif_backward_step`.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from neurosim.functional._triton_lif import _acc, _surrogate
from neurosim.functional.common import RESETS, compute_dtype
from neurosim.functional.surrogate import SURROGATES

BLOCK = 128


@triton.jit
def _alif_fwd(
    x_ptr, v0_ptr, a0_ptr, b_ptr, th_ptr, rho_ptr, k_ptr, s_ptr, v_ptr, a_ptr, h_ptr, T, N,
    RESET: tl.constexpr, BLOCK_N: tl.constexpr, ACC: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    offs = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = offs < N
    b = tl.load(b_ptr + offs, mask=mask, other=0.0).to(ACC)
    th0 = tl.load(th_ptr + offs, mask=mask, other=1.0).to(ACC)
    rho = tl.load(rho_ptr + offs, mask=mask, other=0.0).to(ACC)
    k = tl.load(k_ptr + offs, mask=mask, other=0.0).to(ACC)
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(ACC)
    a = tl.load(a0_ptr + offs, mask=mask, other=0.0).to(ACC)
    for t in range(T):
        x = tl.load(x_ptr + t * N + offs, mask=mask, other=0.0).to(ACC)
        h = b * v + x
        th = th0 + k * a
        s = (h - th > 0).to(ACC)
        if RESET == 0:
            v = h - th * s
        elif RESET == 1:
            v = h * (1.0 - s)
        else:
            v = h
        a = rho * a + s
        tl.store(s_ptr + t * N + offs, s.to(s_ptr.dtype.element_ty), mask=mask)
        tl.store(v_ptr + t * N + offs, v.to(v_ptr.dtype.element_ty), mask=mask)
        tl.store(a_ptr + t * N + offs, a.to(a_ptr.dtype.element_ty), mask=mask)
        tl.store(h_ptr + t * N + offs, h.to(h_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _alif_bwd(
    gs_ptr, gv_ptr, ga_ptr, h_ptr, s_ptr, v_ptr, a_ptr, v0_ptr, a0_ptr, b_ptr, th_ptr, rho_ptr,
    k_ptr, gx_ptr, gv0_ptr, ga0_ptr, gb_ptr, gth_ptr, grho_ptr, gk_ptr, slope, T, N,
    RESET: tl.constexpr, DETACH: tl.constexpr, SURR: tl.constexpr, BLOCK_N: tl.constexpr,
    ACC: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    offs = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = offs < N
    b = tl.load(b_ptr + offs, mask=mask, other=0.0).to(ACC)
    th0 = tl.load(th_ptr + offs, mask=mask, other=1.0).to(ACC)
    rho = tl.load(rho_ptr + offs, mask=mask, other=0.0).to(ACC)
    k = tl.load(k_ptr + offs, mask=mask, other=0.0).to(ACC)
    v0 = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(ACC)
    a0 = tl.load(a0_ptr + offs, mask=mask, other=0.0).to(ACC)
    carry_v = tl.zeros([BLOCK_N], dtype=ACC)
    carry_a = tl.zeros([BLOCK_N], dtype=ACC)
    db = tl.zeros([BLOCK_N], dtype=ACC)
    dth0 = tl.zeros([BLOCK_N], dtype=ACC)
    drho = tl.zeros([BLOCK_N], dtype=ACC)
    dk = tl.zeros([BLOCK_N], dtype=ACC)
    for i in range(T):
        t = T - 1 - i
        h = tl.load(h_ptr + t * N + offs, mask=mask, other=0.0).to(ACC)
        s = tl.load(s_ptr + t * N + offs, mask=mask, other=0.0).to(ACC)
        gs = tl.load(gs_ptr + t * N + offs, mask=mask, other=0.0).to(ACC)
        gv = tl.load(gv_ptr + t * N + offs, mask=mask, other=0.0).to(ACC)
        ga = tl.load(ga_ptr + t * N + offs, mask=mask, other=0.0).to(ACC)
        tp = tl.maximum(t - 1, 0)
        vp = tl.load(v_ptr + tp * N + offs, mask=mask, other=0.0).to(ACC)
        ap = tl.load(a_ptr + tp * N + offs, mask=mask, other=0.0).to(ACC)
        first = t == 0
        v_prev = tl.where(first, v0, vp)
        a_prev = tl.where(first, a0, ap)
        th = th0 + k * a_prev
        sg = _surrogate(h - th, SURR, slope)
        g_v = gv + carry_v
        g_a = ga + carry_a
        if RESET == 0:
            if DETACH:
                gst = gs + g_a
            else:
                gst = gs + g_a - g_v * th
            dh = g_v + gst * sg
            dth = -g_v * s - gst * sg
        elif RESET == 1:
            if DETACH:
                gst = gs + g_a
            else:
                gst = gs + g_a - g_v * h
            dh = g_v * (1.0 - s) + gst * sg
            dth = -gst * sg
        else:
            gst = gs + g_a
            dh = g_v + gst * sg
            dth = -gst * sg
        tl.store(gx_ptr + t * N + offs, dh.to(gx_ptr.dtype.element_ty), mask=mask)
        carry_v = dh * b
        carry_a = g_a * rho + dth * k
        db += dh * v_prev
        dth0 += dth
        drho += g_a * a_prev
        dk += dth * a_prev
    tl.store(gv0_ptr + offs, carry_v, mask=mask)
    tl.store(ga0_ptr + offs, carry_a, mask=mask)
    tl.store(gb_ptr + offs, db, mask=mask)
    tl.store(gth_ptr + offs, dth0, mask=mask)
    tl.store(grho_ptr + offs, drho, mask=mask)
    tl.store(gk_ptr + offs, dk, mask=mask)


class _ALIFScanTriton(torch.autograd.Function):
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
        steps, shape, feat = x.shape[0], x.shape[1:], x[0].numel()
        cd = compute_dtype(x.dtype)
        xf = x.contiguous().view(steps, feat)
        flat = [
            p.to(cd).expand(shape).contiguous().view(feat)
            for p in (v0, a0, beta, theta0, rho, kappa)
        ]
        spikes, mems, adapt, hs = (torch.empty_like(xf) for _ in range(4))
        grid = (triton.cdiv(feat, BLOCK),)
        _alif_fwd[grid](
            xf, *flat, spikes, mems, adapt, hs, steps, feat,
            RESET=RESETS.index(reset), BLOCK_N=BLOCK, ACC=_acc(x.dtype),
        )  # fmt: skip
        ctx.save_for_backward(hs, spikes, mems, adapt, *flat)
        ctx.meta = (x.shape, [(p.shape, p.dtype) for p in (v0, a0, beta, theta0, rho, kappa)])
        ctx.options = (reset, bool(detach_reset), surrogate, float(slope))
        return spikes.view(x.shape), mems.view(x.shape), adapt.view(x.shape)

    @staticmethod
    def backward(ctx: Any, gs: torch.Tensor, gv: torch.Tensor, ga: torch.Tensor) -> tuple[Any, ...]:
        hs, spikes, mems, adapt, *flat = ctx.saved_tensors
        x_shape, metas = ctx.meta
        reset, detach_reset, surrogate, slope = ctx.options
        steps, feat = hs.shape
        acc = compute_dtype(hs.dtype)
        grads_in = [g.contiguous().view(steps, feat) for g in (gs, gv, ga)]
        gx = torch.empty_like(hs)
        outs = [torch.empty(feat, device=hs.device, dtype=acc) for _ in range(6)]
        grid = (triton.cdiv(feat, BLOCK),)
        _alif_bwd[grid](
            *grads_in, hs, spikes, mems, adapt, *flat, gx, *outs, slope, steps, feat,
            RESET=RESETS.index(reset), DETACH=detach_reset, SURR=SURROGATES.index(surrogate),
            BLOCK_N=BLOCK, ACC=_acc(hs.dtype),
        )  # fmt: skip
        step_shape = x_shape[1:]
        result: list[Any] = [gx.view(x_shape)]
        for i, (g, (shape, dtype)) in enumerate(zip(outs, metas, strict=True)):
            result.append(
                g.view(step_shape).sum_to_size(shape).to(dtype)
                if ctx.needs_input_grad[1 + i]
                else None
            )
        return (*result, None, None, None, None)


def alif_scan_triton(
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
    """Triton implementation of ``alif_scan``; same contract as the reference."""
    out: tuple[torch.Tensor, torch.Tensor, torch.Tensor] = _ALIFScanTriton.apply(
        x, v0, a0, beta, threshold, rho, adaptation, reset, detach_reset, surrogate, float(slope)
    )
    return out
