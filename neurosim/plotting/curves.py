"""Training curves and sweep comparisons from plain arrays.

A *series* is a pair ``(steps, values)``; several series (runs, seeds, metrics) are overlaid in
colours that separate. ``smoothing`` is TensorBoard's debiased exponential moving average
(:func:`smooth_curve`); the raw values stay visible as a faint line behind the smoothed one::

    fig = plot_training_curves({"lr 1e-3": (steps_a, loss_a), "lr 3e-3": (steps_b, loss_b)},
                               ylabel="loss (MSE)", log_y=True, smoothing=0.6,
                               title="image_fit sweep 20261126: training loss")
    fig = plot_sweep_comparison("lr", [1e-3, 3e-3, 1e-2], {"hidden=32": [20.1, 22.4, 21.0],
                                "hidden=64": [21.5, 24.0, 23.2]}, ylabel="PSNR (dB)",
                                title="sweep image_fit-20261126: final PSNR")

Reading these from a run's ``results.h5`` is :func:`experiments.show.plot_run_curves`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neurosim.backend import InputError
from neurosim.plotting.spikes import series_colours
from neurosim.plotting.style import PALETTE, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_sweep_comparison", "plot_training_curves", "smooth_curve"]

_LINESTYLES = ("-", "--", ":", "-.")


def smooth_curve(values: Any, weight: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing), skipping NaNs.

    ``m_k = weight * m_{k-1} + (1 - weight) * x_k`` with ``m_{-1} = 0``, returned as
    ``m_k / (1 - weight^(k+1))`` so the first point equals ``x_0``; ``weight = 0`` returns the
    values unchanged. Non-finite values stay non-finite in the output and do not enter the
    average. Example: ``smooth_curve([1, 3], 0.5) -> [1, 2.333...]`` (``m = 0.5, 1.75``;
    ``0.5 / 0.5 = 1``, ``1.75 / 0.75``).
    """
    if not 0.0 <= weight < 1.0:
        raise InputError(f"smoothing weight must be in [0, 1), got {weight!r}")
    x = np.asarray(values, dtype=np.float64)
    if weight == 0.0:
        return x.copy()
    out = np.full_like(x, np.nan)
    m = 0.0
    k = 0
    for i, value in enumerate(x):
        if not np.isfinite(value):
            out[i] = value
            continue
        m = weight * m + (1.0 - weight) * value
        k += 1
        out[i] = m / (1.0 - weight**k)
    return out


def _series(name: str, pair: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        steps, values = pair
    except (TypeError, ValueError):
        raise InputError(f"series {name!r} must be a pair (steps, values)") from None
    s = np.asarray(steps, dtype=np.float64).reshape(-1)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if s.shape != v.shape:
        raise InputError(
            f"series {name!r}: {s.size} steps but {v.size} values; expected one value per step"
        )
    return s, v


def plot_training_curves(
    series: Mapping[str, Any],
    *,
    title: str,
    ylabel: str,
    xlabel: str = "step (optimizer steps)",
    log_y: bool = False,
    smoothing: float = 0.0,
    ax: Axes | None = None,
) -> Figure:
    """Metric against step, one line per series (runs, seeds, or related metrics).

    Args:
        series: ``{label: (steps, values)}``; NaN values leave gaps.
        title: names the run(s).
        ylabel: the metric with its unit, e.g. ``"PSNR (dB)"``.
        xlabel: the x axis with its unit.
        log_y: logarithmic y axis (every finite value must then be > 0).
        smoothing: debiased EMA weight in ``[0, 1)`` (:func:`smooth_curve`); with ``> 0`` the
            smoothed line is drawn over a faint raw line of the same colour.

    Returns:
        the figure; with smoothing its lines alternate raw, smoothed per series.
    """
    if not series:
        raise InputError("plot_training_curves needs at least one series")
    if not 0.0 <= smoothing < 1.0:
        raise InputError(f"smoothing must be in [0, 1), got {smoothing!r}")
    parsed = {str(k): _series(str(k), v) for k, v in series.items()}
    if log_y:
        for name, (_, v) in parsed.items():
            finite = v[np.isfinite(v)]
            if finite.size and finite.min() <= 0:
                raise InputError(
                    f"series {name!r} has values <= 0 (min {finite.min():g}); log_y needs "
                    "positive values"
                )
    fig, axes = new_axes(ax, figsize=(6.5, 4.0))
    colours = series_colours(min(len(parsed), len(PALETTE)))  # beyond 8: dashed, dotted, ...
    for k, (name, (steps, values)) in enumerate(parsed.items()):
        colour = colours[k % len(colours)]
        style = _LINESTYLES[(k // len(colours)) % len(_LINESTYLES)]
        marker = "o" if values.size <= 20 else None
        if smoothing > 0:
            axes.plot(steps, values, color=colour, alpha=0.3, lw=1.0, ls=style)
            axes.plot(steps, smooth_curve(values, smoothing), color=colour, lw=1.6, ls=style,
                      label=name)  # fmt: skip
        else:
            axes.plot(steps, values, color=colour, lw=1.4, ls=style, marker=marker, ms=3,
                      label=name)  # fmt: skip
    if log_y:
        axes.set_yscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3, which="both" if log_y else "major")
    if len(parsed) > 1 or smoothing > 0:
        axes.legend(fontsize="small", loc="best" if len(parsed) <= 4 else "upper left",
                    bbox_to_anchor=None if len(parsed) <= 4 else (1.01, 1.0))  # fmt: skip
    return fig


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def plot_sweep_comparison(
    xname: str,
    xvalues: Sequence[Any],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    ylabel: str,
    xlabel: str | None = None,
    log_x: bool | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A final metric against one swept value, one line per setting of the other swept keys.

    Args:
        xname: the swept key on the x axis (its label unless ``xlabel`` is given).
        xvalues: its values (numbers: a numeric axis, sorted; anything else: categories in the
            given order).
        series: ``{label: values}`` aligned with ``xvalues``; ``None``/NaN where a trial did not
            finish (left out of the line).
        title: names the sweep.
        ylabel: the metric with its unit.
        log_x: logarithmic x axis; default: when the numeric values are positive and span more
            than a factor of 20.
    """
    if not series:
        raise InputError("plot_sweep_comparison needs at least one series")
    xs = list(xvalues)
    if not xs:
        raise InputError(f"no values of {xname!r} to plot")
    numeric = all(_is_number(x) for x in xs)
    if numeric:
        positions = np.asarray(xs, dtype=np.float64)
        if log_x is None:
            log_x = bool(positions.min() > 0 and positions.max() / positions.min() > 20)
    else:
        positions = np.arange(len(xs), dtype=np.float64)
        if log_x:
            raise InputError(f"log_x needs numeric values of {xname!r}, got {xs!r}")
    order = np.argsort(positions, kind="stable")
    fig, axes = new_axes(ax, figsize=(6.5, 4.0))
    colours = series_colours(len(series))
    for (name, raw), colour in zip(series.items(), colours, strict=True):
        if len(raw) != len(xs):
            raise InputError(
                f"series {name!r} has {len(raw)} values for {len(xs)} values of {xname!r}"
            )
        y = np.asarray([np.nan if v is None else float(v) for v in raw], dtype=np.float64)
        keep = order[np.isfinite(y[order])]
        axes.plot(positions[keep], y[keep], marker="o", ms=5, lw=1.4, color=colour, label=name)
    if log_x:
        axes.set_xscale("log")
    if not numeric:
        axes.set_xticks(positions, [str(x) for x in xs])
    axes.set_xlabel(xlabel or xname)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if len(series) > 1:
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
