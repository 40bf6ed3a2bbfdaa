"""numba kernels for the ``hashgrid_encode`` operation on the CPU (:mod:`fields.encodings.hashgrid`).

Imported lazily by the registry. The torch reference builds every level's corner rows and
weights as ``[2^D, N]`` tensors and gathers/scatters them in a dozen ATen calls per level; here
each point's corners are visited in one compiled loop (rows, weights and the table lookups stay
in registers), so the forward makes one pass over the points per level and the backward one
scatter-add into the table gradient per level.

Threads: the work is split over ``torch.get_num_threads()`` Python threads (the kernels release
the GIL), not numba's parallel layer, whose own OpenMP pool spin-waits beside torch's (see
:mod:`neurosim.functional._numba_lif`). The forward splits the points (each thread writes its
own rows of the output); the backward splits the levels (each level's rows of the table
gradient have one writer, so no atomics), coarse and fine levels dealt alternately.

The arithmetic is the reference's: positions ``fmaf(s_l, x, 1/2)`` rounded once (the same
round-to-odd construction as :func:`~fields.encodings.hashgrid.grid_position`), corner rows in
32-bit wrap-around arithmetic, weights as products over the axes in axis order, and the corner
sum in corner order, so the forward equals the reference up to the rounding of that sum (the
reference's ``torch.sum`` may add the corners in another order: at most a few ulp, tested). What runs here: ``x`` and the
table in float32 or float64 (one dtype), with gradients for the table only and no graph of the
backward (NeRF and image training); anything else (a gradient for ``x``, double backward, mixed
or half precision) runs the torch reference.
"""

from __future__ import annotations

import functools
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from numba import njit

from neurosim.backend import memory

_OPTIONS: dict[str, Any] = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)
_MASK32 = 0xFFFFFFFF


@njit(**_OPTIONS)
def _position(value, scale, f32, odd, bits):  # type: ignore[no-untyped-def]
    """``scale * value + 1/2`` rounded once: for float32 ``value`` (``f32``) exact in float64,
    then rounded to odd and cast (no double rounding); float64 in float64. ``odd`` is a
    1-element float64 scratch array and ``bits`` its int64 view."""
    if f32:
        p = np.float64(value) * scale
        r = p + 0.5
        t = r - 0.5
        odd[0] = r
        bits[0] = (bits[0] - (1 if p < t else 0)) | (1 if p != t else 0)
        return odd[0]
    return value * scale + 0.5


@functools.cache
def _kernels(dim: int, feats: int, backward: bool) -> Any:
    """The level loop compiled for ``dim`` axes, ``feats`` features and one direction: with
    these constant the corner loop unrolls, each corner's offsets and weight selection fold
    to constants, and a row of one or two features stays in registers (about 5x faster than
    the same loop with a run-time dimension, measured)."""
    corners = 1 << dim

    @njit(**_OPTIONS)
    def level_pass(  # type: ignore[no-untyped-def]
        x, table, grad, out, lo, hi, level, off, scale, resolution, size, hashed, primes, smooth,
        f32,
    ):  # fmt: skip
        """One level over points ``lo <= i < hi``. Forward: ``out[i, level F + f] = sum_c w_c
        table[off + row_c, f]``; backward: ``table[off + row_c, f] += w_c grad[i, level F +
        f]`` (``table`` is then the table gradient). Corner ``c`` is offset by ``(c >> (D - 1
        - d)) & 1`` along axis ``d``, its weight the product over the axes in axis order, and
        the corner sum runs in corner order: the reference's arithmetic."""
        one = x.dtype.type(1.0)
        zero = x.dtype.type(0.0)
        two = x.dtype.type(2.0)
        three = x.dtype.type(3.0)
        odd = np.empty(1, np.float64)
        bits = odd.view(np.int64)
        cell = np.empty(dim, np.int64)
        t = np.empty(dim, x.dtype)
        mask = size - 1
        col = level * feats
        for i in range(lo, hi):
            for d in range(dim):
                pos = x.dtype.type(_position(x[i, d], scale, f32, odd, bits))
                whole = np.int64(pos)  # pos >= 1/2: truncation is floor
                frac = pos - x.dtype.type(whole)
                cell[d] = whole
                t[d] = frac * frac * (three - two * frac) if smooth else frac
            a0 = zero
            a1 = zero
            g0 = zero
            g1 = zero
            if backward and feats <= 2:
                g0 = grad[i, col]
                if feats == 2:
                    g1 = grad[i, col + 1]
            for c in range(corners):
                b = (c >> (dim - 1)) & 1
                w = t[0] if b else one - t[0]
                h = ((cell[0] + b) * primes[0]) & _MASK32 if hashed else cell[0] + b
                stride = resolution
                for d in range(1, dim):
                    b = (c >> (dim - 1 - d)) & 1
                    w = w * (t[d] if b else one - t[d])
                    if hashed:
                        h ^= ((cell[d] + b) * primes[d]) & _MASK32
                    else:
                        h += (cell[d] + b) * stride
                        stride *= resolution
                # dense rows are below 2^31 (the reference's int32 sum) and non-negative
                row = off + ((h & mask) if hashed else h % size)
                if backward:
                    if feats <= 2:
                        table[row, 0] += w * g0
                        if feats == 2:
                            table[row, 1] += w * g1
                    else:
                        for f in range(feats):
                            table[row, f] += w * grad[i, col + f]
                elif feats <= 2:
                    a0 += table[row, 0] * w
                    if feats == 2:
                        a1 += table[row, 1] * w
                else:
                    for f in range(feats):
                        out[i, col + f] += table[row, f] * w
            if not backward and feats <= 2:
                out[i, col] = a0
                if feats == 2:
                    out[i, col + 1] = a1

    @njit(**_OPTIONS)
    def run(  # type: ignore[no-untyped-def]
        x, table, grad, out, lo, hi, levels, scales, resolutions, sizes, offsets, hashed, primes,
        smooth, f32,
    ):  # fmt: skip
        for level in levels:
            level_pass(x, table, grad, out, lo, hi, level, offsets[level], scales[level],
                       resolutions[level], sizes[level], hashed[level], primes, smooth, f32)  # fmt: skip

    return run


_POOL: tuple[int, ThreadPoolExecutor] | None = None


def _pool() -> ThreadPoolExecutor:
    """The worker threads (created on first use; again in a forked child, whose copy of the
    parent's pool has no running threads)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=8, thread_name_prefix="hashgrid"))
    return _POOL[1]


def _threads(work: int) -> int:
    """Threads for ``work`` point-levels: torch's intra-op count, one for small calls."""
    return max(1, min(torch.get_num_threads(), 8, work // (1 << 14)))


def _geometry(config: Any, dtype: np.dtype[Any]) -> tuple[Any, ...]:
    from fields.encodings.hashgrid import _PRIMES32

    levels = config.levels
    return (
        np.array([lv.scale for lv in levels], dtype=np.float64),
        np.array([lv.resolution for lv in levels], dtype=np.int64),
        np.array([lv.size for lv in levels], dtype=np.int64),
        np.array([lv.offset for lv in levels], dtype=np.int64),
        np.array([lv.hashed for lv in levels], dtype=np.bool_),
        np.array([p & _MASK32 for p in _PRIMES32] + [0] * (4 - len(_PRIMES32)), dtype=np.int64),
        np.bool_(config.interpolation == "smoothstep"),
        np.bool_(dtype == np.float32),
    )


# Outputs and table gradients on huge pages (neurosim.backend.memory): a fresh 32 MiB
# torch.empty costs ~8,000 page faults on first touch (14 ms), numpy's ~500 (4 ms); the table
# gradient is 64 MiB at 2^19 x 16.


def _run_forward(x: torch.Tensor, params: torch.Tensor, config: Any) -> torch.Tensor:
    n = x.shape[0]
    feats = config.n_features_per_level
    xa = x.detach().contiguous().numpy()
    table = params.detach().contiguous().view(-1, feats).numpy()
    out = (memory.zeros if feats > 2 else memory.empty)((n, config.out_dim), x.dtype)
    oa = out.numpy()
    geometry = _geometry(config, xa.dtype)
    levels = np.arange(config.n_levels, dtype=np.int64)
    run = _kernels(config.in_dim, feats, False)
    threads = _threads(n * config.n_levels)
    if threads == 1:
        run(xa, table, oa, oa, 0, n, levels, *geometry)
        return out
    bounds = np.linspace(0, n, threads + 1).astype(np.int64)
    jobs = [  # each thread writes its own rows of the output
        _pool().submit(run, xa, table, oa, oa, int(a), int(b), levels, *geometry)
        for a, b in itertools.pairwise(bounds)
    ]
    for job in jobs:
        job.result()
    return out


def _run_backward(
    x: torch.Tensor, params: torch.Tensor, config: Any, grad_out: torch.Tensor
) -> torch.Tensor:
    n = x.shape[0]
    feats = config.n_features_per_level
    xa = x.detach().contiguous().numpy()
    grad = grad_out.detach().to(x.dtype).numpy()  # any strides (y.sum() gives an expanded one)
    grad_table = memory.zeros((config.n_rows, feats), x.dtype)
    ga = grad_table.numpy()
    geometry = _geometry(config, xa.dtype)
    run = _kernels(config.in_dim, feats, True)
    threads = min(_threads(n * config.n_levels), config.n_levels)
    levels = np.arange(config.n_levels, dtype=np.int64)
    if threads == 1:
        run(xa, ga, grad, grad, 0, n, levels, *geometry)
    else:
        jobs = [  # each level's rows of the table gradient have one writer
            _pool().submit(run, xa, ga, grad, grad, 0, n, levels[k::threads].copy(), *geometry)
            for k in range(threads)
        ]
        for job in jobs:
            job.result()
    return grad_table.view(-1)


def _supported(x: torch.Tensor, params: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and params.dtype == x.dtype
        and not (x.requires_grad and torch.is_grad_enabled())
    )


class _HashGridNumba(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, params: torch.Tensor, config: Any) -> torch.Tensor:
        ctx.save_for_backward(x, params)
        ctx.config = config
        return _run_forward(x, params, config)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[Any, ...]:
        x, params = ctx.saved_tensors
        config = ctx.config
        if torch.is_grad_enabled() or ctx.needs_input_grad[0]:
            # the graph of the backward is recorded (double backward): the reference's
            # differentiable maths
            from fields.encodings.hashgrid import _hashgrid_backward

            gx, gp = _hashgrid_backward(
                x, params, config, grad_out, ctx.needs_input_grad[0], ctx.needs_input_grad[1]
            )
            return gx, gp, None
        if not ctx.needs_input_grad[1]:
            return None, None, None
        return None, _run_backward(x, params, config, grad_out).to(params.dtype), None


def hashgrid_encode_numba(x: torch.Tensor, params: torch.Tensor, config: Any) -> torch.Tensor:
    """numba implementation of ``hashgrid_encode`` (CPU); same contract as the reference, which
    it hands the cases it does not compute (see the module docstring)."""
    from fields.encodings.hashgrid import hashgrid_encode_reference

    if not _supported(x, params):
        return hashgrid_encode_reference(x, params, config)
    out: torch.Tensor = _HashGridNumba.apply(x, params, config)
    return out
