"""The run's HDF5 results file: metric time series, arrays, environment and summary.

Layout of ``results.h5``::

    /                       attrs: format="neurosim-results", format_version, neurosim_version,
                                   experiment, status ("running" | "finished" | "failed" |
                                   "diverged" | "interrupted"), status_reason, status_step,
                                   environment (JSON), config (JSON: the config the run uses)
    /metrics/<name>/step    int64 [n]   steps at which the metric was logged
    /metrics/<name>/value   float64 [n]
    /arrays/<name>          any array (spike rasters, rendered images, ...)
    /summary                attrs: final metrics

Every write edits an in-memory copy of the file; its bytes then go to a temporary file that is
synced and renamed over ``results.h5`` (``os.replace``), so a run killed at any moment leaves the
previous complete file, never a half-written one. HDF5 itself never writes to the disk, so a
full disk or a file-size limit is a plain ``OSError`` from that last write (HDF5's own write
errors leave noise and, at worst, a crash). Metrics are buffered and written at most every
``flush_seconds`` and at every checkpoint.

>>> # reading a run:
>>> # r = open_results("runs/image_fit/.../results.h5"); r.metric("loss") -> (steps, values)
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from experiments.faults import pause_point
from neurosim._version import __version__
from neurosim.backend import InputError

FORMAT = "neurosim-results"
FORMAT_VERSION = 1


class ResultsError(InputError):
    """A results file is missing, corrupt, or not a neurosim results file."""


@contextmanager
def atomic_h5_edit(path: Path) -> Iterator[h5py.File]:
    """Edit ``path`` (or a new file) in memory; on success its bytes replace ``path`` atomically.

    A process killed inside the block, or while the bytes are written, leaves the previous
    complete file (and at most a stale ``<name>.tmp``, overwritten by the next edit).
    """
    exists = path.exists()
    buffer = io.BytesIO(path.read_bytes() if exists else b"")
    with h5py.File(buffer, "r+" if exists else "w") as handle:
        yield handle
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(buffer.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _append(group: h5py.Group, name: str, values: np.ndarray) -> None:
    if name in group:
        ds = group[name]
        old = ds.shape[0]
        ds.resize(old + len(values), axis=0)
        ds[old:] = values
    else:
        group.create_dataset(name, data=values, maxshape=(None,), chunks=True)


class ResultsWriter:
    """Writes one run's ``results.h5`` (see the module docstring for the layout)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        attrs: Mapping[str, Any] | None = None,
        flush_seconds: float = 2.0,
    ) -> None:
        self.path = Path(path)
        self.flush_seconds = flush_seconds
        self._pending: list[tuple[int, dict[str, float]]] = []
        self._last_flush = time.monotonic()
        if self.path.exists():
            open_results(self.path)  # validate: never append to a foreign or corrupt file
        else:
            with atomic_h5_edit(self.path) as handle:
                handle.attrs["format"] = FORMAT
                handle.attrs["format_version"] = FORMAT_VERSION
                handle.attrs["neurosim_version"] = __version__
                handle.attrs["status"] = "running"
                handle.create_group("metrics")
                handle.create_group("arrays")
                handle.create_group("summary")
        if attrs:
            self.set_attrs(attrs)

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Set root attributes (dicts and lists are stored as JSON strings)."""
        with atomic_h5_edit(self.path) as handle:
            for key, value in attrs.items():
                handle.attrs[key] = _attr_value(value)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Queue one row of scalar metrics; written by :meth:`flush` (at most every few seconds)."""
        if metrics:
            self._pending.append((int(step), {k: float(v) for k, v in metrics.items()}))
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write every queued metric row now."""
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        by_name: dict[str, tuple[list[int], list[float]]] = {}
        for step, metrics in rows:
            for name, value in metrics.items():
                steps, values = by_name.setdefault(name, ([], []))
                steps.append(step)
                values.append(value)
        with atomic_h5_edit(self.path) as handle:
            group = handle.require_group("metrics")
            for name, (steps, values) in by_name.items():
                sub = group.require_group(name)
                _append(sub, "step", np.asarray(steps, dtype=np.int64))
                _append(sub, "value", np.asarray(values, dtype=np.float64))
            pause_point("results.write", rows[-1][0], prepare=handle.flush)

    def truncate(self, before_step: int) -> None:
        """Drop queued and written metric rows with ``step >= before_step`` (used on resume)."""
        self._pending = [(s, m) for s, m in self._pending if s < before_step]
        with atomic_h5_edit(self.path) as handle:
            group = handle.require_group("metrics")
            for name in list(group):
                steps = group[name]["step"][()]
                keep = int(np.searchsorted(steps, before_step, side="left"))
                for part in ("step", "value"):
                    group[name][part].resize(keep, axis=0)
            handle.attrs["status"] = "running"
            for key in ("status_reason", "status_step"):
                if key in handle.attrs:
                    del handle.attrs[key]

    def save_array(self, name: str, array: np.ndarray) -> None:
        """Store (or replace) ``/arrays/<name>``."""
        with atomic_h5_edit(self.path) as handle:
            group = handle.require_group("arrays")
            if name in group:
                del group[name]
            group.create_dataset(name, data=np.asarray(array), compression="gzip")

    def fail(self, status: str, reason: str, *, step: int | None = None) -> None:
        """Mark the run ended without finishing (``status`` e.g. ``diverged``), with the reason."""
        self.flush()
        with atomic_h5_edit(self.path) as handle:
            handle.attrs["status"] = status
            handle.attrs["status_reason"] = reason
            if step is not None:
                handle.attrs["status_step"] = int(step)

    def finish(self, summary: Mapping[str, float]) -> None:
        """Write the final metrics and mark the run finished."""
        self.flush()
        with atomic_h5_edit(self.path) as handle:
            group = handle.require_group("summary")
            for key, value in summary.items():
                group.attrs[key] = float(value)
            handle.attrs["status"] = "finished"


def _attr_value(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    if value is None:
        return "null"
    return value


@dataclass
class Results:
    """A results file read into memory (see :func:`open_results`)."""

    path: Path
    attrs: dict[str, Any]
    metrics: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)

    def metric(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of a logged metric."""
        try:
            return self.metrics[name]
        except KeyError:
            raise ResultsError(
                f"{self.path} has no metric {name!r}; it has: {', '.join(sorted(self.metrics))}"
            ) from None

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", "unknown"))

    @property
    def run_label(self) -> str:
        """``"<experiment> <run folder>"`` for figure titles; a sweep trial adds its sweep's
        folder (``"image_fit image_fit-20261126-120000-ab12/run003"``)."""
        run_dir = self.path.parent
        name = run_dir.name
        if (run_dir.parent / "manifest.json").is_file():
            name = f"{run_dir.parent.name}/{name}"
        return f"{self.attrs.get('experiment', '?')} {name}"


def open_results(path: str | os.PathLike[str], *, load_arrays: bool = True) -> Results:
    """Read and validate a results file; a missing, corrupt or foreign file is a ResultsError."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.h5"
    if not path.is_file():
        raise ResultsError(f"results file {str(path)!r} does not exist")
    if not h5py.is_hdf5(path):
        raise ResultsError(
            f"{str(path)!r} is not an HDF5 file (corrupt, truncated or a different format); "
            "expected a neurosim results.h5"
        )
    try:
        with h5py.File(path, "r") as handle:
            attrs = {k: _decode(v) for k, v in handle.attrs.items()}
            if attrs.get("format") != FORMAT:
                raise ResultsError(
                    f"{str(path)!r} is an HDF5 file but not a neurosim results file "
                    f"(format attribute {attrs.get('format')!r}, expected {FORMAT!r})"
                )
            if int(attrs.get("format_version", 0)) > FORMAT_VERSION:
                raise ResultsError(
                    f"{str(path)!r} has results format version {attrs['format_version']}, newer than "
                    f"this neurosim ({__version__}) reads ({FORMAT_VERSION}); upgrade neurosim"
                )
            results = Results(path, attrs)
            for name, group in handle.get("metrics", {}).items():
                results.metrics[name] = (group["step"][()], group["value"][()])
            if load_arrays:
                for name, ds in handle.get("arrays", {}).items():
                    results.arrays[name] = ds[()]
            if "summary" in handle:
                results.summary = {k: float(v) for k, v in handle["summary"].attrs.items()}
            return results
    except ResultsError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise ResultsError(
            f"{str(path)!r} could not be read as a neurosim results file "
            f"({type(exc).__name__}: {exc}); it may be corrupt"
        ) from exc


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value
