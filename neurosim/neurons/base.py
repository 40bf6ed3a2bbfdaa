"""The base of every neuron module: single/multi-step dispatch, time/batch layout, parameters.

A neuron module is a thin wrapper over a pure step function of :mod:`neurosim.functional`:
it holds the (possibly learnable) parameters and nothing else. State is explicit: ``forward``
takes the previous state and returns the new one, so there is nothing to reset between batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor
from neurosim.functional.common import NeuronSequence, check_option

STEP_MODES: tuple[str, ...] = ("single", "multi")


def make_parameter(
    module: nn.Module,
    name: str,
    value: float | torch.Tensor,
    shape: int | Sequence[int] | None,
    learn: bool,
) -> None:
    """Register ``name`` on ``module`` as an ``nn.Parameter`` (``learn``) or a buffer.

    ``value`` is a float or tensor; with ``shape`` given, a float is expanded to one value per
    neuron (so that learning can make them differ). Non-finite values raise :class:`InputError`.
    """
    if isinstance(value, torch.Tensor):
        check_tensor(value, f"{type(module).__name__} {name}")
        if shape is not None:
            size = (shape,) if isinstance(shape, int) else tuple(shape)
            try:
                ok = tuple(torch.broadcast_shapes(value.shape, size)) == size
            except RuntimeError:
                ok = False
            if not ok:
                raise InputError(
                    f"{type(module).__name__} {name} of shape {tuple(value.shape)} does not "
                    f"broadcast to the neuron shape {size}"
                )
        tensor = value.detach().clone().to(torch.get_default_dtype())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InputError(f"{type(module).__name__} {name} must be finite, got {value}")
        size = () if shape is None else ((shape,) if isinstance(shape, int) else tuple(shape))
        tensor = torch.full(size, float(value))
    else:
        raise InputError(
            f"{type(module).__name__} {name} must be a float or a tensor, "
            f"got {type(value).__name__}"
        )
    if learn:
        module.register_parameter(name, nn.Parameter(tensor))
    else:
        module.register_buffer(name, tensor)


class SpikingNeuron(nn.Module):
    """Base class: ``forward(x, state=None) -> (output, new_state)`` in either step mode.

    Args:
        step_mode: ``"single"`` (``x [B, *F]``, one step) or ``"multi"`` (a whole sequence
            ``[T, B, *F]`` in one fused call).
        time_major: multi-step layout; ``False`` takes and returns ``[B, T, *F]``.
        backend: kernel backend of the multi-step scan (``"auto"``, ``"torch"``, ...).

    Subclasses implement :meth:`step` and :meth:`multi_step`.
    """

    def __init__(self, step_mode: str = "multi", time_major: bool = True, backend: str = "auto"):
        super().__init__()
        check_option(step_mode, f"{type(self).__name__} step_mode", STEP_MODES)
        if not isinstance(time_major, bool):
            raise InputError(f"time_major must be a bool, got {type(time_major).__name__}")
        self.step_mode = step_mode
        self.time_major = time_major
        self.backend = backend

    def step(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """One time step: ``x [B, *F] -> (output [B, *F], new_state)``."""
        raise NotImplementedError

    def multi_step(self, x: torch.Tensor, state: Any = None) -> NeuronSequence:
        """A time-major sequence ``x [T, B, *F]`` -> :class:`NeuronSequence` (outputs, membrane
        trace, final state)."""
        raise NotImplementedError

    def simulate(self, x: torch.Tensor, state: Any = None) -> NeuronSequence:
        """Multi-step run honouring ``time_major`` (outputs and membrane in the input's layout)."""
        check_tensor(x, f"{type(self).__name__} input", min_ndim=2, finite=False)
        if self.time_major:
            return self.multi_step(x, state)
        out = self.multi_step(x.transpose(0, 1), state)
        return NeuronSequence(out.spikes.transpose(0, 1), out.membrane.transpose(0, 1), out.state)

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """``(output, new_state)``; in multi-step mode the state is the one after the last step."""
        if self.step_mode == "single":
            return self.step(x, state)
        out = self.simulate(x, state)
        return out.spikes, out.state

    def extra_repr(self) -> str:
        return (
            f"step_mode={self.step_mode!r}, time_major={self.time_major}, backend={self.backend!r}"
        )
