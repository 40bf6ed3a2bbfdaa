"""``elm_neuron_fit``: fit ELM / Branch-ELM to a simulated NMDA-dendrite neuron (a small NeuronIO).

The ground truth is :mod:`neurosim.datasets.simulated_neuron` (a soma with ``branches`` NMDA
dendrites, :mod:`neurosim.functional.compartmental`) driven by branch-correlated excitatory and
inhibitory Poisson trains. The model reads the presynaptic spikes and predicts, every
millisecond, the soma's spike (logit, binary cross-entropy) and its voltage (mean squared error
on ``(v - e_leak) / 10 mV``, weight ``voltage_weight``), as in the paper's NeuronIO task.

* ``elm``: plain ELM (one synapse per input);
* ``branch_elm``: Branch-ELM with the reference's ``"neuronio"`` routing (``model_branches``
  branches of ``synapses_per_model_branch`` synapses over the interleaved inputs).

Data: ``train_sequences`` and ``test_sequences`` sequences of ``sequence_ms`` are simulated in
``setup`` from two generators seeded with ``data_seed`` and ``test_seed`` (which must differ, so
the test inputs are independent draws). Training takes random ``window_ms`` crops; the first
``burn_in_ms`` of every crop and test sequence are not scored (the model starts from rest).
Final metrics on the test sequences: ``auc`` (ROC AUC of the spike prediction per ms,
scikit-learn), ``rmse_mv`` (voltage), ``spike_rate_hz`` of the truth, ``params``. Arrays: one
test sequence's truth and prediction, the memory trajectories (a Monitor on the ELM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from experiments.base import Experiment, RunConfig
from experiments.registry import register
from experiments.trainer import OptimConfig, Trainer, TrainerConfig
from neurosim.backend import InputError, seeded
from neurosim.datasets.simulated_neuron import SimulatedNeuronTask
from neurosim.monitors import Monitor
from neurosim.neurons import ELM

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from experiments.results import Results

MODELS = ("elm", "branch_elm")
VOLTAGE_SCALE = 10.0  # mV


@dataclass
class ElmNeuronFitConfig(RunConfig):
    """Config of ``elm_neuron_fit`` (see the module docstring).

    Attributes:
        model: ``elm`` or ``branch_elm``.
        num_memory: memory units ``d_m``; the MLP has ``2 d_m`` hidden units.
        memory_tau_max: largest memory time constant (ms; the reference's NeuronIO value).
        model_branches, synapses_per_model_branch: Branch-ELM routing.
        branches, synapses_per_branch, exc_rate_max_hz, inh_rate_max_hz: the simulated neuron.
        train_sequences, test_sequences, sequence_ms: data size.
        window_ms, burn_in_ms: training crop and the unscored start.
        voltage_weight: weight of the voltage loss.
        data_seed, test_seed: generators of the training and test inputs.
    """

    model: str = "branch_elm"
    num_memory: int = 20
    memory_tau_max: float = 150.0
    lambda_value: float = 5.0
    model_branches: int = 8
    synapses_per_model_branch: int = 64
    branches: int = 8
    synapses_per_branch: int = 24
    exc_rate_max_hz: float = 40.0
    inh_rate_max_hz: float = 40.0
    train_sequences: int = 64
    test_sequences: int = 16
    sequence_ms: int = 2000
    window_ms: int = 500
    burn_in_ms: int = 100
    batch_size: int = 16
    voltage_weight: float = 1.0
    data_seed: int = 0
    test_seed: int = 1
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=1e-2, schedule="cosine", min_lr_ratio=0.05)
    )
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(grad_clip=1.0))
    steps: int = 1200
    log_every: int = 10
    checkpoint_every: int = 400


def build_elm(cfg: ElmNeuronFitConfig, num_inputs: int) -> ELM:
    """The ELM of the config: plain, or Branch-ELM with NeuronIO routing."""
    common: dict[str, Any] = {
        "num_memory": cfg.num_memory,
        "memory_tau_max": cfg.memory_tau_max,
        "lambda_value": cfg.lambda_value,
    }
    if cfg.model == "elm":
        return ELM(num_inputs, 2, **common)
    return ELM(
        num_inputs, 2, num_branch=cfg.model_branches,
        num_synapse_per_branch=cfg.synapses_per_model_branch, routing="neuronio", **common,
    )  # fmt: skip


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (scikit-learn); NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if labels.min() == labels.max():
        return float("nan")
    return float(roc_auc_score(labels, scores))


@register
class ElmNeuronFit(Experiment[ElmNeuronFitConfig]):
    """ELM / Branch-ELM predicting the spikes and voltage of a simulated NMDA neuron."""

    name = "elm_neuron_fit"
    config_class = ElmNeuronFitConfig
    description = (
        "fit ELM / Branch-ELM to a simulated NMDA-dendrite neuron (spike AUC, voltage RMSE)"
    )

    def setup(self) -> None:
        cfg = self.config
        if cfg.model not in MODELS:
            raise InputError(f"elm_neuron_fit model must be one of {MODELS}, got {cfg.model!r}")
        if cfg.data_seed == cfg.test_seed:
            raise InputError("elm_neuron_fit data_seed and test_seed must differ (held-out test)")
        if not 0 <= cfg.burn_in_ms < cfg.window_ms <= cfg.sequence_ms:
            raise InputError(
                f"elm_neuron_fit needs 0 <= burn_in_ms < window_ms <= sequence_ms, got "
                f"{cfg.burn_in_ms}, {cfg.window_ms}, {cfg.sequence_ms}"
            )
        for key in ("train_sequences", "test_sequences", "batch_size", "num_memory"):
            if getattr(cfg, key) < 1:
                raise InputError(f"elm_neuron_fit {key} must be >= 1, got {getattr(cfg, key)}")
        self.task = SimulatedNeuronTask(
            branches=cfg.branches, synapses_per_branch=cfg.synapses_per_branch,
            sequence_ms=cfg.sequence_ms, exc_rate_hz=(0.0, cfg.exc_rate_max_hz),
            inh_rate_hz=(0.0, cfg.inh_rate_max_hz),
        )  # fmt: skip
        self.e_leak = self.task.neuron.e_leak
        self.train = self.task.simulate(
            cfg.train_sequences, torch.Generator().manual_seed(cfg.data_seed)
        )
        self.test = self.task.simulate(
            cfg.test_sequences, torch.Generator().manual_seed(cfg.test_seed)
        )
        device = self.runtime.device
        with seeded(cfg.seed):
            self.model = build_elm(cfg, self.task.num_inputs).to(device)
        self.trainer = Trainer(
            self.model, {"model": (self.model.parameters(), cfg.optim)}, self.runtime,
            total_steps=cfg.steps, config=cfg.trainer,
        )  # fmt: skip
        self.sampler = torch.Generator().manual_seed(cfg.seed + 1)
        spike_rate = float(self.train.spikes.mean())
        # weight the rare spikes up to balance the classes (capped)
        self.pos_weight = torch.tensor(min(50.0, (1 - spike_rate) / max(spike_rate, 1e-4)))

    def _losses(
        self, out: torch.Tensor, spikes: torch.Tensor, voltage: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        burn = self.config.burn_in_ms
        logit, v_pred = out[burn:, :, 0].float(), out[burn:, :, 1].float()
        bce = nn.functional.binary_cross_entropy_with_logits(
            logit, spikes[burn:], pos_weight=self.pos_weight.to(logit.device)
        )
        v_target = (voltage[burn:] - self.e_leak) / VOLTAGE_SCALE
        return bce, nn.functional.mse_loss(v_pred, v_target)

    def loss(self, micro: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """BCE(spike) + voltage_weight * MSE(voltage) on a batch of random training crops."""
        cfg = self.config
        n = self.train.x.shape[1]
        idx = torch.randint(0, n, (cfg.batch_size,), generator=self.sampler)
        start = int(
            torch.randint(0, cfg.sequence_ms - cfg.window_ms + 1, (1,), generator=self.sampler)
        )
        sl = slice(start, start + cfg.window_ms)
        dev = self.runtime.device
        x = self.train.x[sl, idx].to(dev)
        spikes, voltage = self.train.spikes[sl, idx].to(dev), self.train.voltage[sl, idx].to(dev)
        assert self.trainer is not None
        out, _ = self.trainer.model(x)
        bce, mse = self._losses(out, spikes, voltage)
        return bce + cfg.voltage_weight * mse, {
            "spike_bce": bce.detach(),
            "voltage_mse": mse.detach(),
        }

    def step(self, step: int) -> dict[str, torch.Tensor | float]:
        assert self.trainer is not None
        return self.trainer.train_step(step, self.loss)

    @torch.no_grad()
    def predict(self) -> tuple[np.ndarray, np.ndarray]:
        """Spike probability and voltage (mV) on the test sequences, ``[T, N]`` each."""
        self.model.eval()
        with self.runtime.autocast():
            out, _ = self.model(self.test.x.to(self.runtime.device))
        self.model.train()
        out = out.float().cpu()
        prob = torch.sigmoid(out[..., 0]).numpy()
        volt = (out[..., 1] * VOLTAGE_SCALE + self.e_leak).numpy()
        return prob, volt

    def evaluate(self) -> dict[str, float]:
        burn = self.config.burn_in_ms
        prob, volt = self.predict()
        spikes = self.test.spikes.numpy()
        voltage = self.test.voltage.numpy()
        auc = roc_auc(spikes[burn:].reshape(-1), prob[burn:].reshape(-1))
        rmse = float(np.sqrt(np.mean((volt[burn:] - voltage[burn:]) ** 2)))
        self._record(prob, volt)
        params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        return {
            "auc": auc,
            "rmse_mv": rmse,
            "spike_rate_hz": float(spikes.mean()) * 1000.0 / self.task.neuron.dt,
            "params": float(params),
        }

    def _record(self, prob: np.ndarray, volt: np.ndarray) -> None:
        self.save_array("test_voltage", self.test.voltage[:, 0].numpy())
        self.save_array("test_spikes", self.test.spikes[:, 0].numpy().astype(np.uint8))
        self.save_array("predicted_voltage", volt[:, 0])
        self.save_array("predicted_spike_probability", prob[:, 0])
        path = getattr(self.results, "path", None)
        if path is None:
            return
        monitor = Monitor("elm_memory", target=path)
        monitor.attach(self.model, signal="membrane")
        with torch.no_grad():
            self.model(self.test.x[:, :1].to(self.runtime.device))
        monitor.close()
        self.save_array("tau_m", self.model.tau_m.detach().cpu().numpy())

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "sampler": self.sampler.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.sampler.set_state(state["sampler"])

    @classmethod
    def figures(cls, results: Results) -> dict[str, Figure]:
        from neurosim.plotting.memory import plot_memory_traces, plot_neuron_fit

        run = results.path.parent.name
        a = results.arrays
        figs: dict[str, Figure] = {}
        if "test_voltage" in a:
            auc = results.summary.get("auc", float("nan"))
            figs["neuron_fit"] = plot_neuron_fit(
                a["test_voltage"], a["predicted_voltage"], a["test_spikes"],
                a["predicted_spike_probability"],
                title=f"{run}: held-out sequence (test AUC {auc:.3f})",
            )  # fmt: skip
        if "elm_memory" in a:
            figs["elm_memory"] = plot_memory_traces(
                a["elm_memory"], tau=a.get("tau_m"), sample=0, time_unit="ms",
                title=f"{run}: ELM memory units on a held-out sequence",
            )  # fmt: skip
        return figs
