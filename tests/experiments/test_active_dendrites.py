"""The ``active_dendrites`` experiment: the tiny run's prototype accuracy against an independent
numpy computation from the raw IDX files, the accuracy-matrix layout of every method, the k-WTA
trainer callbacks, bad config, and `neurosim show`."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.data import dataset_path
from experiments.registry import get_experiment
from experiments.results import open_results
from experiments.runner import make_config, run_experiment
from experiments.show import show_run
from neurosim.backend import InputError, Runtime
from neurosim.datasets.continual import pixel_permutations
from neurosim.datasets.mnist import MNIST_LAYOUT, split_indices
from neurosim.sparse import KWinners


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = run_experiment("active_dendrites", ["device=cpu"], tmp_path_factory.mktemp("ad"), "tiny")
    return run.run_dir


def _raw_mnist(n: int) -> tuple[np.ndarray, np.ndarray]:
    root = Path(dataset_path("mnist", layout=MNIST_LAYOUT))
    with gzip.open(root / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[:n]
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return images, labels


def test_prototype_accuracy_matches_an_independent_numpy_computation(tiny_run: Path) -> None:
    results = open_results(tiny_run)
    images, _ = _raw_mnist(600)  # tiny: 600 digits, 200 test, 2 tasks, seeds 0
    train, test = (i.numpy() for i in split_indices(600, 200, 0))
    assert not set(train) & set(test)
    perms = pixel_permutations(2, 784, seed=0).numpy()
    x = (images.astype(np.float64) / 255 - 0.1307) / 0.3081
    protos = np.stack([x[train][:, p].mean(0) for p in perms])
    expected = []
    for k, p in enumerate(perms):
        d = ((x[test][:, p][:, None, :] - protos[None]) ** 2).sum(-1)
        expected.append(np.mean(d.argmin(1) == k))
    assert results.arrays["prototype_accuracy"] == pytest.approx(expected, abs=1 / 200 + 1e-12)
    assert results.summary["prototype_accuracy"] == pytest.approx(np.mean(expected), abs=1 / 200)


def test_every_method_fills_a_lower_triangular_accuracy_matrix(tiny_run: Path) -> None:
    results = open_results(tiny_run)
    for method in ("dendrites", "no_dendrites", "no_kwta", "mlp", "spiking_dendrites"):
        m = results.arrays[f"accuracy_matrix_{method}"]
        assert m.shape == (1, 2, 2)
        assert np.isnan(m[0, 0, 1]) and not np.isnan(m[0][np.tril_indices(2)]).any()
        assert 0.0 <= results.summary[f"acc_{method}"] <= 1.0
        assert results.summary[f"acc_{method}"] == pytest.approx(m[0, 1].mean())
        assert results.summary[f"bwt_{method}"] == pytest.approx(m[0, 1, 0] - m[0, 0, 0])
    # 10 steps on 400 digits already beat chance (0.1) by far for the dense MLP
    assert results.summary["la_mlp"] > 0.3


def test_kwta_callbacks_update_duty_cycles_and_decay_boosts() -> None:
    config = make_config("active_dendrites", ["methods=[dendrites]", "steps_per_task=13"], "tiny")
    runtime = Runtime.create("cpu", seed=0)
    experiment = get_experiment("active_dendrites")(config, runtime)
    experiment.setup()
    for step in range(13):  # one epoch of 400 // 32 = 12 steps, then one more
        experiment.step(step)
    kwinners = [m for m in experiment.model.modules() if isinstance(m, KWinners)]
    assert len(kwinners) == 2
    for kw in kwinners:
        assert int(kw.seen) == 13 * 32 and int(kw.pending_samples) == 0
        assert float(kw.duty_cycle.sum()) == pytest.approx(kw.k, rel=1e-4)  # k wins per input
        assert float(kw.boost_strength) == pytest.approx(0.9)  # one epoch end: 1.0 * 0.9
    assert torch.isfinite(experiment.model.head.weight).all()


def test_bad_config_is_named() -> None:
    with pytest.raises(InputError, match="methods"):
        make_config("active_dendrites", ["methods=[dendrites,hlop]"], "tiny")
    with pytest.raises(InputError, match="gating"):
        make_config("active_dendrites", ["gating=min"], "tiny")


def test_family_figures_render(tiny_run: Path, tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    from neurosim.plotting.style import save_figure

    figures = get_experiment("active_dendrites").figures(open_results(tiny_run))
    assert {"accuracy_matrix_dendrites", "accuracy_matrix_spiking_dendrites", "acc_bwt",
            "task_curves_dendrites"} <= set(figures)  # fmt: skip
    for name in ("accuracy_matrix_dendrites", "acc_bwt"):
        image = mpimg.imread(save_figure(figures[name], tmp_path / f"{name}.png"))
        assert image.shape[0] > 200 and image[..., :3].std() > 0.01
    assert "acc_dendrites" in show_run(tiny_run, plots=False)
