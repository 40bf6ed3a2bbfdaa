"""Place-recognition figures: precision-recall curves, similarity matrices, module activity.

All functions take plain arrays (see :mod:`neurosim.metrics.place` for the conventions) and
return a matplotlib ``Figure``::

    fig = plot_pr_curves({"snn": S1, "sad": S2}, ground_truth, title="corridor, seed 0")
    fig = plot_similarity_matrix(S1, ground_truth, title="SNN ensemble, corridor")
    fig = plot_firing_histogram(counts, title="hyperactive counts, corridor")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from neurosim.backend import InputError
from neurosim.metrics.place import average_precision, pr_curve
from neurosim.plotting.style import PALETTE, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_pr_curves(
    similarities: Mapping[str, object],
    ground_truth: object,
    *,
    title: str,
    mode: str = "best_match",
    ax: Axes | None = None,
) -> Figure:
    """One precision-recall curve per method (legend: its average precision)."""
    if not similarities:
        raise InputError("plot_pr_curves needs at least one similarity matrix")
    fig, ax = new_axes(ax, figsize=(5.5, 4.5))
    for k, (name, sim) in enumerate(similarities.items()):
        precision, recall = pr_curve(sim, ground_truth, mode=mode)
        ap = average_precision(sim, ground_truth, mode=mode)
        ax.step(recall, precision, where="post", color=PALETTE[k % len(PALETTE)], lw=1.6,
                label=f"{name} (AP {ap:.3f})")  # fmt: skip
    ax.set_xlim(0.0, 1.02)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("recall (fraction of queries)")
    ax.set_ylabel("precision (fraction of accepted matches)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def plot_similarity_matrix(
    similarity: object,
    ground_truth: object | None = None,
    *,
    title: str,
    ax: Axes | None = None,
) -> Figure:
    """Heat map of ``similarity [Q, R]``; best match per query as dots, ground truth outlined."""
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim != 2:
        raise InputError(f"similarity must be [queries, references], got shape {s.shape}")
    fig, ax = new_axes(ax, figsize=(6.0, 5.0))
    image = ax.imshow(s, aspect="auto", cmap="viridis", interpolation="nearest")
    if ground_truth is not None:
        g = np.asarray(ground_truth, dtype=bool)
        if g.shape != s.shape:
            raise InputError(f"ground_truth {g.shape} must match similarity {s.shape}")
        ax.contour(g.astype(float), levels=[0.5], colors="white", linewidths=0.6)
    best = s.argmax(axis=1)
    ax.scatter(best, np.arange(len(best)), s=4, color=PALETTE[1], label="best match")
    ax.set_xlabel("reference place (index)")
    ax.set_ylabel("query (index)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower left")
    fig.colorbar(image, ax=ax, label="similarity (higher = more alike)")
    return fig


def plot_firing_histogram(
    counts: object,
    *,
    title: str,
    xlabel: str = "reference places that make the neuron fire",
    ax: Axes | None = None,
) -> Figure:
    """Histogram per module of a per-neuron count ``[M, N]`` (e.g. hyperactive counts)."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim == 1:
        c = c[None]
    if c.ndim != 2 or c.size == 0:
        raise InputError(f"counts must be [modules, neurons], got shape {np.asarray(counts).shape}")
    fig, ax = new_axes(ax, figsize=(6.0, 4.0))
    bins = list(np.linspace(0, max(1.0, c.max()) + 1, 31))
    for m in range(c.shape[0]):
        colour = PALETTE[m % len(PALETTE)]
        ax.hist(c[m], bins=bins, histtype="step", lw=1.3, color=colour, label=f"module {m}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("neurons (count)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if c.shape[0] <= 12:
        ax.legend(fontsize=7, loc="upper right", ncol=2)
    return fig
