"""A 2-layer spiking classifier on the MNIST digits in ``<data_root>/mnist``.

Network (time-major, ``T = time_steps``)::

    pixels [B, 784] --encode--> [T, B, 784] --Linear--> LIF (hidden) --Linear--> LI (readout)
    logits = mean_t  v_readout[t]                 (cross-entropy, surrogate gradients, Adam)

Training runs on :class:`experiments.trainer.Trainer`: one parameter group ``model`` whose
:class:`~experiments.trainer.OptimConfig` (``optim``) defaults to AdamW at ``lr = 2e-3`` with a
linear warm-up over ``warmup_steps = 135`` steps (15 % of the default 900) and a cosine decay to
zero at ``steps``; ``neurosim config snn_mnist`` shows these numbers, and ``optim.lr=...``,
``optim.warmup_steps=...`` change them.

The data are the 10,000 digits of the MNIST test files (the only split in ``../shared/data``),
split by ``split_seed`` into ``10000 - n_holdout`` training digits and ``n_holdout`` held-out
digits; the final metric ``holdout_accuracy`` is measured on digits never trained on. Training
draws batches from a per-epoch permutation of the training part, with an optional random shift
of up to ``max_shift`` pixels (augmentation), both from one generator that is saved in
checkpoints, so a resumed run continues exactly. With several data-parallel ranks every rank
draws (and encodes) the same global batch and keeps its share
(:func:`experiments.distributed.shard`), so N ranks take the steps of one process.

Encodings: ``direct`` (the grey level is the input current at every step; default), ``rate``
(Bernoulli spikes) or ``latency`` (one spike per pixel, brighter earlier).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from experiments.base import Experiment, RunConfig
from experiments.config import MAX_SEED, ConfigRangeError, bounded, one_of
from experiments.data import dataset_path
from experiments.distributed import shard
from experiments.registry import register
from experiments.trainer import OptimConfig, Trainer, TrainerConfig
from neurosim.backend import InputError, seeded
from neurosim.datasets.mnist import MNIST_LAYOUT, load_mnist, load_sklearn_digits, split_indices
from neurosim.functional.encoding import latency_encode, rate_encode
from neurosim.functional.surrogate import SURROGATES, Surrogate
from neurosim.monitors import Monitor
from neurosim.neurons import LI, LIF

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from experiments.results import Results

ENCODINGS = ("direct", "rate", "latency")
DATASETS = ("mnist", "sklearn_digits")


@dataclass
class SnnMnistConfig(RunConfig):
    """Configuration of :class:`SnnMnist` (see the module docstring).

    Attributes:
        dataset: ``mnist`` (the IDX files under ``<data_root>/mnist``) or ``sklearn_digits`` (the
            1,797 digits scikit-learn ships, resized to 28x28: the demo's embedded default).
        hidden: hidden LIF neurons.
        time_steps: simulation steps ``T`` per digit.
        encoding: ``direct``, ``rate`` or ``latency``.
        beta: membrane decay per step of both layers.
        threshold: hidden firing threshold.
        surrogate: surrogate gradient name (``arctan``, ``fast_sigmoid``, ``sigmoid``,
            ``straight_through``).
        surrogate_slope: its slope.
        batch_size: training batch size (the global batch: split over data-parallel ranks).
        optim: optimizer and schedule of the network's one parameter group ``model`` (AdamW,
            peak ``lr``, linear warm-up over ``warmup_steps``, cosine decay to zero at ``steps``).
        trainer: clipping, gradient accumulation, divergence check.
        max_shift: random translation of training digits by up to this many pixels.
        n_samples: use only the first this many digits of the file (0 = all 10,000).
        n_holdout: held-out digits (never trained on).
        split_seed: seed of the train / held-out split.
        eval_batch_size: batch size when measuring held-out accuracy.
        record_digits: held-out digits whose hidden spikes and readout membranes are recorded
            into the results file at evaluation (0 = none).
    """

    dataset: str = one_of("mnist", DATASETS)
    hidden: int = bounded(512, ge=1)
    time_steps: int = bounded(8, ge=1)
    encoding: str = one_of("direct", ENCODINGS)
    beta: float = bounded(0.9, ge=0, le=1)
    threshold: float = bounded(1.0, gt=0)
    surrogate: str = one_of("arctan", SURROGATES)
    surrogate_slope: float = bounded(2.0, gt=0)
    batch_size: int = bounded(128, ge=1)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            optimizer="adamw", lr=2e-3, schedule="cosine", warmup_steps=135
        )
    )
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    max_shift: int = bounded(2, ge=0, le=8)
    n_samples: int = bounded(0, ge=0)
    n_holdout: int = bounded(2000, ge=1)
    split_seed: int = bounded(0, ge=0, le=MAX_SEED)
    eval_batch_size: int = bounded(1000, ge=1)
    record_digits: int = bounded(16, ge=0)
    steps: int = 900
    log_every: int = 10
    checkpoint_every: int = 300

    def validate(self) -> None:
        """The held-out part must leave digits to train on."""
        if self.n_samples and self.n_holdout >= self.n_samples:
            raise ConfigRangeError(
                "n_holdout", self.n_holdout, f"an integer < n_samples = {self.n_samples}"
            )


class SpikingMLP(nn.Module):
    """``784 -> Linear -> LIF (hidden) -> Linear -> LI (readout)`` run on ``[T, B, 784]``.

    Layers without recurrence act on all ``T`` steps at once; the neurons run as multi-step
    scans. Returns the readout membrane ``[T, B, 10]`` and the hidden spikes ``[T, B, hidden]``.
    """

    def __init__(self, hidden: int, beta: float, threshold: float, surrogate: Surrogate) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.lif = LIF(beta=beta, threshold=threshold, surrogate=surrogate)
        self.fc2 = nn.Linear(hidden, 10)
        self.readout = LI(beta=beta)

    def forward(self, x: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(readout membrane [T, B, 10], hidden spikes [T, B, hidden])`` for input ``x``.

        ``x`` is a spike/current sequence ``[T, B, 784]``, or ``[B, 784]`` for a constant
        (direct) input current, whose ``fc1`` product is computed once and repeated ``steps``
        times.
        """
        if x.dim() == 2:
            current = self.fc1(x).unsqueeze(0).expand(steps, -1, -1)
        else:
            current = self.fc1(x)
        spikes = self.lif(current)[0]
        v_out = self.readout(self.fc2(spikes))[0]
        return v_out, spikes


@register
class SnnMnist(Experiment[SnnMnistConfig]):
    """MNIST digits with a 2-layer LIF network and surrogate gradients."""

    name = "snn_mnist"
    config_class = SnnMnistConfig
    supports_ddp = True
    description = "2-layer spiking classifier (LIF + LI readout) on MNIST, held-out accuracy"
    metric_units: ClassVar[dict[str, str]] = {
        "loss": "cross-entropy, nats",
        "holdout_loss": "cross-entropy, nats",
        "hidden_rate": "spikes/neuron/step",
        "holdout_hidden_rate": "spikes/neuron/step",
    }

    @classmethod
    def figures(cls, results: Results) -> dict[str, Figure]:
        """From the recorded held-out digits (``record_digits``): ``hidden_raster`` (the hidden
        LIF spikes of every recorded digit, one after another), ``readout_traces`` (the ten
        readout membranes of the first digit) and ``hidden_rate_histogram`` (per-neuron firing rates)."""
        from neurosim.plotting.spikes import (
            plot_firing_rates,
            plot_membrane_traces,
            plot_spike_raster,
        )

        spikes = results.arrays.get("holdout_hidden_spikes")  # [T, digits, hidden]
        v_out = results.arrays.get("holdout_readout_v")  # [T, digits, 10]
        labels = results.arrays.get("holdout_labels")  # [digits]
        if spikes is None or v_out is None or labels is None or spikes.ndim != 3:
            return {}  # record_digits = 0, or a run stopped before its evaluation
        steps, digits, hidden = spikes.shape
        run = results.run_label
        chained = spikes.transpose(1, 0, 2).reshape(steps * digits, hidden)
        raster = plot_spike_raster(
            chained,
            title=f"{run}: hidden LIF spikes of {digits} held-out digits ({steps} steps each)",
        )
        ax = raster.axes[0]
        for d in range(digits):
            if d:
                ax.axvline(d * steps - 0.5, color="grey", lw=0.8, ls=":")
            name = f"label {int(labels[d])}" if digits <= 8 else str(int(labels[d]))
            ax.text((d + 0.5) * steps - 0.5, hidden - 0.5, name, ha="center", va="bottom",
                    fontsize=7)  # fmt: skip
        ax.set_xlabel("time step (digits one after another)")
        ax.set_title(ax.get_title(), pad=14)
        truth = int(labels[0])
        predicted = int(np.argmax(v_out[:, 0].mean(0)))
        names = [f"class {c}" + (" (true)" if c == truth else "") for c in range(v_out.shape[2])]
        traces = plot_membrane_traces(
            v_out,
            sample=0,
            neurons=range(v_out.shape[2]),
            labels=names,
            title=f"{run}: readout membranes, held-out digit 0 (label {truth}, "
            f"predicted {predicted})",
        )
        rates = plot_firing_rates(
            spikes, title=f"{run}: hidden firing rates, mean over {digits} held-out digits"
        )
        return {"hidden_raster": raster, "readout_traces": traces, "hidden_rate_histogram": rates}

    def setup(self) -> None:
        """Load and split the digits, build the network, its trainer and the data-order generator."""
        c = self.config  # ranges and choices were checked when the config was built
        device = self.runtime.device
        if c.dataset == "mnist":
            data = load_mnist(dataset_path("mnist", c.data_root, layout=MNIST_LAYOUT), "t10k")
        else:
            data = load_sklearn_digits()
        n = len(data.labels) if c.n_samples == 0 else min(c.n_samples, len(data.labels))
        train_idx, held_idx = split_indices(n, c.n_holdout, c.split_seed)
        images = data.images[:n].reshape(n, 784).to(torch.float32).div_(255.0)
        self.train_x = images[train_idx].to(device)
        self.train_y = data.labels[train_idx].to(device)
        self.held_x = images[held_idx].to(device)
        self.held_y = data.labels[held_idx].to(device)
        if len(self.train_y) < c.batch_size:
            raise InputError(
                f"snn_mnist batch_size {c.batch_size} exceeds the {len(self.train_y)} training digits"
            )

        surrogate = Surrogate(c.surrogate, c.surrogate_slope)
        with seeded(self.runtime.seed):  # parameter initialisation, global RNG left alone
            self.model = SpikingMLP(c.hidden, c.beta, c.threshold, surrogate).to(device)
        self.trainer = Trainer(
            self.model,
            {"model": (self.model.parameters(), c.optim)},
            self.runtime,
            total_steps=c.steps,
            config=c.trainer,
        )
        # data order, augmentation and rate-coding noise: one CPU generator, saved in checkpoints
        self.generator = torch.Generator().manual_seed(self.runtime.seed)
        self.order = torch.randperm(len(self.train_y), generator=self.generator)
        self.cursor = 0
        self.epoch = 0

    # ------------------------------------------------------------------ helpers
    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        if self.cursor + c.batch_size > len(self.order):
            self.order = torch.randperm(len(self.train_y), generator=self.generator)
            self.cursor = 0
            self.epoch += 1
        idx = self.order[self.cursor : self.cursor + c.batch_size]
        idx = idx.to(self.runtime.device, non_blocking=True)
        self.cursor += c.batch_size
        x, y = self.train_x[idx], self.train_y[idx]
        if c.max_shift > 0:
            dy, dx = torch.randint(-c.max_shift, c.max_shift + 1, (2,), generator=self.generator)
            img = F.pad(x.view(-1, 1, 28, 28), [c.max_shift] * 4)
            top, left = c.max_shift + int(dy), c.max_shift + int(dx)
            x = img[:, :, top : top + 28, left : left + 28].reshape(-1, 784)
        return x, y

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels ``[B, 784]`` in ``[0, 1]`` -> network input ``[T, B, 784]`` (or ``[B, 784]``)."""
        c = self.config
        if c.encoding == "direct":
            return x  # the model repeats fc1(x) over time (same as direct_encode, T x cheaper)
        if c.encoding == "latency":
            return latency_encode(x, c.time_steps)
        return rate_encode(x, c.time_steps, generator=self.generator)

    # ------------------------------------------------------------------ experiment API
    def loss(self, micro: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy of one (micro-)batch, with its accuracy and hidden firing rate.

        The global batch is drawn and encoded on every rank alike; each keeps its share.
        """
        x, y = self._next_batch()
        inputs = self.encode(x)
        inputs, y = shard(inputs, dim=inputs.dim() - 2), shard(y)
        model = self.trainer.model if self.trainer is not None else self.model
        v_out, spikes = model(inputs, self.config.time_steps)
        logits = v_out.float().mean(0)
        accuracy = (logits.detach().argmax(1) == y).float().mean()
        rate = spikes.detach().float().mean()
        return F.cross_entropy(logits, y), {"batch_accuracy": accuracy, "hidden_rate": rate}

    def step(self, step: int) -> dict[str, torch.Tensor | float]:
        """One optimizer step on one training batch; logs loss, batch accuracy, rate, lr, epoch."""
        assert self.trainer is not None
        self.model.train()
        metrics = self.trainer.train_step(step, self.loss)
        metrics["epoch"] = float(self.epoch)
        return metrics

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Accuracy and loss on the held-out digits (and training accuracy for comparison)."""
        self.model.eval()
        held_acc, held_loss, rate = self._accuracy(self.held_x, self.held_y)
        train_acc, _, _ = self._accuracy(self.train_x, self.train_y)
        self._record_examples()
        return {
            "holdout_accuracy": held_acc,
            "holdout_loss": held_loss,
            "holdout_hidden_rate": rate,
            "train_accuracy": train_acc,
        }

    def _accuracy(self, xs: torch.Tensor, ys: torch.Tensor) -> tuple[float, float, float]:
        """Accuracy, mean loss and mean hidden rate over ``xs``; one host sync at the end."""
        sums = torch.zeros(3, dtype=torch.float64, device=xs.device)
        generator_state = self.generator.get_state()  # evaluation leaves the data order alone
        for start in range(0, len(ys), self.config.eval_batch_size):
            x = xs[start : start + self.config.eval_batch_size]
            y = ys[start : start + self.config.eval_batch_size]
            with self.runtime.autocast():
                v_out, spikes = self.model(self.encode(x), self.config.time_steps)
            logits = v_out.float().mean(0)
            sums[0] += (logits.argmax(1) == y).sum()
            sums[1] += F.cross_entropy(logits, y, reduction="sum")
            sums[2] += spikes.float().mean().double() * len(y)
        self.generator.set_state(generator_state)
        correct, loss, rate = (sums / len(ys)).tolist()
        return correct, loss, rate

    def _record_examples(self) -> None:
        """Hidden spikes and readout membranes of a few held-out digits, into the results file."""
        k = min(self.config.record_digits, len(self.held_y))
        path = getattr(self.results, "path", None)
        if k == 0 or path is None:
            return
        spikes_mon = Monitor("holdout_hidden_spikes", target=path, dtype="uint8")
        v_mon = Monitor("holdout_readout_v", target=path)
        v_mon.attach(self.model.readout, signal="membrane")
        spikes_mon.attach(self.model.lif, signal="spikes")
        generator_state = self.generator.get_state()
        self.model(self.encode(self.held_x[:k]), self.config.time_steps)
        self.generator.set_state(generator_state)
        spikes_mon.close()
        v_mon.close()
        self.save_array("holdout_labels", self.held_y[:k].cpu().numpy().astype(np.int64))

    def state_dict(self) -> dict[str, Any]:
        """Model, data-order generator, current permutation and position (the runner saves the
        trainer's optimizer and schedule state beside it)."""
        return {
            "model": self.model.state_dict(),
            "generator": self.generator.get_state(),
            "order": self.order.clone(),
            "cursor": self.cursor,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after :meth:`setup`)."""
        self.model.load_state_dict(state["model"])
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.cursor = int(state["cursor"])
        self.epoch = int(state["epoch"])
