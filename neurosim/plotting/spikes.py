"""Spike figures: rasters, membrane traces and firing-rate histograms.

Every function takes plain arrays or tensors, time-major like the rest of neurosim: ``[T, N]``
(``T`` steps, ``N`` neurons) or ``[T, B, ...]`` with ``sample=`` picking one batch item (its
features are flattened into neurons). ``dt`` is the duration of one step in **milliseconds**;
without it the time axis counts steps and rates are in spikes per step::

    out, states = net(x)                                         # spikes [T, B, N]
    fig = plot_spike_raster(spikes, sample=0, dt=1.0, title="run 42: hidden layer, digit 0")
    fig = plot_membrane_traces(v, sample=0, threshold=1.0, spikes=spikes, title="run 42")
    fig = plot_firing_rates(spikes, dt=1.0, title="run 42: hidden rates")  # mean over B
    save_figure(fig, "plots/rates.png")

The same functions are importable from :mod:`neurosim.monitors` (where they used to live).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neurosim.backend import InputError
from neurosim.plotting.style import PALETTE, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_firing_rates", "plot_membrane_traces", "plot_spike_raster", "series_colours"]


def _numpy(x: Any, what: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().float().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{what} must be a numeric array or tensor, got {type(x).__name__}"
        ) from exc
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise InputError(f"{what} must be time-major [T, ...] with T >= 1, got shape {arr.shape}")
    return arr


def _as_2d(x: Any, sample: int | None, what: str) -> np.ndarray:
    """``[T, N]`` numpy from ``[T]``, ``[T, N]`` or ``[T, B, ...]`` (batch item ``sample``)."""
    arr = _numpy(x, what)
    if arr.ndim == 1:
        if sample is not None:
            raise InputError(f"{what} of shape {arr.shape} is [T]; sample= needs [T, B, ...]")
        return arr[:, None]
    if arr.ndim == 2:
        if sample is not None:
            raise InputError(f"{what} of shape {arr.shape} is [T, N]; sample= needs [T, B, ...]")
        return arr
    if sample is None:
        raise InputError(
            f"{what} of shape {arr.shape} has a batch axis ([T, B, ...]); pass sample=<index>"
        )
    if not -arr.shape[1] <= sample < arr.shape[1]:
        raise InputError(f"{what}: sample {sample} out of range for batch {arr.shape[1]}")
    arr = arr[:, sample]
    return arr.reshape(arr.shape[0], -1)


def _check_dt(dt: float | None) -> None:
    if dt is not None and not (np.isfinite(dt) and dt > 0):
        raise InputError(f"dt must be a positive step duration in ms, got {dt!r}")


def _time_axis(axes: Axes, dt: float | None) -> None:
    """Label the x axis ``time step`` (integer ticks) or ``time (ms)``."""
    if dt is None:
        from matplotlib.ticker import MaxNLocator

        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("time step")
    else:
        axes.set_xlabel("time (ms)")


def series_colours(n: int) -> list[Any]:
    """``n`` colours that separate: :data:`~neurosim.plotting.style.PALETTE` for up to 8 series,
    matplotlib's ``tab10`` up to 10, then evenly spaced ``viridis`` colours."""
    if n <= len(PALETTE):
        return list(PALETTE[:n])
    import matplotlib

    if n <= 10:
        return [matplotlib.colormaps["tab10"](k) for k in range(n)]
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(k / (n - 1)) for k in range(n)]


def plot_spike_raster(
    spikes: Any,
    *,
    sample: int | None = None,
    dt: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    marker_size: float | None = None,
) -> Figure:
    """Spike raster: a tick at ``(t * dt, n)`` for every nonzero ``spikes[t, n]``.

    Args:
        spikes: ``[T, N]``, or ``[T, B, ...]`` with ``sample`` picking the batch item.
        sample: batch item to draw (required when there is a batch axis).
        dt: step duration in ms (x axis in ms); ``None``: the x axis counts steps.
        title: names the run (default: the spike and neuron counts).
        ax: draw into these axes; default a new figure.
        marker_size: tick size in points squared (default: about one neuron row high).

    Returns:
        the figure; its first collection holds one point per spike.
    """
    _check_dt(dt)
    arr = _as_2d(spikes, sample, "spikes")
    step = 1.0 if dt is None else dt
    n_steps, n_neurons = arr.shape
    height = min(2.5 + 0.02 * n_neurons, 6.0)
    fig, axes = new_axes(ax, figsize=(7.0, height))
    if marker_size is None:  # a tick as tall as one neuron's row (axes ~ 75 % of the height)
        row = 0.75 * height * 72.0 / n_neurons
        marker_size = float(np.clip(row * row, 2.0, 80.0))
    t, n = np.nonzero(arr)
    axes.scatter(t * step, n, s=marker_size, c=PALETTE[0], marker="|", linewidths=1.2)
    axes.set_xlim(-0.5 * step, (n_steps - 0.5) * step)
    axes.set_ylim(-0.5, n_neurons - 0.5)
    _time_axis(axes, dt)
    axes.set_ylabel("neuron index")
    axes.set_title(title or f"spike raster ({t.size} spikes, {n_neurons} neurons)")
    return fig


def plot_membrane_traces(
    v: Any,
    *,
    sample: int | None = None,
    neurons: Sequence[int] | None = None,
    labels: Sequence[str] | None = None,
    threshold: float | None = None,
    spikes: Any = None,
    dt: float | None = None,
    v_unit: str = "a.u.",
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Membrane potential ``v[t, n]`` against time for a few neurons, one colour each.

    Args:
        v: ``[T, N]``, or ``[T, B, ...]`` with ``sample``.
        neurons: which (flattened) neurons to draw; default the first ``min(N, 8)``.
        labels: legend names of the drawn neurons (default ``neuron <index>``).
        threshold: draws a dashed horizontal line at this potential.
        spikes: same shape as ``v``; marks spike times with dots on each drawn trace.
        dt: step duration in ms; ``None``: the x axis counts steps.
        v_unit: unit of the potential for the y label (neurosim's neurons are unit-free:
            ``a.u.``, threshold 1 by default).
        title: names the run (default ``membrane traces``).
    """
    _check_dt(dt)
    arr = _as_2d(v, sample, "membrane v")
    chosen = list(range(min(arr.shape[1], 8))) if neurons is None else [int(n) for n in neurons]
    if not chosen:
        raise InputError("neurons is empty; pass at least one neuron index")
    for n in chosen:
        if not 0 <= n < arr.shape[1]:
            raise InputError(f"neuron index {n} out of range for {arr.shape[1]} neurons")
    if labels is not None and len(labels) != len(chosen):
        raise InputError(f"labels has {len(labels)} names for {len(chosen)} drawn neurons")
    names = [f"neuron {n}" for n in chosen] if labels is None else [str(s) for s in labels]
    spk = _as_2d(spikes, sample, "spikes") if spikes is not None else None
    if spk is not None and spk.shape != arr.shape:
        raise InputError(f"spikes of shape {spk.shape} do not match v of shape {arr.shape}")
    fig, axes = new_axes(ax, figsize=(7.0, 3.5))
    time = np.arange(arr.shape[0]) * (1.0 if dt is None else dt)
    for n, name, colour in zip(chosen, names, series_colours(len(chosen)), strict=True):
        axes.plot(time, arr[:, n], lw=1.2, color=colour, label=name)
        if spk is not None:
            hit = np.nonzero(spk[:, n])[0]
            axes.plot(time[hit], arr[hit, n], "o", ms=3, color=colour)
    if threshold is not None:
        axes.axhline(threshold, ls="--", c="grey", lw=0.8, label="threshold")
    _time_axis(axes, dt)
    axes.set_ylabel(f"membrane potential ({v_unit})")
    axes.set_title(title or "membrane traces")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def plot_firing_rates(
    spikes: Any,
    *,
    dt: float | None = None,
    sample: int | None = None,
    bins: int = 20,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Histogram of per-neuron firing rates, with the population mean as a dashed line.

    The rate of neuron ``n`` is its spike count divided by the duration: ``sum_t s[t, n] / T``
    spikes per step, or ``sum_t s[t, n] / (T * dt / 1000)`` Hz with ``dt`` in ms. For
    ``[T, B, ...]`` input the rate is averaged over the batch, unless ``sample`` picks one item.

    Args:
        spikes: ``[T, N]`` or ``[T, B, ...]`` (0/1 or spike counts per step).
        dt: step duration in ms (rates in Hz); ``None``: spikes per step.
        sample: one batch item instead of the batch mean.
        bins: histogram bins between 0 and the largest rate.
        title: names the run (default: the neuron count).
    """
    _check_dt(dt)
    if bins < 1:
        raise InputError(f"bins must be >= 1, got {bins}")
    arr = _numpy(spikes, "spikes")
    if arr.ndim >= 3 and sample is None:
        counts = arr.reshape(arr.shape[0], arr.shape[1], -1).sum(axis=0).mean(axis=0)
    else:
        counts = _as_2d(arr, sample, "spikes").sum(axis=0)
    duration = arr.shape[0] if dt is None else arr.shape[0] * dt / 1000.0
    rates = counts / duration
    unit = "spikes/step" if dt is None else "Hz"
    top = float(rates.max())
    fig, axes = new_axes(ax, figsize=(6.0, 3.8))
    axes.hist(rates, bins=bins, range=(0.0, top if top > 0 else 1.0), color=PALETTE[0],
              edgecolor="white", label=f"{rates.size} neurons")  # fmt: skip
    mean = float(rates.mean())
    axes.axvline(mean, ls="--", color=PALETTE[1], lw=1.2, label=f"mean {mean:.3g} {unit}")
    axes.set_xlabel(f"firing rate ({unit})")
    axes.set_ylabel("neurons (count)")
    from matplotlib.ticker import MaxNLocator

    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title or f"firing rates of {rates.size} neurons")
    axes.legend(fontsize="small")
    axes.grid(axis="y", alpha=0.3)
    return fig
