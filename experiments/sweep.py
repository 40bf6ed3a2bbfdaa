"""Sweeps: the grid of ``key=a,b,c`` values, run on a local process pool or on Ray.

Every combination is an ordinary run (its own directory with config, results and checkpoints)
under ``<runs_dir>/sweeps/<experiment>-<stamp>/``; their final metrics are collected into one
table, written as ``sweep.csv`` and ``sweep.yaml`` in the sweep directory.
"""

from __future__ import annotations

import csv
import itertools
import multiprocessing
import os
import secrets
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from experiments.config import ConfigError, parse_override
from experiments.runner import default_runs_dir, make_config

EXECUTORS = ("local", "ray", "serial")


def split_values(raw: str) -> list[str]:
    """Split ``"a,b,[1,2]"`` on top-level commas (brackets and quotes keep their commas)."""
    values: list[str] = []
    depth = 0
    quote = ""
    current = ""
    for ch in raw:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(current)
            current = ""
            continue
        current += ch
    values.append(current)
    return [v.strip() for v in values]


def expand_grid(specs: Sequence[str]) -> list[list[str]]:
    """``["a=1,2", "b=x"]`` -> ``[["a=1", "b=x"], ["a=2", "b=x"]]`` (cartesian product)."""
    axes: list[list[str]] = []
    for spec in specs:
        key, raw = parse_override(spec)
        axes.append([f"{key}={value}" for value in split_values(raw)])
    return [list(combo) for combo in itertools.product(*axes)] if axes else [[]]


@dataclass
class SweepResult:
    """The sweep's folder and its collected table (one row per run)."""

    sweep_dir: Path
    rows: list[dict[str, Any]]

    def table(self) -> str:
        """The rows as an aligned text table."""
        return format_table(self.rows)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """An aligned text table of dict rows (union of keys, in first-seen order)."""
    if not rows:
        return "(no rows)"
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]

    def cell(value: Any) -> str:
        if isinstance(value, float):
            if value.is_integer() and abs(value) < 1e12:
                return str(int(value))
            return f"{value:.4g}"
        return "" if value is None else str(value)

    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def _run_one(name: str, overrides: list[str], preset: str | None, run_dir: str) -> dict[str, Any]:
    """Worker body (module level so process pools and Ray can ship it)."""
    import torch

    from experiments.runner import run_experiment

    threads = int(os.environ.get("NEUROSIM_SWEEP_THREADS", "1"))
    torch.set_num_threads(max(threads, 1))
    result = run_experiment(name, overrides, preset=preset, run_dir=run_dir, progress=False)
    return {"run_dir": str(result.run_dir), **result.metrics}


def run_sweep(
    name: str,
    grid: Sequence[str],
    fixed: Sequence[str] = (),
    *,
    preset: str | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    executor: str = "local",
    workers: int = 0,
    ray_address: str | None = None,
) -> SweepResult:
    """Run every combination of ``grid`` (``key=a,b,c`` specs) with the ``fixed`` overrides.

    Args:
        executor: ``local`` (process pool), ``serial`` (in this process) or ``ray``.
        workers: parallel runs (default: the CPU count, at most the number of runs).
        ray_address: an existing Ray cluster; a local Ray instance is started when ``None``.
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"sweep executor {executor!r} is unknown; expected one of {EXECUTORS}")
    combos = expand_grid(grid)
    for combo in combos:  # validate every config before starting anything
        make_config(name, [*fixed, *combo], preset)
    base = Path(runs_dir) if runs_dir else default_runs_dir()
    sweep_dir = base / "sweeps" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    sweep_dir.mkdir(parents=True)
    jobs = [
        (name, [*fixed, *combo], preset, str(sweep_dir / f"run{i:03d}"))
        for i, combo in enumerate(combos)
    ]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    (sweep_dir / "sweep.yaml").write_text(
        yaml.safe_dump(
            {
                "experiment": name,
                "preset": preset,
                "fixed": list(fixed),
                "grid": list(grid),
                "executor": executor,
            },
            sort_keys=False,
        )
    )
    if executor == "serial" or (workers == 1 and executor == "local"):
        outputs = [_run_one(*job) for job in jobs]
    elif executor == "local":
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            outputs = list(pool.map(_run_one, *zip(*jobs, strict=True)))
    else:
        outputs = _run_ray(jobs, workers, ray_address)
    rows = []
    for combo, output in zip(combos, outputs, strict=True):
        row: dict[str, Any] = dict(parse_override(o) for o in combo)
        run_dir = output.pop("run_dir")
        row.update(output)
        row["run_dir"] = run_dir
        rows.append(row)
    _write_table(sweep_dir, rows)
    return SweepResult(sweep_dir, rows)


def _run_ray(
    jobs: list[tuple[str, list[str], str | None, str]], workers: int, address: str | None
) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("executor=ray needs Ray: pip install 'neurosim[ray]'") from exc
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        remote = ray.remote(num_cpus=1)(_run_one)
        return list(ray.get([remote.remote(*job) for job in jobs]))
    finally:
        if started:
            ray.shutdown()


def _write_table(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(sweep_dir / "sweep.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def read_sweep(sweep_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The collected table of a finished sweep (``sweep.csv``)."""
    path = Path(sweep_dir) / "sweep.csv"
    if not path.is_file():
        raise ConfigError(f"{str(sweep_dir)!r} is not a finished sweep directory (no sweep.csv)")
    with open(path, newline="") as fh:
        rows: list[dict[str, Any]] = []
        for row in csv.DictReader(fh):
            parsed: dict[str, Any] = {}
            for key, value in row.items():
                try:
                    parsed[key] = float(value)
                except (TypeError, ValueError):
                    parsed[key] = value
            rows.append(parsed)
    return rows
