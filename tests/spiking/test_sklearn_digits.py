"""The embedded demo digits: scikit-learn's 8x8 digits in MNIST's 28x28 layout."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from experiments.runner import run_experiment
from neurosim.datasets.mnist import load_sklearn_digits


def test_layout_matches_mnist() -> None:
    split = load_sklearn_digits()
    assert split.images.shape == (1797, 28, 28) and split.images.dtype == torch.uint8
    assert split.labels.dtype == torch.int64 and set(split.labels.tolist()) == set(range(10))
    # the 4-pixel border is empty, like MNIST's 20x20 box in a 28x28 frame
    assert int(split.images[:, :4].max()) == 0 and int(split.images[:, :, -4:].max()) == 0
    assert int(split.images.max()) == 255
    # brightness follows the original 8x8 image: block means correlate strongly
    original = torch.from_numpy(load_digits().images).float()
    pooled = torch.nn.functional.adaptive_avg_pool2d(
        split.images[:, 4:24, 4:24].float().unsqueeze(1), 8
    )[:, 0]
    corr = torch.corrcoef(torch.stack([pooled.flatten(), original.flatten()]))[0, 1]
    assert corr > 0.95


def test_snn_mnist_runs_on_the_embedded_digits(tmp_path: object) -> None:
    result = run_experiment(
        "snn_mnist",
        ["dataset=sklearn_digits", "steps=30", "hidden=64", "n_holdout=300", "device=cpu"],
        runs_dir=str(tmp_path),
        preset="tiny",
    )
    assert result.metrics["holdout_accuracy"] > 0.5  # 10 classes: chance is 0.1
