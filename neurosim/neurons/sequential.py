"""Multi-step containers: stateless layers over all time steps at once, neurons as fused scans.

``MultiStep(layer)`` folds ``[T, B, *F]`` into ``[T * B, *F]``, applies the layer once (one large
matmul or convolution instead of ``T`` small ones) and unfolds the result. ``SpikingSequential``
chains stateless layers and :class:`~neurosim.neurons.base.SpikingNeuron` modules, threading the
neurons' states explicitly:

>>> net = SpikingSequential(nn.Linear(4, 8), LIF(), nn.Linear(8, 2), LI())
>>> out, states = net(torch.rand(10, 3, 4))     # [T, B, F] -> [T, B, 2]
>>> out, states = net(torch.rand(10, 3, 4), states)   # continue the sequence
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor
from neurosim.functional.common import check_option
from neurosim.neurons.base import STEP_MODES, SpikingNeuron


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, *F] -> [T * B, *F]`` (a view when ``x`` is contiguous)."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def unfold_time(y: torch.Tensor, steps: int, batch: int | None = None) -> torch.Tensor:
    """``[T * B, *F] -> [T, B, *F]`` (pass ``batch`` when ``T`` may be 0)."""
    if batch is None:
        batch = y.shape[0] // steps
    return y.reshape(steps, batch, *y.shape[1:])


class MultiStep(nn.Module):
    """Apply a stateless layer (Linear, Conv, pooling, dropout, ...) to every time step at once.

    ``y[t] = layer(x[t])`` for all ``t``, computed as one call on ``[T * B, *F]``.

    Args:
        layer: any module mapping ``[N, *F_in] -> [N, *F_out]`` with no state across calls.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        if isinstance(layer, SpikingNeuron):
            raise InputError("MultiStep wraps stateless layers; neurons already run multi-step")
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [T, B, *F_in] -> [T, B, *F_out]``."""
        check_tensor(x, f"MultiStep({type(self.layer).__name__}) input [T, B, *F]", min_ndim=2,
                     finite=False)  # fmt: skip
        out: torch.Tensor = self.layer(fold_time(x))
        return unfold_time(out, x.shape[0], x.shape[1])


class SpikingSequential(nn.Module):
    """A chain of stateless layers and spiking neurons with explicit states.

    Args:
        *layers: modules applied in order. Neurons (:class:`SpikingNeuron`) are called with
            their state; other modules are stateless and, in multi-step mode, run on all time
            steps at once (as :class:`MultiStep`).
        step_mode: ``"multi"`` (``x [T, B, *F]``) or ``"single"`` (``x [B, *F]``); it is passed
            to every neuron (their own ``step_mode`` is not consulted).
        time_major: multi-step layout of the input and output; ``False`` means ``[B, T, *F]``.

    ``forward(x, states=None) -> (y, states)`` where ``states`` is a list with one entry per
    neuron (``None`` = resting) in order.
    """

    def __init__(self, *layers: nn.Module, step_mode: str = "multi", time_major: bool = True):
        super().__init__()
        check_option(step_mode, "SpikingSequential step_mode", STEP_MODES)
        self.layers = nn.ModuleList(layers)
        self.step_mode = step_mode
        self.time_major = time_major

    @property
    def neurons(self) -> list[SpikingNeuron]:
        """The neuron modules, in order (one state each)."""
        return [m for m in self.layers if isinstance(m, SpikingNeuron)]

    def forward(
        self, x: torch.Tensor, states: list[Any] | None = None
    ) -> tuple[torch.Tensor, list[Any]]:
        """Run the chain; see the class docstring."""
        count = len(self.neurons)
        if states is None:
            states = [None] * count
        elif not isinstance(states, (list, tuple)) or len(states) != count:
            raise InputError(
                f"SpikingSequential states must be a list of {count} neuron states (or None), "
                f"got {states!r:.80}"
            )
        multi = self.step_mode == "multi"
        check_tensor(x, "SpikingSequential input", min_ndim=2 if multi else 1, finite=False)
        if multi and not self.time_major:
            x = x.transpose(0, 1)
        new_states: list[Any] = []
        index = 0
        for layer in self.layers:
            if isinstance(layer, SpikingNeuron):
                if multi:
                    out = layer.multi_step(x, states[index])
                    x, state = out.spikes, out.state
                else:
                    x, state = layer.step(x, states[index])
                new_states.append(state)
                index += 1
            elif multi and not isinstance(layer, MultiStep):
                x = unfold_time(layer(fold_time(x)), x.shape[0], x.shape[1])
            else:
                x = layer(x)
        if multi and not self.time_major:
            x = x.transpose(0, 1)
        return x, new_states
