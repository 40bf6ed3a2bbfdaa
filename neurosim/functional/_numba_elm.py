"""numba time loops of the ELM memory recurrence (``elm_memory_scan``, backend ``numba``).

The same two loops as :func:`neurosim.functional.elm.forward_loop` / ``backward_loop``, the same
buffers and the same maths, with each step's small matrix products done by BLAS through numba's
``np.dot(a, b, out)`` and the element-wise work (bias, activation, sigmoid, memory update, masks)
in compiled loops: one step of the ATen version is seven dispatched operations of a few
microseconds each around two ~12 us GEMMs (batch 32, ``d_m = 100``, ``H = 200``), which the
compiled loop runs without dispatch. Autograd, the weight gradients (large matmuls over all
``T * B`` rows) and the buffers stay in :class:`neurosim.functional.elm._MemoryScanLoop`.
float32 and float64 (the compute dtypes); imported lazily by the registry.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from numba import njit

from neurosim.backend import memory
from neurosim.functional.elm import run_memory_scan

_OPTIONS: dict[str, Any] = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)


@njit(**_OPTIONS)
def _forward(  # type: ignore[no-untyped-def]
    p, m0, wm_t, wh_t, bh, wo_t, bo, kappa, neg_g, two_g, hs, sig, mem, scratch, act, zo, relu
):
    """``hs [L + 1, T, B, H]`` (post-ReLU activations, or SiLU pre-activations), ``sig``, ``mem``
    ``[T, B, d_m]``; ``scratch``, ``act`` ``[B, H]`` and ``zo`` ``[B, d_m]`` work space."""
    steps, batch, hidden = p.shape
    dm = m0.shape[1]
    layers = wh_t.shape[0]
    zero = p.dtype.type(0.0)
    one = p.dtype.type(1.0)
    m = m0
    for t in range(steps):
        a = m  # placeholder for typing; set below
        for layer in range(layers + 1):
            if layer == 0:
                np.dot(m, wm_t, scratch)
            else:
                np.dot(a, wh_t[layer - 1], scratch)
            h = hs[layer, t]
            for i in range(batch):
                for j in range(hidden):
                    z = scratch[i, j] + (p[t, i, j] if layer == 0 else bh[layer - 1, i, j])
                    if relu:
                        h[i, j] = z if z > zero else zero
                    else:
                        h[i, j] = z
                        act[i, j] = z * (one / (one + np.exp(-z)))
            a = h if relu else act
        np.dot(a, wo_t, zo)
        s_t = sig[t]
        m_t = mem[t]
        for i in range(batch):
            for j in range(dm):
                s = one / (one + np.exp(-(zo[i, j] + bo[i, j])))
                s_t[i, j] = s
                m_t[i, j] = (neg_g[i, j] + m[i, j] * kappa[j]) + s * two_g[j]
        m = m_t


@njit(**_OPTIONS)
def _backward(gext, kappa, wm, wh, wo, dtanh, dact, gm, gzo, gz, ga, gb, relu):  # type: ignore[no-untyped-def]
    """Reverse loop: ``gm[t % keep] = dL/dm_t``, ``gzo[t]`` at the output pre-activation,
    ``gz [L + 1, T, B, H]`` at each hidden pre-activation; ``dact`` ReLU masks (bool) or SiLU
    derivatives; ``ga [B, H]`` and ``gb [B, d_m]`` work space."""
    steps, batch, dm = dtanh.shape
    hidden = ga.shape[1]
    layers = wh.shape[0]
    keep = gm.shape[0]
    zero = dtanh.dtype.type(0.0)
    last = gm[(steps - 1) % keep]
    for i in range(batch):
        for j in range(dm):
            last[i, j] = gext[steps - 1, i, j]
    for t in range(steps - 1, -1, -1):
        here = gm[t % keep]
        go = gzo[t]
        for i in range(batch):
            for j in range(dm):
                go[i, j] = here[i, j] * dtanh[t, i, j]
        np.dot(go, wo, ga)
        for layer in range(layers, -1, -1):
            g_l = gz[layer, t]
            for i in range(batch):
                for j in range(hidden):
                    if relu:
                        g_l[i, j] = ga[i, j] if dact[layer, t, i, j] else zero
                    else:
                        g_l[i, j] = ga[i, j] * dact[layer, t, i, j]
            if layer > 0:
                np.dot(g_l, wh[layer - 1], ga)
        if t > 0:
            before = gm[(t - 1) % keep]
            np.dot(gz[0, t], wm, gb)
            for i in range(batch):
                for j in range(dm):
                    before[i, j] = (gext[t - 1, i, j] + here[i, j] * kappa[j]) + gb[i, j]


@njit(**_OPTIONS)
def trace_forward(x, k, h0, y):  # type: ignore[no-untyped-def]
    """``y_t = x_t + y_{t-1} k`` over ``x [T, B, N]`` (any strides) from ``h0 [B, N]``."""
    steps, batch, n = x.shape
    for t in range(steps):
        for i in range(batch):
            for j in range(n):
                prev = y[t - 1, i, j] if t > 0 else h0[i, j]
                y[t, i, j] = x[t, i, j] + prev * k[j]


@njit(**_OPTIONS)
def trace_backward(grad, k, gx):  # type: ignore[no-untyped-def]
    """``gx_t = g_t + gx_{t+1} k`` (reverse time), ``grad [T, B, N]`` any strides."""
    steps, batch, n = grad.shape
    for t in range(steps - 1, -1, -1):
        for i in range(batch):
            for j in range(n):
                carry = gx[t + 1, i, j] if t + 1 < steps else grad.dtype.type(0.0)
                gx[t, i, j] = grad[t, i, j] + carry * k[j]


@njit(**_OPTIONS)
def spike_trace(x, a_t, decay, bias, out, carry):  # type: ignore[no-untyped-def]
    """``y_t = decay y_(t-1) + a x_t`` from ``y_(-1) = 0`` through the non-zero inputs of
    ``x [T, B, D]`` (any strides), and ``out_t = y_t + bias``: plain ELM's first-layer drive of
    its traced input in one pass; ``carry [B, H]`` holds ``y``."""
    steps, batch, inputs = x.shape
    hidden = a_t.shape[1]
    zero = out.dtype.type(0.0)
    for b in range(batch):
        for h in range(hidden):
            carry[b, h] = zero
    for t in range(steps):
        for b in range(batch):
            row = carry[b]
            for h in range(hidden):
                row[h] = row[h] * decay
            for d in range(inputs):
                v = x[t, b, d]
                if v != zero:
                    w = a_t[d]
                    for h in range(hidden):
                        row[h] += v * w[h]
            o = out[t, b]
            for h in range(hidden):
                o[h] = row[h] + bias[h]


@njit(**_OPTIONS)
def spike_trace_grad(x, g, decay, grad_a_t, carry):  # type: ignore[no-untyped-def]
    """Backward of :func:`spike_trace` for ``a``: ``gy_t = g_t + decay gy_(t+1)`` in reverse
    time, ``grad_a_t[d] += x[t, b, d] gy_t[b]`` over the non-zero inputs."""
    steps, batch, inputs = x.shape
    hidden = g.shape[2]
    zero = g.dtype.type(0.0)
    for b in range(batch):
        for h in range(hidden):
            carry[b, h] = zero
    for t in range(steps - 1, -1, -1):
        for b in range(batch):
            row = carry[b]
            gt = g[t, b]
            for h in range(hidden):
                row[h] = gt[h] + row[h] * decay
            for d in range(inputs):
                v = x[t, b, d]
                if v != zero:
                    w = grad_a_t[d]
                    for h in range(hidden):
                        w[h] += v * row[h]


def _np(t: torch.Tensor) -> Any:
    return t.detach().contiguous().numpy()


class NumbaLoops:
    """The two time loops of :class:`neurosim.functional.elm._MemoryScanLoop` in numba (the
    interface of :class:`neurosim.functional.elm.EagerLoops`)."""

    def forward(
        self, p: torch.Tensor, m0: torch.Tensor, w: Any, relu: bool
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        steps, batch, hidden = p.shape
        dm = m0.shape[1]
        layers = len(w.wh_t)
        dtype = p.dtype
        hs = memory.empty((layers + 1, steps, batch, hidden), dtype)
        sig = memory.empty((steps, batch, dm), dtype)
        mem = memory.empty((steps, batch, dm), dtype)
        wh_t = torch.stack(w.wh_t) if layers else p.new_zeros(0, hidden, hidden)
        bh = torch.stack(w.bh) if layers else p.new_zeros(0, batch, hidden)
        _forward(_np(p), _np(m0), _np(w.wm_t), _np(wh_t), _np(bh), _np(w.wo_t), _np(w.bo),
                 _np(w.kappa), _np(w.neg_g), _np(w.two_g), hs.numpy(), sig.numpy(), mem.numpy(),
                 np.empty((batch, hidden), p.numpy().dtype), np.empty((batch, hidden), p.numpy().dtype),
                 np.empty((batch, dm), p.numpy().dtype), bool(relu))  # fmt: skip
        return list(hs.unbind(0)), sig, mem

    def backward(
        self,
        gext: torch.Tensor,
        w: Any,
        dtanh: torch.Tensor,
        dact: list[torch.Tensor],
        keep_all: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        steps, batch, dm = dtanh.shape
        hidden = dact[0].shape[2]
        layers = len(w.wh)
        dtype = dtanh.dtype
        relu = dact[0].dtype == torch.bool
        gm = memory.empty((steps if keep_all else 2, batch, dm), dtype)
        gzo = memory.empty((steps, batch, dm), dtype)
        gz = memory.empty((layers + 1, steps, batch, hidden), dtype)
        wh = torch.stack(w.wh) if layers else dtanh.new_zeros(0, hidden, hidden)
        npd = dtanh.numpy().dtype
        _backward(_np(gext), _np(w.kappa), _np(w.wm), _np(wh), _np(w.wo), _np(dtanh),
                  _np(torch.stack(dact)), gm.numpy(), gzo.numpy(), gz.numpy(),
                  np.empty((batch, hidden), npd), np.empty((batch, dm), npd), relu)  # fmt: skip
        return gm, gzo, list(gz.unbind(0))


elm_memory_scan_numba = functools.partial(run_memory_scan, NumbaLoops())
"""The ``numba`` backend (CPU): :class:`neurosim.functional.elm._MemoryScanLoop` with
:class:`NumbaLoops` (same results as the reference, to rounding)."""
