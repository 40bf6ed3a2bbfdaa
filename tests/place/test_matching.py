"""Regions, neuron labels, hyperactive-neuron regularisation, place scores, sequences, SAD."""

from __future__ import annotations

import pytest
import torch

from neurosim.backend import InputError
from neurosim.place import (
    ModularPlaceNet,
    assign_neurons,
    center_scores,
    choose_threshold,
    equalised_thresholds,
    hyperactive_counts,
    normalise_by_reference,
    place_scores,
    sad_similarity,
    sequence_match,
    silence_hyperactive,
    split_regions,
    training_schedule,
)


def test_regions_contiguous_and_shuffled_cover_every_place_once() -> None:
    regions = split_regions(111, 25)
    assert [len(r) for r in regions] == [23, 22, 22, 22, 22]
    assert regions[0].tolist() == list(range(23))
    shuffled = split_regions(
        111, 25, assignment="shuffled", generator=torch.Generator().manual_seed(0)
    )
    assert sorted(torch.cat(shuffled).tolist()) == list(range(111))
    assert shuffled[0].tolist() != list(range(23))
    sched = training_schedule([torch.tensor([0, 1, 2]), torch.tensor([3, 4])], 2, shuffle=False)
    assert sched[:, 0].tolist() == [0, 1, 2, 0, 1, 2]
    assert sched[:, 1].tolist() == [3, 4, 3, 4, -1, -1]  # the short region idles at the end
    assert sorted(sched[:3, 0].tolist()) == [0, 1, 2]


def test_labels_hyperactive_counts_and_scores_by_hand() -> None:
    # 4 reference places, 2 modules (places {0, 1} and {2, 3}), 3 neurons each
    responses = torch.zeros(4, 2, 3)
    responses[0, 0] = torch.tensor([5.0, 0.0, 1.0])
    responses[1, 0] = torch.tensor([1.0, 4.0, 1.0])
    responses[2, 0] = torch.tensor([0.0, 0.0, 1.0])  # neuron (0, 2) fires for everything
    responses[3, 0] = torch.tensor([0.0, 0.0, 1.0])
    responses[2, 1] = torch.tensor([0.0, 3.0, 0.0])
    responses[3, 1] = torch.tensor([2.0, 0.0, 0.0])
    regions = [torch.tensor([0, 1]), torch.tensor([2, 3])]
    labels = assign_neurons(responses, regions)
    assert labels.tolist() == [[0, 1, 0], [3, 2, -1]]  # (0, 2) ties -> first; (1, 2) silent
    counts = hyperactive_counts(responses)
    assert counts.tolist() == [[2, 1, 4], [1, 1, 0]]
    query = torch.zeros(1, 2, 3)
    query[0, 0] = torch.tensor([2.0, 0.0, 6.0])
    query[0, 1] = torch.tensor([1.0, 0.0, 0.0])
    scores = place_scores(query, labels, 4)
    # place 0: neurons (0,0) and (0,2) -> mean(2, 6) = 4; place 3: neuron (1,0) -> 1
    assert scores.tolist() == [[4.0, 0.0, 0.0, 1.0]]
    silenced = silence_hyperactive(query, counts, threshold=3)  # drops neuron (0, 2)
    assert place_scores(silenced, labels, 4).tolist() == [[1.0, 0.0, 0.0, 1.0]]
    assert torch.equal(silence_hyperactive(query, counts, None), query)
    with pytest.raises(InputError, match="threshold"):
        silence_hyperactive(query, counts, 0)


def test_equalised_thresholds_and_reference_normalisation_by_hand() -> None:
    theta = torch.tensor([[1.0, 3.0], [5.0, 7.0]])
    assert equalised_thresholds(theta).tolist() == [[4.0, 4.0], [4.0, 4.0]]
    assert theta.tolist() == [[1.0, 3.0], [5.0, 7.0]]  # the learned thresholds are kept
    # neuron means over the reference traverse: [[2, 0.5], [0, 4]] (the silent one floored)
    reference_mean = torch.tensor([[2.0, 0.5], [0.0, 4.0]])
    query = torch.tensor([[[4.0, 1.0], [0.0, 2.0]]])
    out = normalise_by_reference(query, reference_mean, floor=0.1)
    assert out.tolist() == [[[2.0, 2.0], [0.0, 0.5]]]
    with pytest.raises(InputError, match=r"\[M, N\]"):
        normalise_by_reference(query, torch.ones(3, 2))
    with pytest.raises(InputError, match="floor"):
        normalise_by_reference(query, reference_mean, floor=0.0)
    with pytest.raises(InputError, match="theta"):
        equalised_thresholds(torch.ones(2, 2, 2))
    # the model: record sets each neuron's reference mean; scores(normalise=True) divides by it
    g = torch.Generator().manual_seed(0)
    net = ModularPlaceNet(
        [torch.tensor([0, 1]), torch.tensor([2, 3])], 4, 8, 3, generator=g,
        presentation_ms=40.0, max_rate_hz=400.0, weight_sum=20.0,
    )  # fmt: skip
    images = torch.rand(4, 8, generator=g)
    recorded = net.record(images, generator=g, theta=torch.zeros(2, 3))
    assert torch.equal(net.reference_mean, recorded.mean(0))
    assert float(recorded.sum()) > 0
    q = recorded[:2] + 1.0
    expected = place_scores(q / recorded.mean(0).clamp_min(1e-3), net.labels, 4)
    torch.testing.assert_close(net.scores(q, normalise=True), expected)
    centered = net.scores(q, normalise=True, center=True)
    torch.testing.assert_close(centered, expected - expected.mean(1, keepdim=True))


def test_center_scores_by_hand_keeps_the_best_match() -> None:
    scores = torch.tensor([[3.0, 1.0, 2.0], [9.0, 8.0, 7.0]])
    out = center_scores(scores)
    assert out.tolist() == [[1.0, -1.0, 0.0], [1.0, 0.0, -1.0]]  # equally confident queries
    assert torch.equal(out.argmax(1), scores.argmax(1))
    with pytest.raises(InputError, match=r"\[Q, P\]"):
        center_scores(torch.ones(3))


def test_sequence_match_averages_along_the_diagonal() -> None:
    s = torch.arange(9.0).reshape(3, 3)
    out = sequence_match(s, 2)
    assert out[2, 2] == pytest.approx((8.0 + 4.0) / 2) and out[0, 1] == 1.0
    assert out[1, 0] == 3.0  # no earlier pair on that diagonal: unchanged
    with pytest.raises(InputError, match="length"):
        sequence_match(s, 0)


def test_sad_and_threshold_choice() -> None:
    q = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    r = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert sad_similarity(q, r).tolist() == [[-0.5, -0.5, 0.0], [-1.0, 0.0, -0.5]]
    best, scores = choose_threshold([None, 5, 10], lambda t: (0.5, 0.1) if t == 5 else (0.5, 0.0))
    assert best == 5 and len(scores) == 3
