"""Elastic weight consolidation (Kirkpatrick et al., PNAS 2017), online form (Schwarz et al. 2018).

After each task the diagonal (empirical) Fisher information of every trained parameter,

.. math:: F_i = \\mathbb{E}_{(x, y)} \\big[ (\\partial_{\\theta_i} \\log p(y \\mid x; \\theta))^2 \\big],

is estimated from per-sample gradients on some of the task's training data
(:func:`fisher_diagonal`) and folded into a running Fisher ``F <- gamma * F + F_task``; the
parameters are anchored at their current values ``theta*``. Later tasks add the penalty

.. math:: \\frac{\\lambda}{2} \\sum_i F_i (\\theta_i - \\theta^*_i)^2

to their loss (:meth:`EWC.penalty`). ``gamma = 1`` sums the tasks' Fishers around the latest
anchor, the usual online approximation of one penalty per task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from neurosim.backend import InputError


def fisher_diagonal(
    model: nn.Module,
    samples: Iterable[Any],
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Mean squared gradient of ``loss_fn(model, sample)`` over ``samples``, per parameter.

    Pass single samples (batches of one) for the per-sample empirical Fisher; ``loss_fn``
    returns the negative log-likelihood of the sample's label. Parameters without a gradient
    get zeros. Runs ``model`` in its current mode; restores no state.
    """
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    for sample in samples:
        grads = torch.autograd.grad(
            loss_fn(model, sample), list(params.values()), allow_unused=True
        )
        for (name, _), g in zip(params.items(), grads, strict=True):
            if g is not None:
                fisher[name] += g.detach() ** 2
        count += 1
    if count == 0:
        raise InputError("fisher_diagonal needs at least one sample")
    return {n: f / count for n, f in fisher.items()}


class EWC:
    """Quadratic consolidation penalty of ``model``'s parameters (see module docstring).

    Args:
        model: the network.
        strength: ``lambda``.
        gamma: decay of the running Fisher (1 = plain sum over tasks).
    """

    def __init__(self, model: nn.Module, strength: float, gamma: float = 1.0) -> None:
        if not (strength >= 0 and strength == strength):
            raise InputError(f"EWC strength must be a number >= 0, got {strength!r}")
        if not 0.0 <= gamma <= 1.0:
            raise InputError(f"EWC gamma must be in [0, 1], got {gamma!r}")
        self.model = model
        self.strength = float(strength)
        self.gamma = float(gamma)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def consolidate(self, fisher: Mapping[str, torch.Tensor]) -> None:
        """Fold a task's Fisher into the running one and anchor at the current parameters."""
        params = dict(self.model.named_parameters())
        unknown = sorted(set(fisher) - set(params))
        if unknown:
            raise InputError(f"Fisher names parameters the model lacks: {unknown[:5]}")
        for name, f in fisher.items():
            old = self.fisher.get(name)
            self.fisher[name] = f.detach().clone() if old is None else self.gamma * old + f
            self.anchor[name] = params[name].detach().clone()

    def penalty(self) -> torch.Tensor:
        """``strength / 2 * sum F (theta - theta*)^2`` (a zero tensor before any task)."""
        params = dict(self.model.named_parameters())
        total: torch.Tensor | None = None
        for name, f in self.fisher.items():
            term = (f * (params[name] - self.anchor[name]) ** 2).sum()
            total = term if total is None else total + term
        if total is None:
            first = next(iter(params.values()))
            return first.new_zeros(())
        return 0.5 * self.strength * total

    def state_dict(self) -> dict[str, Any]:
        return {"fisher": dict(self.fisher), "anchor": dict(self.anchor)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.fisher = dict(state["fisher"])
        self.anchor = dict(state["anchor"])
