"""SDR-theory figures (Ahmad & Hawkins 2016): error vs threshold, false match vs population size,
union capacity, and a Monte-Carlo vs theory check.

Every function takes plain arrays (theory curves from :mod:`neurosim.sdr.theory`, Monte-Carlo
rates from :mod:`neurosim.sdr.simulate`) and returns a matplotlib ``Figure``; probabilities are
drawn on a logarithmic axis, so zeros (below float range) are left out of the line::

    curve = error_curve(2048, 128, 30, noise=0.5)
    fig = plot_error_vs_threshold(curve.theta, curve.false_match,
                                  {"50% noise": curve.false_negative}, title="n=2048, a=128")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from neurosim.backend import InputError
from neurosim.plotting.style import PALETTE, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _vector(values: object, name: str, length: int | None = None) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0 or (length is not None and v.size != length):
        want = f"[{length}]" if length is not None else "a non-empty 1-D array"
        raise InputError(f"{name} must be {want}, got shape {v.shape}")
    return v


def _positive(y: np.ndarray) -> np.ndarray:
    """Zeros and negatives become NaN so a log axis skips them."""
    out = y.copy()
    out[~(out > 0)] = np.nan
    return out


def plot_error_vs_threshold(
    theta: object,
    false_match: object,
    false_negative: Mapping[str, object],
    *,
    title: str,
    optimum: Mapping[str, int] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """False-match rate (one line) and false-negative rate per noise level vs ``theta``.

    Args:
        theta: ``[K]`` thresholds.
        false_match: ``[K]`` ``P_fm`` (independent of the noise).
        false_negative: ``{label: [K] P_fn}`` per noise level; the total error
            ``P_fm + P_fn`` of each is drawn dashed in the same colour.
        optimum: ``{label: theta*}`` error-minimising thresholds, marked with a dot.
    """
    t = _vector(theta, "theta")
    fm = _vector(false_match, "false_match", len(t))
    if not false_negative:
        raise InputError("plot_error_vs_threshold needs at least one false-negative curve")
    fig, ax = new_axes(ax, figsize=(6.5, 4.2))
    ax.semilogy(t, _positive(fm), color="black", lw=2, label="false match $P_{fm}$")
    for i, (label, values) in enumerate(false_negative.items()):
        fn = _vector(values, f"false_negative[{label!r}]", len(t))
        colour = PALETTE[i % len(PALETTE)]
        ax.semilogy(t, _positive(fn), color=colour, label=f"false negative, {label}")
        ax.semilogy(t, _positive(fm + fn), color=colour, ls="--", lw=1,
                    label=f"total error, {label}")  # fmt: skip
        if optimum and label in optimum:
            k = int(np.flatnonzero(t == optimum[label])[0])
            ax.plot(t[k], fm[k] + fn[k], "o", color=colour, ms=6)
    ax.set_xlabel(r"segment threshold $\theta$ (active synapses)")
    ax.set_ylabel("probability")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_false_match_vs_n(
    n_values: object,
    curves: Mapping[str, object],
    *,
    title: str,
    ax: Axes | None = None,
) -> Figure:
    """``P_fm`` vs population size ``n`` (log-log), one line per label (e.g. ``a = 64``)."""
    n = _vector(n_values, "n_values")
    if not curves:
        raise InputError("plot_false_match_vs_n needs at least one curve")
    fig, ax = new_axes(ax, figsize=(6.0, 4.2))
    for i, (label, values) in enumerate(curves.items()):
        y = _vector(values, f"curves[{label!r}]", len(n))
        ax.loglog(n, _positive(y), color=PALETTE[i % len(PALETTE)], marker="o", ms=3, label=label)
    ax.set_xlabel("population size n (cells)")
    ax.set_ylabel("false-match probability $P_{fm}$")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def plot_union_capacity(
    m_values: object,
    curves: Mapping[str, object],
    *,
    title: str,
    simulated: Mapping[str, tuple[object, object, object]] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """False-match rate of a segment storing ``M`` patterns (their union) vs ``M``.

    Args:
        m_values: ``[K]`` numbers of stored patterns.
        curves: ``{label: [K] P_fm}`` theory curves.
        simulated: ``{label: (M, rate, error)}`` Monte-Carlo points; ``error`` is a half width
            ``[K]`` or the ``[2, K]`` distances to the lower and upper interval ends.
    """
    m = _vector(m_values, "m_values")
    if not curves:
        raise InputError("plot_union_capacity needs at least one curve")
    fig, ax = new_axes(ax, figsize=(6.0, 4.2))
    for i, (label, values) in enumerate(curves.items()):
        y = _vector(values, f"curves[{label!r}]", len(m))
        ax.semilogy(m, _positive(y), color=PALETTE[i % len(PALETTE)], label=label)
    for i, (label, (mm, rate, half)) in enumerate((simulated or {}).items()):
        colour = PALETTE[(i + len(curves)) % len(PALETTE)]
        ax.errorbar(np.asarray(mm, dtype=np.float64), np.asarray(rate, dtype=np.float64),
                    yerr=np.asarray(half, dtype=np.float64), fmt="s", ms=4, color=colour,
                    capsize=3, label=label)  # fmt: skip
    ax.set_xlabel("patterns stored on the segment M")
    ax.set_ylabel("false-match probability")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def plot_simulation_check(
    theta: object,
    theory: object,
    rate: object,
    low: object,
    high: object,
    *,
    title: str,
    label: str = "Monte Carlo",
    ax: Axes | None = None,
) -> Figure:
    """Theory vs Monte-Carlo rate with its confidence interval, per threshold (log axis)."""
    t = _vector(theta, "theta")
    th = _vector(theory, "theory", len(t))
    r, lo, hi = (_vector(v, k, len(t)) for v, k in ((rate, "rate"), (low, "low"), (high, "high")))
    fig, ax = new_axes(ax, figsize=(6.0, 4.2))
    ax.semilogy(t, _positive(th), color="black", label="exact theory")
    shown = r > 0
    yerr = np.clip(np.vstack([r - lo, hi - r])[:, shown], 0.0, None)  # float rounding at 0, 1
    ax.errorbar(t[shown], r[shown], yerr=yerr, fmt="o", ms=4, color=PALETTE[1], capsize=3,
                label=f"{label} (99.99% CI)")  # fmt: skip
    ax.set_xlabel(r"threshold $\theta$ (active synapses)")
    ax.set_ylabel("probability")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig
