"""The continual_hlop experiment: the stored accuracy matrix is what an independent training loop
gives, ACC/BWT are recomputed by hand from it, all methods coincide on a single task, the
projection methods forget less than fine-tuning, `neurosim show` draws the family figures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from experiments.data import dataset_path
from experiments.families.continual_hlop import ContinualHlopConfig, SpikingContinualMLP
from experiments.results import open_results
from experiments.runner import make_config, run_experiment
from experiments.show import show_run
from neurosim.backend import InputError, seeded
from neurosim.datasets import MNIST_LAYOUT, load_mnist, permuted_tasks
from neurosim.functional.surrogate import Surrogate


def _tiny(*overrides: str) -> ContinualHlopConfig:
    config = make_config("continual_hlop", list(overrides), "tiny")
    assert isinstance(config, ContinualHlopConfig)
    return config


def _independent_finetune_matrix(c: ContinualHlopConfig) -> np.ndarray:
    """Fine-tuning written out with torch.optim.SGD, as the docs describe it: a fresh SGD per
    task, batches from a per-seed generator's permutations, test on the seen tasks."""
    data = load_mnist(dataset_path("mnist", layout=MNIST_LAYOUT), "t10k")
    tasks = permuted_tasks(data, c.n_tasks, n_test=c.n_test, n_samples=c.n_samples)
    with seeded(c.seed):
        model = SpikingContinualMLP(
            c.hidden, [10], time_steps=c.time_steps, beta=c.beta, threshold=c.threshold,
            surrogate=Surrogate(c.surrogate, c.surrogate_slope), bias=c.bias,
        )  # fmt: skip
    generator = torch.Generator().manual_seed(c.seed)
    matrix = np.full((c.n_tasks, c.n_tasks), np.nan)
    for k, task in enumerate(tasks):
        opt = torch.optim.SGD(model.parameters(), lr=c.optim.lr, momentum=c.optim.momentum)
        order, cursor = None, 0
        model.train()
        for _ in range(c.steps_per_task):
            if order is None or cursor + c.batch_size > len(order):
                order, cursor = torch.randperm(len(task.train_y), generator=generator), 0
            idx = order[cursor : cursor + c.batch_size]
            cursor += c.batch_size
            x = task.train_x[idx].float() / 255.0
            loss = F.cross_entropy(model(x, 0), task.train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for j in range(k + 1):
                pred = model(tasks[j].test_x.float() / 255.0, 0).argmax(1)
                matrix[k, j] = float((pred == tasks[j].test_y).float().mean())
    return matrix


def test_tiny_run_matches_an_independent_loop_and_hand_computed_metrics(tmp_path: Path) -> None:
    result = run_experiment("continual_hlop", ["device=cpu"], tmp_path, "tiny")
    c = result.config
    assert isinstance(c, ContinualHlopConfig)
    results = open_results(result.run_dir)
    for method in c.methods:
        m = results.arrays[f"accuracy_matrix_{method}"]
        assert m.shape == (1, 2, 2)
    finetune = results.arrays["accuracy_matrix_finetune"][0]
    np.testing.assert_allclose(finetune, _independent_finetune_matrix(c), atol=1e-12)
    # ACC and BWT by hand from the stored matrices: R = [[a, nan], [b, d]]
    for method in ("finetune", "ewc", "gpm", "hlop"):
        (a, _), (b, d) = results.arrays[f"accuracy_matrix_{method}"][0]
        assert result.metrics[f"acc_{method}"] == pytest.approx((b + d) / 2)
        assert result.metrics[f"bwt_{method}"] == pytest.approx(b - a)
    joint = results.arrays["accuracy_matrix_joint"][0]
    assert not np.isnan(joint).any()  # joint sees every task from the start
    assert result.metrics["acc_joint"] == pytest.approx(joint[1].mean())
    assert "bwt_joint" not in result.metrics
    # `neurosim show` writes the family figures
    text = show_run(result.run_dir)
    assert "acc_hlop" in text
    plots = result.run_dir / "plots"
    for name in ("accuracy_matrix_hlop", "accuracy_matrix_joint", "acc_bwt", "task_curves_hlop"):
        assert (plots / f"{name}.png").is_file(), name


def test_every_method_is_fine_tuning_on_a_single_task(tmp_path: Path) -> None:
    """One task: no projection, no penalty, no freezing yet, the same data order for the joint
    pool -- all five methods must train the same network to the same accuracy."""
    result = run_experiment("continual_hlop", ["device=cpu", "n_tasks=1"], tmp_path, "tiny")
    values = {m: result.metrics[f"acc_{m}"] for m in result.config.methods}  # type: ignore[attr-defined]
    assert len(set(values.values())) == 1, values


def test_projection_methods_forget_less_than_fine_tuning(tmp_path: Path) -> None:
    result = run_experiment(
        "continual_hlop",
        ["device=cpu", "n_tasks=3", "n_samples=2000", "n_test=400", "hidden=64",
         "steps_per_task=60", "methods=[finetune,gpm,hlop]", "optim.lr=0.1",
         "hlop.rows=[[40,24,16],[30,12,8]]"],
        tmp_path,
        "tiny",
    )  # fmt: skip
    m = result.metrics  # measured: finetune -0.34, gpm -0.035, hlop -0.052 (ACC 0.57 / 0.79 / 0.78)
    assert m["bwt_finetune"] < -0.2
    assert m["bwt_gpm"] > -0.1 and m["bwt_hlop"] > -0.1
    assert m["acc_hlop"] > m["acc_finetune"] + 0.1 and m["acc_gpm"] > m["acc_finetune"] + 0.1


def test_bad_config_is_named() -> None:
    with pytest.raises(InputError, match="methods"):
        _tiny("methods=[finetune,replay]")
    with pytest.raises(InputError, match="n_tasks"):
        _tiny("benchmark=split", "n_tasks=6")
    with pytest.raises(InputError, match="hlop.rows"):
        _tiny("hlop.rows=[[1,2]]")
    with pytest.raises(InputError, match="signal"):
        _tiny("hlop.signal=voltage")
    assert math.isfinite(_tiny().steps) and _tiny("n_seeds=2").steps == 2 * 5 * 2 * 10
