"""Triton kernels for :func:`neurosim.functional.scan.leaky_scan` (forward and backward).

Imported lazily by the registry: this module imports triton at the top and is never imported by
``import neurosim``. Each program owns ``BLOCK`` features and walks time sequentially; state is
kept in fp32 registers (fp64 for fp64 storage) whatever the storage dtype.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

BLOCK = 128


def _acc(dtype: torch.dtype) -> Any:
    """Accumulate in fp64 for fp64 storage, fp32 otherwise."""
    return tl.float64 if dtype == torch.float64 else tl.float32


@triton.jit
def _leaky_fwd(x_ptr, d_ptr, h0_ptr, y_ptr, T, N, BLOCK_N: tl.constexpr, ACC: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = offs < N
    d = tl.load(d_ptr + offs, mask=mask, other=0.0).to(ACC)
    h = tl.load(h0_ptr + offs, mask=mask, other=0.0).to(ACC)
    for t in range(T):
        xt = tl.load(x_ptr + t * N + offs, mask=mask, other=0.0).to(ACC)
        h = d * h + xt
        tl.store(y_ptr + t * N + offs, h.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _leaky_bwd(
    gy_ptr,
    y_ptr,
    d_ptr,
    h0_ptr,
    gx_ptr,
    gd_ptr,
    gh0_ptr,
    T,
    N,
    BLOCK_N: tl.constexpr,
    ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = offs < N
    d = tl.load(d_ptr + offs, mask=mask, other=0.0).to(ACC)
    g = tl.zeros([BLOCK_N], dtype=ACC)
    gd = tl.zeros([BLOCK_N], dtype=ACC)
    for i in range(T):
        t = T - 1 - i
        g = tl.load(gy_ptr + t * N + offs, mask=mask, other=0.0).to(ACC) + d * g
        tl.store(gx_ptr + t * N + offs, g.to(gx_ptr.dtype.element_ty), mask=mask)
        if t > 0:
            prev = tl.load(y_ptr + (t - 1) * N + offs, mask=mask, other=0.0).to(ACC)
        else:
            prev = tl.load(h0_ptr + offs, mask=mask, other=0.0).to(ACC)
        gd += g * prev
    tl.store(gd_ptr + offs, gd, mask=mask)
    tl.store(gh0_ptr + offs, d * g, mask=mask)


class _LeakyScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, decay: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        steps = x.shape[0]
        feat = x[0].numel()
        xf = x.contiguous().view(steps, feat)
        d = decay.expand(x.shape[1:]).contiguous().view(feat)
        h = h0.contiguous().view(feat)
        y = torch.empty_like(xf)
        grid = (triton.cdiv(feat, BLOCK),)
        _leaky_fwd[grid](xf, d, h, y, steps, feat, BLOCK_N=BLOCK, ACC=_acc(x.dtype))
        ctx.save_for_backward(y, d, h)
        ctx.shapes = (x.shape, decay.shape, decay.dtype, h0.dtype)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx: Any, gy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y, d, h = ctx.saved_tensors
        x_shape, decay_shape, decay_dtype, h0_dtype = ctx.shapes
        steps, feat = y.shape
        gyf = gy.contiguous().view(steps, feat)
        gx = torch.empty_like(y)
        acc = torch.float64 if y.dtype == torch.float64 else torch.float32
        gd = torch.empty(feat, device=y.device, dtype=acc)
        gh = torch.empty(feat, device=y.device, dtype=acc)
        grid = (triton.cdiv(feat, BLOCK),)
        _leaky_bwd[grid](gyf, y, d, h, gx, gd, gh, steps, feat, BLOCK_N=BLOCK, ACC=_acc(y.dtype))
        g_decay = gd.view(x_shape[1:]).sum_to_size(decay_shape).to(decay_dtype)
        return gx.view(x_shape), g_decay, gh.view(x_shape[1:]).to(h0_dtype)


def leaky_scan_triton(
    x: torch.Tensor, decay: torch.Tensor, h0: torch.Tensor | None = None
) -> torch.Tensor:
    """Triton implementation; same contract as the reference."""
    decay = decay.to(x.dtype)
    if h0 is None:
        h0 = torch.zeros_like(x[0])
    out: torch.Tensor = _LeakyScan.apply(x, decay, h0.to(x.dtype))
    return out
