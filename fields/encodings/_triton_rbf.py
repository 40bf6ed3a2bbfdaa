"""Triton kernels for :func:`fields.encodings.rbf.rbf_features` (forward and backward).

Imported lazily by the kernel registry: this module imports triton at the top and is never
imported by ``import fields``. One program owns ``BLOCK_N`` points and walks their ``k``
neighbours; the ``D``-vectors (``D <= 4``) live in ``[BLOCK_N, DP]`` tiles and the shape matrices
in ``[BLOCK_N, DP, DP]`` tiles (``DP`` the next power of two of ``D``), the ``C`` channels in a
``[BLOCK_N, BLOCK_C]`` tile. Sums are kept in fp32 (fp64 for fp64 storage).

Forward: pass 1 computes the radial values ``rho_j`` and their sum, pass 2 accumulates
``sum_j w_j * g(rho_j / s)``; ``rho`` and ``1 / s`` are saved for the backward.
Backward (the normaliser is a stop-gradient, as in the reference)::

    dL/dw_j    += go * g(r_j)                               (atomic, per kernel)
    dL/dr_j     = sum_c go_c w_jc g'_c(r_j),   r_j = rho_j / s
    dL/dq_j     = dL/dr_j / s * rho'(q_j)       (IQ: -rho^2, Gaussian: -rho / 2)
    dL/dz_j     = 2 dL/dq_j z_j,                z_j = A_j (x - c_j)
    dL/dA_j    += dL/dz_j (x - c_j)^T                       (atomic)
    dL/dx      += A_j^T dL/dz_j,   dL/dc_j -= A_j^T dL/dz_j (atomic)
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

BLOCK_N = 32


def _acc(dtype: torch.dtype) -> Any:
    return tl.float64 if dtype == torch.float64 else tl.float32


@triton.jit
def _geometry(
    x_ptr, c_ptr, a_ptr, rows, kid, rmask, D: tl.constexpr, DP: tl.constexpr, ACC: tl.constexpr
):
    """Offsets ``o [B, DP]``, shapes ``A [B, DP, DP]`` and ``z = A o [B, DP]`` of one neighbour."""
    dims = tl.arange(0, DP)
    dmask = dims < D
    m2 = rmask[:, None] & dmask[None, :]
    xv = tl.load(x_ptr + rows[:, None] * D + dims[None, :], mask=m2, other=0.0).to(ACC)
    cv = tl.load(c_ptr + kid[:, None] * D + dims[None, :], mask=m2, other=0.0).to(ACC)
    o = xv - cv
    m3 = rmask[:, None, None] & dmask[None, :, None] & dmask[None, None, :]
    a_off = kid[:, None, None] * (D * D) + dims[None, :, None] * D + dims[None, None, :]
    a = tl.load(a_ptr + a_off, mask=m3, other=0.0).to(ACC)
    z = tl.sum(a * o[:, None, :], axis=2)
    return o, a, z


@triton.jit
def _profile(q, KIND: tl.constexpr):
    if KIND == 0:
        rho = 1.0 / (1.0 + q)
    else:
        rho = tl.exp(-0.5 * q)
    return rho


@triton.jit
def _rbf_fwd(
    x_ptr,
    c_ptr,
    a_ptr,
    w_ptr,
    f_ptr,
    idx_ptr,
    out_ptr,
    rho_ptr,
    inv_ptr,
    N,
    NB,
    C,
    D: tl.constexpr,
    DP: tl.constexpr,
    KIND: tl.constexpr,
    NORM: tl.constexpr,
    BLOCK: tl.constexpr,
    BLOCK_C: tl.constexpr,
    ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = pid * BLOCK + tl.arange(0, BLOCK)
    rmask = rows < N
    cols = tl.arange(0, BLOCK_C)
    cmask = cols < C
    freqs = tl.load(f_ptr + cols, mask=cmask, other=0.0).to(ACC)
    total = tl.zeros([BLOCK], dtype=ACC)
    for j in range(NB):
        kid = tl.load(idx_ptr + rows * NB + j, mask=rmask, other=0)
        _o, _a, z = _geometry(x_ptr, c_ptr, a_ptr, rows, kid, rmask, D, DP, ACC)
        rho = _profile(tl.sum(z * z, axis=1), KIND)
        tl.store(rho_ptr + rows * NB + j, rho, mask=rmask)
        total += rho
    if NORM:
        inv = 1.0 / (total + 1e-8)
    else:
        inv = tl.full([BLOCK], 1.0, dtype=ACC)
    tl.store(inv_ptr + rows, inv, mask=rmask)
    acc = tl.zeros([BLOCK, BLOCK_C], dtype=ACC)
    m2 = rmask[:, None] & cmask[None, :]
    for j in range(NB):
        kid = tl.load(idx_ptr + rows * NB + j, mask=rmask, other=0)
        r = tl.load(rho_ptr + rows * NB + j, mask=rmask, other=0.0) * inv
        lifted = r[:, None] * freqs[None, :]
        g = tl.where(freqs[None, :] > 0, tl.sin(lifted), r[:, None] + 0.0 * lifted)
        w = tl.load(w_ptr + kid[:, None] * C + cols[None, :], mask=m2, other=0.0).to(ACC)
        acc += w * g
    tl.store(out_ptr + rows[:, None] * C + cols[None, :], acc.to(out_ptr.dtype.element_ty), mask=m2)


@triton.jit
def _rbf_bwd(
    go_ptr,
    x_ptr,
    c_ptr,
    a_ptr,
    w_ptr,
    f_ptr,
    idx_ptr,
    rho_ptr,
    inv_ptr,
    gx_ptr,
    gc_ptr,
    ga_ptr,
    gw_ptr,
    N,
    NB,
    C,
    D: tl.constexpr,
    DP: tl.constexpr,
    KIND: tl.constexpr,
    BLOCK: tl.constexpr,
    BLOCK_C: tl.constexpr,
    ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = pid * BLOCK + tl.arange(0, BLOCK)
    rmask = rows < N
    cols = tl.arange(0, BLOCK_C)
    cmask = cols < C
    dims = tl.arange(0, DP)
    dmask = dims < D
    m2 = rmask[:, None] & cmask[None, :]
    md = rmask[:, None] & dmask[None, :]
    m3 = rmask[:, None, None] & dmask[None, :, None] & dmask[None, None, :]
    freqs = tl.load(f_ptr + cols, mask=cmask, other=0.0).to(ACC)
    go = tl.load(go_ptr + rows[:, None] * C + cols[None, :], mask=m2, other=0.0).to(ACC)
    inv = tl.load(inv_ptr + rows, mask=rmask, other=0.0)
    gx = tl.zeros([BLOCK, DP], dtype=ACC)
    for j in range(NB):
        kid = tl.load(idx_ptr + rows * NB + j, mask=rmask, other=0)
        rho = tl.load(rho_ptr + rows * NB + j, mask=rmask, other=0.0)
        r = rho * inv
        lifted = r[:, None] * freqs[None, :]
        pos = freqs[None, :] > 0
        g = tl.where(pos, tl.sin(lifted), r[:, None] + 0.0 * lifted)
        dg = tl.where(pos, freqs[None, :] * tl.cos(lifted), 1.0 + 0.0 * lifted)
        tl.atomic_add(gw_ptr + kid[:, None] * C + cols[None, :], go * g, mask=m2)
        w = tl.load(w_ptr + kid[:, None] * C + cols[None, :], mask=m2, other=0.0).to(ACC)
        dr = tl.sum(go * w * dg, axis=1)
        if KIND == 0:
            dq = -dr * inv * rho * rho
        else:
            dq = -0.5 * dr * inv * rho
        o, a, z = _geometry(x_ptr, c_ptr, a_ptr, rows, kid, rmask, D, DP, ACC)
        dz = 2.0 * dq[:, None] * z
        a_off = kid[:, None, None] * (D * D) + dims[None, :, None] * D + dims[None, None, :]
        tl.atomic_add(ga_ptr + a_off, dz[:, :, None] * o[:, None, :], mask=m3)
        do = tl.sum(a * dz[:, :, None], axis=1)
        gx += do
        tl.atomic_add(gc_ptr + kid[:, None] * D + dims[None, :], -do, mask=md)
    tl.store(gx_ptr + rows[:, None] * D + dims[None, :], gx, mask=md)


_KINDS = {"inverse_quadratic": 0, "gaussian": 1}


def _next_pow2(v: int) -> int:
    return 1 << max(0, (v - 1).bit_length())


class _RBFFeatures(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        centers: torch.Tensor,
        shapes: torch.Tensor,
        weights: torch.Tensor,
        freqs: torch.Tensor,
        index: torch.Tensor,
        kind: str,
        normalize: bool,
    ) -> torch.Tensor:
        x, centers, shapes, weights, freqs = (
            t.contiguous() for t in (x, centers, shapes, weights, freqs)
        )
        index = index.to(torch.int64).contiguous()
        n, d = x.shape
        nb = index.shape[1]
        c = weights.shape[1]
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        out = torch.empty(n, c, device=x.device, dtype=x.dtype)
        rho = torch.empty(n, nb, device=x.device, dtype=acc)
        inv = torch.empty(n, device=x.device, dtype=acc)
        if n:
            grid = (triton.cdiv(n, BLOCK_N),)
            _rbf_fwd[grid](
                x,
                centers,
                shapes,
                weights,
                freqs,
                index,
                out,
                rho,
                inv,
                n,
                nb,
                c,
                D=d,
                DP=_next_pow2(d),
                KIND=_KINDS[kind],
                NORM=bool(normalize),
                BLOCK=BLOCK_N,
                BLOCK_C=_next_pow2(c),
                ACC=_acc(x.dtype),
            )
        ctx.save_for_backward(x, centers, shapes, weights, freqs, index, rho, inv)
        ctx.kind = kind
        return out

    @staticmethod
    def backward(ctx: Any, go: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, centers, shapes, weights, freqs, index, rho, inv = ctx.saved_tensors
        n, d = x.shape
        nb = index.shape[1]
        c = weights.shape[1]
        acc = rho.dtype
        gx = torch.zeros(n, d, device=x.device, dtype=acc)
        gc = torch.zeros(centers.shape, device=x.device, dtype=acc)
        ga = torch.zeros(shapes.shape, device=x.device, dtype=acc)
        gw = torch.zeros(weights.shape, device=x.device, dtype=acc)
        if n:
            grid = (triton.cdiv(n, BLOCK_N),)
            _rbf_bwd[grid](
                go.contiguous(),
                x,
                centers,
                shapes,
                weights,
                freqs,
                index,
                rho,
                inv,
                gx,
                gc,
                ga,
                gw,
                n,
                nb,
                c,
                D=d,
                DP=_next_pow2(d),
                KIND=_KINDS[ctx.kind],
                BLOCK=BLOCK_N,
                BLOCK_C=_next_pow2(c),
                ACC=_acc(x.dtype),
            )
        return (
            gx.to(x.dtype),
            gc.to(centers.dtype),
            ga.to(shapes.dtype),
            gw.to(weights.dtype),
            None,
            None,
            None,
            None,
        )


def rbf_features_triton(
    x: torch.Tensor,
    centers: torch.Tensor,
    shapes: torch.Tensor,
    weights: torch.Tensor,
    freqs: torch.Tensor,
    index: torch.Tensor,
    kind: str = "inverse_quadratic",
    normalize: bool = True,
) -> torch.Tensor:
    """Triton implementation; same contract as the reference (no gradient to ``freqs``)."""
    out: torch.Tensor = _RBFFeatures.apply(
        x, centers, shapes, weights, freqs, index, kind, normalize
    )
    return out
