"""The :class:`ALIF` module: adaptive-threshold LIF over :mod:`neurosim.functional.alif`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neurosim.functional.alif import ALIFParameters, ALIFState, alif_multi_step, alif_step
from neurosim.functional.common import RESETS, NeuronSequence, check_option, compute_dtype
from neurosim.functional.surrogate import DEFAULT_SURROGATE, Surrogate, check_surrogate
from neurosim.neurons.base import SpikingNeuron, make_parameter
from neurosim.neurons.registry import NeuronSpec, register_neuron


class ALIF(SpikingNeuron):
    """Adaptive-threshold LIF: each spike raises the threshold by ``adaptation``, decaying with
    ``rho`` (see :mod:`neurosim.functional.alif`).

    Args:
        shape: feature shape for per-neuron parameters (``None``: scalars).
        beta, rho: membrane and adaptation decays per step (clamped to ``[0, 1]``).
        threshold: baseline threshold; adaptation: threshold increase per unit adaptation.
        reset, detach_reset, surrogate: as :class:`~neurosim.neurons.LIF` (immediate reset).
        learn_beta, learn_threshold, learn_adaptation: make them ``nn.Parameter``.
        step_mode, time_major, backend: see :class:`~neurosim.neurons.base.SpikingNeuron`.

    State: :class:`~neurosim.functional.alif.ALIFState` ``(v, a)``.
    """

    def __init__(
        self,
        shape: int | Sequence[int] | None = None,
        *,
        beta: float | torch.Tensor = 0.9,
        threshold: float | torch.Tensor = 1.0,
        rho: float | torch.Tensor = 0.97,
        adaptation: float | torch.Tensor = 0.2,
        reset: str = "subtract",
        detach_reset: bool = False,
        surrogate: Surrogate = DEFAULT_SURROGATE,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        learn_adaptation: bool = False,
        step_mode: str = "multi",
        time_major: bool = True,
        backend: str = "auto",
    ) -> None:
        super().__init__(step_mode, time_major, backend)
        check_option(reset, "ALIF reset", RESETS)
        check_surrogate(surrogate, "ALIF surrogate")
        self.shape = shape
        make_parameter(self, "beta", beta, shape, learn_beta)
        make_parameter(self, "threshold", threshold, shape, learn_threshold)
        make_parameter(self, "rho", rho, shape, False)
        make_parameter(self, "adaptation", adaptation, shape, learn_adaptation)
        self.reset = reset
        self.detach_reset = bool(detach_reset)
        self.surrogate = surrogate

    def parameters_now(self, dtype: torch.dtype | None = None) -> ALIFParameters:
        """The functional :class:`ALIFParameters` (decays clamped to ``[0, 1]``)."""

        def get(name: str, clamp: bool = False) -> torch.Tensor:
            t: torch.Tensor = getattr(self, name)
            t = t.clamp(0.0, 1.0) if clamp else t
            return t if dtype is None else t.to(dtype)

        return ALIFParameters(
            get("beta", True), get("threshold"), get("rho", True), get("adaptation"),
            self.reset, self.detach_reset, self.surrogate,
        )  # fmt: skip

    def step(
        self, x: torch.Tensor, state: ALIFState | None = None
    ) -> tuple[torch.Tensor, ALIFState]:
        """One step: ``x [B, *F] -> (spikes, ALIFState)``."""
        return alif_step(x, state, self.parameters_now(compute_dtype(x.dtype)))

    def multi_step(self, x: torch.Tensor, state: ALIFState | None = None) -> NeuronSequence:
        """The fused ``alif_scan`` over ``x [T, B, *F]``."""
        return alif_multi_step(
            x, state, self.parameters_now(compute_dtype(x.dtype)), backend=self.backend
        )


register_neuron(
    NeuronSpec(
        name="alif",
        module=ALIF,
        step=alif_step,
        multi_step=alif_multi_step,
        parameters=ALIFParameters,
        state=ALIFState,
        example=lambda features, **kw: ALIF(
            features, beta=0.8, adaptation=0.3, learn_beta=True, learn_adaptation=True, **kw
        ),
        scan_ops=("alif_scan",),
        variants={"zero": {"reset": "zero"}},
    )
)
