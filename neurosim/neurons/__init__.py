"""Spiking neuron modules: thin ``nn.Module`` wrappers over :mod:`neurosim.functional`.

Every neuron is a :class:`SpikingNeuron`: ``forward(x, state=None) -> (output, new_state)`` with
explicit state (no hidden buffers, nothing to reset), ``step_mode="single"`` for ``x [B, *F]`` or
``"multi"`` for a whole ``[T, B, *F]`` sequence in one fused scan, and ``simulate(x, state)`` for
the multi-step outputs together with the membrane trace (:class:`NeuronSequence`).

Neurons: :class:`LIF` (reset by subtraction / to zero / none, immediate or snnTorch-style delayed
reset, learnable decay and threshold), :class:`SynapticLIF` (current-based, NIR ``CubaLIF``),
:class:`ALIF` (adaptive threshold, Bellec et al. 2018), :class:`LI` (leaky-integrator readout)
and :class:`ConductanceLIF` (conductance-based with homeostatic threshold, Diehl & Cook 2015).
Multi-step LIF, synaptic LIF, LI and ALIF run as fused kernel-registry scans (``lif_scan``,
``leaky_scan``, ``alif_scan``) with torch / loop / torch.compile / numba / Triton backends.
Every neuron type is registered (:func:`register_neuron`, :func:`neuron_specs`), and the generic
contract tests run over the registry.
:class:`SpikingSequential` and :class:`MultiStep` apply stateless layers (Linear/Conv) to all time
steps at once, so a layer is one large matmul followed by one neuron scan.

Mapping from snnTorch 1.0
-------------------------

``snntorch.Leaky`` computes, per step, ``reset = H(mem - threshold).detach()``, then
``mem = beta.clamp(0, 1) * mem + input - reset * threshold`` (subtract) or
``mem = beta.clamp(0, 1) * (1 - reset) * mem + input`` (zero), then
``spk = H(mem - threshold)``: the reset of a spike lands one step later (``reset_delay=True``,
its default) and the returned ``mem`` is pre-reset. ``neurosim`` models this exactly with
``delayed_reset=True`` (spikes, membranes and gradients agree: ``tests/spiking/
test_snntorch_equivalence.py``). snnTorch's ``reset_delay=False`` is ``delayed_reset=False``:
for ``"subtract"`` with ``pending_reset=True`` (snnTorch subtracts a pending reset, left by a
membrane that was above twice the threshold, before deciding the spike; without
``pending_reset`` the two agree only while the membrane stays at or below the threshold after
each reset), for ``"zero"`` and ``"none"`` as they are (for ``"zero"`` from any initial membrane
at or below the threshold, e.g. from rest). ``LIFParameters.snntorch(...)`` and
:func:`neurosim.interop.lif_from_snntorch` pick these settings.

=============================================  ====================================================
snnTorch ``Leaky(...)``                         neurosim ``LIF(...)`` / ``LIFParameters(...)``
=============================================  ====================================================
``beta=b`` (clamped to [0, 1])                 ``beta=b`` (the module clamps to [0, 1] too)
``threshold=1.0``                              ``threshold=1.0``
``reset_mechanism="subtract"|"zero"|"none"``   ``reset="subtract"|"zero"|"none"``
``reset_delay=True`` (default)                 ``delayed_reset=True`` (our default is ``False``)
``reset_delay=False``, ``"subtract"``          ``delayed_reset=False, pending_reset=True``
``reset_delay=False``, ``"zero"``/``"none"``   ``delayed_reset=False``
``spike_grad=surrogate.atan(alpha=2.0)``       ``surrogate=Surrogate.arctan(2.0)`` (our default)
``spike_grad=surrogate.fast_sigmoid(slope=k)`` ``surrogate=Surrogate.fast_sigmoid(k)``
``spike_grad=surrogate.sigmoid(slope=k)``      ``surrogate=Surrogate.sigmoid(k)``
``spike_grad=surrogate.straight_through_estimator()``  ``surrogate=Surrogate.straight_through()``
``learn_beta`` / ``learn_threshold``           ``learn_beta`` / ``learn_threshold``
``init_hidden=True`` (hidden state)            not offered: state is explicit
``spk, mem = lif(x, mem)``                     ``spk, state = lif(x, state)``; ``mem`` = ``state.v``
``mem = lif.init_leaky()``                     ``state = None`` or ``LIFState.zeros_like(x)``
``Synaptic(alpha, beta)``                      ``SynapticLIF(alpha=..., beta=...)`` (state ``i, v``)
``Leaky(reset_mechanism="none")`` membrane     ``LI(beta=...)`` (output is ``v``)
``graded_spikes_factor``, ``inhibition``,      not offered
``state_quant``
=============================================  ====================================================

``LIFParameters.snntorch(beta, threshold, reset_mechanism, reset_delay)`` builds the matching
parameters in one call. Spikes are in the input's dtype (snnTorch returns float32).
"""

from neurosim.functional.alif import ALIFParameters, ALIFState
from neurosim.functional.conductance import ConductanceLIFParameters, ConductanceLIFState
from neurosim.functional.leaky import LIParameters, LIState
from neurosim.functional.lif import LIFParameters, LIFState, NeuronSequence
from neurosim.functional.surrogate import Surrogate
from neurosim.functional.synaptic import SynapticParameters, SynapticState
from neurosim.neurons.alif import ALIF
from neurosim.neurons.base import STEP_MODES, SpikingNeuron
from neurosim.neurons.conductance import ConductanceLIF
from neurosim.neurons.li import LI
from neurosim.neurons.lif import LIF
from neurosim.neurons.registry import NeuronSpec, neuron_spec, neuron_specs, register_neuron
from neurosim.neurons.sequential import MultiStep, SpikingSequential, fold_time, unfold_time
from neurosim.neurons.synaptic import SynapticLIF

__all__ = [
    "ALIF",
    "LI",
    "LIF",
    "STEP_MODES",
    "ALIFParameters",
    "ALIFState",
    "ConductanceLIF",
    "ConductanceLIFParameters",
    "ConductanceLIFState",
    "LIFParameters",
    "LIFState",
    "LIParameters",
    "LIState",
    "MultiStep",
    "NeuronSequence",
    "NeuronSpec",
    "SpikingNeuron",
    "SpikingSequential",
    "Surrogate",
    "SynapticLIF",
    "SynapticParameters",
    "SynapticState",
    "fold_time",
    "neuron_spec",
    "neuron_specs",
    "register_neuron",
    "unfold_time",
]
