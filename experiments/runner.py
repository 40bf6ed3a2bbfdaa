"""Running an experiment: run directory, config, results, checkpoints, resume.

Every run gets a directory ``<runs_dir>/<experiment>/<YYYYmmdd-HHMMSS>-<id>/`` holding

* ``config.yaml``: the experiment name and its full config as plain YAML (reload with
  :func:`load_run_config`, no pickles);
* ``results.h5``: metric series, arrays, environment and summary (:mod:`experiments.results`);
* ``checkpoints/step_*.pt``: the newest two checkpoints (:mod:`experiments.checkpoint`).

A run killed at any point resumes with :func:`resume_run` (``neurosim run --resume RUN``) from its
last checkpoint and ends with the same final metrics as an uninterrupted run with the same seed.

Under data-parallel training (:mod:`experiments.distributed`; ``neurosim run --nproc N`` or
``torchrun``) every rank runs these functions: rank 0 alone creates the run directory and writes
``config.yaml``, ``results.h5`` and checkpoints; the others receive the directory, a resumed
run's config and its checkpoint from rank 0. Logged metrics are averaged over the ranks, and
every rank returns rank 0's final metrics. A checkpoint holds the unwrapped model and the
global-batch generators, so a run written with N ranks resumes with any number.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from experiments import distributed
from experiments.base import Experiment, RunConfig
from experiments.checkpoint import latest_checkpoint, rng_state, save_checkpoint, set_rng_state
from experiments.config import ConfigError, build_config, from_dict, load_preset, load_yaml, to_dict
from experiments.registry import get_experiment
from experiments.results import ResultsWriter, open_results
from experiments.trainer import DivergedError
from neurosim._version import __version__
from neurosim.backend import InputError, Runtime

log = logging.getLogger("neurosim.experiments")

RUNS_ENV = "NEUROSIM_RUNS"


@dataclass
class RunResult:
    """What a finished run returns: where it is and its final metrics."""

    experiment: str
    run_dir: Path
    config: RunConfig
    metrics: dict[str, float]

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
    path.mkdir(parents=True, exist_ok=False)
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
    return str(doc["experiment"]), from_dict(cls.config_class, doc["config"])


def run_experiment(
    name: str,
    overrides: Sequence[str] = (),
    runs_dir: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Run experiment ``name`` from scratch in a new run directory and return its result.

    Args:
        name: a registered experiment (``neurosim list``).
        overrides: ``key=value`` strings (nested keys with dots).
        runs_dir: parent folder of run directories (default ``$NEUROSIM_RUNS`` or ``./runs``).
        preset: a shipped preset name or a YAML path.
        run_dir: use exactly this (new or empty) directory instead of a generated one.
        progress: show a progress bar (default: only on a terminal).
    """
    config = make_config(name, overrides, preset)
    check_distributed_support(name)

    def prepare() -> Path:  # rank 0 only; the other data-parallel ranks receive the path
        if run_dir is not None:
            path = Path(run_dir)
            if path.exists() and any(path.iterdir()):
                raise InputError(
                    f"run directory {str(path)!r} is not empty; resume it with --resume or pick "
                    "another"
                )
            path.mkdir(parents=True, exist_ok=True)
        else:
            path = new_run_dir(Path(runs_dir) if runs_dir else default_runs_dir(), name)
        write_run_config(path, name, config)
        return path

    path = distributed.from_main(prepare)
    return _execute(name, config, path, resume=False, progress=progress)


def resume_run(run_dir: str | os.PathLike[str], *, progress: bool | None = None) -> RunResult:
    """Continue a run from its newest checkpoint (or from the start if it has none)."""
    path = Path(run_dir)

    def read() -> tuple[str, RunConfig, dict[str, float] | None]:  # rank 0 only
        name, config = load_run_config(path)
        results_file = path / "results.h5"
        if results_file.exists():
            previous = open_results(results_file, load_arrays=False)
            if previous.status == "finished":
                return name, config, dict(previous.summary)
        return name, config, None

    name, config, finished = distributed.from_main(read)
    if finished is not None:
        log.info("run %s is already finished", path)
        return RunResult(name, path, config, finished)
    check_distributed_support(name)
    return _execute(name, config, path, resume=True, progress=progress)


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


def _execute(
    name: str, config: RunConfig, run_dir: Path, *, resume: bool, progress: bool | None
) -> RunResult:
    cls = get_experiment(name)
    device = distributed.rank_device(config.device)
    runtime = Runtime.create(device, config.precision, config.seed, config.deterministic)
    main = distributed.is_main()  # only rank 0 writes results, plots and checkpoints
    environment = runtime.describe()
    if distributed.world_size() > 1:
        environment["world_size"] = distributed.world_size()
    results: Any = (
        ResultsWriter(
            run_dir / "results.h5",
            attrs={"experiment": name, "run_dir": str(run_dir), "environment": environment},
        )
        if main
        else _NoResults()
    )
    experiment: Experiment[Any] = cls(config, runtime, results if main else None)
    experiment.setup()
    start = 0
    if resume:
        checkpoint = distributed.from_main(lambda: latest_checkpoint(run_dir))
        if checkpoint is not None:
            experiment.load_state_dict(checkpoint["experiment"])
            if experiment.trainer is not None and "trainer" in checkpoint:
                experiment.trainer.load_state_dict(checkpoint["trainer"])
            set_rng_state(checkpoint["rng"])
            start = int(checkpoint["step"])
            log.info("resuming %s from step %d", run_dir, start)
        results.truncate(start)

    show = (sys.stderr.isatty() if progress is None else progress) and main
    bar = tqdm(total=config.steps, initial=start, desc=name, disable=not show, leave=False)
    try:
        for step in range(start, config.steps):
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
                    save_checkpoint(run_dir, done, _checkpoint_payload(experiment))
            bar.update(1)
        _raise_if_diverged(experiment)
    except DivergedError as exc:
        results.flush()
        results.fail("diverged", str(exc), step=exc.step)
        raise
    finally:
        bar.close()
        results.flush()

    evaluated = {k: float(v) for k, v in experiment.evaluate().items()}
    final = distributed.from_main(lambda: evaluated)  # every rank reports rank 0's numbers
    if main:
        for array_name, array in experiment.artifacts().items():
            results.save_array(array_name, array)
        save_checkpoint(run_dir, config.steps, _checkpoint_payload(experiment))
    results.finish(final)
    return RunResult(name, run_dir, config, final)


def _raise_if_diverged(experiment: Experiment[Any]) -> None:
    if experiment.trainer is not None:
        experiment.trainer.raise_if_diverged()


def _checkpoint_payload(experiment: Experiment[Any]) -> dict[str, Any]:
    """What a checkpoint holds: the experiment's state, its trainer's (if any), the RNGs."""
    payload: dict[str, Any] = {"experiment": experiment.state_dict(), "rng": rng_state()}
    if experiment.trainer is not None:
        payload["trainer"] = experiment.trainer.state_dict()
    return payload
