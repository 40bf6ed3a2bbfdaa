"""The :class:`ConductanceLIF` module (Diehl & Cook 2015 adaptive conductance-based LIF)."""

from __future__ import annotations

import torch

from neurosim.backend import InputError
from neurosim.functional.common import NeuronSequence
from neurosim.functional.conductance import (
    ConductanceLIFParameters,
    ConductanceLIFState,
    conductance_lif_multi_step,
    conductance_lif_step,
)
from neurosim.neurons.base import SpikingNeuron
from neurosim.neurons.registry import NeuronSpec, register_neuron


class ConductanceLIF(SpikingNeuron):
    """Conductance-based LIF with an adaptive threshold (see
    :mod:`neurosim.functional.conductance`). Inputs are conductance increments ``x_e`` (and
    optionally ``x_i``), e.g. ``W @ presynaptic_spikes``.

    Args:
        params: :class:`ConductanceLIFParameters` (default: Diehl & Cook excitatory).
        step_mode, time_major: see :class:`~neurosim.neurons.base.SpikingNeuron`.

    ``forward(x_e, state)`` takes excitatory input only; call :meth:`step` or
    :meth:`multi_step` with ``x_i=`` for inhibitory input. State:
    :class:`ConductanceLIFState` ``(v, g_e, g_i, theta, refractory)``; carry ``theta`` across
    samples (``ConductanceLIFState.rest(x, params, theta=previous.theta)``) to keep the learned
    homeostasis.
    """

    def __init__(
        self,
        params: ConductanceLIFParameters | None = None,
        *,
        step_mode: str = "multi",
        time_major: bool = True,
    ) -> None:
        super().__init__(step_mode, time_major, "torch")
        params = params or ConductanceLIFParameters.diehl_cook_excitatory()
        if not isinstance(params, ConductanceLIFParameters):
            raise InputError(f"expected ConductanceLIFParameters, got {type(params).__name__}")
        self.params = params.validate()

    def step(
        self,
        x: torch.Tensor,
        state: ConductanceLIFState | None = None,
        x_i: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ConductanceLIFState]:
        """One Euler step: ``x_e [B, *F] -> (spikes, ConductanceLIFState)``."""
        return conductance_lif_step(x, state, self.params, x_i)

    def multi_step(
        self,
        x: torch.Tensor,
        state: ConductanceLIFState | None = None,
        x_i: torch.Tensor | None = None,
    ) -> NeuronSequence:
        """The Euler loop over ``x_e [T, B, *F]`` (and ``x_i [T, B, *F]``)."""
        return conductance_lif_multi_step(x, state, self.params, x_i)


def _presynaptic_spikes(
    steps: int, batch: int, features: int, dtype: torch.dtype, generator: torch.Generator
) -> torch.Tensor:
    """Conductance increments from presynaptic spikes: 3 where one of 30% arrives."""
    spikes = torch.rand(steps, batch, features, generator=generator) < 0.3
    return (spikes.to(torch.float64) * 3.0).to(dtype)


register_neuron(
    NeuronSpec(
        name="conductance",
        module=ConductanceLIF,
        step=conductance_lif_step,
        multi_step=conductance_lif_multi_step,
        parameters=ConductanceLIFParameters,
        state=ConductanceLIFState,
        example=lambda features, **kw: ConductanceLIF(
            ConductanceLIFParameters.diehl_cook_inhibitory(), **kw
        ),
        example_input=_presynaptic_spikes,
    )
)
