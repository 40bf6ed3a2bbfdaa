"""Modular spiking place recognition (Hussaini, Milford & Fischer, ICRA 2023).

The reference traverse's ``P`` places are split into regions, one per module of a
:class:`~neurosim.plasticity.DiehlCookEnsemble`; each module learns only its region's places by
unsupervised STDP. Then:

1. **Record**: every module runs on the whole reference traverse (:meth:`ModularPlaceNet.record`),
   giving spike counts ``[P, M, N]``.
2. **Label** (:func:`assign_neurons`): each neuron is labelled with the place of its own region
   it responded to most (``-1`` if it never fired for its region).
3. **Hyperactive-neuron regularisation** (:func:`hyperactive_counts`,
   :func:`silence_hyperactive`): a neuron that fires for at least ``threshold`` reference places
   (of the whole traverse, other modules' regions included) responds to everything and is
   silenced at query time. The threshold is chosen on a calibration split of the queries
   (:func:`choose_threshold`).
4. **Match** (:func:`place_scores`): a query's score for place ``p`` is the mean response of the
   neurons labelled ``p`` (across modules); the best match is the argmax. Optional sequence
   matching (:func:`sequence_match`) averages scores along the diagonal of the last ``L``
   queries.

:func:`sad_similarity` is the sum-of-absolute-differences baseline on the same images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from neurosim.backend import InputError, check_tensor
from neurosim.plasticity.ensemble import DiehlCookEnsemble

ASSIGNMENTS = ("contiguous", "shuffled")


def split_regions(
    n_places: int,
    places_per_module: int,
    *,
    assignment: str = "contiguous",
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """Split places ``0..P-1`` into ``ceil(P / places_per_module)`` regions of near-equal size.

    ``contiguous``: consecutive blocks (``P = 111``, 25 per module -> 5 regions of 23, 22, 22,
    22, 22 places). ``shuffled``: the same sizes over a random permutation (``generator``).
    """
    if n_places < 1 or places_per_module < 1:
        raise InputError(
            f"split_regions needs positive n_places and places_per_module, got {n_places}, "
            f"{places_per_module}"
        )
    if assignment not in ASSIGNMENTS:
        raise InputError(f"assignment must be one of {ASSIGNMENTS}, got {assignment!r}")
    n_modules = -(-n_places // places_per_module)
    order = (
        torch.randperm(n_places, generator=generator)
        if assignment == "shuffled"
        else torch.arange(n_places)
    )
    return [chunk.clone() for chunk in torch.tensor_split(order, n_modules)]


def training_schedule(
    regions: Sequence[torch.Tensor],
    epochs: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``[steps, M]`` place index each module sees at each training step (``-1``: idle).

    Every module sees each of its places once per epoch (in a fresh random order when
    ``shuffle``); ``steps = epochs * max region size``, so smaller regions idle at the end.
    """
    if epochs < 1:
        raise InputError(f"epochs must be >= 1, got {epochs}")
    longest = max(len(r) for r in regions)
    out = torch.full((epochs * longest, len(regions)), -1, dtype=torch.long)
    for m, region in enumerate(regions):
        seq = []
        for _ in range(epochs):
            perm = torch.randperm(len(region), generator=generator) if shuffle else None
            seq.append(region[perm] if perm is not None else region)
        out[: epochs * len(region), m] = torch.cat(seq)
    return out


def assign_neurons(responses: torch.Tensor, regions: Sequence[torch.Tensor]) -> torch.Tensor:
    """Label each neuron with the place of its module's region it fired most for.

    Args:
        responses: reference spike counts ``[P, M, N]``.
        regions: module ``m``'s place indices.

    Returns:
        ``[M, N]`` long: a place index, or ``-1`` for a neuron silent on its whole region.
        Ties go to the first place of the region's order.
    """
    check_tensor(responses, "assign_neurons responses [P, M, N]", ndim=3)
    if len(regions) != responses.shape[1]:
        raise InputError(f"{len(regions)} regions for {responses.shape[1]} modules")
    labels = torch.full(responses.shape[1:], -1, dtype=torch.long, device=responses.device)
    for m, region in enumerate(regions):
        region = region.to(responses.device)
        own = responses[region, m]  # [k, N]
        best, idx = own.max(dim=0)
        labels[m] = torch.where(best > 0, region[idx], torch.full_like(idx, -1))
    return labels


def hyperactive_counts(responses: torch.Tensor) -> torch.Tensor:
    """``[M, N]``: for how many reference places (rows of ``responses [P, M, N]``) each neuron
    fired at least once."""
    check_tensor(responses, "hyperactive_counts responses [P, M, N]", ndim=3)
    return (responses > 0).sum(0)


def silence_hyperactive(
    responses: torch.Tensor, counts: torch.Tensor, threshold: int | None
) -> torch.Tensor:
    """``responses [Q, M, N]`` with neurons whose ``counts >= threshold`` set to 0
    (``threshold=None``: unchanged)."""
    if threshold is None:
        return responses
    if threshold < 1:
        raise InputError(f"hyperactive threshold must be >= 1 (or None), got {threshold}")
    keep = (counts < threshold).to(responses.dtype)
    return responses * keep


def place_scores(responses: torch.Tensor, labels: torch.Tensor, n_places: int) -> torch.Tensor:
    """``[Q, P]``: mean response of the neurons labelled with each place (0 for a place with no
    neuron). ``responses [Q, M, N]``, ``labels [M, N]`` from :func:`assign_neurons`.

    Example: two neurons labelled place 0 responding 2 and 4 give place 0 the score 3.
    """
    check_tensor(responses, "place_scores responses [Q, M, N]", ndim=3)
    if labels.shape != responses.shape[1:]:
        raise InputError(
            f"labels {tuple(labels.shape)} must match the [M, N] of responses "
            f"{tuple(responses.shape)}"
        )
    flat = labels.reshape(-1)
    keep = flat >= 0
    onehot = torch.zeros(flat.numel(), n_places, dtype=responses.dtype, device=responses.device)
    onehot[keep.nonzero().squeeze(1), flat[keep]] = 1.0
    sums = responses.reshape(responses.shape[0], -1) @ onehot
    counts = onehot.sum(0)
    return sums / counts.clamp_min(1.0)


def equalised_thresholds(theta: torch.Tensor) -> torch.Tensor:
    """The adaptive thresholds ``theta [M, N]`` replaced by their mean over every neuron of
    every module (same shape).

    The adaptive threshold spreads the neurons over the training inputs while they learn; after
    a few epochs the neurons' thresholds differ by more than their input drives do (a neuron
    that won fewer presentations keeps a lower threshold and then wins most queries), so
    recording and querying with the mean threshold lets the learned weights decide. Example:
    ``[[1, 3], [5, 7]] -> [[4, 4], [4, 4]]``.
    """
    check_tensor(theta, "equalised_thresholds theta [M, N]", ndim=2)
    return theta.mean().expand_as(theta).clone()


def match_rate(
    rate: Callable[[float], float],
    target: float,
    low: float,
    high: float,
    *,
    iterations: int = 8,
) -> float:
    """The threshold in ``[low, high]`` at which ``rate(threshold)`` (a firing rate that falls
    as the threshold rises) is about ``target``, by bisection (``iterations`` halvings; the
    midpoint of the last interval). While ``rate(high) > target`` the interval first moves up
    to ``[high, high + 2 (high - low)]`` (at most 8 times).

    Used to set a common query threshold from the reference traverse alone (e.g. the mean
    firing rate of every excitatory neuron over some reference images): without lateral
    inhibition at query time, how far the thresholds sit below the input drives sets how many
    spikes grade each neuron's drive. Example: ``rate = lambda t: 10 - t``, ``target = 4``,
    ``[0, 8]`` -> about 6.
    """
    if not high > low:
        raise InputError(f"match_rate needs high > low, got [{low}, {high}]")
    if iterations < 1:
        raise InputError(f"match_rate iterations must be >= 1, got {iterations}")
    for _ in range(8):
        if rate(high) <= target:
            break
        low, high = high, high + 2.0 * (high - low)
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        if rate(mid) > target:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def center_scores(scores: torch.Tensor) -> torch.Tensor:
    """Each query's place scores minus their mean over the places (``[Q, P]``).

    The best match of a query does not change; what changes is the confidence its best score
    carries into a precision-recall curve across queries: a query that makes every neuron fire
    more (a brighter or busier image) no longer looks more certain, only one whose best place
    stands out from its average place does. Example: ``[[3, 1, 2], [9, 8, 7]]`` becomes
    ``[[1, -1, 0], [1, 0, -1]]``: both queries are equally confident.
    """
    check_tensor(scores, "center_scores scores [Q, P]", ndim=2)
    return scores - scores.mean(dim=1, keepdim=True)


def normalise_by_reference(
    responses: torch.Tensor, reference_mean: torch.Tensor, *, floor: float = 1e-3
) -> torch.Tensor:
    """``responses [Q, M, N]`` divided by each neuron's mean response over the reference
    traverse (``reference_mean [M, N]``, e.g. ``reference_responses.mean(0)``, at least
    ``floor``): a neuron's response then counts relative to how readily it fires at all, on a
    common scale across neurons and modules. Example: a neuron that fires 4 spikes for a query
    and 2 on average over the reference traverse scores 2."""
    check_tensor(responses, "normalise_by_reference responses [Q, M, N]", ndim=3)
    check_tensor(reference_mean, "normalise_by_reference reference_mean [M, N]", ndim=2)
    if responses.shape[1:] != reference_mean.shape:
        raise InputError(
            f"responses {tuple(responses.shape)} and reference_mean "
            f"{tuple(reference_mean.shape)} differ in [M, N]"
        )
    if not floor > 0:
        raise InputError(f"normalise_by_reference floor must be positive, got {floor!r}")
    return responses / reference_mean.clamp_min(floor)


def sequence_match(similarity: torch.Tensor, length: int) -> torch.Tensor:
    """Average ``similarity [Q, R]`` over the last ``length`` queries along the diagonal:
    ``S'[q, r] = mean_k S[q - k, r - k]`` for ``k = 0..length-1`` with both indices valid
    (a constant-velocity sequence, SeqSLAM-style). ``length = 1`` returns a copy."""
    check_tensor(similarity, "sequence_match similarity [Q, R]", ndim=2)
    if not isinstance(length, int) or length < 1:
        raise InputError(f"sequence length must be a positive int, got {length!r}")
    total = similarity.clone()
    count = torch.ones_like(similarity)
    for k in range(1, length):
        if k >= min(similarity.shape):
            break
        total[k:, k:] += similarity[:-k, :-k]
        count[k:, k:] += 1
    return total / count


def sad_similarity(query: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Negative mean absolute difference ``-mean_d |q_d - r_d|`` between flattened images,
    ``[Q, ...] x [R, ...] -> [Q, R]`` (higher is more similar)."""
    q = query.reshape(query.shape[0], -1).to(torch.float64)
    r = reference.reshape(reference.shape[0], -1).to(torch.float64)
    if q.shape[1] != r.shape[1]:
        raise InputError(f"query images have {q.shape[1]} pixels, references {r.shape[1]}")
    return -torch.cdist(q, r, p=1.0) / q.shape[1]


def choose_threshold(
    candidates: Sequence[int | None], evaluate: Callable[[int | None], tuple[float, ...]]
) -> tuple[int | None, list[tuple[float, ...]]]:
    """The candidate with the best ``evaluate(threshold)`` tuple (compared lexicographically,
    e.g. ``(R@1, PR-AUC)`` on the calibration queries); the first wins ties.

    Returns ``(best threshold, the scores of every candidate)``.
    """
    if not candidates:
        raise InputError("choose_threshold needs at least one candidate")
    scores = [tuple(evaluate(c)) for c in candidates]
    best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
    return candidates[best], scores


class ModularPlaceNet(nn.Module):
    """Region-specific modules + labels + hyperactive statistics, in one checkpointable module.

    Args:
        regions: place indices of each module (:func:`split_regions`).
        n_places: ``P``, the number of reference places.
        n_input: pixels per image.
        n_exc: neurons per module.
        generator: initial weights; ``**network`` goes to :class:`DiehlCookEnsemble`.
    """

    labels: torch.Tensor
    activity: torch.Tensor
    reference_mean: torch.Tensor

    def __init__(
        self,
        regions: Sequence[torch.Tensor],
        n_places: int,
        n_input: int,
        n_exc: int = 400,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        **network: object,
    ) -> None:
        super().__init__()
        covered = torch.cat([torch.as_tensor(r) for r in regions]).sort().values
        if not torch.equal(covered, torch.arange(n_places)):
            raise InputError(f"regions must cover places 0..{n_places - 1} exactly once")
        self.regions = [torch.as_tensor(r, dtype=torch.long).clone() for r in regions]
        self.n_places = n_places
        self.net = DiehlCookEnsemble(
            len(self.regions),
            n_input,
            n_exc,
            generator=generator,
            device=device,
            **network,  # type: ignore[arg-type]
        )
        shape = (len(self.regions), n_exc)
        self.register_buffer("labels", torch.full(shape, -1, dtype=torch.long, device=device))
        self.register_buffer("activity", torch.zeros(shape, dtype=torch.long, device=device))
        self.register_buffer("reference_mean", torch.zeros(shape, device=device))

    def train_step(
        self, reference: torch.Tensor, places: torch.Tensor, *, generator: torch.Generator | None
    ) -> torch.Tensor:
        """One presentation: module ``m`` learns ``reference[places[m]]`` (``-1``: idles).

        ``reference [P, n_input]`` in ``[0, 1]``; returns spike counts ``[M, N]``.
        """
        idx = places.to(reference.device)
        images = reference[idx.clamp_min(0)] * (idx >= 0).unsqueeze(1).to(reference.dtype)
        return self.net.learn(images, generator=generator)

    @torch.no_grad()
    def record(
        self,
        reference: torch.Tensor,
        *,
        generator: torch.Generator | None,
        batch_size: int = 128,
        max_rate_hz: float | None = None,
        theta: torch.Tensor | None = None,
        presentation_ms: float | None = None,
        code: str = "poisson",
        w_inh_exc: float | None = None,
        weight_norm: str | None = None,
    ) -> torch.Tensor:
        """Run every module on the whole reference traverse; set :attr:`labels`,
        :attr:`activity` (hyperactive counts) and :attr:`reference_mean` (each neuron's mean
        response); return the responses ``[P, M, N]``. ``theta`` (thresholds in place of the
        learned ones), ``presentation_ms``, ``code``, ``w_inh_exc`` and ``weight_norm``: as
        :meth:`DiehlCookEnsemble.respond`."""
        if reference.shape[0] != self.n_places:
            raise InputError(
                f"record needs the whole reference traverse ({self.n_places} places), got "
                f"{reference.shape[0]} images"
            )
        responses = self.net.respond(
            reference,
            generator=generator,
            batch_size=batch_size,
            max_rate_hz=max_rate_hz,
            theta=theta,
            presentation_ms=presentation_ms,
            code=code,
            w_inh_exc=w_inh_exc,
            weight_norm=weight_norm,
        )
        self.labels.copy_(assign_neurons(responses, self.regions))
        self.activity.copy_(hyperactive_counts(responses))
        self.reference_mean.copy_(responses.mean(0))
        return responses

    @torch.no_grad()
    def scores(
        self,
        responses: torch.Tensor,
        threshold: int | None = None,
        *,
        normalise: bool = False,
        center: bool = False,
    ) -> torch.Tensor:
        """Place scores ``[Q, P]`` from query responses ``[Q, M, N]``, with neurons active for
        ``>= threshold`` reference places silenced (``None``: no regularisation); with
        ``normalise``, each neuron's response is first divided by its mean response over the
        recorded reference traverse (:func:`normalise_by_reference`); with ``center``, each
        query's scores then have their mean over the places subtracted
        (:func:`center_scores`)."""
        if normalise:
            responses = normalise_by_reference(responses, self.reference_mean)
        kept = silence_hyperactive(responses, self.activity, threshold)
        scores = place_scores(kept, self.labels, self.n_places)
        return center_scores(scores) if center else scores


def hyperactive_candidates(n_places: int) -> list[int | None]:
    """Thresholds to calibrate over: ``None`` (off) and a geometric ladder from 2 places to all
    (the reference tries 5, 10, 20, 40, ... 200 reference places for its 3,300)."""
    ladder = np.unique(np.round(np.geomspace(2, max(2, n_places), num=12)).astype(int))
    return [None, *[int(t) for t in ladder]]
