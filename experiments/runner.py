"""Running an experiment: run directory, config, results, checkpoints, resume.

Every run gets a directory ``<runs_dir>/<experiment>/<YYYYmmdd-HHMMSS>-<id>/`` holding

* ``config.yaml``: the experiment name and its full config as plain YAML (reload with
  :func:`load_run_config`, no pickles);
* ``results.h5``: metric series, arrays, environment and summary (:mod:`experiments.results`);
* ``checkpoints/step_*.pt``: the newest two checkpoints (:mod:`experiments.checkpoint`).

A run killed at any point resumes with :func:`resume_run` (``neurosim run --resume RUN``) from its
last checkpoint and ends with the same final metrics as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

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
    if run_dir is not None:
        path = Path(run_dir)
        if path.exists() and any(path.iterdir()):
            raise InputError(
                f"run directory {str(path)!r} is not empty; resume it with --resume or pick another"
            )
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = new_run_dir(Path(runs_dir) if runs_dir else default_runs_dir(), name)
    write_run_config(path, name, config)
    return _execute(name, config, path, resume=False, progress=progress)


def resume_run(run_dir: str | os.PathLike[str], *, progress: bool | None = None) -> RunResult:
    """Continue a run from its newest checkpoint (or from the start if it has none)."""
    path = Path(run_dir)
    name, config = load_run_config(path)
    results_file = path / "results.h5"
    if results_file.exists():
        previous = open_results(results_file, load_arrays=False)
        if previous.status == "finished":
            log.info("run %s is already finished", path)
            return RunResult(name, path, config, previous.summary)
    return _execute(name, config, path, resume=True, progress=progress)


def _execute(
    name: str, config: RunConfig, run_dir: Path, *, resume: bool, progress: bool | None
) -> RunResult:
    cls = get_experiment(name)
    runtime = Runtime.create(config.device, config.precision, config.seed, config.deterministic)
    results = ResultsWriter(
        run_dir / "results.h5",
        attrs={"experiment": name, "run_dir": str(run_dir), "environment": runtime.describe()},
    )
    experiment: Experiment[Any] = cls(config, runtime, results)
    experiment.setup()
    start = 0
    if resume:
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is not None:
            experiment.load_state_dict(checkpoint["experiment"])
            if experiment.trainer is not None and "trainer" in checkpoint:
                experiment.trainer.load_state_dict(checkpoint["trainer"])
            set_rng_state(checkpoint["rng"])
            start = int(checkpoint["step"])
            log.info("resuming %s from step %d", run_dir, start)
        results.truncate(start)

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=config.steps, initial=start, desc=name, disable=not show, leave=False)
    try:
        for step in range(start, config.steps):
            metrics = experiment.step(step)
            done = step + 1
            if metrics and (done % max(config.log_every, 1) == 0 or done == config.steps):
                results.log(step, metrics)
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(metrics.items())[:3]})
            if (
                config.checkpoint_every
                and done % config.checkpoint_every == 0
                and done < config.steps
            ):
                results.flush()
                save_checkpoint(run_dir, done, _checkpoint_payload(experiment))
            bar.update(1)
    except DivergedError as exc:
        results.flush()
        results.fail("diverged", str(exc), step=exc.step)
        raise
    finally:
        bar.close()
        results.flush()

    final = {k: float(v) for k, v in experiment.evaluate().items()}
    for array_name, array in experiment.artifacts().items():
        results.save_array(array_name, array)
    save_checkpoint(run_dir, config.steps, _checkpoint_payload(experiment))
    results.finish(final)
    return RunResult(name, run_dir, config, final)


def _checkpoint_payload(experiment: Experiment[Any]) -> dict[str, Any]:
    """What a checkpoint holds: the experiment's state, its trainer's (if any), the RNGs."""
    payload: dict[str, Any] = {"experiment": experiment.state_dict(), "rng": rng_state()}
    if experiment.trainer is not None:
        payload["trainer"] = experiment.trainer.state_dict()
    return payload
