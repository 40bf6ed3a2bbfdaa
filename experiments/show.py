"""``neurosim show``: a run's summary table and PNG plots of its metrics and image arrays."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from experiments.results import Results, open_results
from experiments.sweep import format_table, read_sweep
from neurosim.backend import InputError


def _plot_metric(name: str, steps: np.ndarray, values: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(steps, values)
    ax.set_xlabel("step")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _is_image(array: np.ndarray) -> bool:
    return (array.ndim == 2 and min(array.shape) > 1) or (
        array.ndim == 3 and array.shape[-1] in (1, 3, 4)
    )


def _save_image(array: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = np.asarray(array, dtype=np.float64)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        plt.imsave(path, np.clip(image, 0, 1))
    else:
        plt.imsave(path, image, cmap="gray" if image.min() >= 0 else "coolwarm")


def _family_figures(results: Results) -> dict[str, Any]:
    """The figures the run's experiment class draws (``Experiment.figures``), if registered."""
    import matplotlib

    matplotlib.use("Agg")
    from experiments.registry import get_experiment

    name = results.attrs.get("experiment")
    try:
        cls = get_experiment(str(name))
    except InputError:
        return {}
    return cls.figures(results)


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


def show_run(run_dir: str | os.PathLike[str], *, plots: bool = True) -> str:
    """Summary text of a run (or a sweep), writing PNG plots to ``<run>/plots/`` when asked."""
    path = Path(run_dir)
    if (path / "sweep.csv").is_file():
        rows = read_sweep(path)
        counts: dict[str, int] = {}
        for row in rows:
            counts[str(row.get("status", "?"))] = counts.get(str(row.get("status", "?")), 0) + 1
        tally = ", ".join(f"{n} {status}" for status, n in counts.items())
        return f"sweep {path} ({tally})\n" + format_table(rows)
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
        folder.mkdir(exist_ok=True)
        for name, (steps, values) in results.metrics.items():
            if len(values):
                _plot_metric(name, steps, values, folder / f"{name}.png")
        for name, array in results.arrays.items():
            if _is_image(array):
                _save_image(array, folder / f"{name}.png")
        for name, figure in _family_figures(results).items():
            import matplotlib.pyplot as plt

            figure.savefig(folder / f"{name}.png", dpi=100, bbox_inches="tight")
            plt.close(figure)
        lines.append(f"\nplots written to {folder}")
    return "\n".join(lines)
