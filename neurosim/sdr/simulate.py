"""Monte-Carlo simulation of dendritic segments and random SDRs (the check of
:mod:`neurosim.sdr.theory`).

Each simulator draws ``trials`` independent situations in batches on the device of the given
``torch.Generator`` (CPU or GPU; nothing else touches a global RNG) and returns the histogram of
the overlap that decides whether the segment fires, as an int64 numpy array. A segment fires at
threshold ``theta`` when the overlap is at least ``theta``: :func:`tail_count` reads the number
of such trials from the histogram, and :func:`binomial_interval` gives the Wilson score interval
of the rate, so a theory value can be tested against it at any threshold from one simulation.

* :func:`simulate_match_overlaps` - a segment with synapses onto ``s`` random cells of ``n``
  meets a random pattern of ``a`` active cells (false matches; ``P_fm`` in theory).
* :func:`simulate_noise_overlaps` - a random pattern of ``a`` cells, a segment onto ``s`` of
  them, then ``v`` of the pattern's cells replaced by other random cells (false negatives).
* :func:`simulate_union_overlaps` - a segment storing ``M`` patterns (the union of ``M`` random
  ``s``-subsets) meets a random ``a``-pattern (union false matches).

Example::

    g = torch.Generator().manual_seed(0)
    counts = simulate_match_overlaps(1000, 40, 20, 100_000, generator=g)
    k = tail_count(counts, 3)                  # trials with overlap >= 3
    lo, hi = binomial_interval(k, 100_000)     # contains false_match_probability(1000, 40, 20, 3)
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch

from neurosim.backend import InputError
from neurosim.functional.sparse import sample_sdr_indices, sample_sdrs

DEFAULT_CELLS_PER_BATCH = 1 << 22
"""Trials per batch are chosen so that a batch holds about this many cells (4M: ~16 MB keys)."""


def _check(n: int, a: int, s: int, trials: int, generator: object) -> None:
    for name, value in (("n", n), ("a", a), ("s", s), ("trials", trials)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"simulation {name} must be an int, got {type(value).__name__}")
    if n < 1 or not 0 <= a <= n or not 0 <= s <= n or trials < 0:
        raise InputError(
            f"simulation needs n >= 1, 0 <= a <= n, 0 <= s <= n, trials >= 0; "
            f"got n={n}, a={a}, s={s}, trials={trials}"
        )
    if not isinstance(generator, torch.Generator):
        raise InputError(
            f"simulation needs an explicit torch.Generator (on the device to simulate on), "
            f"got {type(generator).__name__}"
        )


def _batches(trials: int, n: int, batch: int | None) -> list[int]:
    size = batch if batch is not None else max(1, DEFAULT_CELLS_PER_BATCH // max(n, 1))
    if size < 1:
        raise InputError(f"simulation batch must be >= 1, got {batch}")
    full, rest = divmod(trials, size)
    return [size] * full + ([rest] if rest else [])


def simulate_match_overlaps(
    n: int, a: int, s: int, trials: int, *, generator: torch.Generator, batch: int | None = None
) -> np.ndarray:
    """Histogram ``[s + 1]`` of the overlap between a random ``s``-cell segment and a random
    ``a``-cell pattern of ``n`` cells, over ``trials`` independent draws of both."""
    _check(n, a, s, trials, generator)
    counts = torch.zeros(s + 1, dtype=torch.int64, device=generator.device)
    for size in _batches(trials, n, batch):
        segment = sample_sdr_indices(size, n, s, generator=generator)
        pattern = sample_sdrs(size, n, a, generator=generator)
        overlap = pattern.gather(1, segment).sum(1)
        counts += torch.bincount(overlap, minlength=s + 1)
    return counts.cpu().numpy()


def simulate_noise_overlaps(
    n: int,
    a: int,
    s: int,
    v: int,
    trials: int,
    *,
    generator: torch.Generator,
    batch: int | None = None,
) -> np.ndarray:
    """Histogram ``[s + 1]`` of the segment's active synapses after noise.

    Per trial: a random pattern of ``a`` of ``n`` cells; a segment onto a random ``s`` of its
    cells; ``v`` random cells of the pattern switched off and ``v`` random inactive cells
    switched on; the overlap of the segment with the noisy pattern is counted.
    """
    _check(n, a, s, trials, generator)
    if s > a or not 0 <= v <= min(a, n - a):
        raise InputError(
            f"noise simulation needs s <= a and 0 <= v <= min(a, n - a); got s={s}, a={a}, "
            f"v={v}, n={n}"
        )
    dev = generator.device
    counts = torch.zeros(s + 1, dtype=torch.int64, device=dev)
    for size in _batches(trials, n, batch):
        active = sample_sdr_indices(size, n, a, generator=generator)  # [B, a]
        # segment: s of the a active cells; removed: v of the a active cells
        seg_pos = torch.rand(size, a, generator=generator, device=dev).topk(s, dim=1).indices
        off_pos = torch.rand(size, a, generator=generator, device=dev).topk(v, dim=1).indices
        segment = active.gather(1, seg_pos)
        noisy = torch.zeros(size, n, dtype=torch.bool, device=dev).scatter_(1, active, True)
        keys = torch.rand(size, n, generator=generator, device=dev)
        keys.masked_fill_(noisy, math.inf)  # new cells come from the inactive ones
        on = keys.topk(v, dim=1, largest=False).indices
        noisy.scatter_(1, active.gather(1, off_pos), False)
        noisy.scatter_(1, on, True)
        overlap = noisy.gather(1, segment).sum(1)
        counts += torch.bincount(overlap, minlength=s + 1)
    return counts.cpu().numpy()


def simulate_union_overlaps(
    n: int,
    a: int,
    s: int,
    m: int,
    trials: int,
    *,
    generator: torch.Generator,
    batch: int | None = None,
) -> np.ndarray:
    """Histogram ``[a + 1]`` of the overlap between a segment storing ``m`` random ``s``-cell
    patterns (their union) and a random ``a``-cell pattern."""
    _check(n, a, s, trials, generator)
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise InputError(f"union simulation needs m >= 1 stored patterns, got {m!r}")
    dev = generator.device
    counts = torch.zeros(a + 1, dtype=torch.int64, device=dev)
    per_batch = max(1, DEFAULT_CELLS_PER_BATCH // max(n * (m + 1), 1)) if batch is None else batch
    for size in _batches(trials, n, per_batch):
        stored = sample_sdr_indices(size * m, n, s, generator=generator).reshape(size, m * s)
        union = torch.zeros(size, n, dtype=torch.bool, device=dev).scatter_(1, stored, True)
        pattern = sample_sdrs(size, n, a, generator=generator)
        overlap = (union & pattern).sum(1)
        counts += torch.bincount(overlap, minlength=a + 1)
    return counts.cpu().numpy()


def tail_count(counts: np.ndarray, theta: int) -> int:
    """Trials whose overlap is at least ``theta`` (the segment fires), from a histogram."""
    counts = np.asarray(counts)
    if counts.ndim != 1:
        raise InputError(f"counts must be a 1-D histogram, got shape {counts.shape}")
    return int(counts[max(theta, 0) :].sum())


def binomial_interval(
    successes: int, trials: int, confidence: float = 0.9999
) -> tuple[float, float]:
    """Wilson score interval of a binomial rate ``successes / trials`` at ``confidence``.

    Examples:
        >>> [round(x, 4) for x in binomial_interval(50, 100, 0.95)]
        [0.4038, 0.5962]
    """
    if trials < 1 or not 0 <= successes <= trials:
        raise InputError(
            f"need 0 <= successes <= trials and trials >= 1, got {successes}, {trials}"
        )
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
