"""Visual place recognition with modular spiking networks (Hussaini et al., ICRA 2023).

* :mod:`neurosim.place.preprocess`: grayscale, resize, patch normalisation, rate/latency codes.
* :mod:`neurosim.place.ensemble`: region split, training schedule, neuron labels, hyperactive
  neuron regularisation, threshold equalisation, response normalisation, place scores,
  sequence matching, the SAD baseline, and :class:`ModularPlaceNet` tying them to a :class:`~neurosim.plasticity.DiehlCookEnsemble`.

Metrics live in :mod:`neurosim.metrics.place`, datasets in :mod:`neurosim.datasets.place`,
figures in :mod:`neurosim.plotting.place`.
"""

from neurosim.place.ensemble import (
    ASSIGNMENTS,
    ModularPlaceNet,
    assign_neurons,
    center_scores,
    choose_threshold,
    equalised_thresholds,
    hyperactive_candidates,
    hyperactive_counts,
    match_rate,
    normalise_by_reference,
    place_scores,
    sad_similarity,
    sequence_match,
    silence_hyperactive,
    split_regions,
    training_schedule,
)
from neurosim.place.preprocess import (
    latency_code,
    patch_normalise,
    preprocess,
    rate_code,
    resize,
    to_grayscale,
)

__all__ = [
    "ASSIGNMENTS",
    "ModularPlaceNet",
    "assign_neurons",
    "center_scores",
    "choose_threshold",
    "equalised_thresholds",
    "hyperactive_candidates",
    "hyperactive_counts",
    "latency_code",
    "match_rate",
    "normalise_by_reference",
    "patch_normalise",
    "place_scores",
    "preprocess",
    "rate_code",
    "resize",
    "sad_similarity",
    "sequence_match",
    "silence_hyperactive",
    "split_regions",
    "to_grayscale",
    "training_schedule",
]
