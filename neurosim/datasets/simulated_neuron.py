"""Input/output data of a simulated compartmental neuron (a small, generated NeuronIO).

The ground truth is :func:`neurosim.functional.compartmental.simulate_compartmental`: ``branches``
NMDA dendrites with ``synapses_per_branch`` excitatory and as many inhibitory synapses each.
Presynaptic trains are inhomogeneous Poisson: every ``segment_ms`` each branch draws a new
excitatory rate in ``exc_rate_hz`` and a new inhibitory rate in ``inh_rate_hz`` shared by its
synapses, so that inputs onto one branch are sometimes strongly co-active (the regime where NMDA
plateaus make the neuron non-linear), as the branch-correlated drive of NeuronIO.

Input layout (as NeuronIO): the first half of the ``2 * branches * synapses_per_branch`` inputs
are the excitatory synapses, ordered by branch, the second half the inhibitory ones, ordered by
branch; so the ``"neuronio"`` routing of :class:`neurosim.neurons.ELM` (interleaving the halves,
then windows of neighbours) groups synapses of the same branch.

Targets per millisecond: soma spikes (0/1) and soma voltage (mV).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from neurosim.backend import InputError
from neurosim.functional.compartmental import CompartmentalParameters, simulate_compartmental


class NeuronData(NamedTuple):
    """Simulated sequences: inputs ``x [T, N, inputs]`` (0/1), soma ``spikes [T, N]`` and
    ``voltage [T, N]`` (mV)."""

    x: torch.Tensor
    spikes: torch.Tensor
    voltage: torch.Tensor


@dataclass(frozen=True)
class SimulatedNeuronTask:
    """Sizes and input statistics (see the module docstring); times in ms, rates in Hz."""

    branches: int = 8
    synapses_per_branch: int = 24
    sequence_ms: int = 2000
    segment_ms: int = 200
    exc_rate_hz: tuple[float, float] = (0.0, 40.0)
    inh_rate_hz: tuple[float, float] = (0.0, 40.0)
    neuron: CompartmentalParameters = field(default_factory=CompartmentalParameters)

    def __post_init__(self) -> None:
        for name in ("branches", "synapses_per_branch", "sequence_ms", "segment_ms"):
            if getattr(self, name) < 1:
                raise InputError(f"simulated neuron {name} must be >= 1, got {getattr(self, name)}")
        for name in ("exc_rate_hz", "inh_rate_hz"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi <= 1000.0 / self.neuron.dt:
                raise InputError(f"simulated neuron {name} = {(lo, hi)} must satisfy 0 <= lo <= hi")

    @property
    def num_inputs(self) -> int:
        """``2 * branches * synapses_per_branch`` (excitatory, then inhibitory)."""
        return 2 * self.branches * self.synapses_per_branch

    @property
    def steps(self) -> int:
        return round(self.sequence_ms / self.neuron.dt)

    def inputs(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Excitatory and inhibitory rasters ``[T, n, branches * synapses_per_branch]``."""
        if n < 1:
            raise InputError(f"number of sequences must be >= 1, got {n}")
        steps, dt = self.steps, self.neuron.dt
        per_segment = max(1, round(self.segment_ms / dt))
        segments = -(-steps // per_segment)
        rasters = []
        for lo, hi in (self.exc_rate_hz, self.inh_rate_hz):
            rate = lo + (hi - lo) * torch.rand(segments, n, self.branches, generator=generator)
            rate = rate.repeat_interleave(per_segment, 0)[:steps]  # [T, n, branches]
            p = (rate * dt / 1000.0).repeat_interleave(self.synapses_per_branch, -1)
            rasters.append((torch.rand(p.shape, generator=generator) < p).float())
        return rasters[0], rasters[1]

    def simulate(self, n: int, generator: torch.Generator) -> NeuronData:
        """``n`` sequences of ``sequence_ms``: inputs and the neuron's spikes and voltage."""
        exc, inh = self.inputs(n, generator)
        where = torch.arange(self.branches).repeat_interleave(self.synapses_per_branch)
        trace = simulate_compartmental(exc, inh, where, where, self.branches, self.neuron)
        return NeuronData(torch.cat([exc, inh], -1), trace.spikes, trace.v_soma)
