"""Monte-Carlo segments and SDRs agree with the exact theory within their binomial confidence
intervals, at every threshold whose rate is measurable with the trials drawn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurosim.backend import InputError
from neurosim.sdr.simulate import (
    binomial_interval,
    simulate_match_overlaps,
    simulate_noise_overlaps,
    simulate_union_overlaps,
    tail_count,
)
from neurosim.sdr.theory import (
    false_match_probability,
    false_negative_probability,
    union_false_match_probability,
)

CONFIDENCE = 0.9999  # per threshold; a correct formula fails a check about once in 10^4


def _check_tail(counts: np.ndarray, trials: int, thetas: range, theory) -> int:  # type: ignore[no-untyped-def]
    checked = 0
    for theta in thetas:
        p = theory(theta)
        if p * trials < 20 or (1 - p) * trials < 20:
            continue  # not measurable with this many trials
        lo, hi = binomial_interval(tail_count(counts, theta), trials, CONFIDENCE)
        assert lo <= p <= hi, (theta, p, lo, hi)
        checked += 1
    return checked


def test_false_matches_agree_with_theory() -> None:
    n, a, s, trials = 600, 40, 16, 20_000
    counts = simulate_match_overlaps(n, a, s, trials, generator=torch.Generator().manual_seed(0))
    assert counts.sum() == trials and counts.shape == (s + 1,)
    checked = _check_tail(counts, trials, range(1, s + 1),
                          lambda t: false_match_probability(n, a, s, t))  # fmt: skip
    assert checked >= 3


def test_noise_misses_agree_with_theory() -> None:
    n, a, s, v, trials = 400, 48, 20, 24, 20_000
    counts = simulate_noise_overlaps(n, a, s, v, trials, generator=torch.Generator().manual_seed(1))
    # the segment fires when >= theta remain: 1 - P_fn
    checked = _check_tail(counts, trials, range(1, s + 1),
                          lambda t: 1 - false_negative_probability(a, s, t, v=v))  # fmt: skip
    assert checked >= 5


def test_union_matches_agree_with_the_exact_mixture() -> None:
    n, a, s, m, trials = 300, 20, 5, 10, 20_000
    counts = simulate_union_overlaps(n, a, s, m, trials, generator=torch.Generator().manual_seed(2))
    checked = _check_tail(
        counts, trials, range(1, a + 1),
        lambda t: union_false_match_probability(n, a, s, t, m, method="exact"),
    )  # fmt: skip
    assert checked >= 4


def test_simulation_is_reproducible_and_batch_independent() -> None:
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    first = simulate_match_overlaps(200, 10, 8, 500, generator=g1, batch=100)
    again = simulate_match_overlaps(200, 10, 8, 500, generator=g2, batch=100)
    assert np.array_equal(first, again)
    other = simulate_match_overlaps(200, 10, 8, 500, generator=torch.Generator().manual_seed(4))
    assert not np.array_equal(first, other)


def test_binomial_interval_by_hand_and_bad_input() -> None:
    lo, hi = binomial_interval(50, 100, 0.95)  # Wilson, z = 1.96: 0.5 +- 0.0962
    assert (lo, hi) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert binomial_interval(0, 10)[0] == 0.0
    with pytest.raises(InputError, match="explicit torch.Generator"):
        simulate_match_overlaps(100, 10, 5, 10, generator=None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="s <= a"):
        simulate_noise_overlaps(100, 10, 12, 2, 10, generator=torch.Generator())


@pytest.mark.gpu
def test_simulation_runs_on_the_gpu() -> None:
    g = torch.Generator(device="cuda").manual_seed(0)
    n, a, s, trials = 2048, 64, 24, 200_000
    counts = simulate_match_overlaps(n, a, s, trials, generator=g)
    assert _check_tail(counts, trials, range(1, s + 1),
                       lambda t: false_match_probability(n, a, s, t)) >= 3  # fmt: skip
