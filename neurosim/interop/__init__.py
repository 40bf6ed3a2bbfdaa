"""Interoperability with other SNN tools: snnTorch (mixing, parameter mapping) and NIR.

Optional packages (``snntorch``, ``nir``) are imported only when a function needs them.
"""

from neurosim.interop.nir_io import DEFAULT_DT, Scale, export_nir, import_nir
from neurosim.interop.snntorch import (
    SnnTorchNeuron,
    Stateful,
    lif_from_snntorch,
    reset_states,
    snntorch_from_lif,
    snntorch_from_synaptic,
    surrogate_from_snntorch,
    surrogate_to_snntorch,
    synaptic_from_snntorch,
)

__all__ = [
    "DEFAULT_DT",
    "Scale",
    "SnnTorchNeuron",
    "Stateful",
    "export_nir",
    "import_nir",
    "lif_from_snntorch",
    "reset_states",
    "snntorch_from_lif",
    "snntorch_from_synaptic",
    "surrogate_from_snntorch",
    "surrogate_to_snntorch",
    "synaptic_from_snntorch",
]
