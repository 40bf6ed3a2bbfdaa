"""Sparse representations: k-winners-take-all with duty-cycle boosting, fixed sparse weights,
random SDRs.

**k-winners-take-all** (:func:`kwta`): along the last dimension of ``x [..., N]``, the ``k``
units with the largest *boosted* activity ``x_i b_i`` keep their value ``x_i``; every other unit
is set to zero. The gradient flows to the winners only. Boosting (Ahmad & Scheinkman 2019,
"How can we be so dense?") favours units that have been active less often than the target
density ``d = k / N``:

.. math::
    b_i = \\exp\\big(\\beta\\, (d - \\bar a_i)\\big),

where ``beta`` is the boost strength and ``a_bar_i`` the unit's *duty cycle*, the fraction of
recent inputs on which it won. :func:`update_duty_cycle` keeps that running mean over a window of
``P`` inputs (``period``): after a batch of ``B`` inputs with ``c_i`` wins,

.. math::
    \\bar a_i \\leftarrow \\bar a_i + \\frac{c_i - B\\,\\bar a_i}{\\min(P,\\ \\text{seen} + B)},

so the first ``P`` inputs give the exact mean and later ones an exponential window of length
``P``. Example: ``x = [0.1, 0.9, 0.5, 0.3]``, ``k = 2`` gives ``[0, 0.9, 0.5, 0]``; with boosts
``[10, 1, 1, 1]`` the winners are units 0 and 1: ``[0.1, 0.9, 0, 0]``.

**Fixed sparse weights** (:func:`sparse_mask`, :func:`sparse_linear`,
:func:`sparse_linear_coo`): a weight matrix ``W [out, in]`` whose zero pattern is drawn once and
never changes. Each output unit keeps exactly ``round(density * in)`` inputs (at least one).
The dense path computes ``x (W * M)^T + b`` (so the gradient of every masked weight is exactly
zero); the sparse path multiplies a sparse COO matrix holding only the kept weights and gives
the same values and gradients.

**Random SDRs** (:func:`sample_sdrs`, :func:`sample_sdr_indices`): ``B`` binary vectors of ``n``
cells with exactly ``a`` active, each a uniformly random ``a``-subset, drawn on the generator's
device from an explicit ``torch.Generator`` (Floyd's algorithm when ``a^2 < n``, else the ``a``
smallest of ``n`` uniform keys).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from neurosim.backend import InputError, check_tensor


def _check_k(k: object, n: int, name: str = "k") -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k:
        raise InputError(f"k-WTA {name} must be an int >= 1, got {k!r}")
    return min(k, n)


def kwta(x: torch.Tensor, k: int, boost: torch.Tensor | None = None) -> torch.Tensor:
    """k-winners-take-all along the last dimension (see the module docstring).

    Args:
        x: activity ``[..., N]`` (floating point).
        k: winners per row (``k >= N`` keeps everything).
        boost: optional positive factors ``[N]`` (or broadcastable to ``x``) that multiply
            ``x`` when choosing the winners only; the output holds the unboosted ``x``.

    Returns:
        ``[..., N]``: ``x`` at the ``k`` winners of each row, zero elsewhere.

    Example:
        >>> kwta(torch.tensor([[0.1, 0.9, 0.5, 0.25]]), 2).tolist()
        [[0.0, 0.8999999761581421, 0.5, 0.0]]
    """
    check_tensor(x, "k-WTA input x [..., N]", min_ndim=1, finite=False)
    k = _check_k(k, x.shape[-1])
    if boost is not None:
        check_tensor(boost, "k-WTA boost factors", finite=False)
        if boost.device != x.device:
            raise InputError(f"k-WTA boost is on {boost.device} but x is on {x.device}")
        try:
            torch.broadcast_shapes(boost.shape, x.shape)
        except RuntimeError as exc:
            raise InputError(
                f"k-WTA boost of shape {tuple(boost.shape)} does not broadcast to x "
                f"{tuple(x.shape)}; expected [N] = [{x.shape[-1]}]"
            ) from exc
    return kwta_mask(x, k, boost).to(x.dtype) * x if k < x.shape[-1] else x


def kwta_mask(x: torch.Tensor, k: int, boost: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean ``[..., N]`` mask of the ``k`` winners of each row (no checks; see :func:`kwta`)."""
    n = x.shape[-1]
    if k >= n:
        return torch.ones_like(x, dtype=torch.bool)
    score = x.detach() if boost is None else x.detach() * boost
    idx = score.topk(k, dim=-1, sorted=False).indices
    return torch.zeros_like(x, dtype=torch.bool).scatter_(-1, idx, True)


def boost_factors(
    duty_cycle: torch.Tensor, target_density: float, strength: float | torch.Tensor
) -> torch.Tensor:
    """``exp(strength * (target_density - duty_cycle))``: above 1 for units that win too rarely.

    Examples:
        >>> boost_factors(torch.tensor([0.0, 0.1, 0.2]), 0.1, 10.0).tolist()  # e^1, e^0, e^-1
        [2.7182817459106445, 1.0, 0.3678794503211975]
    """
    return torch.exp(strength * (target_density - duty_cycle))


class DutyCycleState(NamedTuple):
    """Running win frequency of k-WTA units.

    Attributes:
        duty_cycle: ``[N]`` fraction of recent inputs on which each unit won.
        seen: ``[]`` int64 number of inputs counted so far (sets the window while < period).
    """

    duty_cycle: torch.Tensor
    seen: torch.Tensor

    @classmethod
    def zeros(
        cls, n: int, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> DutyCycleState:
        """No input seen yet: all duty cycles zero."""
        return cls(
            torch.zeros(n, device=device, dtype=dtype or torch.get_default_dtype()),
            torch.zeros((), dtype=torch.int64, device=device),
        )


class KWTAParameters(NamedTuple):
    """Parameters of :func:`kwta_step`.

    Attributes:
        k: winners per row.
        boost_strength: ``beta`` of the boost ``exp(beta (d - duty))`` (0 = no boosting).
        duty_cycle_period: window ``P`` of the duty-cycle running mean, in inputs.
        target_density: ``d``; ``None`` means ``k / N``.
    """

    k: int
    boost_strength: float = 0.0
    duty_cycle_period: int = 1000
    target_density: float | None = None


def check_kwta_parameters(p: object, n: int) -> KWTAParameters:
    """Validate :class:`KWTAParameters` for ``N = n`` units."""
    if not isinstance(p, KWTAParameters):
        raise InputError(f"k-WTA parameters must be KWTAParameters, got {type(p).__name__}")
    _check_k(p.k, n)
    if not (math.isfinite(p.boost_strength) and p.boost_strength >= 0):
        raise InputError(
            f"k-WTA boost_strength must be a finite number >= 0, got {p.boost_strength}"
        )
    if not isinstance(p.duty_cycle_period, int) or p.duty_cycle_period < 1:
        raise InputError(
            f"k-WTA duty_cycle_period must be an int >= 1, got {p.duty_cycle_period!r}"
        )
    if p.target_density is not None and not 0 < p.target_density <= 1:
        raise InputError(f"k-WTA target_density must be in (0, 1], got {p.target_density}")
    return p


def target_density(p: KWTAParameters, n: int) -> float:
    """The density the boost aims at: ``p.target_density`` or ``min(k, n) / n``."""
    return p.target_density if p.target_density is not None else min(p.k, n) / n


def update_duty_cycle(
    state: DutyCycleState, wins: torch.Tensor, samples: torch.Tensor | int, period: int
) -> DutyCycleState:
    """Fold ``wins [N]`` (wins per unit over ``samples`` inputs) into the duty cycle.

    ``duty += (wins - samples * duty) / min(period, seen + samples)``; see the module docstring.
    """
    seen = state.seen + samples
    window = torch.clamp(seen, max=period).to(state.duty_cycle.dtype).clamp(min=1)
    duty = (
        state.duty_cycle + (wins.to(state.duty_cycle.dtype) - samples * state.duty_cycle) / window
    )
    return DutyCycleState(duty, seen)


def kwta_step(
    x: torch.Tensor,
    state: DutyCycleState | None,
    p: KWTAParameters,
    *,
    update: bool = True,
) -> tuple[torch.Tensor, DutyCycleState]:
    """k-WTA with boosting by the duty cycle, and the updated duty cycle.

    Args:
        x: activity ``[..., N]``; every leading index is one input for the duty cycle.
        state: :class:`DutyCycleState` (``None``: nothing seen yet).
        p: :class:`KWTAParameters`.
        update: fold this batch's wins into the returned state (training); ``False`` returns
            ``state`` unchanged (inference).

    Returns:
        ``(winners' activity [..., N], new state)``.
    """
    check_tensor(x, "k-WTA input x [..., N]", min_ndim=1, finite=False)
    n = x.shape[-1]
    check_kwta_parameters(p, n)
    if state is None:
        state = DutyCycleState.zeros(n, device=x.device, dtype=torch.float32)
    elif not isinstance(state, DutyCycleState):
        raise InputError(f"k-WTA state must be a DutyCycleState, got {type(state).__name__}")
    elif state.duty_cycle.shape != (n,):
        raise InputError(
            f"k-WTA duty_cycle has shape {tuple(state.duty_cycle.shape)}; expected [N] = [{n}]"
        )
    boost = None
    if p.boost_strength > 0:
        boost = boost_factors(state.duty_cycle, target_density(p, n), p.boost_strength)
    mask = kwta_mask(x, min(p.k, n), boost)
    out = x * mask.to(x.dtype) if p.k < n else x
    if update:
        wins = mask.reshape(-1, n).sum(0)
        state = update_duty_cycle(state, wins, mask.numel() // n, p.duty_cycle_period)
    return out, state


# --------------------------------------------------------------------------------------------
# fixed sparse weights


def sparse_mask(
    out_features: int,
    in_features: int,
    density: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Boolean ``[out, in]`` mask with exactly ``max(1, round(density * in))`` ones per row.

    Each row's kept inputs are a uniformly random subset drawn from ``generator`` (on its
    device; ``None`` uses torch's global RNG). ``density = 1`` keeps everything.
    """
    if out_features < 1 or in_features < 1:
        raise InputError(
            f"sparse_mask needs out_features, in_features >= 1, got {out_features}, {in_features}"
        )
    if not (isinstance(density, (int, float)) and 0 < density <= 1):
        raise InputError(f"weight density must be in (0, 1], got {density!r}")
    keep = max(1, round(density * in_features))
    gen_device = generator.device if generator is not None else device
    if keep >= in_features:
        return torch.ones(out_features, in_features, dtype=torch.bool, device=device)
    keys = torch.rand(out_features, in_features, generator=generator, device=gen_device)
    idx = keys.topk(keep, dim=1, sorted=False).indices
    mask = torch.zeros(out_features, in_features, dtype=torch.bool, device=gen_device)
    return mask.scatter_(1, idx, True).to(device or gen_device)


def check_sparse_linear(
    x: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None
) -> None:
    """Shapes, dtypes and devices of :func:`sparse_linear` (raises :class:`InputError`)."""
    check_tensor(x, "sparse linear input x [..., in]", min_ndim=1)
    check_tensor(weight, "sparse linear weight [out, in]", ndim=2, finite=False)
    if not isinstance(mask, torch.Tensor) or mask.shape != weight.shape:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise InputError(f"sparse linear mask must be a tensor of the weight's shape "
                         f"{tuple(weight.shape)}, got {got}")  # fmt: skip
    if x.shape[-1] != weight.shape[1]:
        raise InputError(
            f"sparse linear input has {x.shape[-1]} features but the weight expects "
            f"{weight.shape[1]} (weight [out, in] = {tuple(weight.shape)})"
        )
    for name, t in (("weight", weight), ("mask", mask), ("bias", bias)):
        if t is not None and t.device != x.device:
            raise InputError(f"sparse linear {name} is on {t.device} but x is on {x.device}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise InputError(
            f"sparse linear bias has shape {tuple(bias.shape)}; expected [{weight.shape[0]}]"
        )


def sparse_linear(
    x: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Dense path: ``x (W * M)^T + b`` for ``x [..., in]``, ``W, M [out, in]`` -> ``[..., out]``.

    The gradient of ``W`` is zero wherever ``M`` is zero, so masked weights never train.
    """
    check_sparse_linear(x, weight, mask, bias)
    return F.linear(x, weight * mask.to(weight.dtype), bias)


def mask_indices(mask: torch.Tensor) -> torch.Tensor:
    """``[2, nnz]`` int64 (row, column) indices of the kept weights of a ``[out, in]`` mask."""
    return mask.nonzero().T.contiguous()


def sparse_linear_coo(
    x: torch.Tensor,
    weight: torch.Tensor,
    indices: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sparse path: the same map as :func:`sparse_linear` through a sparse COO product.

    Only the weights at ``indices`` (:func:`mask_indices` of the mask) take part; their
    gradients are those of the dense path and every other weight gets a zero gradient.
    ``x [..., in] -> [..., out]``.
    """
    out_features, in_features = weight.shape
    values = weight[indices[0], indices[1]]
    w = torch.sparse_coo_tensor(indices, values, (out_features, in_features), is_coalesced=True,
                                check_invariants=False)  # fmt: skip
    flat = x.reshape(-1, in_features)
    y = torch.sparse.mm(w, flat.T).T
    if bias is not None:
        y = y + bias
    return y.reshape(*x.shape[:-1], out_features)


# --------------------------------------------------------------------------------------------
# random SDRs


def _check_sdr_args(batch: int, n: int, a: int) -> None:
    for name, value in (("batch", batch), ("n", n), ("a", a)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(f"SDR {name} must be an int, got {type(value).__name__} {value!r}")
    if batch < 0 or n < 1 or not 0 <= a <= n:
        raise InputError(f"SDRs need batch >= 0, n >= 1 and 0 <= a <= n; got {batch}, {n}, {a}")


def sample_sdr_indices(
    batch: int, n: int, a: int, *, generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:  # fmt: skip
    """``[batch, a]`` int64 active-cell indices (sorted) of ``batch`` random SDRs of ``n`` cells.

    Each row is a uniformly random ``a``-subset of ``0..n-1``, drawn on ``generator``'s device
    (``device`` when no generator is given). Two exact samplers, chosen by cost: for
    ``a * a < n``, Floyd's algorithm (``a`` draws per row, ``O(a^2)`` work, independent of
    ``n``); otherwise the ``a`` smallest of ``n`` uniform keys (``O(n)``).
    """
    _check_sdr_args(batch, n, a)
    dev = generator.device if generator is not None else device
    if a * a < n:
        return _floyd_subsets(batch, n, a, generator, dev).sort(dim=1).values
    keys = torch.rand(batch, n, generator=generator, device=dev)
    idx = keys.topk(a, dim=1, largest=False, sorted=False).indices
    return idx.sort(dim=1).values


def _floyd_subsets(
    batch: int, n: int, a: int, generator: torch.Generator | None,
    device: torch.device | str | None,
) -> torch.Tensor:  # fmt: skip
    """Floyd's sampling of ``a`` distinct values of ``0..n-1`` per row (uniform over subsets):
    for ``j = n - a .. n - 1`` draw ``t`` in ``0..j`` and keep ``t``, or ``j`` if ``t`` is taken."""
    chosen = torch.empty(batch, a, dtype=torch.int64, device=device)
    for i, j in enumerate(range(n - a, n)):
        t = torch.randint(0, j + 1, (batch,), generator=generator, device=device)
        taken = (chosen[:, :i] == t[:, None]).any(dim=1)
        chosen[:, i] = torch.where(taken, torch.full_like(t, j), t)
    return chosen


def sample_sdrs(
    batch: int, n: int, a: int, *, generator: torch.Generator | None = None,
    device: torch.device | str | None = None, dtype: torch.dtype = torch.bool,
) -> torch.Tensor:  # fmt: skip
    """``[batch, n]`` random SDRs with exactly ``a`` ones per row (see :func:`sample_sdr_indices`).

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> sample_sdrs(3, 10, 4, generator=g).sum(1).tolist()
        [4, 4, 4]
    """
    idx = sample_sdr_indices(batch, n, a, generator=generator, device=device)
    out = torch.zeros(batch, n, dtype=torch.bool, device=idx.device)
    return out.scatter_(1, idx, True).to(dtype)


def sdr_overlap(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of cells active in both SDRs, along the last dimension (``[..., n]`` -> ``[...]``)."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise InputError("sdr_overlap takes two tensors [..., n]")
    if x.shape[-1] != y.shape[-1]:
        raise InputError(f"SDRs of different sizes: {x.shape[-1]} and {y.shape[-1]} cells")
    return ((x != 0) & (y != 0)).sum(-1)
