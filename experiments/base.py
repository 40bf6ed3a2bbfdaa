"""What an experiment is: a typed config and a class with setup / step / evaluate / state.

The runner (:mod:`experiments.runner`) owns the loop, logging, checkpoints and resume; an
experiment owns only its science::

    @dataclass
    class MyConfig(RunConfig):
        hidden: int = 64          # every field typed, with a default

    @register
    class MyExperiment(Experiment[MyConfig]):
        name = "my_experiment"
        config_class = MyConfig
        description = "one line for `neurosim list`"

        def setup(self) -> None: ...                       # data, model, optimiser
        def step(self, step: int) -> dict[str, float]: ... # one unit of work; metrics to log
        def evaluate(self) -> dict[str, float]: ...        # final metrics
        def state_dict(self) -> dict: ...                  # everything resume needs
        def load_state_dict(self, state: dict) -> None: ...

Gradient-trained families build a :class:`experiments.trainer.Trainer` in ``setup`` and assign it
to ``self.trainer``; ``step`` then calls ``self.trainer.train_step(step, loss_fn)``, and the
runner checkpoints the trainer's optimizer/schedule state (``state_dict`` holds only the
model and the family's own counters and generators).

``step`` is called for ``step = 0 .. config.steps - 1``; metrics it returns (floats, or 0-dim
tensors that stay on the device: the runner reads them, in one host sync, only on the steps it
logs) are averaged over data-parallel ranks and appended to the run's ``results.h5`` every
``log_every`` steps.

A family that sets ``supports_ddp = True`` runs on several data-parallel ranks
(:mod:`experiments.distributed`): it draws each *global* batch from its generator and keeps
``shard(batch)``, calls the model through ``self.trainer.model`` (DDP-wrapped), and evaluates on
every rank alike. Other families are refused with ``--nproc`` > 1. ``self.save_array(name, array)`` stores arrays
(spike rasters, rendered images) in the results file. Use ``self.runtime.device`` and
``self.runtime.generator``: never a hard-coded device, never the global RNG.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np
import torch

from experiments.config import MAX_SEED, Checked, bounded, one_of
from neurosim.backend import PRECISIONS, Runtime

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from experiments.results import Results, ResultsWriter
    from experiments.trainer import Trainer


@dataclass
class RunConfig(Checked):
    """Fields every experiment config has (subclass it and add your own, all typed).

    Declare each field's range with :func:`experiments.config.bounded` or
    :func:`~experiments.config.one_of` (and cross-field checks in ``validate()``): they are
    checked when the config is built, before anything runs, and a bad value is an error naming
    the key and the range. A subclass that changes a default keeps the range declared here.

    Attributes:
        seed: seeds every RNG; same seed, same results (on the same device); in [0, 2**63 - 1].
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast).
        deterministic: torch deterministic algorithms.
        steps: number of calls to ``step``.
        log_every: append the step's metrics to the results file every this many steps.
        checkpoint_every: write a checkpoint every this many steps (0 = only at the end).
        data_root: folder with external datasets (default: ``$NEUROSIM_DATA`` or ``../shared/data``).
    """

    seed: int = bounded(0, ge=0, le=MAX_SEED)
    device: str = "auto"
    precision: str = one_of("fp32", PRECISIONS)
    deterministic: bool = False
    steps: int = bounded(100, ge=1)
    log_every: int = bounded(10, ge=1)
    checkpoint_every: int = bounded(50, ge=0)
    data_root: str = ""


C = TypeVar("C", bound=RunConfig)


class Experiment(abc.ABC, Generic[C]):
    """Base class of every registered experiment (see the module docstring)."""

    name: ClassVar[str]
    config_class: ClassVar[type[RunConfig]]
    description: ClassVar[str] = ""
    supports_ddp: ClassVar[bool] = False
    """Whether the family shards its batches for data-parallel ranks (see the module docstring)."""
    metric_units: ClassVar[Mapping[str, str]] = {}
    """Units of logged metrics for plot labels, e.g. ``{"loss": "MSE", "psnr": "dB"}``
    (``neurosim show`` falls back to common names: ``psnr`` dB, ``*accuracy`` fraction, ...)."""

    trainer: Trainer | None = None
    """Set in ``setup`` by gradient-trained families; the runner checkpoints and restores it."""

    def __init__(self, config: C, runtime: Runtime, results: ResultsWriter | None = None) -> None:
        self.config = config
        self.runtime = runtime
        self.results = results

    @abc.abstractmethod
    def setup(self) -> None:
        """Build data, model and optimiser (called once, before ``step`` or ``load_state_dict``)."""

    @abc.abstractmethod
    def step(self, step: int) -> Mapping[str, float | torch.Tensor]:
        """Do one unit of work; return scalar metrics to log (may be empty): floats or 0-dim
        tensors (read only on logged steps, so a step need not wait for the device)."""

    @abc.abstractmethod
    def evaluate(self) -> dict[str, float]:
        """Final metrics, written as the run's summary."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimiser, RNG generators, counters."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def artifacts(self) -> dict[str, np.ndarray]:
        """Arrays to store at the end (images, rasters); default none."""
        return {}

    @classmethod
    def figures(cls, results: Results) -> dict[str, Figure]:
        """Family-specific figures of a finished run (``neurosim show`` saves them as PNG).

        Default: none (``neurosim show`` always plots the metric curves and image arrays).
        """
        return {}

    def save_array(self, name: str, array: Any) -> None:
        """Store an array in the run's results file now (replaces one of the same name)."""
        if self.results is not None:
            self.results.save_array(name, np.asarray(array))
