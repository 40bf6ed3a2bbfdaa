"""Pure maths: step functions, scans and learning rules (no nn.Module, no hidden state)."""

from neurosim.functional.alif import ALIFParameters, ALIFState, alif_multi_step, alif_step
from neurosim.functional.conductance import (
    ConductanceLIFParameters,
    ConductanceLIFState,
    conductance_lif_multi_step,
    conductance_lif_step,
)
from neurosim.functional.leaky import LIParameters, LIState, li_multi_step, li_step
from neurosim.functional.lif import (
    LIFParameters,
    LIFState,
    NeuronSequence,
    lif_multi_step,
    lif_scan_reference,
    lif_step,
)
from neurosim.functional.scan import leaky_scan, leaky_scan_doubling, leaky_scan_reference
from neurosim.functional.scan_ops import ScanOperation, ScanSpec, register_scan
from neurosim.functional.surrogate import SURROGATES, Surrogate, spike, surrogate_derivative
from neurosim.functional.synaptic import (
    SynapticParameters,
    SynapticState,
    synaptic_multi_step,
    synaptic_step,
)

__all__ = [
    "SURROGATES",
    "ALIFParameters",
    "ALIFState",
    "ConductanceLIFParameters",
    "ConductanceLIFState",
    "LIFParameters",
    "LIFState",
    "LIParameters",
    "LIState",
    "NeuronSequence",
    "ScanOperation",
    "ScanSpec",
    "Surrogate",
    "SynapticParameters",
    "SynapticState",
    "alif_multi_step",
    "alif_step",
    "conductance_lif_multi_step",
    "conductance_lif_step",
    "leaky_scan",
    "leaky_scan_doubling",
    "leaky_scan_reference",
    "li_multi_step",
    "li_step",
    "lif_multi_step",
    "lif_scan_reference",
    "lif_step",
    "register_scan",
    "spike",
    "surrogate_derivative",
    "synaptic_multi_step",
    "synaptic_step",
]
