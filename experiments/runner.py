"""Running an experiment: run directory, config, results, checkpoints, resume.

Every run gets a directory ``<runs_dir>/<experiment>/<YYYYmmdd-HHMMSS>-<id>/`` holding

* ``config.yaml``: the experiment name and its full config as plain YAML (reload with
  :func:`load_run_config`, no pickles);
* ``results.h5``: metric series, arrays, environment, the config in use, status and summary
  (:mod:`experiments.results`);
* ``checkpoints/step_*.pt``: the newest two checkpoints with their SHA-256 files
  (:mod:`experiments.checkpoint`);
* ``.lock``: the lock a running process holds (:mod:`experiments.lock`).

A run killed at any point resumes with :func:`resume_run` (``neurosim run --resume RUN``) from its
last good checkpoint and ends with the same final metrics as an uninterrupted run with the same
seed. Only one process at a time may run or resume a run directory. The run directory is printed
to stderr when a run starts, so an interrupted run can be found and resumed.

Failures end with the run marked in ``results.h5``: ``failed`` (with the reason and step),
``diverged`` (non-finite loss) or ``interrupted`` (Ctrl-C); a resume continues any of them.
Out-of-memory, a full disk and unwritable directories raise :class:`RunError`, one line naming
the run and the cause.

Editing ``config.yaml`` before resuming: only the keys in :data:`MUTABLE_ON_RESUME` may change
(``steps`` not below the step of the checkpoint being resumed); any other change is refused
with a :class:`~experiments.config.ConfigError` naming the key, since the checkpoint holds a
model and optimizer built for the original values.

Under data-parallel training (:mod:`experiments.distributed`; ``neurosim run --nproc N`` or
``torchrun``) every rank runs these functions: rank 0 alone creates the run directory, holds its
lock and writes ``config.yaml``, ``results.h5`` and checkpoints; the others receive the directory,
a resumed run's config and its checkpoint from rank 0. Logged metrics are averaged over the ranks,
and every rank returns rank 0's final metrics. A checkpoint holds the unwrapped model and the
global-batch generators, so a run written with N ranks resumes with any number.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm import tqdm

from experiments import distributed
from experiments.base import Experiment, RunConfig
from experiments.checkpoint import find_checkpoint, rng_state, save_checkpoint, set_rng_state
from experiments.config import ConfigError, build_config, from_dict, load_preset, load_yaml, to_dict
from experiments.lock import LOCK_FILE, DirectoryLock
from experiments.registry import get_experiment
from experiments.results import ResultsError, ResultsWriter, open_results
from experiments.trainer import DivergedError
from neurosim._version import __version__
from neurosim.backend import InputError, NeurosimError, Runtime

log = logging.getLogger("neurosim.experiments")

RUNS_ENV = "NEUROSIM_RUNS"

MUTABLE_ON_RESUME = ("steps", "log_every", "checkpoint_every", "device", "data_root")
"""Config keys that may change in ``config.yaml`` between a run and its resume.

``steps`` may be raised (a finished run then continues) or lowered down to the step of the
checkpoint being resumed; ``log_every`` and ``checkpoint_every`` only change what is written;
``device`` moves the run (results then match within floating-point reassociation, not bit for
bit); ``data_root`` follows a dataset that moved. Everything else (widths, learning rates, seeds,
data) shapes the model or its trajectory and must stay as the checkpoint was made.
"""


class RunError(NeurosimError, RuntimeError):
    """A run could not go on for a reason outside the code: memory, disk, permissions."""


@dataclass
class RunResult:
    """What a finished run returns: where it is and its final metrics."""

    experiment: str
    run_dir: Path
    config: RunConfig
    metrics: dict[str, float]
    resumed_from: int | None = None
    """Step of the checkpoint a resumed run continued from (``None``: it started at step 0)."""

    @property
    def results_path(self) -> Path:
        return self.run_dir / "results.h5"


def default_runs_dir() -> Path:
    """``$NEUROSIM_RUNS`` or ``./runs``."""
    return Path(os.environ.get(RUNS_ENV, "runs"))


def new_run_dir(runs_dir: Path, experiment: str) -> Path:
    """A fresh, unique run directory under ``runs_dir/experiment``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = runs_dir / experiment / f"{stamp}-{secrets.token_hex(3)}"
    try:
        path.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise RunError(
            f"cannot create a run directory under {str(runs_dir)!r}: {_os_reason(exc)} "
            f"(pick a writable --runs-dir or set ${RUNS_ENV})"
        ) from exc
    return path


def make_config(
    experiment: str, overrides: Sequence[str] = (), preset: str | None = None
) -> RunConfig:
    """The validated config of ``experiment`` from defaults, a preset and overrides."""
    cls = get_experiment(experiment)
    data = load_preset(experiment, preset) if preset else None
    return build_config(cls.config_class, data, overrides)


def write_run_config(run_dir: Path, experiment: str, config: RunConfig) -> None:
    """Write ``config.yaml`` atomically."""
    doc = {"experiment": experiment, "neurosim_version": __version__, "config": to_dict(config)}
    tmp = run_dir / "config.yaml.tmp"
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    os.replace(tmp, run_dir / "config.yaml")


def load_run_config(run_dir: str | os.PathLike[str]) -> tuple[str, RunConfig]:
    """Read a run's ``config.yaml`` back into ``(experiment name, typed config)``."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise InputError(
            f"{str(run_dir)!r} is not a run directory: it has no config.yaml "
            "(expected the folder `neurosim run` printed)"
        )
    doc = load_yaml(path)
    if "experiment" not in doc or "config" not in doc:
        raise ConfigError(f"{str(path)!r} lacks the 'experiment' and 'config' keys of a run config")
    cls = get_experiment(str(doc["experiment"]))
    try:
        config = from_dict(cls.config_class, doc["config"])
    except ConfigError as exc:
        raise ConfigError(f"{str(path)!r}: {exc}") from exc
    return str(doc["experiment"]), config


def run_experiment(
    name: str,
    overrides: Sequence[str] = (),
    runs_dir: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    announce: bool = True,
) -> RunResult:
    """Run experiment ``name`` from scratch in a new run directory and return its result.

    Args:
        name: a registered experiment (``neurosim list``).
        overrides: ``key=value`` strings (nested keys with dots).
        runs_dir: parent folder of run directories (default ``$NEUROSIM_RUNS`` or ``./runs``).
        preset: a shipped preset name or a YAML path.
        run_dir: use exactly this (new or empty) directory instead of a generated one.
        progress: show a progress bar (default: only on a terminal).
        announce: print the run directory to stderr when the run starts.
    """
    config = make_config(name, overrides, preset)
    check_distributed_support(name)

    def prepare() -> Path:  # rank 0 only; the other data-parallel ranks receive the path
        if run_dir is not None:
            path = Path(run_dir)
            if path.exists() and any(p.name != LOCK_FILE for p in path.iterdir()):
                raise InputError(
                    f"run directory {str(path)!r} is not empty; resume it with --resume or pick "
                    "another"
                )
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RunError(
                    f"cannot create the run directory {str(path)!r}: {_os_reason(exc)} "
                    "(pick a writable --run-dir)"
                ) from exc
            return path
        return new_run_dir(Path(runs_dir) if runs_dir else default_runs_dir(), name)

    path = distributed.from_main(prepare)
    with _run_lock(path):
        if distributed.is_main():
            try:
                write_run_config(path, name, config)
            except OSError as exc:
                raise RunError(
                    f"cannot write the config of run {str(path)!r}: {_os_reason(exc)}"
                ) from exc
            if announce:
                _announce(path)
        return _execute(name, config, path, checkpoint=None, resume=False, progress=progress)


def resume_run(
    run_dir: str | os.PathLike[str], *, progress: bool | None = None, announce: bool = True
) -> RunResult:
    """Continue a run from its newest good checkpoint (or from the start if it has none).

    A finished run returns its summary, unless ``steps`` in its ``config.yaml`` was raised: then
    it continues from its final checkpoint. Config edits outside :data:`MUTABLE_ON_RESUME` are
    refused (:class:`~experiments.config.ConfigError` naming the key); a run that another
    process is running is refused (:class:`~experiments.lock.DirectoryInUseError` naming its PID).
    """
    path = Path(run_dir)
    name, config = distributed.from_main(lambda: load_run_config(path))
    with _run_lock(path):

        def read() -> tuple[dict[str, Any] | None, dict[str, float] | None]:  # rank 0 only
            previous = None
            results_file = path / "results.h5"
            if results_file.exists():
                previous = open_results(results_file, load_arrays=False)
            found = find_checkpoint(path)
            checkpoint = found[1] if found is not None else None
            step = int(checkpoint["step"]) if checkpoint is not None else None
            original = checkpoint.get("config") if checkpoint is not None else None
            if original is None and previous is not None:
                original = previous.attrs.get("config")
            if isinstance(original, dict):
                check_resume_config(path, original, to_dict(config), step)
            if previous is not None and previous.status == "finished":
                done = step if step is not None else _stored_steps(original, config)
                if config.steps <= done:
                    return checkpoint, dict(previous.summary)
            return checkpoint, None

        checkpoint, finished = distributed.from_main(read)
        if finished is not None:
            log.info("run %s is already finished", path)
            return RunResult(name, path, config, finished)
        check_distributed_support(name)
        if announce and distributed.is_main():
            _announce(path, int(checkpoint["step"]) if checkpoint is not None else None)
        return _execute(name, config, path, checkpoint=checkpoint, resume=True, progress=progress)


def check_distributed_support(name: str) -> None:
    """Refuse several data-parallel ranks for an experiment that does not declare
    ``supports_ddp`` (its batches would not be sharded, nor its extra state kept in step)."""
    world = distributed.world_size()
    if world > 1 and not get_experiment(name).supports_ddp:
        raise InputError(
            f"experiment {name!r} does not support data-parallel training (supports_ddp is "
            f"false) but {world} processes were started; run it with one process"
        )


class _NoResults:
    """What ranks other than 0 write results to: nothing."""

    path = None

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def check_resume_config(
    run_dir: Path, original: dict[str, Any], edited: dict[str, Any], checkpoint_step: int | None
) -> None:
    """Refuse config edits a resumed run cannot honour (see :data:`MUTABLE_ON_RESUME`).

    Raises:
        ConfigError: naming the first changed key that may not change, or a ``steps`` below
            the step of the checkpoint being resumed.
    """
    old, new = _flatten(original), _flatten(edited)
    for key in (k for k in new if k in old):  # in the config's own order
        if old[key] == new[key] or key in MUTABLE_ON_RESUME:
            continue
        raise ConfigError(
            f"config.yaml of run {str(run_dir)!r} changed {key!r} from {old[key]!r} to "
            f"{new[key]!r} since the run started; a resumed run must keep it (only "
            f"{', '.join(MUTABLE_ON_RESUME)} may change). Restore {key}: {old[key]!r}, or start "
            "a new run with the new value"
        )
    steps = new.get("steps")
    if checkpoint_step is not None and isinstance(steps, int) and steps < checkpoint_step:
        raise ConfigError(
            f"config.yaml of run {str(run_dir)!r} sets steps={steps}, below the step of the "
            f"checkpoint to resume from ({checkpoint_step}); a run cannot go back: set steps "
            f">= {checkpoint_step}, or start a new run"
        )


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


def _stored_steps(original: Any, config: RunConfig) -> int:
    if isinstance(original, dict) and isinstance(original.get("steps"), int):
        return int(original["steps"])
    return config.steps


def _announce(run_dir: Path, step: int | None = None) -> None:
    where = f" from step {step}" if step else ""
    print(
        f"neurosim: run directory {run_dir}{where} "
        f"(if interrupted, continue with: neurosim run --resume {run_dir})",
        file=sys.stderr,
        flush=True,
    )


@contextlib.contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    """The run directory's lock, taken by the main rank only (one writer per run)."""
    if not distributed.is_main():
        yield
        return
    with DirectoryLock(run_dir, "run"):
        yield


def _execute(
    name: str,
    config: RunConfig,
    run_dir: Path,
    *,
    checkpoint: dict[str, Any] | None,
    resume: bool,
    progress: bool | None,
) -> RunResult:
    cls = get_experiment(name)
    main = distributed.is_main()  # only rank 0 writes results, plots and checkpoints
    results: Any = _NoResults()
    if main:
        try:
            results = ResultsWriter(
                run_dir / "results.h5",
                attrs={"experiment": name, "run_dir": str(run_dir), "config": to_dict(config)},
            )
        except ResultsError:
            raise
        except Exception as exc:
            error = _as_run_error(exc, name, config, run_dir)
            if error is None:
                raise
            raise error from exc
    start = 0
    current = 0
    show = (sys.stderr.isatty() if progress is None else progress) and main
    bar = None
    try:
        device = distributed.rank_device(config.device)
        runtime = Runtime.create(device, config.precision, config.seed, config.deterministic)
        environment = runtime.describe()
        if distributed.world_size() > 1:
            environment["world_size"] = distributed.world_size()
        results.set_attrs({"environment": environment})
        experiment: Experiment[Any] = cls(config, runtime, results if main else None)
        experiment.setup()
        if checkpoint is not None:
            experiment.load_state_dict(checkpoint["experiment"])
            if experiment.trainer is not None and "trainer" in checkpoint:
                experiment.trainer.load_state_dict(checkpoint["trainer"])
            set_rng_state(checkpoint["rng"])
            start = int(checkpoint["step"])
            log.info("resuming %s from step %d", run_dir, start)
        if resume:
            results.truncate(start)
        current = start
        bar = tqdm(total=config.steps, initial=start, desc=name, disable=not show, leave=False)
        for step in range(start, config.steps):
            current = step
            metrics = experiment.step(step)
            done = step + 1
            if metrics and (done % max(config.log_every, 1) == 0 or done == config.steps):
                _raise_if_diverged(experiment)  # before a non-finite value is logged
                values = distributed.reduce_mean(metrics, runtime.device)  # the only sync
                results.log(step, values)
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(values.items())[:3]})
            if (
                config.checkpoint_every
                and done % config.checkpoint_every == 0
                and done < config.steps
            ):
                _raise_if_diverged(experiment)  # never checkpoint non-finite weights
                results.flush()
                if main:
                    save_checkpoint(run_dir, done, _checkpoint_payload(experiment, config))
            bar.update(1)
        _raise_if_diverged(experiment)
        current = config.steps
        bar.close()
        results.flush()
        evaluated = {k: float(v) for k, v in experiment.evaluate().items()}
        final = distributed.from_main(lambda: evaluated)  # every rank reports rank 0's numbers
        if main:
            for array_name, array in experiment.artifacts().items():
                results.save_array(array_name, array)
            save_checkpoint(run_dir, config.steps, _checkpoint_payload(experiment, config))
        results.finish(final)
    except DivergedError as exc:
        _mark(results, "diverged", str(exc), exc.step)
        raise
    except KeyboardInterrupt:
        _mark(results, "interrupted", "interrupted (Ctrl-C or SIGINT)", current)
        raise
    except Exception as exc:
        error = _as_run_error(exc, name, config, run_dir)
        reason = str(error) if error is not None else f"{type(exc).__name__}: {exc}"
        _mark(results, "failed", reason.splitlines()[0] if reason else "failed", current)
        if error is not None:
            raise error from exc
        raise
    finally:
        if bar is not None:
            bar.close()
    return RunResult(name, run_dir, config, final, resumed_from=start if checkpoint else None)


def _raise_if_diverged(experiment: Experiment[Any]) -> None:
    if experiment.trainer is not None:
        experiment.trainer.raise_if_diverged()


def _mark(results: ResultsWriter, status: str, reason: str, step: int | None) -> None:
    """Record how the run ended; never hides the original error (e.g. on a full disk)."""
    try:
        results.fail(status, reason, step=step)
    except Exception as exc:  # the disk may be what failed
        log.debug("could not mark the run %s: %s", status, exc)


_DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DISK_TEXT = (
    "no space left",
    "file too large",
    "disk quota",
    "file write failed",
    "errno = 27",
    "errno = 28",
    "errno=27",
    "errno=28",
)
_MEMORY_TEXT = ("can't allocate memory", "out of memory", "unable to allocate", "bad_alloc")


def _as_run_error(
    exc: BaseException, name: str, config: RunConfig, run_dir: Path
) -> RunError | None:
    """A one-line :class:`RunError` for expected failures (memory, disk, permissions)."""
    text = str(exc).lower()
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(exc, RuntimeError) and any(t in text for t in _MEMORY_TEXT)
    ):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return RunError(
            f"{name} ran out of memory in run {str(run_dir)!r} ({first.strip()[:200]}); its "
            f"config asks for more than this machine has: {_size_keys(config)} "
            "(lower these in the config)"
        )
    if (isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS) or (
        isinstance(exc, (OSError, RuntimeError)) and any(t in text for t in _DISK_TEXT)
    ):
        why = _os_reason(exc) if isinstance(exc, OSError) else str(exc).strip().splitlines()[0]
        return RunError(
            f"run {str(run_dir)!r} could not write its files ({why[:200]}): the disk is full or "
            "a file-size limit was reached; free space, then continue with "
            f"`neurosim run --resume {run_dir}`"
        )
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return RunError(f"run {str(run_dir)!r}: {_os_reason(exc)}")
    return None


def _size_keys(config: RunConfig) -> str:
    """The config's largest integer settings, ``key=value`` (for out-of-memory messages)."""
    flat = _flatten(to_dict(config))
    ints = [
        (v, k)
        for k, v in flat.items()
        if isinstance(v, int)
        and not isinstance(v, bool)
        and k not in ("seed", "steps")
        and k not in ("log_every", "checkpoint_every")
    ]
    return ", ".join(f"{k}={v}" for v, k in sorted(ints, reverse=True)[:4]) or "(no sizes)"


def _os_reason(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{reason}: {exc.filename!r}" if exc.filename else reason


def _checkpoint_payload(experiment: Experiment[Any], config: RunConfig) -> dict[str, Any]:
    """What a checkpoint holds: the experiment's state, its trainer's (if any), the RNGs, and
    the config it was made with (checked when a run is resumed)."""
    payload: dict[str, Any] = {
        "experiment": experiment.state_dict(),
        "rng": rng_state(),
        "config": to_dict(config),
    }
    if experiment.trainer is not None:
        payload["trainer"] = experiment.trainer.state_dict()
    return payload
