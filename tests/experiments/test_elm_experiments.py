"""The ELM experiments: parameter counts by hand, a solvable adding task solved exactly, metrics
recomputed independently from the stored arrays, held-out data disjoint, figures render."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.registry import get_experiment
from experiments.results import open_results
from experiments.runner import make_config, run_experiment
from neurosim.backend import InputError, Runtime

EASY_ADDING = [
    "device=cpu", "n_values=2", "channels=8", "pattern_steps=6", "delay=12", "tail=1",
    "jitter=0", "drop=0.0", "noise_rate=0.0", "template_rate=0.3", "num_memory=8",
    "batch_size=32", "eval_samples=64", "record_samples=2", "optim.lr=0.01", "steps=50",
    "log_every=10", "checkpoint_every=50",
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # ELM, 8 inputs, d_m 6, MLP 14 -> 12 -> 6, 5 classes: 8 + (14*12+12) + (12*6+6) + (6*5+5)
        ("elm", 8 + 180 + 78 + 35),
        # LSTM 38: 4*38*(8+38) weights + 2*4*38 biases + readout 38*5+5
        ("lstm", 4 * 38 * 46 + 8 * 38 + 38 * 5 + 5),
        # LIF 80+80: 8*80+80 + 80*80+80 + 80*5+5 + decays 80+80+5
        ("lif", 720 + 6480 + 405 + 165),
    ],
)
def test_adding_models_have_the_counted_parameters(model: str, expected: int) -> None:
    cfg = make_config("elm_adding", [f"model={model}", "device=cpu"], "tiny")
    exp = get_experiment("elm_adding")(cfg, Runtime.create("cpu", seed=0))
    exp.setup()
    assert sum(p.numel() for p in exp.model.parameters() if p.requires_grad) == expected


def test_elm_solves_a_noise_free_adding_task_exactly(tmp_path: Path) -> None:
    """Two numbers in {0, 1}, noise-free fixed patterns 12 steps apart: 4 distinct inputs, so a
    working ELM + trainer reaches 100% held-out accuracy (and sum MSE 0) in 50 steps."""
    result = run_experiment("elm_adding", EASY_ADDING, tmp_path)
    assert result.metrics["accuracy"] == 1.0
    assert result.metrics["sum_mse"] == 0.0
    results = open_results(result.run_dir)
    memory = results.arrays["elm_memory"]
    assert memory.shape == (2 * 6 + 12 + 1, 2, 8)  # [T, record_samples, d_m] from the Monitor
    np.testing.assert_allclose(np.sort(results.arrays["tau_m"]), np.logspace(0, 3, 8), rtol=1e-3)
    figs = get_experiment("elm_adding").figures(results)
    assert set(figs) == {"adding_input", "elm_memory", "accuracy_curve"}
    for name, fig in figs.items():
        fig.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def mann_whitney_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUC = P(score of a random positive > score of a random negative), ties count half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def test_neuron_fit_metrics_recomputed_from_the_arrays(tmp_path: Path) -> None:
    """With one test sequence the stored truth and prediction are the whole test set: the AUC
    (Mann-Whitney, written here), the voltage RMSE and the spike rate follow by hand."""
    overrides = ["device=cpu", "test_sequences=1", "steps=8"]
    result = run_experiment("elm_neuron_fit", overrides, tmp_path, "tiny")
    a = open_results(result.run_dir).arrays
    burn = 50
    spikes = a["test_spikes"].astype(np.int64)
    assert spikes[burn:].sum() > 0
    auc = mann_whitney_auc(spikes[burn:], a["predicted_spike_probability"][burn:])
    assert result.metrics["auc"] == pytest.approx(auc, abs=1e-9)
    rmse = np.sqrt(np.mean((a["predicted_voltage"][burn:] - a["test_voltage"][burn:]) ** 2))
    assert result.metrics["rmse_mv"] == pytest.approx(rmse, rel=1e-5)
    assert result.metrics["spike_rate_hz"] == pytest.approx(spikes.sum() / 300 * 1000)
    # Branch-ELM, 4 branches x 20 synapses, d_m 4: 80 + (8*8+8) + (8*4+4) + (4*2+2)
    assert result.metrics["params"] == 80 + 72 + 36 + 10
    assert a["elm_memory"].shape == (300, 1, 4)
    figs = get_experiment("elm_neuron_fit").figures(open_results(result.run_dir))
    assert set(figs) == {"neuron_fit", "elm_memory"}


def test_neuron_fit_test_data_is_held_out() -> None:
    cfg = make_config("elm_neuron_fit", ["device=cpu"], "tiny")
    exp = get_experiment("elm_neuron_fit")(cfg, Runtime.create("cpu", seed=0))
    exp.setup()
    # independent draws: no test input sequence equals a training one
    train = exp.train.x.transpose(0, 1).reshape(exp.train.x.shape[1], -1)
    test = exp.test.x.transpose(0, 1).reshape(exp.test.x.shape[1], -1)
    assert not torch.cdist(test, train).eq(0).any()
    bad = make_config("elm_neuron_fit", ["device=cpu", "test_seed=0", "data_seed=0"], "tiny")
    with pytest.raises(InputError, match="must differ"):
        get_experiment("elm_neuron_fit")(bad, Runtime.create("cpu", seed=0)).setup()
    bad = make_config("elm_adding", ["device=cpu", "model=gru"], "tiny")
    with pytest.raises(InputError, match="model must be one of"):
        get_experiment("elm_adding")(bad, Runtime.create("cpu", seed=0)).setup()
