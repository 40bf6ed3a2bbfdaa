"""``elm_adding``: the long-horizon spiking adding task (SHD-Adding style) for ELM, LSTM and LIF.

Two noisy spike patterns, ``delay`` steps apart, encode two numbers; the model reads the whole
sequence and classifies their sum at the last step (cross-entropy on the last output; see
:mod:`neurosim.datasets.spike_adding`). Three models of about the same size compete:

* ``elm``: :class:`neurosim.neurons.ELM` (``num_memory`` units, ``tau_m`` log-spaced up to
  ``memory_tau_max``), readout of the last step;
* ``lstm``: ``torch.nn.LSTM`` (``lstm_hidden`` units, forget-gate bias initialised to
  ``lstm_forget_bias``) + linear readout of the last step;
* ``lif``: a feed-forward LIF network ``Linear -> LIF -> Linear -> LIF -> Linear -> LI`` with
  learnable decays (``lif_hidden`` neurons per layer), the LI membrane at the last step as logits.

Training batches come from a generator seeded with ``seed`` and evaluation sequences from one
seeded with ``eval_seed`` (never used for training); the number templates are fixed by
``template_seed``. Metrics per step: ``loss``, ``batch_accuracy``. Final: ``accuracy`` and
``loss`` on ``eval_samples`` held-out sequences, ``sum_mse`` (squared error of the predicted sum),
``chance_accuracy`` (always answering the most frequent sum) and ``params``. Arrays: an example
input, and for ELM the memory trajectories of ``record_samples`` held-out sequences (recorded with
a :class:`neurosim.monitors.Monitor` into the run's ``results.h5``) and the units' ``tau_m``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from experiments.base import Experiment, RunConfig
from experiments.distributed import shard
from experiments.registry import register
from experiments.trainer import OptimConfig, Trainer, TrainerConfig
from neurosim.backend import InputError, seeded
from neurosim.datasets.spike_adding import SpikeAddingTask
from neurosim.monitors import Monitor
from neurosim.neurons import ELM, LI, LIF

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from experiments.results import Results

MODELS = ("elm", "lstm", "lif")


@dataclass
class ElmAddingConfig(RunConfig):
    """Config of ``elm_adding`` (see the module docstring; task fields as
    :class:`~neurosim.datasets.spike_adding.SpikeAddingTask`).

    Attributes:
        model: ``elm``, ``lstm`` or ``lif``.
        delay: silent steps between the end of the first and the start of the second pattern.
        batch_size: training sequences per step.
        eval_samples: held-out sequences for the final metrics.
        eval_seed: seed of the held-out sequences.
        num_memory, memory_tau_max, lambda_value, mlp_hidden: ELM size and memory.
        lstm_hidden: LSTM units.
        lstm_forget_bias: initial forget-gate bias (1: the usual remedy for long memories,
            Jozefowicz et al. 2015); ``null`` keeps PyTorch's initialisation (bias ~0).
        lif_hidden, lif_beta: LIF neurons per layer and their initial decay.
        record_samples: held-out sequences whose ELM memory is recorded (0 = none).
    """

    model: str = "elm"
    delay: int = 100
    channels: int = 32
    n_values: int = 10
    pattern_steps: int = 25
    tail: int = 5
    template_rate: float = 0.1
    jitter: int = 2
    drop: float = 0.1
    noise_rate: float = 0.005
    template_seed: int = 0
    batch_size: int = 64
    eval_samples: int = 1024
    eval_seed: int = 1_000_003
    num_memory: int = 40
    memory_tau_max: float = 1000.0
    lambda_value: float = 5.0
    mlp_hidden: int = 0
    lstm_hidden: int = 38
    lstm_forget_bias: float | None = 1.0
    lif_hidden: int = 80
    lif_beta: float = 0.95
    record_samples: int = 4
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=3e-3, schedule="cosine", min_lr_ratio=0.05)
    )
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(grad_clip=1.0))
    steps: int = 1500
    log_every: int = 10
    checkpoint_every: int = 500


class ElmClassifier(nn.Module):
    """ELM whose last-step readout is the logits."""

    def __init__(self, cfg: ElmAddingConfig, classes: int) -> None:
        super().__init__()
        self.elm = ELM(
            cfg.channels,
            classes,
            num_memory=cfg.num_memory,
            mlp_hidden_size=cfg.mlp_hidden or None,
            memory_tau_max=cfg.memory_tau_max,
            lambda_value=cfg.lambda_value,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.elm(x)[0][-1]


class LstmClassifier(nn.Module):
    """``nn.LSTM`` + linear readout of the last hidden state."""

    def __init__(self, cfg: ElmAddingConfig, classes: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(cfg.channels, cfg.lstm_hidden)
        self.readout = nn.Linear(cfg.lstm_hidden, classes)
        h = cfg.lstm_hidden
        bias_ih, bias_hh = self.lstm.bias_ih_l0, self.lstm.bias_hh_l0
        assert isinstance(bias_ih, torch.Tensor) and isinstance(bias_hh, torch.Tensor)
        if cfg.lstm_forget_bias is not None:
            with torch.no_grad():  # gate order: input, forget, cell, output
                bias_ih[h : 2 * h].fill_(cfg.lstm_forget_bias)
                bias_hh[h : 2 * h].zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.lstm(x)[0][-1])


class LifClassifier(nn.Module):
    """Two LIF layers and an LI readout with learnable decays; logits = last LI membrane."""

    def __init__(self, cfg: ElmAddingConfig, classes: int) -> None:
        super().__init__()
        n = cfg.lif_hidden
        self.fc1, self.fc2 = nn.Linear(cfg.channels, n), nn.Linear(n, n)
        self.lif1 = LIF(n, beta=cfg.lif_beta, learn_beta=True)
        self.lif2 = LIF(n, beta=cfg.lif_beta, learn_beta=True)
        self.fc3 = nn.Linear(n, classes)
        self.readout = LI(classes, beta=cfg.lif_beta, learn_beta=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.lif1(self.fc1(x))[0]
        s = self.lif2(self.fc2(s))[0]
        return self.readout(self.fc3(s))[0][-1]


def build_model(cfg: ElmAddingConfig, classes: int) -> nn.Module:
    """The classifier named by ``cfg.model``."""
    if cfg.model == "elm":
        return ElmClassifier(cfg, classes)
    if cfg.model == "lstm":
        return LstmClassifier(cfg, classes)
    return LifClassifier(cfg, classes)


def task_of(cfg: ElmAddingConfig) -> SpikeAddingTask:
    """The :class:`SpikeAddingTask` described by a config."""
    return SpikeAddingTask(
        channels=cfg.channels, n_values=cfg.n_values, pattern_steps=cfg.pattern_steps,
        delay=cfg.delay, tail=cfg.tail, template_rate=cfg.template_rate, jitter=cfg.jitter,
        drop=cfg.drop, noise_rate=cfg.noise_rate, template_seed=cfg.template_seed,
    )  # fmt: skip


@register
class ElmAdding(Experiment[ElmAddingConfig]):
    """Long-horizon spiking adding task: ELM vs LSTM vs LIF at one delay."""

    name = "elm_adding"
    config_class = ElmAddingConfig
    description = "spiking adding task (SHD-Adding style, generated): ELM vs LSTM vs LIF SNN"

    def setup(self) -> None:
        cfg = self.config
        if cfg.model not in MODELS:
            raise InputError(f"elm_adding model must be one of {MODELS}, got {cfg.model!r}")
        for key in ("batch_size", "eval_samples", "num_memory", "lstm_hidden", "lif_hidden"):
            if getattr(cfg, key) < 1:
                raise InputError(f"elm_adding {key} must be >= 1, got {getattr(cfg, key)}")
        self.task = task_of(cfg)
        self.templates = self.task.templates()
        device = self.runtime.device
        with seeded(cfg.seed):
            self.model = build_model(cfg, self.task.num_classes).to(device)
        self.trainer = Trainer(
            self.model,
            {"model": (self.model.parameters(), cfg.optim)},
            self.runtime,
            total_steps=cfg.steps,
            config=cfg.trainer,
        )
        self.sampler = torch.Generator().manual_seed(cfg.seed + 1)

    def loss(self, micro: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy of the last-step logits on one fresh batch."""
        batch = self.task.sample(self.config.batch_size, self.templates, self.sampler)
        x, target = shard(batch.x.transpose(0, 1)).transpose(0, 1), shard(batch.target)
        x, target = x.to(self.runtime.device), target.to(self.runtime.device)
        assert self.trainer is not None
        logits = self.trainer.model(x).float()
        loss = nn.functional.cross_entropy(logits, target)
        accuracy = (logits.detach().argmax(1) == target).float().mean()
        return loss, {"batch_accuracy": accuracy}

    def step(self, step: int) -> dict[str, torch.Tensor | float]:
        assert self.trainer is not None
        return self.trainer.train_step(step, self.loss)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        cfg = self.config
        self.model.eval()
        gen = torch.Generator().manual_seed(cfg.eval_seed)
        correct, loss, sq, n = 0.0, 0.0, 0.0, 0
        chunk = min(256, cfg.eval_samples)
        counts = torch.zeros(self.task.num_classes)
        while n < cfg.eval_samples:
            size = min(chunk, cfg.eval_samples - n)
            batch = self.task.sample(size, self.templates, gen)
            with self.runtime.autocast():
                logits = self.model(batch.x.to(self.runtime.device)).float().cpu()
            pred = logits.argmax(1)
            correct += float((pred == batch.target).sum())
            loss += float(nn.functional.cross_entropy(logits, batch.target, reduction="sum"))
            sq += float(((pred - batch.target).float() ** 2).sum())
            counts += torch.bincount(batch.target, minlength=self.task.num_classes)
            n += size
        self._record()
        self.model.train()
        params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        return {
            "accuracy": correct / n,
            "loss": loss / n,
            "sum_mse": sq / n,
            "chance_accuracy": float(counts.max()) / n,
            "params": float(params),
        }

    def _record(self) -> None:
        """An example input and, for ELM, memory trajectories of held-out sequences."""
        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.eval_seed + 7)
        k = max(1, cfg.record_samples)
        batch = self.task.sample(k, self.templates, gen)
        self.save_array("example_input", batch.x[:, 0].numpy().astype(np.uint8))
        self.save_array("example_values", batch.values.numpy())
        self.save_array(
            "pattern_windows", np.array([0, self.task.second_onset, self.task.pattern_steps])
        )
        path = getattr(self.results, "path", None)
        if not isinstance(self.model, ElmClassifier) or cfg.record_samples == 0 or path is None:
            return
        monitor = Monitor("elm_memory", target=path)
        monitor.attach(self.model.elm, signal="membrane")
        self.model(batch.x.to(self.runtime.device))
        monitor.close()
        self.save_array("tau_m", self.model.elm.tau_m.detach().cpu().numpy())

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "sampler": self.sampler.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.sampler.set_state(state["sampler"])

    @classmethod
    def figures(cls, results: Results) -> dict[str, Figure]:
        from neurosim.plotting.memory import (
            plot_adding_example,
            plot_memory_traces,
            plot_task_curves,
        )

        run = results.path.parent.name
        figs: dict[str, Figure] = {}
        arrays = results.arrays
        label = run
        try:
            from experiments.runner import load_run_config

            _, cfg = load_run_config(results.path.parent)
            assert isinstance(cfg, ElmAddingConfig)
            label = f"{run} ({cfg.model}, delay {cfg.delay})"
        except (InputError, AssertionError):
            pass
        first, second, pattern = (int(v) for v in arrays.get("pattern_windows", [0, 0, 1]))
        onsets = [first, second]
        if "example_input" in arrays:
            values = [int(v) for v in arrays["example_values"][0]]
            figs["adding_input"] = plot_adding_example(
                arrays["example_input"], onsets=onsets, pattern_steps=pattern, values=values,
                title=f"{label}: adding input, target {sum(values)}",
            )  # fmt: skip
        if "elm_memory" in arrays:
            figs["elm_memory"] = plot_memory_traces(
                arrays["elm_memory"], tau=arrays.get("tau_m"), sample=0,
                marks={"pattern 1": onsets[0], "pattern 2": onsets[1]},
                title=f"{label}: ELM memory on a held-out sequence",
            )  # fmt: skip
        curves = {k: results.metrics[k] for k in ("batch_accuracy",) if k in results.metrics}
        if curves:
            figs["accuracy_curve"] = plot_task_curves(
                curves, ylabel="training batch accuracy",
                chance=results.summary.get("chance_accuracy"),
                title=f"{label}: training accuracy",
            )  # fmt: skip
        return figs
