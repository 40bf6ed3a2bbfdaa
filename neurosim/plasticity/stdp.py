"""Thin modules over :mod:`neurosim.functional.plasticity` (the rules themselves live there).

:class:`STDP` holds :class:`~neurosim.functional.plasticity.STDPParameters` and updates a weight
tensor in place (under ``torch.no_grad``) or writes the update into its ``.grad`` (negated, so
that an ordinary optimizer step ``w -= lr * grad`` with ``lr = 1`` applies it, as SpikingJelly's
``on_grad`` does); traces are explicit state passed in and returned. :class:`ColumnNorm`
normalises the incoming weights of each postsynaptic neuron.
"""

from __future__ import annotations

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor
from neurosim.functional.plasticity import (
    STDPParameters,
    STDPState,
    normalize_columns,
    stdp_step,
    stdp_window,
)


class STDP(nn.Module):
    """Trace STDP on a weight ``w [..., n_pre, n_post]`` (leading dimensions: modules).

    Args:
        params: :class:`STDPParameters` (default: Diehl & Cook at ``dt = 0.5 ms``).

    ``forward(pre, post, state) -> (dw, state)`` computes one step's update without applying
    it; :meth:`update_` applies one step (``pre [..., n_pre]``) or, for ``pre [T, ..., n_pre]``
    with ``window=True``, the summed update of ``T`` steps.
    """

    def __init__(self, params: STDPParameters | None = None) -> None:
        super().__init__()
        params = params or STDPParameters.diehl_cook()
        if not isinstance(params, STDPParameters):
            raise InputError(f"expected STDPParameters, got {type(params).__name__}")
        self.params = params.validate()

    def forward(
        self, pre: torch.Tensor, post: torch.Tensor, state: STDPState | None = None
    ) -> tuple[torch.Tensor, STDPState]:
        """One step: ``(dw [..., n_pre, n_post], new traces)``."""
        return stdp_step(pre, post, state, self.params)

    @torch.no_grad()
    def update_(
        self,
        weight: torch.Tensor,
        pre: torch.Tensor,
        post: torch.Tensor,
        state: STDPState | None = None,
        *,
        window: bool = False,
        on_grad: bool = False,
    ) -> STDPState:
        """Apply the update to ``weight`` in place (clipped to ``[0, w_max]``), or with
        ``on_grad=True`` add ``-dw`` to ``weight.grad`` for an optimizer to apply.

        Returns the new traces.
        """
        check_tensor(weight, "STDP weight [..., n_pre, n_post]", min_ndim=2)
        dw, state = (stdp_window if window else stdp_step)(pre, post, state, self.params)
        if dw.shape != weight.shape:
            raise InputError(
                f"STDP update has shape {tuple(dw.shape)} but the weight has "
                f"{tuple(weight.shape)}; expected w [..., n_pre, n_post]"
            )
        if on_grad:
            if weight.grad is None:
                weight.grad = -dw
            else:
                weight.grad.add_(-dw)
        else:
            weight.add_(dw).clamp_(0.0, self.params.w_max)
        return state


class ColumnNorm(nn.Module):
    """``forward(w)`` returns ``w`` with each column scaled to sum to ``total``;
    :meth:`normalize_` does it in place."""

    def __init__(self, total: float) -> None:
        super().__init__()
        if not total > 0:
            raise InputError(f"ColumnNorm total must be positive, got {total!r}")
        self.total = float(total)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return normalize_columns(weight, self.total)

    @torch.no_grad()
    def normalize_(self, weight: torch.Tensor) -> torch.Tensor:
        """Normalise ``weight`` in place and return it."""
        return weight.copy_(normalize_columns(weight, self.total))
