"""Pure maths: step functions, scans and learning rules (no nn.Module, no hidden state)."""

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
from neurosim.functional.surrogate import SURROGATES, Surrogate, spike, surrogate_derivative

__all__ = [
    "SURROGATES",
    "LIFParameters",
    "LIFState",
    "LIParameters",
    "LIState",
    "NeuronSequence",
    "Surrogate",
    "leaky_scan",
    "leaky_scan_doubling",
    "leaky_scan_reference",
    "li_multi_step",
    "li_step",
    "lif_multi_step",
    "lif_scan_reference",
    "lif_step",
    "spike",
    "surrogate_derivative",
]
