"""Continual-learning figures: the accuracy matrix, ACC/BWT per method, per-task accuracy curves.

All functions take plain arrays (an accuracy matrix ``R[i, j]`` = accuracy on task ``j`` after
training task ``i``, NaN where not measured; see :mod:`neurosim.metrics.continual`) and return a
matplotlib ``Figure``::

    fig = plot_accuracy_matrix(R, title="hlop, permuted MNIST, seed 0")
    fig = plot_acc_bwt(["finetune", "hlop"], acc=[[0.6, 0.62], [0.93, 0.94]],
                       bwt=[[-0.35, -0.33], [-0.01, -0.02]], title="run 2024-...")
    fig = plot_task_curves(R, title="hlop, seed 0")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from neurosim.backend import InputError
from neurosim.metrics.continual import check_accuracy_matrix
from neurosim.plotting.style import PALETTE, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _task_names(n: int, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [str(k) for k in range(n)]
    if len(names) != n:
        raise InputError(f"task_names has {len(names)} names for {n} tasks")
    return [str(s) for s in names]


def plot_accuracy_matrix(
    matrix: object,
    *,
    title: str,
    task_names: Sequence[str] | None = None,
    annotate: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """Heat map of ``R`` (rows: after training task ``i``; columns: tested on task ``j``).

    Values are shown in percent in each measured cell; unmeasured (NaN) cells stay blank.
    """
    r = check_accuracy_matrix(matrix)
    t = r.shape[0]
    size = min(2.0 + 0.55 * t, 9.0)
    fig, ax = new_axes(ax, figsize=(size + 1.2, size))
    image = ax.imshow(np.ma.masked_invalid(r) * 100.0, vmin=0.0, vmax=100.0, cmap="viridis")
    names = _task_names(t, task_names)
    ax.set_xticks(range(t), names, rotation=45 if max(map(len, names)) > 3 else 0, ha="right")
    ax.set_yticks(range(t), names)
    ax.set_xlabel("tested on task")
    ax.set_ylabel("after training task")
    ax.set_title(title)
    if annotate:
        font = 8 if t <= 10 else 6
        for i in range(t):
            for j in range(t):
                if not np.isnan(r[i, j]):
                    value = r[i, j] * 100.0
                    colour = "black" if value > 60 else "white"
                    ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=font,
                            color=colour)  # fmt: skip
    fig.colorbar(image, ax=ax, label="test accuracy (%)", fraction=0.046, pad=0.04)
    return fig


def _per_method(values: object, n_methods: int, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] != n_methods or a.shape[1] == 0:
        raise InputError(
            f"{name} must be [methods] or [methods, seeds] with {n_methods} methods, "
            f"got shape {np.asarray(values).shape}"
        )
    return a


def plot_acc_bwt(
    methods: Sequence[str],
    acc: object,
    bwt: object,
    *,
    title: str,
    reference: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """ACC and BWT per method: bars of the mean over seeds, one dot per seed, error bar = SD.

    Args:
        methods: method names (one bar pair each).
        acc: ``[methods]`` or ``[methods, seeds]`` mean final accuracies in ``[0, 1]``.
        bwt: same shape, backward transfer in ``[-1, 1]``; NaN where not defined (e.g. a joint
            multitask run), drawn as no bar.
        title: names the run.
        reference: optional accuracy drawn as a dashed line (e.g. the multitask bound).
    """
    names = [str(m) for m in methods]
    if not names:
        raise InputError("plot_acc_bwt needs at least one method")
    a = _per_method(acc, len(names), "acc") * 100.0
    b = _per_method(bwt, len(names), "bwt") * 100.0
    fig, ax = new_axes(ax, figsize=(max(5.0, 1.1 * len(names) + 2.5), 4.0))
    x = np.arange(len(names))
    width = 0.38
    for offset, values, label, colour in (
        (-width / 2, a, "ACC", PALETTE[0]),
        (width / 2, b, "BWT", PALETTE[1]),
    ):
        kept = [v[~np.isnan(v)] for v in values]
        mean = np.array([v.mean() if len(v) else np.nan for v in kept])
        sd = np.array([v.std() if len(v) else 0.0 for v in kept])
        defined = ~np.isnan(mean)
        ax.bar(x[defined] + offset, mean[defined], width, label=label, color=colour,
               yerr=sd[defined] if values.shape[1] > 1 else None, capsize=3)  # fmt: skip
        for k in np.flatnonzero(defined):
            seeds = values[k][~np.isnan(values[k])]
            ax.scatter(np.full(len(seeds), x[k] + offset), seeds, s=10, color="black", zorder=3)
            ax.annotate(f"{mean[k]:.1f}", (x[k] + offset, mean[k]), ha="center",
                        va="bottom" if mean[k] >= 0 else "top", fontsize=8,
                        xytext=(0, 2 if mean[k] >= 0 else -2), textcoords="offset points")  # fmt: skip
    if reference is not None:
        ax.axhline(reference * 100.0, ls="--", color="grey", lw=1, label="multitask ACC")
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xticks(x, names)
    ax.set_xlabel("method")
    ax.set_ylabel("ACC / BWT (%)")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_task_curves(
    matrix: object,
    *,
    title: str,
    task_names: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Accuracy of each task (one line each) after training each task, from ``R[:, j]``.

    A task's line starts when it is learned; a flat line at the top means no forgetting.
    """
    r = check_accuracy_matrix(matrix)
    t = r.shape[0]
    names = _task_names(t, task_names)
    fig, ax = new_axes(ax, figsize=(6.5, 4.0))
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    for j in range(t):
        rows = np.arange(j, t)
        values = r[j:, j]
        keep = ~np.isnan(values)
        if not keep.any():
            continue
        colour = PALETTE[j] if t <= len(PALETTE) else cmap(j / max(t - 1, 1))
        ax.plot(rows[keep], values[keep] * 100.0, marker="o", ms=3, color=colour,
                label=f"task {names[j]}")  # fmt: skip
    ax.set_xticks(range(t), names)
    ax.set_xlabel("after training task")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
