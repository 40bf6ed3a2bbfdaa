"""Plots of ELM memory units and of the long-horizon tasks (adding, neuron fitting).

Every function takes plain arrays or tensors (never a results file or a model), draws into
``ax`` when given, and returns the figure:

* :func:`plot_memory_traces` - memory-unit trajectories ``m_t``, coloured by time constant;
* :func:`plot_adding_example` - an adding-task input raster with the two number patterns marked;
* :func:`plot_task_curves` - several learning curves on one axis (e.g. accuracy per model);
* :func:`plot_accuracy_by_delay` - final accuracy against the delay, one line per model;
* :func:`plot_neuron_fit` - predicted vs simulated somatic voltage and spike probability;
* :func:`plot_fit_vs_params` - spike AUC and voltage RMSE against the parameter count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neurosim.backend import InputError
from neurosim.plotting.style import PALETTE, new_axes, pyplot

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _array(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0:
        raise InputError(f"{name} is empty")
    return arr


def plot_memory_traces(
    memory: Any,
    *,
    tau: Any = None,
    sample: int = 0,
    units: Sequence[int] | None = None,
    dt: float = 1.0,
    time_unit: str = "steps",
    marks: Mapping[str, float] | None = None,
    title: str = "ELM memory units",
    ax: Axes | None = None,
) -> Figure:
    """Memory trajectories ``m_t`` against time, one line per unit, coloured by ``log tau_m``.

    Args:
        memory: ``[T, d_m]`` or ``[T, B, d_m]`` (batch item ``sample`` is drawn).
        tau: the units' time constants ``[d_m]`` (colour and colour bar); ``None``: palette.
        units: which units to draw (default: up to 12 spread over the range).
        dt, time_unit: the x axis is ``t * dt`` in ``time_unit``.
        marks: vertical dashed lines ``{label: time}`` (e.g. the pattern onsets).
    """
    arr = _array(memory, "memory")
    if arr.ndim == 3:
        if not 0 <= sample < arr.shape[1]:
            raise InputError(f"sample {sample} out of range for batch {arr.shape[1]}")
        arr = arr[:, sample]
    if arr.ndim != 2:
        raise InputError(f"memory must be [T, d_m] or [T, B, d_m], got shape {arr.shape}")
    steps, count = arr.shape
    chosen = (
        list(np.unique(np.linspace(0, count - 1, min(count, 12)).round().astype(int)))
        if units is None
        else list(units)
    )
    for u in chosen:
        if not 0 <= u < count:
            raise InputError(f"unit {u} out of range for {count} memory units")
    fig, axes = new_axes(ax, figsize=(8.0, 3.6))
    time = np.arange(1, steps + 1) * dt
    cmap = pyplot().get_cmap("viridis")
    taus = None if tau is None else _array(tau, "tau").reshape(-1)
    if taus is not None and taus.shape[0] != count:
        raise InputError(f"tau has {taus.shape[0]} values for {count} memory units")
    if taus is not None:
        lo, hi = np.log10(taus.min()), np.log10(taus.max())
        span = hi - lo if hi > lo else 1.0
    for i, u in enumerate(chosen):
        if taus is not None:
            colour = cmap((np.log10(taus[u]) - lo) / span)
            label = f"unit {u} (tau {taus[u] * dt:.3g} {time_unit})"
        else:
            colour = PALETTE[i % len(PALETTE)]
            label = f"unit {u}"
        axes.plot(time, arr[:, u], lw=1.1, color=colour, label=label)
    for j, (label, at) in enumerate((marks or {}).items()):
        axes.axvline(at * dt, ls="--", lw=0.9, color=PALETTE[(j + 1) % len(PALETTE)], label=label)
    axes.set_xlabel(f"time ({time_unit})")
    axes.set_ylabel("memory m (a.u.)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="x-small")
    return fig


def plot_adding_example(
    x: Any,
    *,
    onsets: Sequence[int],
    pattern_steps: int,
    values: Sequence[int] | None = None,
    dt: float = 1.0,
    time_unit: str = "steps",
    title: str = "adding task input",
    ax: Axes | None = None,
) -> Figure:
    """Input spike raster ``[T, channels]`` with the number patterns shaded and labelled."""
    arr = _array(x, "x")
    if arr.ndim != 2:
        raise InputError(f"x must be one sequence [T, channels], got shape {arr.shape}")
    fig, axes = new_axes(ax, figsize=(8.0, 3.2))
    t, c = np.nonzero(arr)
    axes.scatter(t * dt, c, s=2.0, c="k", marker=".")
    for i, onset in enumerate(onsets):
        label = f"pattern {i + 1}" + (f" (value {values[i]})" if values is not None else "")
        axes.axvspan(
            onset * dt, (onset + pattern_steps) * dt, color=PALETTE[i % len(PALETTE)],
            alpha=0.2, label=label,
        )  # fmt: skip
    axes.set_xlim(0, arr.shape[0] * dt)
    axes.set_ylim(-0.5, arr.shape[1] - 0.5)
    axes.set_xlabel(f"time ({time_unit})")
    axes.set_ylabel("input channel")
    axes.set_title(title)
    axes.legend(loc="upper right", fontsize="small")
    return fig


def plot_task_curves(
    curves: Mapping[str, tuple[Any, Any]],
    *,
    ylabel: str,
    xlabel: str = "training step",
    chance: float | None = None,
    title: str = "learning curves",
    ax: Axes | None = None,
) -> Figure:
    """Several ``{label: (steps, values)}`` curves on one axis (optionally a chance line)."""
    if not curves:
        raise InputError("plot_task_curves needs at least one curve")
    fig, axes = new_axes(ax, figsize=(6.4, 4.0))
    for i, (label, (steps, values)) in enumerate(curves.items()):
        axes.plot(_array(steps, "steps"), _array(values, label), lw=1.3,
                  color=PALETTE[i % len(PALETTE)], label=label)  # fmt: skip
    if chance is not None:
        axes.axhline(chance, ls=":", color="grey", label="chance")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return fig


def plot_accuracy_by_delay(
    results: Mapping[str, Mapping[int, float | Sequence[float]]],
    *,
    chance: float | None = None,
    time_unit: str = "steps",
    title: str = "adding task: accuracy vs delay",
    ax: Axes | None = None,
) -> Figure:
    """Final accuracy against the delay, one line per model (several seeds: mean and range)."""
    if not results:
        raise InputError("plot_accuracy_by_delay needs results")
    fig, axes = new_axes(ax, figsize=(6.0, 4.0))
    for i, (model, by_delay) in enumerate(results.items()):
        delays = sorted(by_delay)
        vals = [np.atleast_1d(np.asarray(by_delay[d], dtype=np.float64)) for d in delays]
        mean = np.array([v.mean() for v in vals])
        lo = mean - np.array([v.min() for v in vals])
        hi = np.array([v.max() for v in vals]) - mean
        axes.errorbar(delays, mean, yerr=[lo, hi], marker="o", capsize=3, lw=1.3,
                      color=PALETTE[i % len(PALETTE)], label=model)  # fmt: skip
    if chance is not None:
        axes.axhline(chance, ls=":", color="grey", label="chance")
    axes.set_xlabel(f"delay between the patterns ({time_unit})")
    axes.set_ylabel("held-out accuracy")
    axes.set_ylim(0, 1.02)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return fig


def plot_neuron_fit(
    voltage: Any,
    predicted_voltage: Any,
    spikes: Any,
    spike_probability: Any,
    *,
    dt: float = 1.0,
    time_unit: str = "ms",
    title: str = "neuron fit",
) -> Figure:
    """Two panels over one sequence: somatic voltage (simulated vs predicted, mV) and the
    predicted spike probability with the simulated spikes marked."""
    v, pv = (
        _array(voltage, "voltage").reshape(-1),
        _array(predicted_voltage, "predicted").reshape(-1),
    )
    s, ps = _array(spikes, "spikes").reshape(-1), _array(spike_probability, "prob").reshape(-1)
    if not (v.shape == pv.shape == s.shape == ps.shape):
        raise InputError(
            f"voltage {v.shape}, prediction {pv.shape}, spikes {s.shape} and probability "
            f"{ps.shape} must be one sequence of the same length"
        )
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.0, 5.0), sharex=True)
    time = np.arange(v.shape[0]) * dt
    top.plot(time, v, lw=1.0, color=PALETTE[7], label="simulated")
    top.plot(time, pv, lw=1.0, color=PALETTE[1], label="ELM prediction")
    top.set_ylabel("soma voltage (mV)")
    top.legend(fontsize="small", loc="upper right")
    top.set_title(title)
    bottom.plot(time, ps, lw=1.0, color=PALETTE[0], label="predicted spike probability")
    hits = np.nonzero(s > 0.5)[0]
    bottom.plot(time[hits], np.ones_like(hits, dtype=float), "|", color="k", ms=10,
                label="simulated spikes")  # fmt: skip
    bottom.set_ylim(-0.05, 1.1)
    bottom.set_xlabel(f"time ({time_unit})")
    bottom.set_ylabel("spike probability")
    bottom.legend(fontsize="small", loc="upper right")
    for a in (top, bottom):
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_fit_vs_params(
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "fitting a simulated neuron: accuracy vs size",
) -> Figure:
    """Spike AUC and voltage RMSE against the trainable parameter count (log axis), one line
    per ``row["model"]``; rows hold ``model``, ``params``, ``auc`` and ``rmse``."""
    if not rows:
        raise InputError("plot_fit_vs_params needs at least one row")
    for row in rows:
        missing = {"model", "params", "auc", "rmse"} - set(row)
        if missing:
            raise InputError(f"row {dict(row)} lacks {sorted(missing)}")
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.8))
    models = list(dict.fromkeys(str(r["model"]) for r in rows))
    for i, model in enumerate(models):
        sub = sorted((r for r in rows if r["model"] == model), key=lambda r: float(r["params"]))
        p = [float(r["params"]) for r in sub]
        colour = PALETTE[i % len(PALETTE)]
        left.plot(p, [float(r["auc"]) for r in sub], "o-", color=colour, label=model)
        right.plot(p, [float(r["rmse"]) for r in sub], "o-", color=colour, label=model)
    for a, label in ((left, "spike prediction AUC"), (right, "voltage RMSE (mV)")):
        a.set_xscale("log")
        a.set_xlabel("trainable parameters")
        a.set_ylabel(label)
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
