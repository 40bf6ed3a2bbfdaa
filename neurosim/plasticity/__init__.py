"""Plasticity and continual learning: thin stateful wrappers over :mod:`neurosim.functional`.

* :class:`HLOP`: Hebbian-learning-based orthogonal projection (Xiao et al., ICLR 2024).
* :class:`SVDProjection`: exact orthogonal projection from an SVD of stored activity (GPM).
* :class:`GradientProjection`, :class:`PresynapticRecorder`: the shared hooks.
* :class:`EWC`, :func:`fisher_diagonal`: elastic weight consolidation.
"""

from neurosim.plasticity.ewc import EWC, fisher_diagonal
from neurosim.plasticity.hlop import HLOP
from neurosim.plasticity.projection import (
    MODES,
    GradientProjection,
    PresynapticRecorder,
    ProjectionMethod,
    SVDProjection,
    freeze_biases_and_norms,
    presynaptic_rows,
    resolve_layers,
)

__all__ = [
    "EWC",
    "HLOP",
    "MODES",
    "GradientProjection",
    "PresynapticRecorder",
    "ProjectionMethod",
    "SVDProjection",
    "fisher_diagonal",
    "freeze_biases_and_norms",
    "presynaptic_rows",
    "resolve_layers",
]
