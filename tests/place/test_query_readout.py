"""Query-time read-out options: L2 weight norms, regular spike trains, inhibition, rate-matched
thresholds (hand-computed values)."""

from __future__ import annotations

import math

import pytest
import torch

from experiments.runner import run_experiment
from neurosim.backend import InputError
from neurosim.functional.plasticity import normalize_columns
from neurosim.place import match_rate
from neurosim.plasticity import DiehlCookEnsemble
from neurosim.plasticity.ensemble import regular_spikes


def test_normalize_columns_l2_by_hand() -> None:
    w = torch.tensor([[3.0, 0.0, 1.0], [4.0, 0.0, 1.0]])  # columns: (3, 4), (0, 0), (1, 1)
    out = normalize_columns(w, 10.0, p=2)
    assert out[:, 0].tolist() == pytest.approx([6.0, 8.0])  # |(3, 4)| = 5 -> x 2
    assert out[:, 1].tolist() == [0.0, 0.0]  # all-zero column stays zero
    s = 10.0 / math.sqrt(2.0)
    assert out[:, 2].tolist() == pytest.approx([s, s])
    assert normalize_columns(w, 2.0, p=1)[:, 0].tolist() == pytest.approx([6 / 7, 8 / 7])
    with pytest.raises(InputError, match="p must be"):
        normalize_columns(w, 1.0, p=3)


def test_l2_trained_ensemble_keeps_unit_lengths() -> None:
    g = torch.Generator().manual_seed(0)
    net = DiehlCookEnsemble(2, 6, 3, weight_norm="l2", weight_sum=1.5, generator=g)
    net.normalize_()
    torch.testing.assert_close(net.weight.square().sum(1).sqrt(), torch.full((2, 3), 1.5))
    with pytest.raises(InputError, match="weight_norm"):
        DiehlCookEnsemble(1, 4, 2, weight_norm="l3")


def test_query_weights_equal_l2_lengths_by_hand() -> None:
    net = DiehlCookEnsemble(1, 2, 2, weight_sum=7.0)
    net.weight.copy_(torch.tensor([[[3.0, 1.0], [4.0, 1.0]]]))
    # normalised to sum 7: columns (3, 4) and (3.5, 3.5), lengths 5 and 3.5 sqrt(2);
    # rescaled to their mean length L = (5 + 3.5 sqrt 2) / 2
    length = (5.0 + 3.5 * math.sqrt(2.0)) / 2.0
    w = net.query_weights("l2")
    assert w[0, :, 0].tolist() == pytest.approx([0.6 * length, 0.8 * length])
    assert w[0, :, 1].tolist() == pytest.approx([length / math.sqrt(2.0)] * 2)
    assert net.query_weights()[0, :, 0].tolist() == pytest.approx([3.0, 4.0])


def test_regular_spikes_by_hand_and_in_chunks() -> None:
    # max_rate 100 Hz at dt 1 ms: intensity 1 -> p = 0.1, 0.25 -> p = 0.025
    x = torch.tensor([1.0, 0.25])
    phase = torch.tensor([0.0, 0.5])
    s = regular_spikes(x, 40, max_rate_hz=100.0, dt_ms=1.0, phase=phase)
    # p = 0.1, phase 0: floor(0.1 (t + 1)) steps up at t = 9, 19, 29, 39
    assert s[:, 0].nonzero().squeeze(1).tolist() == [9, 19, 29, 39]
    # p = 0.025, phase 0.5: floor(0.5 + 0.025 (t + 1)) steps up at t + 1 = 20
    assert s[:, 1].nonzero().squeeze(1).tolist() == [19]
    parts = [
        regular_spikes(x, 13, max_rate_hz=100.0, dt_ms=1.0, phase=phase),
        regular_spikes(x, 27, max_rate_hz=100.0, dt_ms=1.0, phase=phase, start=13),
    ]
    assert torch.equal(torch.cat(parts), s)


def test_respond_options_are_checked_and_inhibition_off_adds_spikes() -> None:
    g = torch.Generator().manual_seed(1)
    net = DiehlCookEnsemble(1, 16, 8, generator=g, presentation_ms=50.0, max_rate_hz=400.0)
    images = torch.rand(3, 16, generator=g)
    theta = torch.zeros(1, 8)
    kw = {"theta": theta, "code": "regular"}
    a = net.respond(images, generator=torch.Generator().manual_seed(2), **kw)
    b = net.respond(images, generator=torch.Generator().manual_seed(2), **kw)
    assert torch.equal(a, b)
    free = net.respond(images, generator=torch.Generator().manual_seed(2), w_inh_exc=0.0, **kw)
    assert float(free.sum()) >= float(a.sum())
    with pytest.raises(InputError, match="code"):
        net.respond(images, generator=g, code="burst")
    with pytest.raises(InputError, match="w_inh_exc"):
        net.respond(images, generator=g, w_inh_exc=-1.0)
    with pytest.raises(InputError, match="weight_norm"):
        net.respond(images, generator=g, weight_norm="l1")


def test_match_rate_by_hand() -> None:
    assert match_rate(lambda t: 10.0 - t, 4.0, 0.0, 8.0, iterations=20) == pytest.approx(
        6.0, abs=1e-4
    )
    # the target lies above the first interval: it moves up to [8, 24]
    assert match_rate(lambda t: 20.0 - t, 4.0, 0.0, 8.0, iterations=20) == pytest.approx(
        16.0, abs=1e-4
    )
    # 3 halvings of [0, 8]: 4 (rate 6 > 4: up), 6 (rate 4: down), 5 (rate 5: up) -> [5, 6]
    assert match_rate(lambda t: 10.0 - t, 4.0, 0.0, 8.0, iterations=3) == 5.5
    with pytest.raises(InputError):
        match_rate(lambda t: t, 1.0, 1.0, 1.0)


def test_tiny_run_with_the_query_options(tmp_path) -> None:  # type: ignore[no-untyped-def]
    overrides = [
        "device=cpu",
        "query_threshold=rate",
        "query_code=regular",
        "query_inhibition=0",
        "query_weight_norm=l2",
        "score_norm=none",
    ]
    m = run_experiment("place_recognition", overrides, tmp_path, "tiny").metrics
    for method in ("snn", "snn_reg"):
        assert 0.0 <= m[f"{method}/recall@1"] <= m[f"{method}/recall@5"] <= 1.0
