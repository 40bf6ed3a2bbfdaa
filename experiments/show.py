"""``neurosim show``: a run's summary table and PNG figures; a sweep's table and comparison plot.

For a run, ``show_run(RUN)`` prints the status, the metric table and the stored arrays, and
writes to ``RUN/plots/``:

* ``<metric>.png``: the training curve of every logged metric (``learning_rate.png`` overlays
  the ``lr_<group>`` schedules);
* ``<array>.png``: every stored image array (``[H, W]`` or ``[H, W, 1|3|4]``);
* ``<figure>.png``: the experiment family's own figures (:meth:`Experiment.figures`).

For a sweep directory it prints one table (a row per trial) and writes
``SWEEP/plots/sweep_<metric>.png``: a final metric against the first swept key, one line per
setting of the other swept keys.

The readers work in notebooks too::

    figures = plot_run_curves("runs/image_fit/20261126-101500-1a2b3c")   # {metric: Figure}
    fig = plot_metric([run_a, run_b], "psnr", smoothing=0.6)              # runs overlaid
    fig = plot_sweep("runs/sweeps/image_fit-20261126-101500-ab12", metric="psnr")
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from experiments.config import parse_override
from experiments.results import Results, open_results
from experiments.sweep import format_table, read_sweep
from neurosim.backend import InputError
from neurosim.plotting.curves import plot_sweep_comparison, plot_training_curves
from neurosim.plotting.style import new_axes, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Units of metric names most families log (a family's ``metric_units`` takes precedence).
COMMON_UNITS = {
    "psnr": "dB",
    "ssim": "unitless, 1 = identical",
    "epoch": "epochs",
    "params": "count",
}
SWEEP_COLUMNS = ("status", "attempts", "reason", "run_dir")


def _results(run: str | os.PathLike[str] | Results) -> Results:
    return run if isinstance(run, Results) else open_results(run)


def _experiment_units(experiment: Any) -> Mapping[str, str]:
    from experiments.registry import get_experiment

    try:
        return get_experiment(str(experiment)).metric_units
    except InputError:
        return {}


def metric_label(name: str, units: Mapping[str, str] | None = None) -> str:
    """Axis label of a logged metric with its unit: the family's ``metric_units``, else common
    names (``psnr`` dB, ``*accuracy`` fraction, ``lr_*`` learning rate), else the bare name."""
    unit = (units or {}).get(name) or COMMON_UNITS.get(name)
    if unit is None and name.endswith("accuracy"):
        unit = "fraction correct"
    if name.startswith("lr_") and unit is None:
        return f"learning rate of group {name[3:]!r}"
    return f"{name} ({unit})" if unit else name


def _auto_log(name: str, values: np.ndarray) -> bool:
    """Log axis for a loss that is positive and falls over more than 1.5 decades."""
    finite = values[np.isfinite(values)]
    if "loss" not in name or finite.size < 2 or finite.min() <= 0:
        return False
    return bool(finite.max() / finite.min() > 30)


POSITION_METRICS = ("method", "seed", "task")
"""Bookkeeping series that continual-learning families log beside their metrics (which method,
seed and task a step belongs to): in the results and the summary, not drawn as curves unless
asked for by name."""


def plot_run_curves(
    run: str | os.PathLike[str] | Results,
    *,
    metrics: Sequence[str] | None = None,
    smoothing: float = 0.0,
    log_y: bool | None = None,
) -> dict[str, Figure]:
    """Training curves of one run: ``{metric: Figure}`` (``learning_rate`` overlays the groups).

    Args:
        run: a run directory, its ``results.h5``, or a loaded :class:`Results`.
        metrics: which metrics (default: every logged one but the bookkeeping series of
            :data:`POSITION_METRICS`); an unknown name is an error that lists the logged ones.
        smoothing: debiased EMA weight in ``[0, 1)`` (raw values stay visible, faint).
        log_y: logarithmic y axes; default: for losses spanning more than a factor of 30.
    """
    results = _results(run)
    units = _experiment_units(results.attrs.get("experiment"))
    names = (
        list(metrics)
        if metrics is not None
        else [n for n in sorted(results.metrics) if n not in POSITION_METRICS]
    )
    for name in names:
        results.metric(name)  # a clear error naming the logged metrics
    label = results.run_label
    figures: dict[str, Figure] = {}
    rates = [n for n in names if n.startswith("lr_") and len(results.metrics[n][1])]
    for name in names:
        steps, values = results.metrics[name]
        if name in rates or not len(values):
            continue
        figures[name] = plot_training_curves(
            {name: (steps, values)},
            title=f"{label}: {name}",
            ylabel=metric_label(name, units),
            log_y=_auto_log(name, values) if log_y is None else log_y,
            smoothing=smoothing,
        )
    if rates:
        figures["learning_rate"] = plot_training_curves(
            {f"group {n[3:]}": results.metrics[n] for n in rates},
            title=f"{label}: learning-rate schedule",
            ylabel="learning rate",
            smoothing=0.0,
        )
    return figures


def plot_metric(
    runs: Sequence[str | os.PathLike[str] | Results],
    metric: str,
    *,
    labels: Sequence[str] | None = None,
    smoothing: float = 0.0,
    log_y: bool = False,
    title: str | None = None,
) -> Figure:
    """One metric of several runs overlaid (one colour per run).

    Args:
        runs: run directories or loaded results.
        metric: the logged metric to compare.
        labels: legend names (default: each run's label).
        smoothing: debiased EMA weight in ``[0, 1)``.
        log_y: logarithmic y axis.
        title: default ``"<metric> of <n> runs"`` with the experiment names.
    """
    loaded = [_results(r) for r in runs]
    if not loaded:
        raise InputError("plot_metric needs at least one run")
    if labels is not None and len(labels) != len(loaded):
        raise InputError(f"labels has {len(labels)} names for {len(loaded)} runs")
    names = [r.run_label for r in loaded] if labels is None else [str(s) for s in labels]
    if len(set(names)) != len(names):
        raise InputError(f"run labels must differ, got {names}; pass labels=")
    series = {name: r.metric(metric) for name, r in zip(names, loaded, strict=True)}
    experiments = sorted({str(r.attrs.get("experiment", "?")) for r in loaded})
    units = _experiment_units(experiments[0]) if len(experiments) == 1 else {}
    return plot_training_curves(
        series,
        title=title or f"{', '.join(experiments)}: {metric} of {len(loaded)} runs",
        ylabel=metric_label(metric, units),
        log_y=log_y,
        smoothing=smoothing,
    )


# ---------------------------------------------------------------------------- sweeps


def _sweep_spec(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / "manifest.json"
    try:
        spec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"sweep manifest {str(path)!r} is unreadable: {exc}") from exc
    if not isinstance(spec, dict):
        raise InputError(f"{str(path)!r} is not a neurosim sweep manifest")
    return spec


def sweep_keys(sweep_dir: str | os.PathLike[str]) -> list[str]:
    """The swept config keys of a sweep, in the order they were given."""
    grid = _sweep_spec(Path(sweep_dir)).get("grid", [])
    return [parse_override(str(spec))[0] for spec in grid]


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _plain(value: Any) -> Any:
    """``32.0`` read back from ``sweep.csv`` as ``32`` for labels."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def sweep_metric(sweep_dir: str | os.PathLike[str], metric: str | None = None) -> str:
    """``metric`` checked against the sweep's final-metric columns, or the first of them."""
    path = Path(sweep_dir)
    rows = read_sweep(path)
    keys = sweep_keys(path)
    if not keys:
        raise InputError(f"sweep {str(path)!r} sweeps no key; nothing to compare")
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    metrics = [
        c
        for c in columns
        if c not in keys and c not in SWEEP_COLUMNS and any(_numeric(r.get(c)) for r in rows)
    ]
    if metric is None:
        if not metrics:
            raise InputError(f"sweep {str(path)!r} has no finished trial with a metric to plot")
        return metrics[0]
    if metric not in metrics:
        raise InputError(
            f"sweep {str(path)!r} has no metric {metric!r}; it has: {', '.join(metrics) or 'none'}"
        )
    return metric


def plot_sweep(
    sweep_dir: str | os.PathLike[str], metric: str | None = None, *, x: str | None = None
) -> Figure:
    """A sweep's final ``metric`` against the swept value ``x``, one line per setting of the
    other swept keys (failed trials are left out).

    Args:
        sweep_dir: the sweep's folder (with ``manifest.json`` and ``sweep.csv``).
        metric: a final metric (default: the first metric column of ``sweep.csv``).
        x: the swept key on the x axis (default: the first swept key).
    """
    path = Path(sweep_dir)
    rows = read_sweep(path)
    keys = sweep_keys(path)
    metric = sweep_metric(path, metric)
    xkey = keys[0] if x is None else x
    if xkey not in keys:
        raise InputError(f"{xkey!r} is not a swept key of {str(path)!r}; swept: {keys}")
    others = [k for k in keys if k != xkey]
    xvalues: list[Any] = []
    for row in rows:
        if row.get(xkey) not in xvalues:
            xvalues.append(row.get(xkey))
    series: dict[str, list[float | None]] = {}
    for row in rows:
        name = ", ".join(f"{k}={_plain(row.get(k))}" for k in others) or metric
        values = series.setdefault(name, [None] * len(xvalues))
        value: Any = row.get(metric)
        values[xvalues.index(row.get(xkey))] = float(value) if _numeric(value) else None
    experiment = _sweep_spec(path).get("experiment", "?")
    return plot_sweep_comparison(
        xkey,
        xvalues,
        series,
        title=f"sweep {path.name}: final {metric}",
        ylabel=metric_label(metric, _experiment_units(experiment)),
        xlabel=f"{xkey} (swept)",
    )


# ---------------------------------------------------------------------------- arrays


def _is_image(array: np.ndarray) -> bool:
    """``[H, W]`` or ``[H, W, 1|3|4]`` with both sides >= 8 and an aspect ratio <= 8 (so point
    lists such as mesh vertices ``[V, 3]`` and short tables are not drawn as images)."""
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4):
        return False
    if array.ndim not in (2, 3) or not np.issubdtype(array.dtype, np.number):
        return False
    h, w = array.shape[:2]
    return min(h, w) >= 8 and max(h, w) <= 8 * min(h, w)


def plot_array_image(array: np.ndarray, *, title: str, name: str) -> Figure:
    """A stored image array as a figure, axes in pixels with row 0 at the top.

    ``[H, W, 3|4]`` is drawn as RGB clipped to [0, 1]; ``[H, W, 1]`` as a grey image (an
    intensity image with a channel axis) and ``[H, W]`` in colour (a map: an error, a slice),
    each with a colour bar named after the array.
    """
    image = np.asarray(array, dtype=np.float64)
    grey = image.ndim == 3 and image.shape[-1] == 1
    if grey:
        image = image[..., 0]
    height, width = image.shape[:2]
    fig, ax = new_axes(figsize=(5.0 * min(width / height, 2.0) + 1.2, 5.0))
    if image.ndim == 3:
        ax.imshow(np.clip(image[..., :3], 0.0, 1.0))
    else:
        unit = 0.0 <= image.min() and image.max() <= 1.0
        fixed = grey and unit  # an intensity image: 0 black, 1 white
        shown = ax.imshow(image, cmap="gray" if grey else "viridis", vmin=0.0 if fixed else None,
                          vmax=1.0 if fixed else None)  # fmt: skip
        label = f"{name} (intensity)" if grey else name
        fig.colorbar(shown, ax=ax, label=label, fraction=0.046, pad=0.04)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    ax.set_title(title)
    return fig


def _family_figures(results: Results) -> tuple[dict[str, Any], str]:
    """The figures the run's experiment class draws (``Experiment.figures``), and a note when
    they could not be drawn (a run stopped before it stored what they need)."""
    from experiments.registry import get_experiment

    name = results.attrs.get("experiment")
    try:
        cls = get_experiment(str(name))
    except InputError:
        return {}, ""
    try:
        return cls.figures(results), ""
    except Exception as exc:  # a figure that cannot be drawn must not hide the summary
        return {}, f"{name} figures not drawn: {type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------------- the command


def _status_line(results: Results) -> str:
    """The status, and for a ``running`` run whether a process is still on it."""
    status = results.status
    if status != "running":
        return status
    from experiments.lock import lock_holder

    run_dir = results.path.parent
    pid = lock_holder(run_dir)
    if pid is not None:
        return f"running (PID {pid})" if pid > 0 else "running"
    return f"running, but no process is on it: continue with `neurosim run --resume {run_dir}`"


def _show_sweep(path: Path, plots: bool, metric: str | None) -> str:
    rows = read_sweep(path)
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row.get("status", "?"))] = counts.get(str(row.get("status", "?")), 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in counts.items())
    lines = [f"sweep {path} ({tally})", format_table(rows)]
    if plots:
        try:
            chosen = sweep_metric(path, metric)
        except InputError as exc:
            if metric is not None:
                raise
            lines.append(f"\nno comparison plot: {exc}")
        else:
            out = save_figure(plot_sweep(path, chosen), path / "plots" / f"sweep_{chosen}.png")
            lines.append(f"\ncomparison plot written to {out}")
    return "\n".join(lines)


def show_run(
    run_dir: str | os.PathLike[str], *, plots: bool = True, metric: str | None = None
) -> str:
    """Summary text of a run (or a sweep), writing PNG figures to ``<dir>/plots/`` when asked.

    Args:
        run_dir: a run directory (or its ``results.h5``) or a sweep directory.
        plots: write the PNG figures.
        metric: for a sweep, the final metric of the comparison plot (default: the first).
    """
    path = Path(run_dir)
    if (path / "sweep.csv").is_file():
        return _show_sweep(path, plots, metric)
    results = open_results(path)
    lines = [
        f"run          {results.path.parent}",
        f"experiment   {results.attrs.get('experiment', '?')}",
        f"status       {_status_line(results)}",
    ]
    if results.attrs.get("status_reason"):
        step = results.attrs.get("status_step")
        at = f" (at step {step})" if step is not None else ""
        lines.append(f"reason       {results.attrs['status_reason']}{at}")
    env = results.attrs.get("environment")
    if isinstance(env, dict):
        lines.append(
            f"device       {env.get('device')} ({env.get('gpu', env.get('platform', ''))})"
        )
    rows = []
    for name, (steps, values) in sorted(results.metrics.items()):
        if len(values):
            rows.append(
                {
                    "metric": name,
                    "points": len(values),
                    "last step": int(steps[-1]),
                    "last": float(values[-1]),
                    "min": float(np.nanmin(values)),
                    "max": float(np.nanmax(values)),
                    "final": results.summary.get(name),
                }
            )
    for name, value in results.summary.items():
        if name not in results.metrics:
            rows.append({"metric": name, "final": value})
    lines += ["", format_table(rows)]
    if results.arrays:
        lines.append("")
        lines += [
            f"array {k}: shape {v.shape} {v.dtype}" for k, v in sorted(results.arrays.items())
        ]
    if plots:
        folder = results.path.parent / "plots"
        written: list[str] = []
        for name, figure in plot_run_curves(results).items():
            written.append(save_figure(figure, folder / f"{name}.png").name)
        family, note = _family_figures(results)
        for name, array in sorted(results.arrays.items()):
            if _is_image(array) and name not in family:
                file = f"array_{name}.png" if name in results.metrics else f"{name}.png"
                title = f"{results.run_label}: {name}"
                figure = plot_array_image(array, title=title, name=name)
                written.append(save_figure(figure, folder / file).name)
        for name, figure in family.items():
            written.append(save_figure(figure, folder / f"{name}.png").name)
        if note:
            lines.append(f"\n{note}")
        lines.append(f"\n{len(written)} plots written to {folder}: {', '.join(sorted(written))}")
    return "\n".join(lines)
