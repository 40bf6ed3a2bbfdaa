"""The snn_mnist experiment: tiny preset through the runner, monitors in the results file,
exact resume of model, optimiser and data order, and bad configuration."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.families.snn_mnist import SnnMnist, SnnMnistConfig
from experiments.results import open_results
from experiments.runner import make_config, run_experiment
from neurosim.backend import InputError, Runtime


def _tiny(**overrides: object) -> SnnMnistConfig:
    config = make_config("snn_mnist", [f"{k}={v}" for k, v in overrides.items()], "tiny")
    assert isinstance(config, SnnMnistConfig)
    return config


def test_tiny_run_logs_metrics_and_records_spikes(tmp_path: Path) -> None:
    result = run_experiment("snn_mnist", ["device=cpu"], tmp_path, "tiny")
    metrics = result.metrics
    assert 0.0 <= metrics["holdout_accuracy"] <= 1.0
    assert metrics["holdout_accuracy"] > 0.3  # far above chance (0.1) after 40 steps
    results = open_results(result.run_dir)
    steps, loss = results.metric("loss")
    assert len(steps) == result.config.steps // result.config.log_every
    assert loss[-1] < loss[0]
    assert "batch_accuracy" in results.metrics
    spikes = results.arrays["holdout_hidden_spikes"]
    v = results.arrays["holdout_readout_v"]
    config = result.config
    assert spikes.shape == (config.time_steps, config.record_digits, config.hidden)
    assert spikes.dtype == np.uint8 and set(np.unique(spikes)) <= {0, 1}
    assert v.shape == (config.time_steps, config.record_digits, 10)
    assert results.arrays["holdout_labels"].shape == (config.record_digits,)


def _run(exp: SnnMnist, start: int, stop: int) -> list[dict[str, float]]:
    return [exp.step(i) for i in range(start, stop)]


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_state_dict_resume_is_exact(encoding: str) -> None:
    config = _tiny(encoding=encoding, steps=12)
    full = SnnMnist(config, Runtime.create("cpu", seed=0))
    full.setup()
    reference = _run(full, 0, 12)

    first = SnnMnist(config, Runtime.create("cpu", seed=0))
    first.setup()
    _run(first, 0, 5)
    buffer = io.BytesIO()  # a checkpoint: plain tensors and scalars, loadable weights-only
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    _run(first, 5, 7)  # progress after the checkpoint, lost in a crash

    resumed = SnnMnist(config, Runtime.create("cpu", seed=123))  # other global RNG state
    resumed.setup()
    resumed.load_state_dict(state)
    tail = _run(resumed, 5, 12)
    assert tail == reference[5:]
    expected = full.model.state_dict()
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_split_is_disjoint_and_set_by_seed() -> None:
    a = SnnMnist(_tiny(), Runtime.create("cpu", seed=0))
    a.setup()
    b = SnnMnist(_tiny(split_seed=1), Runtime.create("cpu", seed=0))
    b.setup()
    assert len(a.train_y) == 800 and len(a.held_y) == 200
    train = {row.tobytes() for row in a.train_x.numpy()}
    assert not any(row.tobytes() in train for row in a.held_x.numpy())  # no digit in both
    assert not torch.equal(a.held_y, b.held_y)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"encoding": "poisson"}, "encoding"),
        ({"surrogate": "relu"}, "surrogate"),
        ({"batch_size": 5000}, "batch_size"),
        ({"n_holdout": 1000}, "n_holdout"),
        ({"data_root": "/nonexistent/data"}, "data_root"),
    ],
)
def test_bad_config_is_clear(override: dict[str, object], message: str) -> None:
    exp = SnnMnist(_tiny(**override), Runtime.create("cpu", seed=0))
    with pytest.raises(InputError, match=message):
        exp.setup()
