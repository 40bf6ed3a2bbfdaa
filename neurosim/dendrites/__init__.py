"""Active dendrites (Iyer et al. 2022): dendritic layers, networks and task contexts.

* :mod:`neurosim.dendrites.layers` - :class:`DendriticLayer`, :class:`SpikingDendriticLayer`.
* :mod:`neurosim.dendrites.networks` - :class:`DendriticMLP` (and its baselines),
  :class:`SpikingDendriticMLP`.
* :mod:`neurosim.dendrites.context` - task prototypes and nearest-prototype inference.

The maths is in :mod:`neurosim.functional.dendrites`; k-WTA and sparse weights in
:mod:`neurosim.functional.sparse` / :mod:`neurosim.sparse`.
"""

from neurosim.dendrites.context import TaskPrototypes, nearest_prototype, task_prototype
from neurosim.dendrites.layers import DendriticLayer, SpikingDendriticLayer
from neurosim.dendrites.networks import DendriticMLP, SpikingDendriticMLP

__all__ = [
    "DendriticLayer",
    "DendriticMLP",
    "SpikingDendriticLayer",
    "SpikingDendriticMLP",
    "TaskPrototypes",
    "nearest_prototype",
    "task_prototype",
]
