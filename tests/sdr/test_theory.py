"""Exact SDR theory against the paper's published numbers and independent arithmetic
(mpmath at 60 digits, scipy.stats.hypergeom), plus hand-worked small cases."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from scipy.stats import hypergeom

from neurosim.backend import InputError
from neurosim.sdr.theory import (
    error_curve,
    false_match_exact,
    false_match_probability,
    false_negative_probability,
    log10_false_match_probability,
    optimal_threshold,
    overlap_pmf,
    overlap_set_size,
    union_capacity,
    union_false_match_probability,
    union_size,
    union_size_pmf,
)

# Values of the issue, computed from the paper's published scripts (numenta), as printed there.
PUBLISHED_FALSE_MATCH = [
    ((10_000, 300, 24, 12), 8.38e-13),
    ((100_000, 2000, 6, 6), 6.35e-11),
    ((100_000, 2000, 8, 8), 2.53e-14),
    ((100_000, 2000, 10, 10), 1.00e-17),
    ((200_000, 2000, 10, 10), 9.8e-21),
]
PUBLISHED_NOISE = [(8, 7.35e-4), (12, 0.0717), (16, 0.58)]  # a=128, s=30, 50% noise


def _digits(x: float) -> int:
    return len(f"{x:e}".split("e")[0].replace(".", "").rstrip("0"))


@pytest.mark.parametrize(("args", "published"), PUBLISHED_FALSE_MATCH)
def test_false_match_reproduces_the_published_values(
    args: tuple[int, ...], published: float
) -> None:
    value = false_match_probability(*args)
    # equal to the published value to the digits printed (half a unit of the last digit)
    ulp = 10 ** (math.floor(math.log10(published)) - _digits(published) + 1)
    assert abs(value - published) <= 0.5 * ulp + 1e-30


@pytest.mark.parametrize(("theta", "published"), PUBLISHED_NOISE)
def test_false_negative_reproduces_the_published_values(theta: int, published: float) -> None:
    value = false_negative_probability(128, 30, theta, noise=0.5)
    ulp = 10 ** (math.floor(math.log10(published)) - _digits(published) + 1)
    assert abs(value - published) <= 0.5 * ulp


def _mp_false_match(n: int, a: int, s: int, theta: int) -> mpmath.mpf:
    with mpmath.workdps(60):
        total = mpmath.binomial(n, a)
        return mpmath.fsum(
            mpmath.binomial(s, b) * mpmath.binomial(n - s, a - b) / total
            for b in range(theta, min(s, a) + 1)
        )


@pytest.mark.parametrize(
    "args",
    [
        (200_000, 2000, 12, 12),
        (200_000, 2000, 16, 14),
        (1_000_000, 500, 20, 18),
        (2048, 40, 20, 10),
    ],
)
def test_tails_agree_with_60_digit_mpmath(args: tuple[int, int, int, int]) -> None:
    reference = _mp_false_match(*args)
    assert reference < 1e-6
    assert false_match_probability(*args) == pytest.approx(float(reference), rel=1e-14)
    assert log10_false_match_probability(*args) == pytest.approx(
        float(mpmath.log10(reference)), abs=1e-12
    )


def test_beyond_float_range_the_log_stays_exact() -> None:
    args = (10**7, 100, 100, 100)  # C(100,100) / C(1e7, 100): about 10^-542
    assert false_match_probability(*args) == 0.0
    with mpmath.workdps(40):
        reference = -mpmath.log10(mpmath.binomial(10**7, 100))
    assert log10_false_match_probability(*args) == pytest.approx(float(reference), abs=1e-9)


def test_moderate_values_agree_with_scipy_hypergeom() -> None:
    for n, a, s in [(1000, 40, 20), (2048, 128, 30), (500, 250, 24)]:
        pmf = overlap_pmf(n, a, s)
        ref = hypergeom(n, s, a).pmf(np.arange(s + 1))
        assert pmf == pytest.approx(ref, rel=1e-9, abs=1e-300)
        for theta in (1, 3, 8):
            assert false_match_probability(n, a, s, theta) == pytest.approx(
                hypergeom(n, s, a).sf(theta - 1), rel=1e-9
            )
    for theta in range(1, 31):  # false negative: fewer than theta of 30 remain, 64 of 128 gone
        ref = hypergeom(128, 64, 30).sf(30 - theta)
        assert false_negative_probability(128, 30, theta, v=64) == pytest.approx(ref, rel=1e-9)


def test_small_cases_by_hand() -> None:
    # n=4 cells, segment on {0,1}, patterns of 2 active: 6 patterns; overlap 2: {01}; >=1: 5
    assert overlap_set_size(4, 2, 2, 2) == 1 and overlap_set_size(4, 2, 2, 1) == 4
    assert false_match_exact(4, 2, 2, 2) == pytest.approx(1 / 6)
    assert false_match_probability(4, 2, 2, 1) == pytest.approx(5 / 6)
    assert false_match_probability(4, 2, 2, 0) == 1.0
    # a=4, s=2, v=2 replaced: both synapses survive with C(2,2)/C(4,2) = 1/6 -> miss at theta 2
    assert false_negative_probability(4, 2, 2, v=2) == pytest.approx(5 / 6)
    assert false_negative_probability(4, 2, 1, v=2) == pytest.approx(1 / 6)
    assert false_negative_probability(4, 2, 2, v=0) == 0.0


def test_optimal_threshold_is_the_argmin_of_independently_computed_errors() -> None:
    n, a, s, v = 2048, 128, 30, 64
    fp = np.array([hypergeom(n, s, a).sf(t - 1) for t in range(1, s + 1)])
    fn = np.array([hypergeom(a, v, s).sf(s - t) for t in range(1, s + 1)])
    best = int(np.argmin(fp + fn)) + 1
    choice = optimal_threshold(n, a, s, v=v)
    assert choice.theta == best == 8
    assert choice.error == pytest.approx(fp[best - 1] + fn[best - 1], rel=1e-9)
    curve = error_curve(n, a, s, noise=0.5)
    assert curve.theta.tolist() == list(range(1, 31))
    assert curve.false_match == pytest.approx(fp, rel=1e-9)
    assert curve.false_negative == pytest.approx(fn, rel=1e-9, abs=1e-300)
    # a miss ten times as costly moves the optimum down; no noise moves it to theta = s
    assert optimal_threshold(n, a, s, v=v, false_negative_weight=10.0).theta < best
    assert optimal_threshold(n, a, s, v=0).theta == s


def test_union_size_formula_and_its_distribution() -> None:
    assert union_size(1000, 20, 2) == pytest.approx(40 - 20 * 20 / 1000)  # inclusion-exclusion
    # n=6, two pairs: the second shares 0 cells w.p. 6/15, 1 w.p. 8/15, 2 w.p. 1/15
    assert union_size_pmf(6, 2, 2) * 15 == pytest.approx([0, 0, 1, 8, 6, 0, 0], abs=1e-9)
    pmf = union_size_pmf(1024, 16, 40)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-8)
    assert (pmf * np.arange(1025)).sum() == pytest.approx(union_size(1024, 16, 40), rel=1e-8)


def test_union_false_match_methods() -> None:
    n, a, s, theta, m = 4096, 64, 24, 12, 30
    expected = union_false_match_probability(n, a, s, theta, m)
    assert expected == false_match_probability(n, a, round(union_size(n, s, m)), theta)
    exact = union_false_match_probability(n, a, s, theta, m, method="exact")
    assert exact == pytest.approx(expected, rel=0.2)  # the paper's estimate is close
    assert union_false_match_probability(n, a, s, theta, 1, method="exact") == pytest.approx(
        false_match_probability(n, a, s, theta), rel=1e-9
    )
    capacity = union_capacity(n, a, s, theta, 1e-6)
    assert union_false_match_probability(n, a, s, theta, capacity) <= 1e-6
    assert union_false_match_probability(n, a, s, theta, capacity + 1) > 1e-6


def test_bad_input_names_the_quantity() -> None:
    with pytest.raises(InputError, match=r"a \(active cells\) must be in 0..n"):
        false_match_probability(100, 101, 5, 2)
    with pytest.raises(InputError, match=r"s \(synapses\) must be an integer"):
        false_match_probability(100, 10, 5.0, 2)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="exactly one of v"):
        false_negative_probability(100, 10, 5)
    with pytest.raises(InputError, match="noise must be a fraction"):
        false_negative_probability(100, 10, 5, noise=1.5)
    with pytest.raises(InputError, match="union method"):
        union_false_match_probability(100, 10, 5, 2, 3, method="approx")
