"""The :class:`LIF` module: leaky integrate-and-fire neurons over :mod:`neurosim.functional.lif`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neurosim.backend import InputError
from neurosim.functional.common import NeuronSequence, compute_dtype
from neurosim.functional.lif import (
    LIFParameters,
    LIFState,
    check_reset_timing,
    lif_multi_step,
    lif_step,
)
from neurosim.functional.surrogate import DEFAULT_SURROGATE, Surrogate, check_surrogate
from neurosim.neurons.base import SpikingNeuron, make_parameter
from neurosim.neurons.registry import NeuronSpec, register_neuron


class LIF(SpikingNeuron):
    """Leaky integrate-and-fire neurons (see :mod:`neurosim.functional.lif` for the maths).

    Args:
        shape: per-step feature shape ``F`` (e.g. ``128``) for per-neuron parameters; ``None``
            shares one scalar ``beta`` and ``threshold`` over all neurons.
        beta: membrane decay per step; clamped to ``[0, 1]`` in the forward pass (as snnTorch).
        threshold: firing threshold.
        reset: ``"subtract"``, ``"zero"`` or ``"none"``.
        delayed_reset: apply the reset one step later and report the pre-reset membrane
            (snnTorch ``Leaky``'s default ``reset_delay=True``).
        detach_reset: no gradient through the reset term (immediate reset only).
        surrogate: surrogate gradient of the spike (default arctan, slope 2, as snnTorch).
        pending_reset: snnTorch's ``reset_delay=False`` subtract reset (a membrane still above
            threshold after its reset raises the next spike decision by ``threshold``; see
            :mod:`neurosim.functional.lif`).
        learn_beta: make ``beta`` an ``nn.Parameter``.
        learn_threshold: make ``threshold`` an ``nn.Parameter``.
        step_mode, time_major, backend: see :class:`~neurosim.neurons.base.SpikingNeuron`.

    Shapes: single step ``x [B, *F] -> spikes [B, *F]``; multi-step ``x [T, B, *F] -> spikes
    [T, B, *F]`` (``[B, T, *F]`` with ``time_major=False``). State: :class:`LIFState`.

    >>> lif = LIF(beta=0.5, step_mode="multi")
    >>> spikes, state = lif(torch.full((3, 1, 1), 0.6))
    >>> spikes.flatten().tolist()
    [0.0, 0.0, 1.0]
    """

    def __init__(
        self,
        shape: int | Sequence[int] | None = None,
        *,
        beta: float | torch.Tensor = 0.9,
        threshold: float | torch.Tensor = 1.0,
        reset: str = "subtract",
        delayed_reset: bool = False,
        detach_reset: bool = False,
        surrogate: Surrogate = DEFAULT_SURROGATE,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        step_mode: str = "multi",
        time_major: bool = True,
        backend: str = "auto",
        pending_reset: bool = False,
    ) -> None:
        super().__init__(step_mode, time_major, backend)
        check_reset_timing(reset, delayed_reset, pending_reset, "LIF")
        check_surrogate(surrogate, "LIF surrogate")
        self.shape = shape
        make_parameter(self, "beta", beta, shape, learn_beta)
        make_parameter(self, "threshold", threshold, shape, learn_threshold)
        self.reset = reset
        self.delayed_reset = bool(delayed_reset)
        self.detach_reset = bool(detach_reset)
        self.pending_reset = bool(pending_reset)
        self.surrogate = surrogate

    @classmethod
    def from_parameters(cls, p: LIFParameters, **kwargs: object) -> LIF:
        """A module with the values of a :class:`LIFParameters` (keyword overrides allowed)."""
        if not isinstance(p, LIFParameters):
            raise InputError(f"expected LIFParameters, got {type(p).__name__}")
        return cls(
            beta=p.beta,
            threshold=p.threshold,
            reset=p.reset,
            delayed_reset=p.delayed_reset,
            detach_reset=p.detach_reset,
            surrogate=p.surrogate,
            pending_reset=p.pending_reset,
            **kwargs,  # type: ignore[arg-type]
        )

    def parameters_now(self) -> LIFParameters:
        """The functional :class:`LIFParameters` this module uses now (``beta`` clamped)."""
        beta: torch.Tensor = self.beta  # type: ignore[assignment]
        threshold: torch.Tensor = self.threshold  # type: ignore[assignment]
        return LIFParameters(
            beta=beta.clamp(0.0, 1.0),
            threshold=threshold,
            reset=self.reset,
            delayed_reset=self.delayed_reset,
            detach_reset=self.detach_reset,
            surrogate=self.surrogate,
            pending_reset=self.pending_reset,
        )

    def initial_state(self, x: torch.Tensor) -> LIFState:
        """Resting state for one step shaped like ``x [B, *F]``."""
        return LIFState.zeros_like(x)

    def step(self, x: torch.Tensor, state: LIFState | None = None) -> tuple[torch.Tensor, LIFState]:
        """One step: ``x [B, *F] -> (spikes, LIFState)``."""
        return lif_step(x, state, self._cast(self.parameters_now(), x))

    def multi_step(self, x: torch.Tensor, state: LIFState | None = None) -> NeuronSequence:
        """Fused scan over ``x [T, B, *F]`` (the ``lif_scan`` kernel operation)."""
        return lif_multi_step(x, state, self._cast(self.parameters_now(), x), backend=self.backend)

    @staticmethod
    def _cast(p: LIFParameters, x: torch.Tensor) -> LIFParameters:
        """Parameters in the input's arithmetic dtype: fp64 for fp64 input, else fp32 (a bf16
        input is stored in bf16 but integrated in fp32, so ``beta`` is not rounded to bf16)."""
        if not x.is_floating_point():
            return p
        cd = compute_dtype(x.dtype)
        if isinstance(p.beta, torch.Tensor) and p.beta.dtype != cd:
            p = p._replace(beta=p.beta.to(cd))
        if isinstance(p.threshold, torch.Tensor) and p.threshold.dtype != cd:
            p = p._replace(threshold=p.threshold.to(cd))
        return p

    def extra_repr(self) -> str:
        return (
            f"shape={self.shape}, reset={self.reset!r}, delayed_reset={self.delayed_reset}, "
            + (f"pending_reset={self.pending_reset}, " if self.pending_reset else "")
            + f"surrogate={self.surrogate.name}({self.surrogate.slope}), "
            + super().extra_repr()
        )


register_neuron(
    NeuronSpec(
        name="lif",
        module=LIF,
        step=lif_step,
        multi_step=lif_multi_step,
        parameters=LIFParameters,
        state=LIFState,
        example=lambda features, **kw: LIF(
            features, beta=0.8, threshold=0.7, learn_beta=True, learn_threshold=True, **kw
        ),
        scan_ops=("lif_scan",),
        variants={
            "delayed_zero": {"delayed_reset": True, "reset": "zero"},
            "pending": {"pending_reset": True},
            "none_detached": {"reset": "none", "detach_reset": True},
        },
    )
)
