"""The :class:`SynapticLIF` module (current-based LIF, NIR ``CubaLIF``, snnTorch ``Synaptic``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neurosim.functional.common import NeuronSequence, compute_dtype
from neurosim.functional.lif import check_reset_timing
from neurosim.functional.surrogate import DEFAULT_SURROGATE, Surrogate, check_surrogate
from neurosim.functional.synaptic import (
    SynapticParameters,
    SynapticState,
    synaptic_multi_step,
    synaptic_step,
)
from neurosim.neurons.base import SpikingNeuron, make_parameter
from neurosim.neurons.registry import NeuronSpec, register_neuron


class SynapticLIF(SpikingNeuron):
    """Current-based synaptic LIF: ``i = alpha i + x``; LIF membrane driven by ``i``.

    Args:
        shape: feature shape for per-neuron parameters (``None``: scalars).
        alpha: synaptic current decay per step (clamped to ``[0, 1]``).
        beta: membrane decay per step (clamped to ``[0, 1]``).
        threshold, reset, delayed_reset, detach_reset, surrogate, pending_reset: as
            :class:`~neurosim.neurons.LIF`.
        learn_alpha, learn_beta, learn_threshold: make them ``nn.Parameter``.
        step_mode, time_major, backend: see :class:`~neurosim.neurons.base.SpikingNeuron`.

    State: :class:`~neurosim.functional.synaptic.SynapticState` ``(i, v)``.
    """

    def __init__(
        self,
        shape: int | Sequence[int] | None = None,
        *,
        alpha: float | torch.Tensor = 0.8,
        beta: float | torch.Tensor = 0.9,
        threshold: float | torch.Tensor = 1.0,
        reset: str = "subtract",
        delayed_reset: bool = False,
        detach_reset: bool = False,
        surrogate: Surrogate = DEFAULT_SURROGATE,
        learn_alpha: bool = False,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        step_mode: str = "multi",
        time_major: bool = True,
        backend: str = "auto",
        pending_reset: bool = False,
    ) -> None:
        super().__init__(step_mode, time_major, backend)
        check_reset_timing(reset, delayed_reset, pending_reset, "SynapticLIF")
        check_surrogate(surrogate, "SynapticLIF surrogate")
        self.shape = shape
        make_parameter(self, "alpha", alpha, shape, learn_alpha)
        make_parameter(self, "beta", beta, shape, learn_beta)
        make_parameter(self, "threshold", threshold, shape, learn_threshold)
        self.reset = reset
        self.delayed_reset = bool(delayed_reset)
        self.detach_reset = bool(detach_reset)
        self.pending_reset = bool(pending_reset)
        self.surrogate = surrogate

    def parameters_now(self, dtype: torch.dtype | None = None) -> SynapticParameters:
        """The functional :class:`SynapticParameters` (decays clamped to ``[0, 1]``)."""

        def cast(t: torch.Tensor) -> torch.Tensor:
            return t if dtype is None else t.to(dtype)

        alpha: torch.Tensor = self.alpha  # type: ignore[assignment]
        beta: torch.Tensor = self.beta  # type: ignore[assignment]
        threshold: torch.Tensor = self.threshold  # type: ignore[assignment]
        return SynapticParameters(
            cast(alpha.clamp(0.0, 1.0)), cast(beta.clamp(0.0, 1.0)), cast(threshold),
            self.reset, self.delayed_reset, self.detach_reset, self.surrogate,
            self.pending_reset,
        )  # fmt: skip

    def step(
        self, x: torch.Tensor, state: SynapticState | None = None
    ) -> tuple[torch.Tensor, SynapticState]:
        """One step: ``x [B, *F] -> (spikes, SynapticState)``."""
        return synaptic_step(x, state, self.parameters_now(compute_dtype(x.dtype)))

    def multi_step(self, x: torch.Tensor, state: SynapticState | None = None) -> NeuronSequence:
        """Two fused scans over ``x [T, B, *F]`` (current, then membrane)."""
        return synaptic_multi_step(
            x, state, self.parameters_now(compute_dtype(x.dtype)), backend=self.backend
        )


register_neuron(
    NeuronSpec(
        name="synaptic",
        module=SynapticLIF,
        step=synaptic_step,
        multi_step=synaptic_multi_step,
        parameters=SynapticParameters,
        state=SynapticState,
        example=lambda features, **kw: SynapticLIF(
            features, alpha=0.6, beta=0.8, learn_alpha=True, learn_threshold=True, **kw
        ),
        scan_ops=("lif_scan", "leaky_scan"),
        variants={"delayed": {"delayed_reset": True}},
    )
)
