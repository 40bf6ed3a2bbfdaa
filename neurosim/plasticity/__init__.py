"""Plasticity and continual learning: thin stateful modules over :mod:`neurosim.functional`.

Learning without autograd (over :mod:`neurosim.functional.plasticity`):

* :class:`STDP`: trace STDP (Diehl & Cook) applied in place or written into ``.grad``.
* :class:`ColumnNorm`: per-neuron normalisation of incoming weights.
* :class:`DiehlCookEnsemble`: ``M`` excitatory/inhibitory STDP networks with adaptive
  thresholds, simulated as one batched tensor computation (used by place recognition).

Continual learning (over :mod:`neurosim.functional.hebbian` and
:mod:`neurosim.functional.projection`):

* :class:`HLOP`: Hebbian-learning-based orthogonal projection (Xiao et al., ICLR 2024).
* :class:`SVDProjection`: exact orthogonal projection from an SVD of stored activity (GPM).
* :class:`GradientProjection`, :class:`PresynapticRecorder`: the shared hooks.
* :class:`EWC`, :func:`fisher_diagonal`: elastic weight consolidation.
"""

from neurosim.functional.plasticity import STDPParameters, STDPState
from neurosim.functional.wta import WTAParameters, WTAState
from neurosim.plasticity.ensemble import DiehlCookEnsemble, poisson_spikes
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
from neurosim.plasticity.stdp import STDP, ColumnNorm

__all__ = [
    "EWC",
    "HLOP",
    "MODES",
    "STDP",
    "ColumnNorm",
    "DiehlCookEnsemble",
    "GradientProjection",
    "PresynapticRecorder",
    "ProjectionMethod",
    "STDPParameters",
    "STDPState",
    "SVDProjection",
    "WTAParameters",
    "WTAState",
    "fisher_diagonal",
    "freeze_biases_and_norms",
    "poisson_spikes",
    "presynaptic_rows",
    "resolve_layers",
]
