"""Sparse distributed representations: exact matching theory and its Monte-Carlo check.

* :mod:`neurosim.sdr.theory` - exact false-match, union and noise probabilities of dendritic
  segments (Ahmad & Hawkins 2016), the error-minimising threshold.
* :mod:`neurosim.sdr.simulate` - batched Monte-Carlo sampling of random SDRs and segments on the
  tensor backend (any device, explicit generator), with binomial confidence intervals.
"""

from neurosim.sdr.simulate import (
    binomial_interval,
    simulate_match_overlaps,
    simulate_noise_overlaps,
    simulate_union_overlaps,
    tail_count,
)
from neurosim.sdr.theory import (
    ThresholdChoice,
    ThresholdCurve,
    error_curve,
    false_match_exact,
    false_match_probability,
    false_negative_exact,
    false_negative_probability,
    log10_false_match_probability,
    noise_overlap_pmf_exact,
    optimal_threshold,
    overlap_pmf,
    overlap_pmf_exact,
    overlap_set_size,
    union_capacity,
    union_false_match_probability,
    union_size,
    union_size_pmf,
)

__all__ = [
    "ThresholdChoice",
    "ThresholdCurve",
    "binomial_interval",
    "error_curve",
    "false_match_exact",
    "false_match_probability",
    "false_negative_exact",
    "false_negative_probability",
    "log10_false_match_probability",
    "noise_overlap_pmf_exact",
    "optimal_threshold",
    "overlap_pmf",
    "overlap_pmf_exact",
    "overlap_set_size",
    "simulate_match_overlaps",
    "simulate_noise_overlaps",
    "simulate_union_overlaps",
    "tail_count",
    "union_capacity",
    "union_false_match_probability",
    "union_size",
    "union_size_pmf",
]
