"""``continual_hlop``: continual learning of a spiking MLP with HLOP and its baselines.

A sequence of tasks (:mod:`neurosim.datasets.continual`: permuted MNIST, or split MNIST with one
2-way head per task) is learned by a spiking network, time-major over ``T = time_steps``::

    pixels [B, 784] -> fc1 -> LIF -> fc2 -> LIF -> head(mean_t spikes) -> logits

(direct input current, the same at every step; LIF from :mod:`neurosim.neurons` with surrogate
gradients; a shared 10-way head for permuted MNIST, one 2-way head per task for split MNIST).
Each **method** in ``methods`` is trained from the same initialisation, one task after the
other, for ``steps_per_task`` SGD steps per task, through :class:`experiments.trainer.Trainer`
(a fresh optimizer per task, as in the HLOP reference code):

* ``finetune``: plain sequential training (the lower bound);
* ``ewc``: elastic weight consolidation (:class:`neurosim.plasticity.EWC`);
* ``gpm``: exact orthogonal projection from an SVD of stored activity
  (:class:`neurosim.plasticity.SVDProjection`, GPM-like);
* ``hlop``: Hebbian subspace neurons and projection (:class:`neurosim.plasticity.HLOP`): the
  Hebbian update is an ``AFTER_STEP`` trainer callback, the projection a gradient transform that
  the trainer applies after backward (and DDP's all-reduce), task ends are ``END_OF_TASK``
  callbacks;
* ``joint``: multitask training on all tasks at once (the upper bound), the same number of
  steps as the sequence.

After each task the model is tested on every task seen so far; the rows form the accuracy matrix
(:mod:`neurosim.metrics.continual`). All methods are repeated for ``n_seeds`` seeds
(``seed, seed + 1, ...``: initialisation and data order; the tasks are fixed by
``split_seed`` / ``permutation_seed``).

Results: arrays ``accuracy_matrix_<method>`` ``[n_seeds, T, T]`` (NaN where not measured) and
``train_seconds_<method>`` / ``train_cpu_seconds_<method>`` ``[n_seeds]`` (wall-clock and
process CPU seconds of the training steps and task-end consolidation; on a shared machine only
the CPU seconds compare between methods); summary ``acc_<method>``, ``bwt_<method>`` (not for
``joint``), ``la_<method>`` (learning accuracy), with ``_sd`` over seeds when ``n_seeds > 1``.

``steps`` is derived: ``n_seeds * len(methods) * n_tasks * steps_per_task`` (a value given in a
preset or override is replaced).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from experiments.base import Experiment, RunConfig
from experiments.data import dataset_path
from experiments.distributed import shard
from experiments.families._continual import sequence_position, summarise_matrices
from experiments.registry import register
from experiments.trainer import CallbackLocation, OptimConfig, Trainer, TrainerConfig
from neurosim.backend import InputError, seeded
from neurosim.datasets.continual import SPLIT_PAIRS, ContinualTask, permuted_tasks, split_tasks
from neurosim.datasets.mnist import MNIST_LAYOUT, load_mnist, load_sklearn_digits
from neurosim.functional.hebbian import SIGNALS, HebbianParameters
from neurosim.functional.surrogate import SURROGATES, Surrogate
from neurosim.metrics.continual import average_accuracy, backward_transfer
from neurosim.neurons import LIF
from neurosim.plasticity import EWC, HLOP, MODES, SVDProjection, fisher_diagonal

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from experiments.results import Results

METHODS = ("finetune", "ewc", "gpm", "hlop", "joint")
BENCHMARKS = ("permuted", "split")
DATASETS = ("mnist", "sklearn_digits")
HEADS = ("auto", "shared", "multi")


@dataclass
class HlopSection:
    """HLOP settings (``hlop.*``).

    Attributes:
        eta: Oja rate relative to the residual activity energy (see
            :mod:`neurosim.functional.hebbian`).
        iterations: Hebbian updates per training step.
        momentum: momentum of the Hebbian update.
        signal: presynaptic signal: ``spikes``, ``rate`` or ``trace``.
        decay: ``lambda`` of the rate / trace signal.
        mode: projection mode: ``weight`` (gradient transform), ``input`` or ``auto`` (the
            cheaper per layer).
        rows: subspace neurons added at the start of each task, one ``[fc1, fc2, head]``
            triple per task (the last triple repeats for later tasks; the head entry is used
            with a shared head only); each layer is capped at its input dimension.
        freeze_bias: freeze biases from the second task on.
        max_rows: learn from at most this many activity rows per step and layer (0 = all;
            ``fc2`` sees ``T * batch_size`` rows of spikes).
    """

    eta: float = 1.5
    iterations: int = 2
    momentum: float = 0.0
    signal: str = "spikes"
    decay: float = 0.5
    mode: str = "auto"
    rows: list[list[int]] = field(
        default_factory=lambda: [[100, 120, 45], [80, 40, 25], [70, 20, 12], [60, 12, 8]]
    )
    freeze_bias: bool = True
    max_rows: int = 0


@dataclass
class GpmSection:
    """Settings of the exact SVD projection (``gpm.*``).

    Attributes:
        threshold: fraction of each layer's activity energy the basis keeps (GPM criterion).
        threshold_increment: added to ``threshold`` per task (capped at 1).
        samples: training inputs per task whose activity is stored for the SVD.
        mode: projection mode (``weight``, ``input`` or ``auto``).
        freeze_bias: freeze biases from the second task on.
    """

    threshold: float = 0.97
    threshold_increment: float = 0.0
    samples: int = 300
    mode: str = "auto"
    freeze_bias: bool = True


@dataclass
class EwcSection:
    """EWC settings (``ewc.*``).

    Attributes:
        strength: ``lambda`` of the penalty.
        gamma: decay of the running Fisher (1 = sum over tasks).
        samples: training inputs per task for the per-sample empirical Fisher.
    """

    strength: float = 5000.0
    gamma: float = 1.0
    samples: int = 200


@dataclass
class ContinualHlopConfig(RunConfig):
    """Configuration of :class:`ContinualHlop` (see the module docstring).

    Attributes:
        benchmark: ``permuted`` (permuted MNIST) or ``split`` (split MNIST, class pairs).
        dataset: ``mnist`` (IDX files under ``<data_root>/mnist``) or ``sklearn_digits`` (the
            embedded 1,797 scikit-learn digits: the demo).
        n_tasks: number of tasks (``split``: the first ``n_tasks`` of the five digit pairs).
        n_test: test digits of the one train/test split of the source.
        n_samples: use only the first this many source digits (0 = all).
        split_seed: seed of the train/test split.
        permutation_seed: seed of the pixel permutations.
        identity_first: permuted task 0 keeps the original pixel order.
        head: ``shared`` (one 10-way head), ``multi`` (one head per task) or ``auto``
            (shared for permuted, multi for split).
        hidden: LIF neurons per hidden layer.
        time_steps: simulation steps per digit.
        beta: membrane decay per step.
        threshold: firing threshold.
        surrogate: surrogate gradient name.
        surrogate_slope: its slope.
        bias: layers have biases.
        methods: methods to run, in order (subset of ``finetune ewc gpm hlop joint``).
        n_seeds: repeats with seeds ``seed .. seed + n_seeds - 1``.
        steps_per_task: training steps per task (joint: ``n_tasks * steps_per_task`` in all).
        batch_size: training batch size.
        eval_batch_size: batch size of the accuracy measurements.
        optim: optimizer of every task (a fresh one per task).
        trainer: clipping / accumulation.
        hlop, gpm, ewc: the methods' settings.
    """

    benchmark: str = "permuted"
    dataset: str = "mnist"
    n_tasks: int = 10
    n_test: int = 2000
    n_samples: int = 0
    split_seed: int = 0
    permutation_seed: int = 0
    identity_first: bool = True
    head: str = "auto"
    hidden: int = 256
    time_steps: int = 4
    beta: float = 0.5
    threshold: float = 1.0
    surrogate: str = "sigmoid"
    surrogate_slope: float = 4.0
    bias: bool = True
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    n_seeds: int = 1
    steps_per_task: int = 375
    batch_size: int = 64
    eval_batch_size: int = 1000
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(optimizer="sgd", lr=0.1, momentum=0.9)
    )
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    hlop: HlopSection = field(default_factory=HlopSection)
    gpm: GpmSection = field(default_factory=GpmSection)
    ewc: EwcSection = field(default_factory=EwcSection)
    steps: int = 0
    log_every: int = 25
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        validate(self)
        self.steps = self.n_seeds * len(self.methods) * self.n_tasks * self.steps_per_task


def validate(c: ContinualHlopConfig) -> None:
    """Range and name checks of the config (:class:`InputError` naming the key)."""

    def bad(key: str, value: Any, expected: str) -> InputError:
        return InputError(f"continual_hlop {key} = {value!r}; expected {expected}")

    if c.benchmark not in BENCHMARKS:
        raise bad("benchmark", c.benchmark, f"one of {BENCHMARKS}")
    if c.dataset not in DATASETS:
        raise bad("dataset", c.dataset, f"one of {DATASETS}")
    if c.head not in HEADS:
        raise bad("head", c.head, f"one of {HEADS}")
    max_tasks = len(SPLIT_PAIRS) if c.benchmark == "split" else 100
    if not 1 <= c.n_tasks <= max_tasks:
        raise bad("n_tasks", c.n_tasks, f"1..{max_tasks} for {c.benchmark}")
    unknown = [m for m in c.methods if m not in METHODS]
    if not c.methods or unknown or len(set(c.methods)) != len(c.methods):
        raise bad("methods", c.methods, f"a non-empty list of distinct names from {METHODS}")
    for key in ("hidden", "time_steps", "n_seeds", "steps_per_task", "batch_size"):
        if getattr(c, key) < 1:
            raise bad(key, getattr(c, key), "an integer >= 1")
    if c.eval_batch_size < 1:
        raise bad("eval_batch_size", c.eval_batch_size, "an integer >= 1")
    if c.surrogate not in SURROGATES:
        raise bad("surrogate", c.surrogate, f"one of {SURROGATES}")
    if not 0.0 <= c.beta <= 1.0:
        raise bad("beta", c.beta, "a number in [0, 1]")
    if c.hlop.signal not in SIGNALS:
        raise bad("hlop.signal", c.hlop.signal, f"one of {SIGNALS}")
    for key, mode in (("hlop.mode", c.hlop.mode), ("gpm.mode", c.gpm.mode)):
        if mode not in MODES:
            raise bad(key, mode, f"one of {MODES}")
    if not c.hlop.rows or any(len(r) != 3 or min(r) < 0 for r in c.hlop.rows):
        raise bad("hlop.rows", c.hlop.rows, "a list of [fc1, fc2, head] triples of counts >= 0")
    if not (c.hlop.eta > 0 and c.hlop.iterations >= 1 and 0 <= c.hlop.momentum < 1):
        raise bad("hlop", (c.hlop.eta, c.hlop.iterations, c.hlop.momentum),
                  "eta > 0, iterations >= 1, momentum in [0, 1)")  # fmt: skip
    if not 0 < c.gpm.threshold <= 1:
        raise bad("gpm.threshold", c.gpm.threshold, "a number in (0, 1]")
    if c.gpm.samples < 1 or c.ewc.samples < 1:
        raise bad("gpm.samples / ewc.samples", (c.gpm.samples, c.ewc.samples), "integers >= 1")
    if c.ewc.strength < 0:
        raise bad("ewc.strength", c.ewc.strength, "a number >= 0")


def head_kind(c: ContinualHlopConfig) -> str:
    """``shared`` or ``multi`` (resolving ``auto``)."""
    if c.head != "auto":
        return c.head
    return "multi" if c.benchmark == "split" else "shared"


class SpikingContinualMLP(nn.Module):
    """``784 -> fc1 -> LIF -> fc2 -> LIF -> head(mean_t spikes)`` with one or several heads.

    ``forward(x [B, 784], head)`` returns logits ``[B, classes]`` of head ``head`` (an int),
    or of each sample's own head when ``head`` is a tensor ``[B]`` of head indices (joint
    training with several heads; all heads must have the same number of classes).
    """

    def __init__(
        self,
        hidden: int,
        head_classes: list[int],
        *,
        time_steps: int,
        beta: float,
        threshold: float,
        surrogate: Surrogate,
        bias: bool,
    ) -> None:
        super().__init__()
        self.time_steps = time_steps
        self.fc1 = nn.Linear(784, hidden, bias=bias)
        self.lif1 = LIF(beta=beta, threshold=threshold, surrogate=surrogate)
        self.fc2 = nn.Linear(hidden, hidden, bias=bias)
        self.lif2 = LIF(beta=beta, threshold=threshold, surrogate=surrogate)
        self.heads = nn.ModuleList(nn.Linear(hidden, c, bias=bias) for c in head_classes)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden spikes ``[T, B, hidden]`` of both layers."""
        current = self.fc1(x).unsqueeze(0).expand(self.time_steps, -1, -1)
        s1 = self.lif1(current)[0]
        s2 = self.lif2(self.fc2(s1))[0]
        return s1, s2

    def forward(self, x: torch.Tensor, head: int | torch.Tensor = 0) -> torch.Tensor:
        rate = self.features(x)[1].mean(0)
        if isinstance(head, int):
            return self.heads[head](rate)
        outs = torch.stack([h(rate) for h in self.heads], 1)  # [B, heads, classes]
        return outs[torch.arange(len(head), device=outs.device), head]


class _TaskData:
    """A task's tensors on the device, labels as the head predicts them."""

    def __init__(self, task: ContinualTask, multi: bool, device: torch.device) -> None:
        self.name = task.name
        self.train_x = task.train_x.to(device)
        self.test_x = task.test_x.to(device)
        train_y = task.local_labels(task.train_y) if multi else task.train_y
        test_y = task.local_labels(task.test_y) if multi else task.test_y
        self.train_y = train_y.to(device)
        self.test_y = test_y.to(device)


def _float(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float32) / 255.0


@register
class ContinualHlop(Experiment[ContinualHlopConfig]):
    """HLOP vs fine-tuning, EWC, GPM-like projection and joint training on MNIST task sequences."""

    name = "continual_hlop"
    config_class = ContinualHlopConfig
    description = "continual learning of a LIF network: HLOP, EWC, SVD projection, fine-tuning"

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        """Build the tasks (on the device) and the run schedule; models are built per run."""
        c = self.config
        device = self.runtime.device
        if c.dataset == "mnist":
            data = load_mnist(dataset_path("mnist", c.data_root, layout=MNIST_LAYOUT), "t10k")
        else:
            data = load_sklearn_digits()
        common = {"n_test": c.n_test, "split_seed": c.split_seed, "n_samples": c.n_samples}
        if c.benchmark == "permuted":
            tasks = permuted_tasks(
                data,
                c.n_tasks,
                permutation_seed=c.permutation_seed,
                identity_first=c.identity_first,
                **common,
            )
        else:
            tasks = split_tasks(data, SPLIT_PAIRS[: c.n_tasks], **common)
        self.multi = head_kind(c) == "multi"
        self.tasks = [_TaskData(t, self.multi, device) for t in tasks]
        self.head_classes = (
            [len(t.classes) for t in tasks] if self.multi else [len(tasks[0].classes)]
        )
        if self.multi and len(set(self.head_classes)) != 1:
            raise InputError(f"multi-head tasks need equal class counts, got {self.head_classes}")
        for t in self.tasks:
            if len(t.train_y) < c.batch_size:
                raise InputError(
                    f"continual_hlop batch_size {c.batch_size} exceeds the {len(t.train_y)} "
                    f"training digits of task {t.name}"
                )
        self.surrogate = Surrogate(c.surrogate, c.surrogate_slope)
        self.seeds = [c.seed + i for i in range(c.n_seeds)]
        shape = (c.n_seeds, c.n_tasks, c.n_tasks)
        self.matrices = {m: np.full(shape, np.nan) for m in c.methods}
        self.seconds = {m: np.zeros(c.n_seeds) for m in c.methods}
        self.cpu_seconds = {m: np.zeros(c.n_seeds) for m in c.methods}
        self.run_key: tuple[int, int] | None = None
        self.trainer = None
        self._joint: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None

    def _position(self, step: int) -> tuple[int, int, int, int]:
        """``(seed index, method index, task, step within the task)`` of a global step."""
        c = self.config
        return sequence_position(step, len(c.methods), c.n_tasks, c.steps_per_task)

    def _start_run(self, seed_i: int, method_i: int) -> None:
        """Fresh model, method state and data generator for one (seed, method) run."""
        c = self.config
        seed = self.seeds[seed_i]
        method = c.methods[method_i]
        self.method = method
        self.seed_i = seed_i
        with seeded(seed):
            model = SpikingContinualMLP(
                c.hidden,
                self.head_classes,
                time_steps=c.time_steps,
                beta=c.beta,
                threshold=c.threshold,
                surrogate=self.surrogate,
                bias=c.bias,
            )
        self.model = model.to(self.runtime.device)
        self.generator = torch.Generator().manual_seed(seed)
        self.order: torch.Tensor | None = None
        self.cursor = 0
        self.hlop: HLOP | None = None
        self.gpm: SVDProjection | None = None
        self.ewc: EWC | None = None
        layers = ["fc1", "fc2"] if self.multi else ["fc1", "fc2", "heads.0"]
        if method == "hlop":
            h = c.hlop
            self.hlop = HLOP(
                self.model,
                layers,
                hebbian=HebbianParameters(h.eta, h.iterations, h.momentum),
                signal=h.signal,
                decay=h.decay,
                mode=h.mode,
                freeze_bias=h.freeze_bias,
                max_rows=h.max_rows or None,
                generator=torch.Generator().manual_seed(seed + 7919),
            )
        elif method == "gpm":
            self.gpm = SVDProjection(
                self.model,
                layers,
                threshold=c.gpm.threshold,
                threshold_increment=c.gpm.threshold_increment,
                mode=c.gpm.mode,
                freeze_bias=c.gpm.freeze_bias,
            )
        elif method == "ewc":
            self.ewc = EWC(self.model, c.ewc.strength, c.ewc.gamma)
        self.run_key = (seed_i, method_i)
        self.run_seconds = 0.0
        self.run_cpu_seconds = 0.0

    def _rows(self, task: int) -> list[int]:
        schedule = self.config.hlop.rows
        rows = schedule[min(task, len(schedule) - 1)]
        return list(rows[:2]) if self.multi else list(rows)

    def _begin_task(self, task: int) -> None:
        """Method hooks at the start of a task and a fresh trainer (optimizer) for it."""
        if self.hlop is not None:
            self.hlop.begin_task(self._rows(task))
        if self.gpm is not None:
            self.gpm.begin_task()
        self._new_trainer(task)
        self.order = None
        self.cursor = 0

    def _new_trainer(self, task: int) -> None:
        """The trainer of task ``task``: SGD over the parameters that still train, the Hebbian
        update after each step (HLOP) and the consolidation at the task's end."""
        c = self.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.trainer = Trainer(
            self.model,
            {"model": (params, c.optim)},
            self.runtime,
            total_steps=c.steps_per_task,
            config=c.trainer,
        )
        if self.hlop is not None:
            self.trainer.add_callback(CallbackLocation.AFTER_STEP, self.hlop.hebbian_update)
        self.trainer.add_callback(CallbackLocation.END_OF_TASK, self._consolidate)
        self.task = task

    # ------------------------------------------------------------------ data
    def _pool(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Training inputs, labels and (multi-head joint) head indices of the current task."""
        if self.method != "joint":
            t = self.tasks[self.task]
            return t.train_x, t.train_y, None
        if self._joint is None:
            xs = torch.cat([t.train_x for t in self.tasks])
            ys = torch.cat([t.train_y for t in self.tasks])
            hs = torch.cat([torch.full_like(t.train_y, k) for k, t in enumerate(self.tasks)])
            self._joint = (xs, ys, hs if self.multi else None)
        return self._joint

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor, int | torch.Tensor]:
        c = self.config
        xs, ys, hs = self._pool()
        if self.order is None or self.cursor + c.batch_size > len(self.order):
            self.order = torch.randperm(len(ys), generator=self.generator)
            self.cursor = 0
        idx = self.order[self.cursor : self.cursor + c.batch_size]
        self.cursor += c.batch_size
        idx = shard(idx).to(xs.device)
        head: int | torch.Tensor = 0
        if hs is not None:
            head = hs[idx]
        elif self.multi:
            head = self.task
        return _float(xs[idx]), ys[idx], head

    # ------------------------------------------------------------------ steps
    def loss(self, micro: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy on one batch (plus the EWC penalty)."""
        x, y, head = self._next_batch()
        assert self.trainer is not None
        logits = self.trainer.model(x, head)
        loss = F.cross_entropy(logits.float(), y)
        metrics = {"batch_accuracy": (logits.detach().argmax(1) == y).float().mean()}
        if self.ewc is not None:
            penalty = self.ewc.penalty()
            metrics["ewc_penalty"] = penalty.detach()
            loss = loss + penalty
        return loss, metrics

    def step(self, step: int) -> dict[str, torch.Tensor | float]:
        """One training step of the current (seed, method, task); task ends evaluate."""
        c = self.config
        seed_i, method_i, task, local = self._position(step)
        if self.run_key != (seed_i, method_i):
            self._start_run(seed_i, method_i)
        if local == 0:
            self._begin_task(task)
        assert self.trainer is not None
        self.model.train()
        start, cpu_start = time.perf_counter(), time.process_time()
        metrics = self.trainer.train_step(local, self.loss)
        if local == c.steps_per_task - 1:
            self.trainer.run_callbacks(CallbackLocation.END_OF_TASK, local)
        self.run_seconds += time.perf_counter() - start
        self.run_cpu_seconds += time.process_time() - cpu_start
        metrics.update(task=float(task), method=float(method_i), seed=float(self.seeds[seed_i]))
        if local == c.steps_per_task - 1:
            ended = self._end_task(task)
            if self.results is not None:  # every task end, whatever log_every says
                self.results.log(step, ended)
        return metrics

    def _consolidate(self, local: int) -> None:
        """END_OF_TASK callback: the method's consolidation of the task just learned."""
        c = self.config
        t = self.tasks[self.task]
        if self.hlop is not None:
            self.hlop.end_task()
        if self.gpm is not None:
            pick = torch.randperm(len(t.train_y), generator=self.generator)[: c.gpm.samples]
            self.model.eval()
            head = self.task if self.multi else 0
            with self.gpm.collect(), torch.no_grad():
                for chunk in pick.split(c.eval_batch_size):
                    self.model(_float(t.train_x[chunk.to(t.train_x.device)]), head)
            self.gpm.end_task()
        if self.ewc is not None:
            pick = torch.randperm(len(t.train_y), generator=self.generator)[: c.ewc.samples]
            head = self.task if self.multi else 0
            self.model.eval()
            samples = [(t.train_x[i : i + 1], t.train_y[i : i + 1]) for i in pick.tolist()]
            fisher = fisher_diagonal(
                self.model,
                samples,
                lambda m, s: F.cross_entropy(m(_float(s[0]), head), s[1]),
            )
            self.ewc.consolidate(fisher)

    def _end_task(self, task: int) -> dict[str, float]:
        """Test on every task seen so far (all tasks for joint); store the matrix row."""
        c = self.config
        seen = c.n_tasks if self.method == "joint" else task + 1
        accs = [self.accuracy(j) for j in range(seen)]
        self.matrices[self.method][self.seed_i, task, :seen] = accs
        if self.trainer is not None:
            self.trainer.raise_if_diverged()  # its lazy divergence check, before it is dropped
        self.trainer = None  # the next task gets a fresh optimizer
        out = {"seen_accuracy": float(np.mean(accs)), "task_accuracy": accs[-1]}
        if task == c.n_tasks - 1:
            self.seconds[self.method][self.seed_i] = self.run_seconds
            self.cpu_seconds[self.method][self.seed_i] = self.run_cpu_seconds
            out[f"train_seconds_{self.method}"] = self.run_seconds
            out[f"train_cpu_seconds_{self.method}"] = self.run_cpu_seconds
            self.save_array(f"accuracy_matrix_{self.method}", self.matrices[self.method])
        return out

    @torch.no_grad()
    def accuracy(self, task: int) -> float:
        """Test accuracy on task ``task`` (its own head when multi-head)."""
        c = self.config
        t = self.tasks[task]
        self.model.eval()
        correct = 0.0
        head = task if self.multi else 0
        for start in range(0, len(t.test_y), c.eval_batch_size):
            x = _float(t.test_x[start : start + c.eval_batch_size])
            y = t.test_y[start : start + c.eval_batch_size]
            correct += float((self.model(x, head).argmax(1) == y).sum())
        return correct / len(t.test_y)

    # ------------------------------------------------------------------ results
    def evaluate(self) -> dict[str, float]:
        """ACC, BWT and learning accuracy per method (mean and SD over seeds)."""
        return summarise_matrices(self.matrices, no_transfer=("joint",))

    def artifacts(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for method in self.matrices:
            arrays[f"accuracy_matrix_{method}"] = self.matrices[method]
            arrays[f"train_seconds_{method}"] = self.seconds[method]
            arrays[f"train_cpu_seconds_{method}"] = self.cpu_seconds[method]
        return arrays

    def state_dict(self) -> dict[str, Any]:
        """Accuracy matrices so far, and the current run's model, method state and data order."""
        state: dict[str, Any] = {
            "matrices": {m: torch.from_numpy(v.copy()) for m, v in self.matrices.items()},
            "seconds": {m: torch.from_numpy(v.copy()) for m, v in self.seconds.items()},
            "cpu_seconds": {m: torch.from_numpy(v.copy()) for m, v in self.cpu_seconds.items()},
            "run_key": list(self.run_key) if self.run_key else None,
        }
        if self.run_key is not None:
            state.update(
                model=self.model.state_dict(),
                generator=self.generator.get_state(),
                order=self.order.clone() if self.order is not None else None,
                cursor=self.cursor,
                task=self.task,
                in_task=self.trainer is not None,
                run_seconds=self.run_seconds,
                run_cpu_seconds=self.run_cpu_seconds,
                requires_grad={n: p.requires_grad for n, p in self.model.named_parameters()},
            )
            for name in ("hlop", "gpm", "ewc"):
                method = getattr(self, name)
                if method is not None:
                    state[name] = method.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after :meth:`setup`)."""
        self.matrices = {m: v.numpy().copy() for m, v in state["matrices"].items()}
        self.seconds = {m: v.numpy().copy() for m, v in state["seconds"].items()}
        self.cpu_seconds = {m: v.numpy().copy() for m, v in state["cpu_seconds"].items()}
        if state["run_key"] is None:
            return
        seed_i, method_i = (int(v) for v in state["run_key"])
        self._start_run(seed_i, method_i)
        for name in ("hlop", "gpm", "ewc"):
            method = getattr(self, name)
            if method is not None:
                method.load_state_dict(state[name])
        for n, p in self.model.named_parameters():
            p.requires_grad_(bool(state["requires_grad"][n]))
        self.model.load_state_dict(state["model"])
        self.generator.set_state(state["generator"])
        self.task = int(state["task"])
        if state["in_task"]:  # mid-task: the runner restores this trainer's optimizer state
            self._new_trainer(self.task)
        self.order = state["order"].clone() if state["order"] is not None else None
        self.cursor = int(state["cursor"])
        self.run_seconds = float(state["run_seconds"])
        self.run_cpu_seconds = float(state["run_cpu_seconds"])

    @classmethod
    def figures(cls, results: Results) -> dict[str, Figure]:
        """Accuracy matrix of every method (seed mean), ACC/BWT bars, HLOP / fine-tuning curves."""
        from neurosim.plotting.continual import (
            plot_acc_bwt,
            plot_accuracy_matrix,
            plot_task_curves,
        )

        run = results.path.parent.name
        methods = [m for m in METHODS if f"accuracy_matrix_{m}" in results.arrays]
        figures: dict[str, Figure] = {}
        acc, bwt = [], []
        for m in methods:
            mats = np.asarray(results.arrays[f"accuracy_matrix_{m}"], dtype=np.float64)
            done = [x for x in mats if not np.isnan(x[-1]).all()]
            if not done:
                continue
            mean = np.mean(done, axis=0)
            seeds = f"{len(done)} seed{'s' if len(done) > 1 else ''}"
            what = "row i = after (i+1)/T of its steps" if m == "joint" else "accuracy matrix"
            figures[f"accuracy_matrix_{m}"] = plot_accuracy_matrix(
                mean, title=f"{m}: {what} ({seeds}), run {run}"
            )
            if m in ("hlop", "finetune"):
                figures[f"task_curves_{m}"] = plot_task_curves(
                    mean, title=f"{m}: accuracy of each task, run {run}"
                )
            acc.append([average_accuracy(x) for x in done])
            bwt.append([backward_transfer(x) if m != "joint" else math.nan for x in done])
        shown = [m for m in methods if f"accuracy_matrix_{m}" in figures]
        if shown:
            width = max(len(a) for a in acc)
            pad = lambda rows: [r + [math.nan] * (width - len(r)) for r in rows]  # noqa: E731
            reference = float(np.mean(acc[shown.index("joint")])) if "joint" in shown else None
            figures["acc_bwt"] = plot_acc_bwt(
                shown, pad(acc), pad(bwt), title=f"ACC / BWT per method, run {run}",
                reference=reference,
            )  # fmt: skip
        return figures
