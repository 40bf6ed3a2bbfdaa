"""``active_dendrites``: continual learning of permuted MNIST with active dendrites (Iyer et al.
2022) and its baselines, one shared 10-way head.

Tasks come from :func:`neurosim.datasets.continual.permuted_tasks`: the source digits (the
10,000 MNIST test digits in ``<data_root>/mnist``, or the embedded scikit-learn digits for the
demo) are split once into training and test digits, and each task is a fixed pixel permutation
of both parts, so no test digit of any task was trained on in any task. Pixels are scaled to
``[0, 1]`` and standardised with MNIST's mean and SD (0.1307, 0.3081).

**Context**: the prototype of each task, the mean of its (standardised) training inputs
(:mod:`neurosim.dendrites.context`). Training on task ``t`` gives every input the prototype of
``t``; at test time each input takes the nearest prototype among the tasks seen so far
(``context: infer``, the paper's setting: no task label at test) or its own task's prototype
(``context: oracle``). ``prototype_accuracy`` reports how often the nearest prototype is the
right task.

**Methods** (``methods``), each trained from its own initialisation on the tasks in order,
``steps_per_task`` steps per task with a fresh optimizer per task, through
:class:`experiments.trainer.Trainer`:

* ``dendrites`` - :class:`neurosim.dendrites.DendriticMLP`: sparse weights
  (``weight_density``), ``num_segments`` segments per unit (0 = one per task), absmax gating,
  k-WTA (``kw_density``) with boosting;
* ``no_dendrites`` - the same network without segments (the context is ignored);
* ``no_kwta`` - dendrites, ReLU instead of k-WTA;
* ``mlp`` - a plain dense ReLU MLP of the same sizes;
* ``spiking_dendrites`` - :class:`neurosim.dendrites.SpikingDendriticMLP`: the same dendritic
  gating of LIF input currents, k-WTA over membranes, surrogate gradients.

k-WTA duty cycles are folded in by an ``AFTER_STEP`` trainer callback
(:func:`neurosim.sparse.update_duty_cycles`) and boost strengths decay at every
``END_OF_EPOCH`` (:func:`neurosim.sparse.decay_boosts`, epochs of ``n_train // batch_size``
steps), which the family triggers like ``END_OF_TASK``.

After each task the model is tested on every task seen so far; the rows form the accuracy
matrix (:mod:`neurosim.metrics.continual`). Results: arrays ``accuracy_matrix_<method>``
``[n_seeds, T, T]``, ``train_seconds_<method>`` ``[n_seeds]``, ``prototype_accuracy`` ``[T]``;
summary ``acc_<method>`` (mean accuracy over all tasks after the last), ``bwt_<method>``,
``la_<method>`` (+ ``_sd`` over seeds), ``prototype_accuracy``.

``steps`` is derived: ``n_seeds * len(methods) * n_tasks * steps_per_task``.
"""

from __future__ import annotations

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
from neurosim.datasets.continual import permuted_tasks
from neurosim.datasets.mnist import MNIST_LAYOUT, load_mnist, load_sklearn_digits
from neurosim.dendrites import DendriticMLP, SpikingDendriticMLP, nearest_prototype, task_prototype
from neurosim.functional.dendrites import GATINGS
from neurosim.functional.surrogate import SURROGATES, Surrogate
from neurosim.metrics.continual import average_accuracy, backward_transfer
from neurosim.sparse import decay_boosts, update_duty_cycles

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from experiments.results import Results

METHODS = ("dendrites", "no_dendrites", "no_kwta", "mlp", "spiking_dendrites")
DATASETS = ("mnist", "sklearn_digits")
CONTEXTS = ("infer", "oracle")
MNIST_MEAN, MNIST_SD = 0.1307, 0.3081


@dataclass
class SpikingSection:
    """The spiking variant (``spiking.*``).

    Attributes:
        time_steps: simulation steps per digit (direct input current, the same every step).
        beta: membrane decay per step.
        threshold: firing threshold.
        surrogate: surrogate gradient name.
        surrogate_slope: its slope.
    """

    time_steps: int = 4
    beta: float = 0.5
    threshold: float = 1.0
    surrogate: str = "sigmoid"
    surrogate_slope: float = 4.0


@dataclass
class ActiveDendritesConfig(RunConfig):
    """Configuration of :class:`ActiveDendrites` (see the module docstring).

    Attributes:
        dataset: ``mnist`` (``<data_root>/mnist``) or ``sklearn_digits`` (embedded; the demo).
        n_tasks: permutations (task 0 is the identity when ``identity_first``).
        n_test: test digits of the one split of the source (the rest train).
        n_samples: use only the first this many source digits (0 = all).
        split_seed, permutation_seed, identity_first: the task construction.
        methods: methods to run, in order.
        n_seeds: repeats with seeds ``seed .. seed + n_seeds - 1`` (initialisation, masks, order).
        hidden: hidden layer sizes (every method).
        num_segments: dendritic segments per unit (0 = ``n_tasks``).
        kw_density: fraction of k-WTA winners.
        weight_density: connected fraction of the sparse feed-forward weights.
        gating: ``absmax``, ``max`` or ``additive``.
        boost_strength: k-WTA boost strength at the start of every run.
        boost_strength_factor: multiplies the boost strength at every epoch end.
        duty_cycle_period: window of the duty cycles, in inputs.
        context: ``infer`` (nearest prototype at test) or ``oracle`` (the true task's).
        steps_per_task: optimizer steps per task.
        batch_size, eval_batch_size: batch sizes.
        optim: optimizer of every task (a fresh one per task).
        trainer: clipping / accumulation.
        spiking: the spiking variant's neurons.
    """

    dataset: str = "mnist"
    n_tasks: int = 10
    n_test: int = 2000
    n_samples: int = 0
    split_seed: int = 0
    permutation_seed: int = 0
    identity_first: bool = True
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    n_seeds: int = 1
    hidden: list[int] = field(default_factory=lambda: [1024, 1024])
    num_segments: int = 0
    kw_density: float = 0.05
    weight_density: float = 0.5
    gating: str = "absmax"
    boost_strength: float = 0.0
    boost_strength_factor: float = 1.0
    duty_cycle_period: int = 1000
    context: str = "infer"
    steps_per_task: int = 375
    batch_size: int = 64
    eval_batch_size: int = 1000
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(optimizer="adam", lr=5e-4))
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    spiking: SpikingSection = field(default_factory=SpikingSection)
    steps: int = 0
    log_every: int = 25
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        validate(self)
        self.steps = self.n_seeds * len(self.methods) * self.n_tasks * self.steps_per_task


def validate(c: ActiveDendritesConfig) -> None:
    """Range and name checks (an :class:`InputError` naming the key)."""

    def bad(key: str, value: Any, expected: str) -> InputError:
        return InputError(f"active_dendrites {key} = {value!r}; expected {expected}")

    if c.dataset not in DATASETS:
        raise bad("dataset", c.dataset, f"one of {DATASETS}")
    if c.context not in CONTEXTS:
        raise bad("context", c.context, f"one of {CONTEXTS}")
    if c.gating not in GATINGS:
        raise bad("gating", c.gating, f"one of {GATINGS}")
    if c.spiking.surrogate not in SURROGATES:
        raise bad("spiking.surrogate", c.spiking.surrogate, f"one of {SURROGATES}")
    unknown = [m for m in c.methods if m not in METHODS]
    if not c.methods or unknown or len(set(c.methods)) != len(c.methods):
        raise bad("methods", c.methods, f"a non-empty list of distinct names from {METHODS}")
    if not 1 <= c.n_tasks <= 100:
        raise bad("n_tasks", c.n_tasks, "1..100")
    for key in ("n_seeds", "steps_per_task", "batch_size", "eval_batch_size", "duty_cycle_period"):
        if getattr(c, key) < 1:
            raise bad(key, getattr(c, key), "an integer >= 1")
    if not c.hidden or min(c.hidden) < 1:
        raise bad("hidden", c.hidden, "a non-empty list of sizes >= 1")
    if c.num_segments < 0:
        raise bad("num_segments", c.num_segments, "0 (one per task) or a count >= 1")
    for key in ("kw_density", "weight_density"):
        if not 0 < getattr(c, key) <= 1:
            raise bad(key, getattr(c, key), "a fraction in (0, 1]")
    if c.boost_strength < 0 or not 0 < c.boost_strength_factor <= 1:
        raise bad("boost_strength / boost_strength_factor",
                  (c.boost_strength, c.boost_strength_factor), ">= 0 and in (0, 1]")  # fmt: skip
    if c.spiking.time_steps < 1 or not 0 <= c.spiking.beta <= 1 or c.spiking.threshold <= 0:
        raise bad("spiking", c.spiking, "time_steps >= 1, beta in [0, 1], threshold > 0")


def standardise(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> ``(x / 255 - 0.1307) / 0.3081`` (float32)."""
    return (x.to(torch.float32) / 255.0 - MNIST_MEAN) / MNIST_SD


class _TaskData:
    """One task's tensors on the device (uint8 pixels, int64 labels) and its prototype."""

    def __init__(self, task: Any, device: torch.device) -> None:
        self.name = task.name
        self.train_x = task.train_x.to(device)
        self.train_y = task.train_y.to(device)
        self.test_x = task.test_x.to(device)
        self.test_y = task.test_y.to(device)
        self.prototype = task_prototype(standardise(self.train_x))


@register
class ActiveDendrites(Experiment[ActiveDendritesConfig]):
    """Permuted-MNIST continual learning: active dendrites vs its ablations, MLP and spiking."""

    name = "active_dendrites"
    config_class = ActiveDendritesConfig
    description = "active dendrites (Iyer et al. 2022) on permuted MNIST vs baselines and SNN"

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        """Tasks and prototypes on the device, the run schedule; models are built per run."""
        c = self.config
        device = self.runtime.device
        if c.dataset == "mnist":
            data = load_mnist(dataset_path("mnist", c.data_root, layout=MNIST_LAYOUT), "t10k")
        else:
            data = load_sklearn_digits()
        tasks = permuted_tasks(
            data, c.n_tasks, n_test=c.n_test, split_seed=c.split_seed,
            permutation_seed=c.permutation_seed, identity_first=c.identity_first,
            n_samples=c.n_samples,
        )  # fmt: skip
        self.tasks = [_TaskData(t, device) for t in tasks]
        n_train = len(self.tasks[0].train_y)
        if n_train < c.batch_size:
            raise InputError(f"active_dendrites batch_size {c.batch_size} exceeds the {n_train} "
                             "training digits of a task")  # fmt: skip
        self.steps_per_epoch = max(1, n_train // c.batch_size)
        self.prototypes = torch.stack([t.prototype for t in self.tasks])
        self.prototype_accuracy = self._prototype_accuracy()
        self.seeds = [c.seed + i for i in range(c.n_seeds)]
        shape = (c.n_seeds, c.n_tasks, c.n_tasks)
        self.matrices = {m: np.full(shape, np.nan) for m in c.methods}
        self.seconds = {m: np.zeros(c.n_seeds) for m in c.methods}
        self.run_key: tuple[int, int] | None = None
        self.trainer = None

    @torch.no_grad()
    def _prototype_accuracy(self) -> np.ndarray:
        """Per task, how often a test input's nearest prototype (among all tasks) is its own."""
        c = self.config
        out = np.zeros(len(self.tasks))
        for k, t in enumerate(self.tasks):
            hits = 0
            for start in range(0, len(t.test_y), c.eval_batch_size):
                x = standardise(t.test_x[start : start + c.eval_batch_size])
                hits += int((nearest_prototype(x, self.prototypes) == k).sum())
            out[k] = hits / len(t.test_y)
        return out

    def _position(self, step: int) -> tuple[int, int, int, int]:
        """``(seed index, method index, task, step within the task)`` of a global step."""
        c = self.config
        return sequence_position(step, len(c.methods), c.n_tasks, c.steps_per_task)

    def build_model(self, method: str, seed: int) -> nn.Module:
        """The network of ``method`` with the weights and masks of ``seed``."""
        c = self.config
        segments = c.num_segments or c.n_tasks
        masks = torch.Generator().manual_seed(seed + 104_729)
        common: dict[str, Any] = {
            "num_segments": segments, "context_size": 784, "gating": c.gating,
            "boost_strength": c.boost_strength, "boost_strength_factor": c.boost_strength_factor,
            "duty_cycle_period": c.duty_cycle_period, "generator": masks,
        }  # fmt: skip
        with seeded(seed):
            if method == "spiking_dendrites":
                s = c.spiking
                return SpikingDendriticMLP(
                    784, c.hidden, 10, kw_density=c.kw_density, weight_density=c.weight_density,
                    time_steps=s.time_steps, beta=s.beta, threshold=s.threshold,
                    surrogate=Surrogate(s.surrogate, s.surrogate_slope), **common,
                )  # fmt: skip
            dendrites = method in ("dendrites", "no_kwta")
            kw = None if method in ("no_kwta", "mlp") else c.kw_density
            density = 1.0 if method == "mlp" else c.weight_density
            return DendriticMLP(784, c.hidden, 10, dendrites=dendrites, kw_density=kw,
                                weight_density=density, **common)  # fmt: skip

    def _start_run(self, seed_i: int, method_i: int) -> None:
        c = self.config
        seed = self.seeds[seed_i]
        self.method = c.methods[method_i]
        self.seed_i = seed_i
        self.model = self.build_model(self.method, seed).to(self.runtime.device)
        self.generator = torch.Generator().manual_seed(seed)
        self.order: torch.Tensor | None = None
        self.cursor = 0
        self.run_key = (seed_i, method_i)
        self.run_seconds = 0.0

    def _new_trainer(self, task: int) -> None:
        """A fresh optimizer for task ``task``, with the k-WTA callbacks."""
        c = self.config
        self.trainer = Trainer(
            self.model, {"model": (self.model.parameters(), c.optim)}, self.runtime,
            total_steps=c.steps_per_task, config=c.trainer,
        )  # fmt: skip
        model = self.model

        def fold_duty_cycles(step: int) -> None:
            update_duty_cycles(model)

        def decay(step: int) -> None:
            decay_boosts(model)

        self.trainer.add_callback(CallbackLocation.AFTER_STEP, fold_duty_cycles)
        self.trainer.add_callback(CallbackLocation.END_OF_EPOCH, decay)
        self.task = task

    # ------------------------------------------------------------------ training
    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        t = self.tasks[self.task]
        if self.order is None or self.cursor + c.batch_size > len(self.order):
            self.order = torch.randperm(len(t.train_y), generator=self.generator)
            self.cursor = 0
        idx = self.order[self.cursor : self.cursor + c.batch_size]
        self.cursor += c.batch_size
        idx = shard(idx).to(t.train_x.device)
        return standardise(t.train_x[idx]), t.train_y[idx]

    def loss(self, micro: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy on one batch of the current task, its prototype as the context."""
        x, y = self._next_batch()
        assert self.trainer is not None
        logits = self.trainer.model(x, self.tasks[self.task].prototype)
        loss = F.cross_entropy(logits.float(), y)
        return loss, {"batch_accuracy": (logits.detach().argmax(1) == y).float().mean()}

    def step(self, step: int) -> dict[str, torch.Tensor | float]:
        """One training step of the current (seed, method, task); task ends evaluate."""
        c = self.config
        seed_i, method_i, task, local = self._position(step)
        if self.run_key != (seed_i, method_i):
            self._start_run(seed_i, method_i)
        if local == 0:
            self._new_trainer(task)
            self.order, self.cursor = None, 0
        assert self.trainer is not None
        self.model.train()
        start = time.perf_counter()
        metrics = self.trainer.train_step(local, self.loss)
        if (local + 1) % self.steps_per_epoch == 0:
            self.trainer.run_callbacks(CallbackLocation.END_OF_EPOCH, local)
        last = local == c.steps_per_task - 1
        if last:
            self.trainer.run_callbacks(CallbackLocation.END_OF_TASK, local)
        self.run_seconds += time.perf_counter() - start
        metrics.update(task=float(task), method=float(method_i), seed=float(self.seeds[seed_i]))
        if last:
            ended = self._end_task(task)
            if self.results is not None:  # every task end, whatever log_every says
                self.results.log(step, ended)
        return metrics

    def _end_task(self, task: int) -> dict[str, float]:
        """Test on every task seen so far; store the matrix row."""
        c = self.config
        accs = [self.accuracy(j, seen=task + 1) for j in range(task + 1)]
        self.matrices[self.method][self.seed_i, task, : task + 1] = accs
        self.trainer = None
        out = {"seen_accuracy": float(np.mean(accs)), "task_accuracy": accs[-1]}
        if task == c.n_tasks - 1:
            self.seconds[self.method][self.seed_i] = self.run_seconds
            out[f"train_seconds_{self.method}"] = self.run_seconds
            self.save_array(f"accuracy_matrix_{self.method}", self.matrices[self.method])
        return out

    @torch.no_grad()
    def accuracy(self, task: int, seen: int) -> float:
        """Test accuracy on ``task`` with contexts from the first ``seen`` tasks' prototypes."""
        c = self.config
        t = self.tasks[task]
        self.model.eval()
        protos = self.prototypes[:seen]
        correct = 0
        for start in range(0, len(t.test_y), c.eval_batch_size):
            x = standardise(t.test_x[start : start + c.eval_batch_size])
            y = t.test_y[start : start + c.eval_batch_size]
            if c.context == "oracle":
                pred = self.model(x, protos[task]).argmax(1)
            else:  # nearest prototype; inputs grouped by their inferred task (one context each)
                which = nearest_prototype(x, protos)
                pred = torch.empty_like(y)
                for k in torch.unique(which).tolist():
                    sel = which == k
                    pred[sel] = self.model(x[sel], protos[k]).argmax(1)
            correct += int((pred == y).sum())
        return correct / len(t.test_y)

    # ------------------------------------------------------------------ results
    def evaluate(self) -> dict[str, float]:
        """ACC, BWT and learning accuracy per method (mean and SD over seeds)."""
        out: dict[str, float] = {"prototype_accuracy": float(np.mean(self.prototype_accuracy))}
        return {**out, **summarise_matrices(self.matrices)}

    def artifacts(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {"prototype_accuracy": self.prototype_accuracy}
        for method in self.matrices:
            arrays[f"accuracy_matrix_{method}"] = self.matrices[method]
            arrays[f"train_seconds_{method}"] = self.seconds[method]
        return arrays

    def state_dict(self) -> dict[str, Any]:
        """Accuracy matrices so far, and the current run's model, data order and position."""
        state: dict[str, Any] = {
            "matrices": {m: torch.from_numpy(v.copy()) for m, v in self.matrices.items()},
            "seconds": {m: torch.from_numpy(v.copy()) for m, v in self.seconds.items()},
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
            )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after :meth:`setup`)."""
        self.matrices = {m: v.numpy().copy() for m, v in state["matrices"].items()}
        self.seconds = {m: v.numpy().copy() for m, v in state["seconds"].items()}
        if state["run_key"] is None:
            return
        seed_i, method_i = (int(v) for v in state["run_key"])
        self._start_run(seed_i, method_i)
        self.model.load_state_dict(state["model"])
        self.generator.set_state(state["generator"])
        self.task = int(state["task"])
        if state["in_task"]:  # mid-task: the runner restores this trainer's optimizer state
            self._new_trainer(self.task)
        self.order = state["order"].clone() if state["order"] is not None else None
        self.cursor = int(state["cursor"])
        self.run_seconds = float(state["run_seconds"])

    @classmethod
    def figures(cls, results: Results) -> dict[str, Figure]:
        """Accuracy matrix per method (seed mean), ACC/BWT bars, dendrites' task curves."""
        from neurosim.plotting.continual import (
            plot_acc_bwt,
            plot_accuracy_matrix,
            plot_task_curves,
        )

        run = results.path.parent.name
        figures: dict[str, Figure] = {}
        shown, acc, bwt = [], [], []
        for m in METHODS:
            key = f"accuracy_matrix_{m}"
            if key not in results.arrays:
                continue
            mats = np.asarray(results.arrays[key], dtype=np.float64)
            done = [x for x in mats if not np.isnan(x[-1]).all()]
            if not done:
                continue
            mean = np.mean(done, axis=0)
            seeds = f"{len(done)} seed{'s' if len(done) > 1 else ''}"
            figures[key] = plot_accuracy_matrix(
                mean, title=f"{m}: permuted MNIST accuracy matrix ({seeds}), run {run}"
            )
            if m in ("dendrites", "mlp"):
                figures[f"task_curves_{m}"] = plot_task_curves(
                    mean, title=f"{m}: accuracy of each task, run {run}"
                )
            shown.append(m)
            acc.append([average_accuracy(x) for x in done])
            bwt.append([backward_transfer(x) for x in done])
        if shown:
            width = max(len(a) for a in acc)
            pad = [a + [np.nan] * (width - len(a)) for a in acc]
            padb = [b + [np.nan] * (width - len(b)) for b in bwt]
            figures["acc_bwt"] = plot_acc_bwt(
                shown, pad, padb, title=f"permuted MNIST ACC / BWT per method, run {run}"
            )
        return figures
