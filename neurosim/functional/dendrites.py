"""Active dendrites (Iyer et al. 2022, "Avoiding catastrophe: active dendrites enable multi-task
learning in dynamic environments"): dendritic segments gate a sparse feed-forward layer.

A dendritic layer of ``N`` units has a sparse feed-forward map and, per unit, ``K`` segments that
each compute a dot product with a context vector ``c`` (``C`` features):

.. math::
    y_i = \\sum_j (W \\odot M)_{ij} x_j + b_i, \\qquad
    d_{ik} = \\sum_l (U \\odot M^U)_{ikl}\\, c_l,

and the segment activations modulate the output, with one of three gatings:

* ``absmax`` (default): the segment with the largest ``|d_ik|`` gates multiplicatively,
  ``y_i sigma(d_{i k*})`` with ``k* = argmax_k |d_ik|`` (a strongly negative segment can
  silence the unit);
* ``max``: ``y_i sigma(max_k d_ik)``;
* ``additive``: ``y_i + max_k d_ik`` (a dendritic bias).

``sigma`` is the logistic function. The gated output then goes through k-winners-take-all
(:mod:`neurosim.functional.sparse`), so each context selects a sparse subnetwork.

Example (one unit, two segments, gating ``absmax``): ``y = 2``, ``d = [0.5, -3]`` selects
``-3`` (larger magnitude), output ``2 sigma(-3) = 0.0949``; ``max`` gives ``2 sigma(0.5) =
1.245``; ``additive`` gives ``2 + 0.5 = 2.5``.

**Spiking variant** (:func:`kwta_lif_step`): the gated current drives leaky integrate-and-fire
neurons (the maths and parameters of :mod:`neurosim.functional.lif`, immediate reset) in which
only the ``k`` units with the highest membrane potential may fire at each step:

.. math::
    h_t = \\beta v_{t-1} + I_t, \\quad W_t = \\text{top-}k(h_t), \\quad
    S_t = H(h_t - \\theta) [i \\in W_t], \\quad v_t = \\text{reset}(h_t, S_t).

With ``k = N`` this is exactly :func:`neurosim.functional.lif.lif_step`. The spike's gradient is
the LIF surrogate, so the whole network trains with surrogate gradients.

Shapes: ``x [..., in]``; ``context [C]`` (one context shared by the batch: its segment
activations are computed once) or ``[..., C]`` (one per input); output ``[..., N]``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from neurosim.backend import InputError, check_tensor
from neurosim.functional.lif import RESETS, LIFParameters, LIFState, check_option
from neurosim.functional.sparse import (
    DutyCycleState,
    KWTAParameters,
    kwta_mask,
    kwta_step,
    mask_indices,
    sparse_linear_coo,
)
from neurosim.functional.surrogate import spike

GATINGS: tuple[str, ...] = ("absmax", "max", "additive")
PATHS: tuple[str, ...] = ("dense", "sparse")


class DendriticParameters(NamedTuple):
    """Weights of a dendritic layer (tensors; masks are boolean and fixed).

    Attributes:
        weight: ``[N, in]`` feed-forward weights.
        segments: ``[N, K, C]`` segment weights.
        bias: ``[N]`` or ``None``.
        weight_mask: ``[N, in]`` bool, or ``None`` for dense.
        segment_mask: ``[N, K, C]`` bool, or ``None`` for dense.
        gating: ``"absmax"``, ``"max"`` or ``"additive"``.
    """

    weight: torch.Tensor
    segments: torch.Tensor
    bias: torch.Tensor | None = None
    weight_mask: torch.Tensor | None = None
    segment_mask: torch.Tensor | None = None
    gating: str = "absmax"


def check_dendritic(
    x: torch.Tensor, context: torch.Tensor, p: DendriticParameters
) -> DendriticParameters:
    """Validate a dendritic layer call (raises :class:`InputError` naming what is wrong)."""
    if not isinstance(p, DendriticParameters):
        raise InputError(
            f"dendritic parameters must be DendriticParameters, got {type(p).__name__}"
        )
    check_option(p.gating, "dendritic gating", GATINGS)
    check_tensor(x, "dendritic input x [..., in]", min_ndim=1)
    check_tensor(context, "dendritic context [C] or [..., C]", min_ndim=1)
    check_tensor(p.weight, "dendritic weight [N, in]", ndim=2, finite=False)
    check_tensor(p.segments, "dendritic segments [N, K, C]", ndim=3, finite=False)
    n, _, c = p.segments.shape
    if p.weight.shape[0] != n:
        raise InputError(f"dendritic weight has {p.weight.shape[0]} units but the segments have "
                         f"{n}; expected weight [N, in] and segments [N, K, C] with one N")  # fmt: skip
    if x.shape[-1] != p.weight.shape[1]:
        raise InputError(f"dendritic input has {x.shape[-1]} features; the weight expects "
                         f"{p.weight.shape[1]}")  # fmt: skip
    if context.shape[-1] != c:
        raise InputError(f"context has {context.shape[-1]} features; the segments expect C = {c}")
    if context.dim() > 1 and context.shape[:-1] != x.shape[:-1]:
        raise InputError(
            f"per-input context [..., C] must match the input's leading shape "
            f"{tuple(x.shape[:-1])}, got {tuple(context.shape)}; or pass one context [C]"
        )
    for name, mask, like in (("weight_mask", p.weight_mask, p.weight),
                             ("segment_mask", p.segment_mask, p.segments)):  # fmt: skip
        if mask is not None and (not isinstance(mask, torch.Tensor) or mask.shape != like.shape):
            raise InputError(f"dendritic {name} must have the shape {tuple(like.shape)}")
    for name, t in (("weight", p.weight), ("segments", p.segments), ("bias", p.bias),
                    ("context", context)):  # fmt: skip
        if t is not None and t.device != x.device:
            raise InputError(f"dendritic {name} is on {t.device} but x is on {x.device}")
    if p.bias is not None and p.bias.shape != (n,):
        raise InputError(f"dendritic bias has shape {tuple(p.bias.shape)}; expected [{n}]")
    return p


def _masked(w: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return w if mask is None else w * mask.to(w.dtype)


def feedforward(x: torch.Tensor, p: DendriticParameters, path: str = "dense") -> torch.Tensor:
    """``y = x (W * M)^T + b``: ``[..., in] -> [..., N]`` (no checks)."""
    if path == "sparse" and p.weight_mask is not None:
        return sparse_linear_coo(x, p.weight, mask_indices(p.weight_mask), p.bias)
    return F.linear(x, _masked(p.weight, p.weight_mask), p.bias)


def segment_activations(
    context: torch.Tensor, p: DendriticParameters, path: str = "dense"
) -> torch.Tensor:
    """``d = context . segments``: ``[C] -> [N, K]`` or ``[..., C] -> [..., N, K]`` (no checks)."""
    n, k, c = p.segments.shape
    if path == "sparse" and p.segment_mask is not None:
        flat = p.segments.reshape(n * k, c)
        idx = mask_indices(p.segment_mask.reshape(n * k, c))
        d = sparse_linear_coo(context, flat, idx)
    else:
        d = F.linear(context, _masked(p.segments, p.segment_mask).reshape(n * k, c))
    return d.reshape(*context.shape[:-1], n, k)


def select_segment(d: torch.Tensor, gating: str) -> torch.Tensor:
    """The segment value each unit uses: ``[..., N, K] -> [..., N]``.

    ``absmax``: the activation of largest magnitude (sign kept); ``max`` and ``additive``: the
    largest activation. The gradient reaches the selected segment only.
    """
    if gating == "absmax":
        idx = d.detach().abs().argmax(dim=-1, keepdim=True)
        return d.gather(-1, idx).squeeze(-1)
    return d.max(dim=-1).values


def gate(y: torch.Tensor, d: torch.Tensor, gating: str) -> torch.Tensor:
    """Apply segment activations ``d [..., N, K]`` (broadcast over ``y``'s batch) to ``y [..., N]``."""
    selected = select_segment(d, gating)
    if gating == "additive":
        return y + selected
    return y * torch.sigmoid(selected)


def dendritic_layer(
    x: torch.Tensor, context: torch.Tensor, p: DendriticParameters, *, path: str = "dense"
) -> torch.Tensor:
    """Gated output of a dendritic layer (before k-WTA): ``gate(x W^T + b, context . U)``.

    Args:
        x: ``[..., in]``.
        context: ``[C]`` shared by all inputs, or ``[..., C]`` per input.
        p: :class:`DendriticParameters`.
        path: ``"dense"`` (masked dense products) or ``"sparse"`` (sparse COO products of the
            kept weights; the masks' indices are recomputed per call). Same values and
            gradients.

    Returns:
        ``[..., N]``.
    """
    check_dendritic(x, context, p)
    check_option(path, "dendritic path", PATHS)
    return gate(feedforward(x, p, path), segment_activations(context, p, path), p.gating)


def dendritic_step(
    x: torch.Tensor,
    context: torch.Tensor,
    state: DutyCycleState | None,
    p: DendriticParameters,
    kwta: KWTAParameters | None,
    *,
    update: bool = True,
    path: str = "dense",
) -> tuple[torch.Tensor, DutyCycleState | None]:
    """A dendritic layer followed by k-WTA (with boosting): ``(out [..., N], new duty state)``.

    ``kwta=None`` skips k-WTA (the output is the gated activity, returned unchanged with the
    state). See :func:`neurosim.functional.sparse.kwta_step` for ``state`` and ``update``.
    """
    out = dendritic_layer(x, context, p, path=path)
    if kwta is None:
        return out, state
    return kwta_step(out, state, kwta, update=update)


# --------------------------------------------------------------------------------------------
# spiking: k-WTA over LIF membrane potentials


def kwta_lif_step(
    current: torch.Tensor,
    state: LIFState | None,
    p: LIFParameters,
    k: int,
    boost: torch.Tensor | None = None,
) -> tuple[torch.Tensor, LIFState, torch.Tensor]:
    """One LIF step in which only the ``k`` highest membranes may fire (module docstring).

    Args:
        current: input current ``[B, N]`` (already gated by the dendrites).
        state: :class:`LIFState` (``None``: resting).
        p: :class:`LIFParameters` (immediate reset; ``delayed_reset`` is not supported here).
        k: units allowed to fire per input and step.
        boost: optional ``[N]`` factors that scale the membrane when choosing the ``k``.

    Returns:
        ``(spikes [B, N], new state, winners mask [B, N] bool)``.
    """
    if p.delayed_reset:
        raise InputError("kwta_lif_step supports the immediate reset only (delayed_reset=False)")
    check_option(p.reset, "LIF reset", RESETS)
    v = torch.zeros_like(current) if state is None else state.v
    beta = p.beta if isinstance(p.beta, torch.Tensor) else torch.tensor(p.beta)
    theta = p.threshold if isinstance(p.threshold, torch.Tensor) else torch.tensor(p.threshold)
    beta = beta.to(current.dtype).to(current.device)
    theta = theta.to(current.dtype).to(current.device)
    h = beta * v + current
    winners = kwta_mask(h, k, boost)
    s = spike(h - theta, p.surrogate) * winners.to(h.dtype)
    sr = s.detach() if p.detach_reset else s
    if p.reset == "subtract":
        v_new = h - theta * sr
    elif p.reset == "zero":
        v_new = h * (1 - sr)
    else:
        v_new = h
    return s, LIFState(v_new), winners


class KWTALIFSequence(NamedTuple):
    """What :func:`kwta_lif_multi_step` returns.

    Attributes:
        spikes: ``[T, B, N]``.
        membrane: ``[T, B, N]`` after reset.
        state: the :class:`LIFState` after the last step.
        wins: ``[N]`` how often each unit was among the ``k`` winners (summed over ``T * B``
            step-inputs; fold it into a duty cycle with :func:`update_duty_cycle`).
    """

    spikes: torch.Tensor
    membrane: torch.Tensor
    state: LIFState
    wins: torch.Tensor


def kwta_lif_multi_step(
    current: torch.Tensor,
    state: LIFState | None,
    p: LIFParameters,
    k: int,
    boost: torch.Tensor | None = None,
) -> KWTALIFSequence:
    """:func:`kwta_lif_step` over ``current [T, B, N]`` (time-major).

    Each of the ``T * B`` step-inputs chooses its ``k`` winners from the membrane (times
    ``boost``, e.g. :func:`~neurosim.functional.sparse.boost_factors` of a duty cycle).
    """
    check_tensor(current, "spiking dendritic current [T, B, N]", ndim=3, finite=False)
    n = current.shape[-1]
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k-WTA k must be an int >= 1, got {k!r}")
    if state is not None and state.v.shape != current.shape[1:]:
        raise InputError(f"LIF state v has shape {tuple(state.v.shape)}; one step of the "
                         f"current has shape {tuple(current.shape[1:])}")  # fmt: skip
    spikes, membranes = [], []
    wins = torch.zeros(n, device=current.device, dtype=torch.float32)
    for t in range(current.shape[0]):
        s, state, winners = kwta_lif_step(current[t], state, p, min(k, n), boost)
        spikes.append(s)
        membranes.append(state.v)
        wins = wins + winners.sum(0).to(wins.dtype)
    assert state is not None
    return KWTALIFSequence(torch.stack(spikes), torch.stack(membranes), state, wins)
