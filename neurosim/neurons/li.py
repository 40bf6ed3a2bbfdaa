"""The :class:`LI` module: a leaky-integrator readout over :mod:`neurosim.functional.leaky`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neurosim.functional.common import NeuronSequence, compute_dtype
from neurosim.functional.leaky import LIParameters, LIState, li_multi_step, li_step
from neurosim.neurons.base import SpikingNeuron, make_parameter
from neurosim.neurons.registry import NeuronSpec, register_neuron


class LI(SpikingNeuron):
    """Leaky integrator ``v_t = beta v_{t-1} + x_t``; its output is the membrane ``v``.

    Args:
        shape: feature shape for per-neuron ``beta`` (``None``: one scalar).
        beta: decay per step, clamped to ``[0, 1]`` in the forward pass.
        learn_beta: make ``beta`` an ``nn.Parameter``.
        step_mode, time_major, backend: see :class:`~neurosim.neurons.base.SpikingNeuron`.

    Use it as a readout: the class scores of a spiking classifier are, e.g., ``v`` at the last
    step or its maximum over time.
    """

    def __init__(
        self,
        shape: int | Sequence[int] | None = None,
        *,
        beta: float | torch.Tensor = 0.9,
        learn_beta: bool = False,
        step_mode: str = "multi",
        time_major: bool = True,
        backend: str = "auto",
    ) -> None:
        super().__init__(step_mode, time_major, backend)
        self.shape = shape
        make_parameter(self, "beta", beta, shape, learn_beta)

    def parameters_now(self, dtype: torch.dtype | None = None) -> LIParameters:
        """The functional :class:`LIParameters` (``beta`` clamped to ``[0, 1]``)."""
        beta: torch.Tensor = self.beta  # type: ignore[assignment]
        beta = beta.clamp(0.0, 1.0)
        return LIParameters(beta if dtype is None else beta.to(dtype))

    def step(self, x: torch.Tensor, state: LIState | None = None) -> tuple[torch.Tensor, LIState]:
        """One step: ``x [B, *F] -> (v, LIState)``."""
        return li_step(x, state, self.parameters_now(compute_dtype(x.dtype)))

    def multi_step(self, x: torch.Tensor, state: LIState | None = None) -> NeuronSequence:
        """``x [T, B, *F] -> NeuronSequence(v, v, LIState)`` via the ``leaky_scan`` operation."""
        return li_multi_step(
            x, state, self.parameters_now(compute_dtype(x.dtype)), backend=self.backend
        )


register_neuron(
    NeuronSpec(
        name="li",
        module=LI,
        step=li_step,
        multi_step=li_multi_step,
        parameters=LIParameters,
        state=LIState,
        example=lambda features, **kw: LI(features, beta=0.7, learn_beta=True, **kw),
        spiking=False,
        scan_ops=("leaky_scan",),
    )
)
