"""Sweeps that survive failure: a grid of ``key=a,b,c`` values run on local processes or Ray.

Every combination (a *trial*) is an ordinary run (its own directory with config, results and
checkpoints) under ``<runs_dir>/sweeps/<experiment>-<stamp>/run<NNN>/``. The sweep directory
holds

* ``manifest.json``: the sweep's spec and every trial's status (``pending``, ``running``,
  ``finished``, ``failed`` with its reason), attempts and final metrics, rewritten atomically
  (temporary file + ``os.replace``) whenever a status changes, so a driver killed at any moment
  leaves a readable manifest;
* ``sweep.csv``: one row per trial (swept values, ``status``, final metrics, ``attempts``,
  ``reason``, ``run_dir``), rewritten the same way; finished trials are collected even when
  others fail;
* ``sweep.yaml``: the spec in plain YAML, for people.

Every trial's config is validated before anything runs (a bad value is one line naming the trial
and the key). A failing trial is recorded and the others go on; ``retries=N`` runs a failed trial
up to ``N`` more times (resuming it from its checkpoints). ``resume_sweep(DIR)``
(``neurosim sweep --resume DIR``) skips finished trials and resumes the others from their
checkpoints, after a crash, a SIGKILL of the driver, or a fix of what made trials fail.

Executors: ``local`` runs each trial in its own spawned process (at most ``workers`` at once),
which exits when the driver dies (parent-death signal plus a watchdog polling the parent PID);
``ray`` submits trials as Ray tasks (a local instance, or ``ray_address``); ``serial`` runs them
one after another in this process.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import secrets
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from experiments.config import ConfigError, parse_override
from experiments.lock import DirectoryLock
from experiments.runner import default_runs_dir, load_run_config, make_config
from neurosim.backend import NeurosimError

log = logging.getLogger("neurosim.experiments")

EXECUTORS = ("local", "ray", "serial")
STATUSES = ("pending", "running", "finished", "failed")
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "neurosim-sweep"
MANIFEST_VERSION = 1


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
class Trial:
    """One combination of the grid and where it stands.

    Attributes:
        index: position in the grid (``run<index>`` is its run directory).
        params: the swept ``key=value`` overrides of this trial.
        run_dir: its run directory, relative to the sweep directory.
        status: ``pending``, ``running``, ``finished`` or ``failed``.
        attempts: how many times it was started (over every invocation of the sweep).
        reason: why the last attempt failed (empty otherwise).
        metrics: final metrics of a finished trial.
    """

    index: int
    params: list[str]
    run_dir: str
    status: str = "pending"
    attempts: int = 0
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class SweepResult:
    """The sweep's folder, its trials and the collected table (one row per trial)."""

    sweep_dir: Path
    rows: list[dict[str, Any]]
    trials: list[Trial] = field(default_factory=list)

    def table(self) -> str:
        """The rows as an aligned text table."""
        return format_table(self.rows)

    @property
    def failed(self) -> list[Trial]:
        """Trials that did not finish."""
        return [t for t in self.trials if t.status != "finished"]

    @property
    def ok(self) -> bool:
        """Whether every trial finished."""
        return not self.failed


def format_table(rows: Sequence[dict[str, Any]], max_width: int = 60) -> str:
    """An aligned text table of dict rows (union of keys, in first-seen order).

    Cells longer than ``max_width`` characters are cut with ``...`` (the CSV keeps them whole).
    """
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
        text = "" if value is None else str(value)
        return text if len(text) <= max_width else text[: max_width - 3] + "..."

    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def describe_error(exc: BaseException) -> str:
    """One line for a trial's ``reason``: the error's class and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    line = f"{name}: {text}" if text else name
    return line if len(line) <= 500 else line[:497] + "..."


# ---------------------------------------------------------------------------- trial execution


def _run_trial(name: str, overrides: list[str], preset: str | None, run_dir: str) -> dict[str, Any]:
    """Run (or resume) one trial; never raises: returns its status, metrics or reason.

    Module level so that spawned processes and Ray can ship it.
    """
    import torch

    from experiments.runner import resume_run, run_experiment

    threads = int(os.environ.get("NEUROSIM_SWEEP_THREADS", "1"))
    torch.set_num_threads(max(threads, 1))
    try:
        if (Path(run_dir) / "config.yaml").is_file():
            result = resume_run(run_dir, progress=False, announce=False)
        else:
            result = run_experiment(
                name, overrides, preset=preset, run_dir=run_dir, progress=False, announce=False
            )
    except Exception as exc:
        log.debug("trial %s failed", run_dir, exc_info=True)
        return {"status": "failed", "reason": describe_error(exc)}
    return {"status": "finished", "metrics": {k: float(v) for k, v in result.metrics.items()}}


def _exit_with_parent(parent: int) -> None:
    """Make this process end as soon as ``parent`` (the sweep driver) is gone.

    Linux delivers SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``); everywhere a
    daemon thread also polls the parent PID twice a second.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog remains
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, name="neurosim-parent-watchdog", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _trial_process(
    conn: multiprocessing.connection.Connection,
    parent: int,
    name: str,
    overrides: list[str],
    preset: str | None,
    run_dir: str,
) -> None:
    """Body of a local trial process: watchdog, run, send the outcome to the driver."""
    _exit_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's; it stops us
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit is an error, not death
    outcome = _run_trial(name, overrides, preset, run_dir)
    conn.send(outcome)
    conn.close()


Job = tuple[str, list[str], "str | None", str]


class _SerialExecutor:
    """Trials one after another in this process."""

    def __init__(self) -> None:
        self._done: list[tuple[Trial, dict[str, Any]]] = []

    def submit(self, trial: Trial, job: Job) -> None:
        self._done.append((trial, _run_trial(*job)))

    def wait(self) -> list[tuple[Trial, dict[str, Any]]]:
        done, self._done = self._done, []
        return done

    def close(self, cancel: bool = False) -> None:
        pass


class _LocalExecutor:
    """One spawned process per trial attempt, which exits when the driver dies."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._running: dict[multiprocessing.connection.Connection, tuple[Trial, Any]] = {}

    def submit(self, trial: Trial, job: Job) -> None:
        recv, send = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_trial_process,
            args=(send, os.getpid(), *job),
            name=f"neurosim-trial-{trial.index}",
        )
        process.start()
        send.close()
        self._running[recv] = (trial, process)

    def wait(self) -> list[tuple[Trial, dict[str, Any]]]:
        ready = set(multiprocessing.connection.wait(list(self._running)))
        done = []
        for conn in [c for c in self._running if c in ready]:
            trial, process = self._running.pop(conn)
            outcome: dict[str, Any]
            try:
                outcome = dict(conn.recv())
            except (EOFError, OSError):
                process.join(timeout=30)
                code = process.exitcode
                how = (
                    f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
                )
                outcome = {"status": "failed", "reason": f"trial process died ({how})"}
            finally:
                conn.close()
            process.join(timeout=30)
            done.append((trial, outcome))
        return done

    def close(self, cancel: bool = False) -> None:
        for conn, (_, process) in list(self._running.items()):
            process.kill()
            process.join(timeout=30)
            conn.close()
        self._running.clear()


class _RayExecutor:
    """Trials as Ray tasks (``max_retries=0``: the sweep's own loop retries failed trials)."""

    def __init__(self, workers: int, address: str | None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("executor=ray needs Ray: pip install 'neurosim[ray]'") from exc
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            self._started = True
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_run_trial)
        self._refs: dict[Any, Trial] = {}

    def submit(self, trial: Trial, job: Job) -> None:
        self._refs[self._remote.remote(*job)] = trial

    def wait(self) -> list[tuple[Trial, dict[str, Any]]]:
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        done = []
        for ref in ready:
            trial = self._refs.pop(ref)
            try:
                outcome = self._ray.get(ref)
            except Exception as exc:  # worker crash, node loss: a failed attempt
                outcome = {"status": "failed", "reason": describe_error(exc)}
            done.append((trial, outcome))
        return done

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self._refs:
                try:
                    self._ray.cancel(ref, force=True)
                except Exception:  # already finished or gone
                    pass
        self._refs.clear()
        if self._started:
            self._ray.shutdown()


# ---------------------------------------------------------------------------- the manifest


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class _Manifest:
    sweep_dir: Path
    spec: dict[str, Any]
    trials: list[Trial]

    def save(self) -> None:
        doc = {
            "format": MANIFEST_FORMAT,
            "format_version": MANIFEST_VERSION,
            **self.spec,
            "trials": [asdict(t) for t in self.trials],
        }
        _atomic_write(self.sweep_dir / MANIFEST, json.dumps(doc, indent=1))
        _write_table(self.sweep_dir, self.rows())

    def job(self, trial: Trial) -> Job:
        return (
            self.spec["experiment"],
            [*self.spec["fixed"], *trial.params],
            self.spec["preset"],
            str(self.sweep_dir / trial.run_dir),
        )

    def rows(self) -> list[dict[str, Any]]:
        metric_names: list[str] = []
        for trial in self.trials:
            metric_names += [k for k in trial.metrics if k not in metric_names]
        rows = []
        for trial in self.trials:
            row: dict[str, Any] = dict(parse_override(p) for p in trial.params)
            row = {k: _plain_value(v) for k, v in row.items()}
            row["status"] = trial.status
            row.update({k: trial.metrics.get(k) for k in metric_names})
            row["attempts"] = trial.attempts
            row["reason"] = trial.reason
            row["run_dir"] = str(self.sweep_dir / trial.run_dir)
            rows.append(row)
        return rows

    @classmethod
    def load(cls, sweep_dir: Path) -> _Manifest:
        path = sweep_dir / MANIFEST
        if not path.is_file():
            raise ConfigError(
                f"{str(sweep_dir)!r} is not a sweep directory (no {MANIFEST}); expected the "
                "folder `neurosim sweep` printed"
            )
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"sweep manifest {str(path)!r} is unreadable: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise ConfigError(f"{str(path)!r} is not a neurosim sweep manifest")
        if int(doc.get("format_version", 0)) > MANIFEST_VERSION:
            raise ConfigError(
                f"{str(path)!r} has sweep manifest version {doc['format_version']}, newer than "
                f"this neurosim reads ({MANIFEST_VERSION}); upgrade neurosim"
            )
        trials = [Trial(**t) for t in doc.pop("trials")]
        doc.pop("format")
        doc.pop("format_version")
        return cls(sweep_dir, doc, trials)


def _plain_value(raw: str) -> Any:
    """A swept value as the table shows it (numbers as numbers)."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    return value if isinstance(value, (int, float, str, bool)) else raw


# ---------------------------------------------------------------------------- running sweeps


def run_sweep(
    name: str,
    grid: Sequence[str],
    fixed: Sequence[str] = (),
    *,
    preset: str | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    executor: str = "local",
    workers: int = 0,
    retries: int = 0,
    ray_address: str | None = None,
    announce: bool = True,
) -> SweepResult:
    """Run every combination of ``grid`` (``key=a,b,c`` specs) with the ``fixed`` overrides.

    A failing trial does not stop the others; the result (and ``sweep.csv``) lists every trial
    with its status. Check :attr:`SweepResult.ok`.

    Args:
        name: a registered experiment.
        grid: ``key=a,b,c`` specs; their cartesian product is the set of trials.
        fixed: ``key=value`` overrides shared by every trial.
        preset: a shipped preset name or a YAML path.
        runs_dir: parent of ``sweeps/`` (default ``$NEUROSIM_RUNS`` or ``./runs``).
        executor: ``local`` (a process per trial), ``serial`` (in this process) or ``ray``.
        workers: trials at once (default: the CPU count, at most the number of trials).
        retries: run a failed trial up to this many more times (resuming from its checkpoints).
        ray_address: an existing Ray cluster; a local Ray instance is started when ``None``.
        announce: print the sweep directory to stderr at the start.
    """
    _check_executor(executor, retries)
    combos = expand_grid(grid)
    spec = {
        "experiment": name,
        "preset": preset,
        "fixed": list(fixed),
        "grid": list(grid),
        "executor": executor,
        "workers": workers,
        "retries": retries,
    }
    trials = [Trial(i, combo, f"run{i:03d}") for i, combo in enumerate(combos)]
    _validate(spec, trials, None)
    base = Path(runs_dir) if runs_dir else default_runs_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    sweep_dir = base / "sweeps" / f"{name}-{stamp}-{secrets.token_hex(2)}"
    try:
        sweep_dir.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the sweep directory {str(sweep_dir)!r}: {exc.strerror}"
        ) from exc
    _atomic_write(sweep_dir / "sweep.yaml", yaml.safe_dump(spec, sort_keys=False))
    manifest = _Manifest(sweep_dir, spec, trials)
    if announce:
        print(
            f"neurosim: sweep directory {sweep_dir} (continue it with: neurosim sweep --resume "
            f"{sweep_dir})",
            file=sys.stderr,
            flush=True,
        )
    return _drive(manifest, executor, workers, retries, ray_address)


def resume_sweep(
    sweep_dir: str | os.PathLike[str],
    *,
    executor: str | None = None,
    workers: int | None = None,
    retries: int | None = None,
    ray_address: str | None = None,
    announce: bool = True,
) -> SweepResult:
    """Continue a sweep: finished trials are kept, the others run (resumed from checkpoints).

    Trials that were ``running`` when the driver died, ``pending`` ones and ``failed`` ones all
    run again. ``executor``, ``workers`` and ``retries`` default to the sweep's own.
    """
    path = Path(sweep_dir)
    manifest = _Manifest.load(path)
    spec = manifest.spec
    executor = executor or spec.get("executor", "local")
    workers = spec.get("workers", 0) if workers is None else workers
    retries = spec.get("retries", 0) if retries is None else retries
    _check_executor(executor, retries)
    _validate(spec, manifest.trials, path)
    if announce:
        left = sum(t.status != "finished" for t in manifest.trials)
        print(
            f"neurosim: resuming sweep {path}: {left} of {len(manifest.trials)} trials to run",
            file=sys.stderr,
            flush=True,
        )
    return _drive(manifest, executor, workers or 0, retries, ray_address)


def _check_executor(executor: str, retries: int) -> None:
    if executor not in EXECUTORS:
        raise ConfigError(f"sweep executor {executor!r} is unknown; expected one of {EXECUTORS}")
    if retries < 0:
        raise ConfigError(f"sweep retries must be >= 0, got {retries}")


def _validate(spec: dict[str, Any], trials: list[Trial], sweep_dir: Path | None) -> None:
    """Build every unfinished trial's config before anything runs; one line names the bad one."""
    for trial in trials:
        if trial.status == "finished":
            continue
        run_dir = sweep_dir / trial.run_dir if sweep_dir is not None else None
        try:
            if run_dir is not None and (run_dir / "config.yaml").is_file():
                load_run_config(run_dir)
            else:
                make_config(spec["experiment"], [*spec["fixed"], *trial.params], spec["preset"])
        except NeurosimError as exc:
            label = " ".join(trial.params) or "(no swept keys)"
            raise ConfigError(f"sweep trial {trial.index} ({label}): {exc}") from exc


def _drive(
    manifest: _Manifest, executor: str, workers: int, retries: int, ray_address: str | None
) -> SweepResult:
    """Run every unfinished trial, recording each status change in the manifest."""
    with DirectoryLock(manifest.sweep_dir, "sweep"):
        todo = [t for t in manifest.trials if t.status != "finished"]
        for trial in todo:
            trial.status = "pending"
        manifest.save()
        if todo:
            workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
            _schedule(manifest, todo, executor, workers, retries, ray_address)
        rows = manifest.rows()
    return SweepResult(manifest.sweep_dir, rows, list(manifest.trials))


def _schedule(
    manifest: _Manifest,
    todo: list[Trial],
    executor: str,
    workers: int,
    retries: int,
    ray_address: str | None,
) -> None:
    backend: _SerialExecutor | _LocalExecutor | _RayExecutor
    if executor == "serial":
        backend = _SerialExecutor()
    elif executor == "local":
        backend = _LocalExecutor()
    else:
        backend = _RayExecutor(workers, ray_address)
    queue = deque(todo)
    tries = {t.index: 0 for t in todo}
    in_flight = 0
    try:
        while queue or in_flight:
            while queue and in_flight < workers:
                trial = queue.popleft()
                trial.status = "running"
                trial.attempts += 1
                tries[trial.index] += 1
                manifest.save()
                backend.submit(trial, manifest.job(trial))
                in_flight += 1
            for trial, outcome in backend.wait():
                in_flight -= 1
                _record(trial, outcome, tries[trial.index], retries, queue)
                manifest.save()
    except BaseException:
        backend.close(cancel=True)
        for trial in manifest.trials:
            if trial.status == "running":
                trial.status = "pending"
                trial.reason = "interrupted: the sweep driver stopped"
        manifest.save()
        raise
    backend.close()


def _record(
    trial: Trial, outcome: dict[str, Any], tries: int, retries: int, queue: deque[Trial]
) -> None:
    if outcome.get("status") == "finished":
        trial.status = "finished"
        trial.metrics = dict(outcome.get("metrics", {}))
        trial.reason = ""
        return
    trial.reason = str(outcome.get("reason", "unknown failure"))
    label = " ".join(trial.params) or f"#{trial.index}"
    if tries <= retries:
        trial.status = "pending"
        queue.append(trial)
        log.warning(
            "sweep trial %d (%s) failed: %s; retrying (%d of %d retries)",
            trial.index,
            label,
            trial.reason,
            tries,
            retries,
        )
    else:
        trial.status = "failed"
        log.warning("sweep trial %d (%s) failed: %s", trial.index, label, trial.reason)


def _write_table(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(sweep_dir / "sweep.csv", buffer.getvalue())


def read_sweep(sweep_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The collected table of a sweep (``sweep.csv``; empty cells read as ``None``)."""
    path = Path(sweep_dir) / "sweep.csv"
    if not path.is_file():
        raise ConfigError(f"{str(sweep_dir)!r} is not a sweep directory (no sweep.csv)")
    with open(path, newline="") as fh:
        rows: list[dict[str, Any]] = []
        for row in csv.DictReader(fh):
            parsed: dict[str, Any] = {}
            for key, value in row.items():
                if value == "" or value is None:
                    parsed[key] = None
                    continue
                try:
                    parsed[key] = float(value)
                except (TypeError, ValueError):
                    parsed[key] = value
            rows.append(parsed)
    return rows
