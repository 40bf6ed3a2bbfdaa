"""The place_recognition experiment end to end on embedded data, and the VPRTempo driver."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.families.place_recognition import encode_images, split_queries
from experiments.results import open_results
from experiments.runner import make_config, run_experiment
from experiments.vprtempo_peer import vprtempo_similarity
from neurosim.datasets.place import generated_route


def _sad_recall_at_1(config, test: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """SAD R@1 recomputed with NumPy from the encoded images (an independent path)."""
    data = generated_route(config.route_places, seed=config.route_seed)
    ref = encode_images(data.reference, config).numpy().astype(np.float64)
    qry = encode_images(data.query, config).numpy().astype(np.float64)
    best = np.array([np.abs(ref - q).sum(1).argmin() for q in qry])
    hit = np.abs(best - np.arange(len(qry))) <= 1  # the route's tolerance: +-1 place
    return float(hit[test].mean())


def test_tiny_run_metrics_split_and_figures(tmp_path: Path) -> None:
    result = run_experiment(
        "place_recognition", ["device=cpu", "calibration=queries"], tmp_path, "tiny"
    )
    m = result.metrics
    config = make_config("place_recognition", ["calibration=queries"], "tiny")
    calibration, test = split_queries(24, config.calibration_fraction, config.split_seed)
    assert set(calibration).isdisjoint(test) and len(calibration) + len(test) == 24
    assert m["n_test_queries"] == len(test) == 19
    assert m["n_modules"] == 3 and m["n_places"] == 24
    assert m["sad/recall@1"] == pytest.approx(_sad_recall_at_1(config, test))
    for method in ("snn", "snn_reg", "sad", "sad_gray"):
        assert 0.0 <= m[f"{method}/recall@1"] <= m[f"{method}/recall@5"] <= 1.0
    assert config.query_threshold == "mean" and config.score_norm == "reference_mean"
    results = open_results(result.run_dir)
    arrays = results.arrays
    # the regularised scores, recomputed with NumPy from the stored spike counts, labels,
    # reference means and hyperactive counts: each neuron's response over its mean reference
    # response, hyperactive neurons silenced, averaged over the neurons of each place
    resp = np.asarray(arrays["query_responses"], dtype=np.float64)
    labels = np.asarray(arrays["neuron_labels"]).reshape(-1)
    norm = resp / np.maximum(np.asarray(arrays["reference_mean"], dtype=np.float64), 1e-3)
    threshold = m["hyperactive_threshold"]
    if threshold:
        norm = norm * (np.asarray(arrays["hyperactive_counts"]) < threshold)
    flat = norm.reshape(len(norm), -1)
    expected = np.zeros((len(norm), 24))
    for p in range(24):
        if (labels == p).any():
            expected[:, p] = flat[:, labels == p].mean(1)
    np.testing.assert_allclose(arrays["similarity_snn_reg"], expected, rtol=1e-5, atol=1e-6)
    # the reported recalls, recomputed with NumPy from the stored similarity and ground truth
    sim = np.asarray(results.arrays["similarity_snn_reg"], dtype=np.float64)[test]
    truth = np.asarray(results.arrays["ground_truth"], dtype=bool)[test]
    order = np.argsort(-sim, axis=1, kind="stable")
    for n in (1, 5, 10):
        hits = [truth[i, order[i, :n]].any() for i in range(len(test))]
        assert m[f"snn_reg/recall@{n}"] == pytest.approx(float(np.mean(hits))), n
    timing = results.attrs["timing"]
    assert timing["train_s"] > 0 and timing["queries_per_s"] > 0
    assert results.arrays["test_queries"].tolist() == test.tolist()
    from experiments.families.place_recognition import PlaceRecognition

    figures = PlaceRecognition.figures(results)  # what `neurosim show` saves
    assert set(figures) == {"pr_curves", "similarity_snn", "similarity_sad", "module_activity"}
    legend = [
        t.get_text().split(" ")[0] for t in figures["pr_curves"].axes[0].get_legend().get_texts()
    ]
    assert legend == ["sad", "snn_reg"]


def test_vprtempo_driver_recalls_its_training_images_and_keeps_global_rng() -> None:
    data = generated_route(12, seed=0)
    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 - checking it is left alone
    sim = vprtempo_similarity(
        data.reference, data.reference, regions=[torch.arange(12)], epochs=2, seed=3
    )
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert sim.shape == (12, 12) and np.isfinite(sim).all()
    # spike forcing ties output neuron i to reference i: across the training images, each output
    # neuron responds most to its own one (its raw outputs differ in scale between neurons, so
    # the rows' argmax is a weaker test; chance here is 1/12)
    assert (sim.argmax(0) == np.arange(12)).mean() >= 0.6
    again = vprtempo_similarity(
        data.reference, data.reference, regions=[torch.arange(12)], epochs=2, seed=3
    )
    np.testing.assert_array_equal(sim, again)


def test_bad_configs_name_the_key() -> None:
    from experiments.config import ConfigError

    with pytest.raises(ConfigError, match="patch"):
        make_config("place_recognition", ["patch=4"])
    with pytest.raises(ConfigError, match="dataset_path"):
        make_config("place_recognition", ["dataset=nordland"])
    with pytest.raises(ConfigError, match="query_rate_hz"):
        make_config("place_recognition", ["query_rate_hz=5000"])
