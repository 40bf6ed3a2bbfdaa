"""Learning without autograd: thin modules over :mod:`neurosim.functional.plasticity`.

* :class:`STDP`: trace STDP (Diehl & Cook) applied in place or written into ``.grad``.
* :class:`ColumnNorm`: per-neuron normalisation of incoming weights.
* :class:`DiehlCookEnsemble`: ``M`` excitatory/inhibitory STDP networks with adaptive
  thresholds, simulated as one batched tensor computation (used by place recognition).
"""

from neurosim.functional.plasticity import STDPParameters, STDPState
from neurosim.functional.wta import WTAParameters, WTAState
from neurosim.plasticity.ensemble import DiehlCookEnsemble, poisson_spikes
from neurosim.plasticity.stdp import STDP, ColumnNorm

__all__ = [
    "STDP",
    "ColumnNorm",
    "DiehlCookEnsemble",
    "STDPParameters",
    "STDPState",
    "WTAParameters",
    "WTAState",
    "poisson_spikes",
]
