"""Spike encodings: turn intensities in ``[0, 1]`` into time-major spike trains ``[T, *S]``.

* :func:`rate_encode`: Bernoulli spikes, ``P(s_t = 1) = gain * x`` independently per step.
* :func:`latency_encode`: one spike per input, earlier for brighter inputs,
  ``t_spike = round((1 - x) * (T - 1))``; inputs at or below ``threshold`` never fire.
* :func:`direct_encode`: the analog value repeated at every step (``s_t = x``), for networks
  whose first layer integrates currents.

All three are pure functions of their arguments (the random one takes an explicit generator).
Shapes, dtypes and ``steps`` are always checked. The range check (``[0, 1]``) reads values, so
for tensors on an accelerator it runs in debug mode only (:func:`neurosim.backend.debug_checks`,
``NEUROSIM_DEBUG=1``: no host-device sync otherwise); CPU tensors are always range-checked (no
device to wait for). NaN/inf are checked in debug mode, as everywhere in neurosim.
"""

from __future__ import annotations

import torch

from neurosim.backend import InputError, check_tensor
from neurosim.backend.debug import debug_enabled
from neurosim.functional.common import check_finite


def _check(x: torch.Tensor, steps: int, name: str) -> None:
    check_tensor(x, f"{name} input x [*S]", finite=False)
    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"{name} steps must be a positive int, got {steps!r}")
    check_finite(x, f"{name} input x [*S]")
    read_values = debug_enabled() or x.device.type == "cpu"
    if read_values and x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise InputError(
            f"{name} input x must lie in [0, 1] (scale pixels by 1/255 first), "
            f"got range [{float(x.min()):.4g}, {float(x.max()):.4g}]"
        )


def rate_encode(
    x: torch.Tensor, steps: int, *, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Bernoulli rate code: ``s_t ~ Bernoulli(clamp(gain * x, 0, 1))`` for ``t = 0..T-1``.

    Args:
        x: intensities in ``[0, 1]``, any shape ``S``.
        steps: ``T``.
        gain: scales the firing probability.
        generator: a generator on ``x``'s device (e.g. ``runtime.generator`` for CPU tensors);
            ``None`` uses torch's global RNG.

    Returns:
        ``[T, *S]`` spikes (0/1) in ``x``'s dtype. Example: ``x = 0.25`` fires on about a quarter
        of the steps.
    """
    _check(x, steps, "rate_encode")
    p = (gain * x).clamp(0.0, 1.0).expand(steps, *x.shape)
    if generator is not None and generator.device != x.device:
        u = torch.rand(p.shape, generator=generator, dtype=x.dtype).to(x.device)
    else:
        u = torch.rand(p.shape, generator=generator, dtype=x.dtype, device=x.device)
    return (u < p).to(x.dtype)


def latency_encode(x: torch.Tensor, steps: int, *, threshold: float = 0.0) -> torch.Tensor:
    """Time-to-first-spike code: a spike at ``t = round((1 - x) (T - 1))`` where ``x > threshold``.

    Returns ``[T, *S]`` in ``x``'s dtype. Example: with ``T = 5``, ``x = 1`` fires at ``t = 0``,
    ``x = 0.5`` at ``t = 2`` and ``x = 0`` (at the default threshold) never.
    """
    _check(x, steps, "latency_encode")
    t_spike = torch.round((1.0 - x) * (steps - 1)).long()
    t = torch.arange(steps, device=x.device).view(steps, *([1] * x.dim()))
    return ((t == t_spike) & (x > threshold)).to(x.dtype)


def direct_encode(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Direct (analog current) input: ``s_t = x`` for every step; ``[T, *S]`` (a view, no copy)."""
    check_tensor(x, "direct_encode input x [*S]", finite=False)
    check_finite(x, "direct_encode input x [*S]")
    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"direct_encode steps must be a positive int, got {steps!r}")
    return x.unsqueeze(0).expand(steps, *x.shape)
