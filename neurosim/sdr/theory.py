"""Exact SDR matching theory (Ahmad & Hawkins 2016, "How do neurons operate on sparse
distributed representations? A mathematical theory of sparsity, neurons and active dendrites").

A population of ``n`` cells represents a pattern by the ``a`` cells that are active (an SDR). A
dendritic segment has ``s`` synapses onto cells of a stored pattern and fires (an NMDA spike)
when at least ``theta`` of them are active.

**False match** (the paper's eqs. 3-4, with subsampling ``s <= a``): the probability that a
uniformly random pattern of ``a`` active cells activates the segment,

.. math::
    P_{fm}(n, a, s, \\theta) = \\frac{\\sum_{b=\\theta}^{s} |\\Omega(n, s, a, b)|}{\\binom{n}{a}},
    \\qquad |\\Omega(n, s, a, b)| = \\binom{s}{b}\\binom{n-s}{a-b},

where ``|Omega(n, s, a, b)|`` counts the patterns that share exactly ``b`` cells with the
segment's ``s`` cells. ``s = a`` is the case without subsampling.

**Union** (section "Unions"): ``M`` patterns stored on one segment, each adding ``s`` synapses
to random cells, leave ``s_M = n (1 - (1 - s/n)^M)`` distinct synapses on average; the false
match rate of the union is ``P_fm(n, a, s_M, theta)`` with ``s_M`` rounded
(:func:`union_false_match_probability`, ``method="expected"``, the paper's estimate), or the
exact mixture over the distribution of the number of distinct synapses
(``method="exact"``; :func:`union_size_pmf`).

**False negative under noise**: the stored pattern arrives with ``v`` of its ``a`` active cells
replaced by other cells. The segment's ``s`` synapses (a random ``s``-subset of the ``a``
cells) lose ``b`` of their inputs, ``b`` hypergeometric, and the segment misses when fewer than
``theta`` remain:

.. math::
    P_{fn}(a, s, \\theta, v) = \\sum_{b = s - \\theta + 1}^{\\min(s, v)}
        \\frac{\\binom{v}{b}\\binom{a-v}{s-b}}{\\binom{a}{s}}.

**Arithmetic**: every probability is a ratio of exact Python integers (``math.comb``), kept as a
``fractions.Fraction`` (``*_exact``) and rounded once to the nearest float, so values stay exact
far into the tails (1e-25 and below); ``log10_*`` functions give the exponent where even a float
underflows. The union mixture uses log-space sums of ``lgamma`` (relative error ~1e-10).
Nothing is computed with float factorials.

Worked values (checked in ``tests/sdr/test_theory.py`` against the paper's published scripts
and an independent ``fractions``/``mpmath`` evaluation): ``false_match_probability(10000, 300,
24, 12) = 8.38e-13``; ``false_negative_probability(128, 30, 8, v=64) = 7.35e-4``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import torch

from neurosim.backend import InputError

METHODS = ("expected", "exact")


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def _check_nas(n: object, a: object, s: object) -> tuple[int, int, int]:
    n, a, s = _int(n, "n (cells)"), _int(a, "a (active cells)"), _int(s, "s (synapses)")
    if n < 1:
        raise InputError(f"n (cells) must be >= 1, got {n}")
    if not 0 <= a <= n:
        raise InputError(f"a (active cells) must be in 0..n = 0..{n}, got {a}")
    if not 0 <= s <= n:
        raise InputError(f"s (synapses) must be in 0..n = 0..{n}, got {s}")
    return n, a, s


def _check_theta(theta: object, s: int) -> int:
    theta = _int(theta, "theta (threshold)")
    if theta < 0:
        raise InputError(f"theta (threshold) must be >= 0, got {theta}")
    return theta


def _to_float(p: Fraction) -> float:
    # int / int in Python is correctly rounded, even for integers far beyond float range
    return p.numerator / p.denominator


def _log10(p: Fraction) -> float:
    if p == 0:
        return -math.inf
    return math.log10(p.numerator) - math.log10(p.denominator)


# --------------------------------------------------------------------------------------------
# false matches


def overlap_set_size(n: int, w: int, a: int, b: int) -> int:
    """``|Omega(n, w, a, b)| = C(w, b) C(n - w, a - b)``: patterns of ``a`` active cells out of
    ``n`` that share exactly ``b`` cells with a fixed set of ``w`` cells (0 when impossible).

    Examples:
        >>> overlap_set_size(4, 2, 2, 1)   # {0,1} vs 2-subsets of 4 cells: 02 03 12 13
        4
    """
    n, a, w = _check_nas(n, a, w)
    b = _int(b, "b (overlap)")
    if b < 0 or b > w or a - b < 0 or a - b > n - w:
        return 0
    return math.comb(w, b) * math.comb(n - w, a - b)


def overlap_pmf_exact(n: int, a: int, s: int) -> list[Fraction]:
    """``[P(overlap = b) for b = 0..s]`` between a random ``a``-pattern and a fixed ``s``-set."""
    n, a, s = _check_nas(n, a, s)
    total = math.comb(n, a)
    return [Fraction(overlap_set_size(n, s, a, b), total) for b in range(s + 1)]


def overlap_pmf(n: int, a: int, s: int) -> np.ndarray:
    """:func:`overlap_pmf_exact` as float64 ``[s + 1]`` (each entry rounded once)."""
    return np.array([_to_float(p) for p in overlap_pmf_exact(n, a, s)], dtype=np.float64)


def false_match_exact(n: int, a: int, s: int, theta: int) -> Fraction:
    """The false-match probability ``P_fm(n, a, s, theta)`` as an exact fraction."""
    n, a, s = _check_nas(n, a, s)
    theta = _check_theta(theta, s)
    hits = sum(overlap_set_size(n, s, a, b) for b in range(theta, min(s, a) + 1))
    return Fraction(hits, math.comb(n, a))


def false_match_probability(n: int, a: int, s: int, theta: int) -> float:
    """``P_fm(n, a, s, theta)`` (module docstring): a random ``a``-of-``n`` pattern puts at
    least ``theta`` active cells on a segment of ``s`` synapses.

    Exact to the last bit of the float (one rounding of an exact ratio); values below ~1e-308
    underflow, use :func:`log10_false_match_probability` there.

    Examples:
        >>> f"{false_match_probability(10000, 300, 24, 12):.3g}"
        '8.38e-13'
    """
    return _to_float(false_match_exact(n, a, s, theta))


def log10_false_match_probability(n: int, a: int, s: int, theta: int) -> float:
    """``log10 P_fm`` without underflow (``-inf`` when the probability is exactly 0)."""
    return _log10(false_match_exact(n, a, s, theta))


# --------------------------------------------------------------------------------------------
# false negatives under noise


def noise_cells(a: int, *, v: int | None = None, noise: float | None = None) -> int:
    """Replaced cells ``v`` from ``v`` or from a fraction ``noise`` of ``a`` (``round(noise a)``)."""
    a = _int(a, "a (active cells)")
    if (v is None) == (noise is None):
        raise InputError(f"give exactly one of v (cells replaced) and noise (fraction), got "
                         f"v={v}, noise={noise}")  # fmt: skip
    if v is None:
        assert noise is not None
        if not 0.0 <= float(noise) <= 1.0:
            raise InputError(f"noise must be a fraction in [0, 1], got {noise}")
        v = round(float(noise) * a)
    v = _int(v, "v (cells replaced)")
    if not 0 <= v <= a:
        raise InputError(f"v (cells replaced) must be in 0..a = 0..{a}, got {v}")
    return v


def noise_overlap_pmf_exact(a: int, s: int, v: int) -> list[Fraction]:
    """``[P(r active synapses remain) for r = 0..s]`` when ``v`` of the ``a`` cells are replaced."""
    a, s = _int(a, "a (active cells)"), _int(s, "s (synapses)")
    if not 0 <= s <= a:
        raise InputError(f"s (synapses) must be in 0..a = 0..{a} (a subsample), got {s}")
    v = noise_cells(a, v=v)
    total = math.comb(a, s)
    # r remain <=> s - r synapses sit on replaced cells
    return [Fraction(overlap_set_size(a, v, s, s - r), total) for r in range(s + 1)]


def false_negative_exact(a: int, s: int, theta: int, v: int) -> Fraction:
    """``P_fn(a, s, theta, v)`` as an exact fraction (module docstring)."""
    pmf = noise_overlap_pmf_exact(a, s, v)
    theta = _check_theta(theta, s)
    return sum((p for r, p in enumerate(pmf) if r < theta), Fraction(0))


def false_negative_probability(
    a: int, s: int, theta: int, *, v: int | None = None, noise: float | None = None
) -> float:
    """Probability that the stored pattern, with ``v`` of its ``a`` cells replaced (or a
    fraction ``noise``), leaves fewer than ``theta`` of the segment's ``s`` synapses active.

    Examples:
        >>> f"{false_negative_probability(128, 30, 12, noise=0.5):.3g}"
        '0.0717'
    """
    return _to_float(false_negative_exact(a, s, theta, noise_cells(a, v=v, noise=noise)))


# --------------------------------------------------------------------------------------------
# the threshold trade-off


class ThresholdCurve(NamedTuple):
    """Errors of a segment for every threshold.

    Attributes:
        theta: ``[K]`` thresholds ``1..s``.
        false_match: ``[K]`` ``P_fm(n, a, s, theta)``.
        false_negative: ``[K]`` ``P_fn(a, s, theta, v)``.
        error: ``[K]`` ``false_match + weight * false_negative``.
    """

    theta: np.ndarray
    false_match: np.ndarray
    false_negative: np.ndarray
    error: np.ndarray


class ThresholdChoice(NamedTuple):
    """The error-minimising threshold and its errors (floats of exact values)."""

    theta: int
    false_match: float
    false_negative: float
    error: float


def _exact_curve(
    n: int, a: int, s: int, v: int, weight: Fraction
) -> list[tuple[int, Fraction, Fraction]]:
    n, a, s = _check_nas(n, a, s)
    if s > a:
        raise InputError(f"s (synapses) must be <= a = {a} to model noise on the stored pattern")
    pmf_match = overlap_pmf_exact(n, a, s)
    pmf_noise = noise_overlap_pmf_exact(a, s, v)
    rows = []
    for theta in range(1, s + 1):
        fm = sum(pmf_match[theta:], Fraction(0))
        fn = sum(pmf_noise[:theta], Fraction(0))
        rows.append((theta, fm, fn))
    return rows


def error_curve(
    n: int,
    a: int,
    s: int,
    *,
    v: int | None = None,
    noise: float | None = None,
    false_negative_weight: float = 1.0,
) -> ThresholdCurve:
    """False match, false negative and their (weighted) sum for ``theta = 1..s``."""
    v = noise_cells(_int(a, "a (active cells)"), v=v, noise=noise)
    weight = Fraction(false_negative_weight)
    rows = _exact_curve(n, a, s, v, weight)
    theta = np.array([r[0] for r in rows], dtype=np.int64)
    fm = np.array([_to_float(r[1]) for r in rows])
    fn = np.array([_to_float(r[2]) for r in rows])
    err = np.array([_to_float(r[1] + weight * r[2]) for r in rows])
    return ThresholdCurve(theta, fm, fn, err)


def optimal_threshold(
    n: int,
    a: int,
    s: int,
    *,
    v: int | None = None,
    noise: float | None = None,
    false_negative_weight: float = 1.0,
) -> ThresholdChoice:
    """The ``theta`` in ``1..s`` minimising ``P_fm + weight * P_fn`` (exact comparison; the
    smallest such ``theta`` on ties).

    Args:
        n, a, s: cells, active cells, synapses (``s <= a``).
        v / noise: cells of the stored pattern replaced, as a count or a fraction of ``a``.
        false_negative_weight: cost of a miss relative to a false match.
    """
    if not (math.isfinite(false_negative_weight) and false_negative_weight >= 0):
        raise InputError(f"false_negative_weight must be finite and >= 0, got "
                         f"{false_negative_weight}")  # fmt: skip
    if _int(s, "s (synapses)") < 1:
        raise InputError("optimal_threshold needs s >= 1 synapse")
    v = noise_cells(_int(a, "a (active cells)"), v=v, noise=noise)
    weight = Fraction(false_negative_weight)
    rows = _exact_curve(n, a, s, v, weight)
    theta, fm, fn = min(rows, key=lambda r: (r[1] + weight * r[2], r[0]))
    return ThresholdChoice(theta, _to_float(fm), _to_float(fn), _to_float(fm + weight * fn))


# --------------------------------------------------------------------------------------------
# unions


def union_size(n: int, s: int, m: int) -> float:
    """Expected number of distinct synapses ``s_M = n (1 - (1 - s/n)^M)`` after storing ``M``
    random ``s``-subsets of ``n`` cells on one segment.

    Examples:
        >>> round(union_size(1000, 20, 1), 9), round(union_size(1000, 20, 2), 9)  # 40 - 20*20/1000
        (20.0, 39.6)
    """
    n, s = _int(n, "n (cells)"), _int(s, "s (synapses)")
    m = _int(m, "M (patterns)")
    if n < 1 or not 0 <= s <= n or m < 0:
        raise InputError(f"union_size needs n >= 1, 0 <= s <= n, M >= 0; got {n}, {s}, {m}")
    return n * (1.0 - (1.0 - s / n) ** m)


def _log_comb(n: np.ndarray | int, k: np.ndarray | int) -> np.ndarray:
    """``log C(n, k)`` element-wise in float64 (``-inf`` where ``k < 0`` or ``k > n``)."""
    n_t = torch.as_tensor(np.asarray(n, dtype=np.float64))
    k_t = torch.as_tensor(np.asarray(k, dtype=np.float64))
    n_b, k_b = torch.broadcast_tensors(n_t, k_t)
    valid = (k_b >= 0) & (k_b <= n_b)
    kk = torch.where(valid, k_b, torch.zeros_like(k_b))
    nn_ = torch.where(valid, n_b, torch.zeros_like(n_b))
    out = torch.lgamma(nn_ + 1) - torch.lgamma(kk + 1) - torch.lgamma(nn_ - kk + 1)
    return torch.where(valid, out, torch.full_like(out, -math.inf)).numpy()


def _logsumexp(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    top = np.max(values, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(values - top), axis=axis, keepdims=True)) + top
    return np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


def union_size_pmf(n: int, s: int, m: int) -> np.ndarray:
    """Distribution ``[n + 1]`` of the number ``u`` of distinct cells after ``M`` random
    ``s``-subsets of ``n`` cells (exact recursion, summed in log space).

    Each new subset adds ``j`` new cells with probability ``C(n-u, j) C(u, s-j) / C(n, s)``.
    Its mean is :func:`union_size` (an identity the tests check).
    """
    n, s = _int(n, "n (cells)"), _int(s, "s (synapses)")
    m = _int(m, "M (patterns)")
    if n < 1 or not 0 <= s <= n or m < 0:
        raise InputError(f"union_size_pmf needs n >= 1, 0 <= s <= n, M >= 0; got {n}, {s}, {m}")
    u = np.arange(n + 1)
    j = np.arange(s + 1)[:, None]
    # log P(u -> u + j) for every (j, u): [s + 1, n + 1]
    step = _log_comb(n - u[None, :], j) + _log_comb(u[None, :], s - j) - _log_comb(n, s)
    logp = np.full(n + 1, -np.inf)
    logp[0] = 0.0
    for _ in range(m):
        moved = np.full((s + 1, n + 1), -np.inf)
        for jj in range(s + 1):  # mass at u moves to u + jj
            moved[jj, jj:] = (logp + step[jj])[: n + 1 - jj]
        logp = _logsumexp(moved, axis=0)
    return np.exp(logp)


def _log_false_match(n: int, a: int, s: np.ndarray, theta: int) -> np.ndarray:
    """``log P_fm(n, a, s_i, theta)`` for an array of segment sizes ``s_i`` (log space)."""
    s = np.asarray(s)[:, None]
    b = np.arange(theta, a + 1)[None, :]
    terms = _log_comb(s, b) + _log_comb(n - s, a - b)
    if terms.shape[1] == 0:
        return np.full(s.shape[0], -np.inf)
    return _logsumexp(terms, axis=1) - _log_comb(n, a)


def union_false_match_probability(
    n: int, a: int, s: int, theta: int, m: int, *, method: str = "expected"
) -> float:
    """False-match probability of a segment that stores ``M`` patterns of ``s`` synapses each.

    ``method="expected"`` is the paper's estimate ``P_fm(n, a, round(s_M), theta)``;
    ``method="exact"`` averages ``P_fm(n, a, u, theta)`` over :func:`union_size_pmf`.
    """
    if method not in METHODS:
        raise InputError(f"union method must be one of {METHODS}, got {method!r}")
    n, a, s = _check_nas(n, a, s)
    theta = _check_theta(theta, s)
    if method == "expected":
        return false_match_probability(n, a, round(union_size(n, s, m)), theta)
    pmf = union_size_pmf(n, s, m)
    support = np.flatnonzero(pmf > 0)
    terms = np.log(pmf[support]) + _log_false_match(n, a, support, theta)
    return float(np.exp(_logsumexp(terms)))


def union_capacity(
    n: int, a: int, s: int, theta: int, max_false_match: float, *, m_max: int = 10_000
) -> int:
    """Largest ``M`` (``<= m_max``) whose expected-union false-match rate stays at or below
    ``max_false_match`` (0 if even one pattern exceeds it)."""
    best = 0
    lo, hi = 1, m_max
    while lo <= hi:  # P_fm grows with M: bisect
        mid = (lo + hi) // 2
        if union_false_match_probability(n, a, s, theta, mid) <= max_false_match:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best
