"""Triton kernels for :func:`fields.encodings.hashgrid.hashgrid_encode` (forward and backward).

Imported lazily by the registry (this module imports triton at the top). Grid: one program per
``BLOCK`` points and level (``program_id(1)`` is the level, so concurrently running programs
read the same level's table, as in tiny-cuda-nn). Each program walks the ``2^D`` corners,
computes the dense or hashed row exactly as the torch reference does (int64 arithmetic, the
hash masked to 32 bits), and interpolates in fp32 (fp64 for fp64 inputs). The backward
scatters ``w * dL/dy`` into the table gradient with atomic adds and, when the points need a
gradient, accumulates ``dL/dx`` with atomic adds over the levels.

The backward is not itself differentiable (no double backward through this backend; use
``backend="torch"`` for losses on ``dy/dx``).
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from fields.encodings.hashgrid import HashGridConfig

BLOCK = 128

_META: dict[tuple[HashGridConfig, str, torch.dtype], tuple[torch.Tensor, ...]] = {}


def _meta(
    config: HashGridConfig, device: torch.device, acc: torch.dtype
) -> tuple[torch.Tensor, ...]:
    """Per-level ``scale`` (acc dtype) and ``resolution, size, offset, hashed`` (int64), cached."""
    key = (config, str(device), acc)
    if key not in _META:
        levels = config.levels
        _META[key] = (
            torch.tensor([lv.scale for lv in levels], dtype=acc, device=device),
            torch.tensor([lv.resolution for lv in levels], dtype=torch.int64, device=device),
            torch.tensor([lv.size for lv in levels], dtype=torch.int64, device=device),
            torch.tensor([lv.offset for lv in levels], dtype=torch.int64, device=device),
            torch.tensor([int(lv.hashed) for lv in levels], dtype=torch.int64, device=device),
        )
    return _META[key]


@triton.jit
def _axis(
    x_ptr,
    offs,
    mask,
    scale,
    d: tl.constexpr,
    D: tl.constexpr,
    SMOOTH: tl.constexpr,
    ACC: tl.constexpr,
):
    """Cell index, interpolation weight ``t`` and ``dt/dx`` of axis ``d`` for a block of points."""
    xd = tl.load(x_ptr + offs * D + d, mask=mask, other=0.0).to(ACC)
    pos = tl.fma(xd, scale, 0.5)  # one rounding, as tiny-cuda-nn's fmaf(scale, x, 0.5f)
    cell = tl.floor(pos)
    frac = pos - cell
    if SMOOTH:
        t = frac * frac * (3.0 - 2.0 * frac)
        dt = 6.0 * frac * (1.0 - frac) * scale
    else:
        t = frac
        dt = tl.zeros_like(frac) + scale
    return cell.to(tl.int64), t, dt


@triton.jit
def _row(c0, c1, c2, c3, corner: tl.constexpr, D: tl.constexpr, res, size, hashed):
    """Row of the level's table holding the vertex ``c + bits(corner)`` (dense or hashed)."""
    u0 = c0 + ((corner >> 0) & 1)
    dense = u0
    h = u0  # prime 1
    if D > 1:
        u1 = c1 + ((corner >> 1) & 1)
        dense += u1 * res
        h = h ^ (u1 * 2654435761)
    if D > 2:
        u2 = c2 + ((corner >> 2) & 1)
        dense += u2 * res * res
        h = h ^ (u2 * 805459861)
    if D > 3:
        u3 = c3 + ((corner >> 3) & 1)
        dense += u3 * res * res * res
        h = h ^ (u3 * 3674653429)
    # hashed levels have a power-of-two size; a dense index is below 2 * size on the domain
    # (its vertices reach r_l only at the top face), but unchecked out-of-domain points (no
    # value checks on accelerators, see neurosim.backend.debug) may land anywhere: a true
    # modulo keeps every read inside the level's table
    wrapped = dense % size
    wrapped = tl.where(wrapped < 0, wrapped + size, wrapped)
    return tl.where(hashed != 0, h & (size - 1), wrapped)


@triton.jit
def _pick(t, corner: tl.constexpr, d: tl.constexpr):
    """``t`` when bit ``d`` of the corner is set, else ``1 - t``."""
    if ((corner >> d) & 1) == 1:
        return t
    else:
        return 1.0 - t


@triton.jit
def _signed(dt, corner: tl.constexpr, d: tl.constexpr):
    """``+dt`` when bit ``d`` of the corner is set, else ``-dt``."""
    if ((corner >> d) & 1) == 1:
        return dt
    else:
        return -dt


@triton.jit
def _hashgrid_fwd(
    x_ptr,
    table_ptr,
    out_ptr,
    scale_ptr,
    res_ptr,
    size_ptr,
    off_ptr,
    hashed_ptr,
    N,
    D: tl.constexpr,
    C: tl.constexpr,
    F: tl.constexpr,
    FP: tl.constexpr,
    L: tl.constexpr,
    SMOOTH: tl.constexpr,
    BLOCK_N: tl.constexpr,
    ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    level = tl.program_id(1)
    offs = (pid * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    mask = offs < N
    fo = tl.arange(0, FP)
    fmask = fo < F
    scale = tl.load(scale_ptr + level)
    res = tl.load(res_ptr + level)
    size = tl.load(size_ptr + level)
    base = tl.load(off_ptr + level)
    hashed = tl.load(hashed_ptr + level)
    c0, t0, _d0 = _axis(x_ptr, offs, mask, scale, 0, D, SMOOTH, ACC)
    c1, t1, c2, t2, c3, t3 = c0, t0, c0, t0, c0, t0
    if D > 1:
        c1, t1, _d1 = _axis(x_ptr, offs, mask, scale, 1, D, SMOOTH, ACC)
    if D > 2:
        c2, t2, _d2 = _axis(x_ptr, offs, mask, scale, 2, D, SMOOTH, ACC)
    if D > 3:
        c3, t3, _d3 = _axis(x_ptr, offs, mask, scale, 3, D, SMOOTH, ACC)
    acc = tl.zeros([BLOCK_N, FP], dtype=ACC)
    for corner in tl.static_range(C):
        w = _pick(t0, corner, 0)
        if D > 1:
            w = w * _pick(t1, corner, 1)
        if D > 2:
            w = w * _pick(t2, corner, 2)
        if D > 3:
            w = w * _pick(t3, corner, 3)
        row = base + _row(c0, c1, c2, c3, corner, D, res, size, hashed)
        vals = tl.load(
            table_ptr + row[:, None] * F + fo[None, :],
            mask=mask[:, None] & fmask[None, :],
            other=0.0,
        ).to(ACC)
        acc += w[:, None] * vals
    tl.store(
        out_ptr + offs[:, None] * (L * F) + level * F + fo[None, :],
        acc.to(out_ptr.dtype.element_ty),
        mask=mask[:, None] & fmask[None, :],
    )


@triton.jit
def _hashgrid_bwd(
    x_ptr,
    table_ptr,
    gout_ptr,
    gtable_ptr,
    gx_ptr,
    scale_ptr,
    res_ptr,
    size_ptr,
    off_ptr,
    hashed_ptr,
    N,
    D: tl.constexpr,
    C: tl.constexpr,
    F: tl.constexpr,
    FP: tl.constexpr,
    L: tl.constexpr,
    SMOOTH: tl.constexpr,
    NEED_TABLE: tl.constexpr,
    NEED_X: tl.constexpr,
    BLOCK_N: tl.constexpr,
    ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    level = tl.program_id(1)
    offs = (pid * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    mask = offs < N
    fo = tl.arange(0, FP)
    fmask = fo < F
    mask2 = mask[:, None] & fmask[None, :]
    scale = tl.load(scale_ptr + level)
    res = tl.load(res_ptr + level)
    size = tl.load(size_ptr + level)
    base = tl.load(off_ptr + level)
    hashed = tl.load(hashed_ptr + level)
    g = tl.load(
        gout_ptr + offs[:, None] * (L * F) + level * F + fo[None, :], mask=mask2, other=0.0
    ).to(ACC)
    c0, t0, d0 = _axis(x_ptr, offs, mask, scale, 0, D, SMOOTH, ACC)
    c1, t1, d1, c2, t2, d2, c3, t3, d3 = c0, t0, d0, c0, t0, d0, c0, t0, d0
    if D > 1:
        c1, t1, d1 = _axis(x_ptr, offs, mask, scale, 1, D, SMOOTH, ACC)
    if D > 2:
        c2, t2, d2 = _axis(x_ptr, offs, mask, scale, 2, D, SMOOTH, ACC)
    if D > 3:
        c3, t3, d3 = _axis(x_ptr, offs, mask, scale, 3, D, SMOOTH, ACC)
    gx0 = tl.zeros([BLOCK_N], dtype=ACC)
    gx1 = tl.zeros([BLOCK_N], dtype=ACC)
    gx2 = tl.zeros([BLOCK_N], dtype=ACC)
    gx3 = tl.zeros([BLOCK_N], dtype=ACC)
    for corner in tl.static_range(C):
        p0 = _pick(t0, corner, 0)
        p1 = _pick(t1, corner, 1)
        p2 = _pick(t2, corner, 2)
        p3 = _pick(t3, corner, 3)
        w = p0
        if D > 1:
            w = w * p1
        if D > 2:
            w = w * p2
        if D > 3:
            w = w * p3
        row = base + _row(c0, c1, c2, c3, corner, D, res, size, hashed)
        ptrs = row[:, None] * F + fo[None, :]
        if NEED_TABLE:
            tl.atomic_add(gtable_ptr + ptrs, w[:, None] * g, mask=mask2)
        if NEED_X:
            vals = tl.load(table_ptr + ptrs, mask=mask2, other=0.0).to(ACC)
            gv = tl.sum(vals * g, axis=1)
            # d w / d x_d: the factor of axis d replaced by +-dt_d
            q0 = _signed(d0, corner, 0)
            q1 = _signed(d1, corner, 1)
            q2 = _signed(d2, corner, 2)
            q3 = _signed(d3, corner, 3)
            if D == 1:
                gx0 += gv * q0
            elif D == 2:
                gx0 += gv * q0 * p1
                gx1 += gv * p0 * q1
            elif D == 3:
                gx0 += gv * q0 * p1 * p2
                gx1 += gv * p0 * q1 * p2
                gx2 += gv * p0 * p1 * q2
            else:
                gx0 += gv * q0 * p1 * p2 * p3
                gx1 += gv * p0 * q1 * p2 * p3
                gx2 += gv * p0 * p1 * q2 * p3
                gx3 += gv * p0 * p1 * p2 * q3
    if NEED_X:
        tl.atomic_add(gx_ptr + offs * D + 0, gx0, mask=mask)
        if D > 1:
            tl.atomic_add(gx_ptr + offs * D + 1, gx1, mask=mask)
        if D > 2:
            tl.atomic_add(gx_ptr + offs * D + 2, gx2, mask=mask)
        if D > 3:
            tl.atomic_add(gx_ptr + offs * D + 3, gx3, mask=mask)


def _acc_dtype(x: torch.Tensor, params: torch.Tensor) -> torch.dtype:
    return torch.float64 if torch.float64 in (x.dtype, params.dtype) else torch.float32


def _tl(dtype: torch.dtype) -> Any:
    return tl.float64 if dtype == torch.float64 else tl.float32


class _HashGridTriton(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, params: torch.Tensor, config: HashGridConfig
    ) -> torch.Tensor:
        acc = _acc_dtype(x, params)
        xc = x.to(acc).contiguous()
        table = params.contiguous()
        n = x.shape[0]
        feats = config.n_features_per_level
        out = torch.empty(n, config.out_dim, dtype=params.dtype, device=x.device)
        if n:
            grid = (triton.cdiv(n, BLOCK), config.n_levels)
            _hashgrid_fwd[grid](
                xc,
                table,
                out,
                *_meta(config, x.device, acc),
                n,
                D=config.in_dim,
                C=1 << config.in_dim,
                F=feats,
                FP=triton.next_power_of_2(feats),
                L=config.n_levels,
                SMOOTH=config.interpolation == "smoothstep",
                BLOCK_N=BLOCK,
                ACC=_tl(acc),
            )
        ctx.save_for_backward(xc, table)
        ctx.config = config
        ctx.dtypes = (x.dtype, params.dtype)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        xc, table = ctx.saved_tensors
        config: HashGridConfig = ctx.config
        x_dtype, p_dtype = ctx.dtypes
        need_x, need_table = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        acc = xc.dtype
        n = xc.shape[0]
        feats = config.n_features_per_level
        gtable = torch.zeros(config.n_params, dtype=acc, device=xc.device)
        gx = torch.zeros(n, config.in_dim, dtype=acc, device=xc.device)
        if n and (need_x or need_table):
            grid = (triton.cdiv(n, BLOCK), config.n_levels)
            _hashgrid_bwd[grid](
                xc,
                table,
                grad_out.contiguous(),
                gtable,
                gx,
                *_meta(config, xc.device, acc),
                n,
                D=config.in_dim,
                C=1 << config.in_dim,
                F=feats,
                FP=triton.next_power_of_2(feats),
                L=config.n_levels,
                SMOOTH=config.interpolation == "smoothstep",
                NEED_TABLE=need_table,
                NEED_X=need_x,
                BLOCK_N=BLOCK,
                ACC=_tl(acc),
            )
        return (
            gx.to(x_dtype) if need_x else None,
            gtable.to(p_dtype) if need_table else None,
            None,
        )


def hashgrid_encode_triton(
    x: torch.Tensor, params: torch.Tensor, config: HashGridConfig
) -> torch.Tensor:
    """Triton implementation; same contract as the torch reference (no double backward)."""
    out: torch.Tensor = _HashGridTriton.apply(x, params, config)
    return out
