"""Linear leaky scan: the recurrence shared by leaky integrators, synaptic currents and traces.

.. math:: y_t = \\lambda \\odot y_{t-1} + x_t, \\qquad y_{-1} = h_0

``x`` is time-major ``[T, *S]``; ``decay`` (``lambda``) broadcasts to ``S`` and is constant over
time; ``h0`` is ``S``-shaped or ``None`` (zeros). Gradients flow to ``x``, ``decay`` and ``h0``.

Example: with ``decay = 0.5`` and ``x = [1, 0, 0]`` the output is ``[1, 0.5, 0.25]``.

Backends (see :mod:`neurosim.backend.registry`):

* ``torch``: the step loop (the reference).
* ``compile``: a log-depth doubling scan (``ceil(log2 T)`` fused element-wise passes) under
  ``torch.compile``.
* ``triton``: one sequential pass per feature block, forward and backward kernels.
"""

from __future__ import annotations

from typing import Any

import torch

from neurosim.backend import (
    InputError,
    Operation,
    check_tensor,
    compile_backend,
    kernels,
    triton_backend,
)
from neurosim.functional.common import check_finite


def validate_leaky_scan(
    x: torch.Tensor, decay: torch.Tensor, h0: torch.Tensor | None = None, **_: Any
) -> None:
    """Check the arguments of :func:`leaky_scan` (shapes, dtypes, devices; finiteness in debug
    mode, see :mod:`neurosim.functional.common`)."""
    check_tensor(x, "leaky_scan input x [T, *S]", min_ndim=1, finite=False)
    check_finite(x, "leaky_scan input x [T, *S]")
    check_tensor(decay, "leaky_scan decay", finite=False)
    check_finite(decay, "leaky_scan decay")
    if decay.device != x.device:
        raise InputError(f"leaky_scan decay is on {decay.device} but x is on {x.device}")
    try:
        torch.broadcast_shapes(decay.shape, x.shape[1:])
    except RuntimeError:
        raise InputError(
            f"leaky_scan decay of shape {tuple(decay.shape)} does not broadcast to the feature "
            f"shape {tuple(x.shape[1:])} of x {tuple(x.shape)} (x is time-major [T, *S])"
        ) from None
    if len(torch.broadcast_shapes(decay.shape, x.shape[1:])) != x.dim() - 1:
        raise InputError(
            f"leaky_scan decay of shape {tuple(decay.shape)} has more dimensions than the feature "
            f"shape {tuple(x.shape[1:])} of x; expected it to broadcast to [*S]"
        )
    if h0 is not None:
        check_tensor(h0, "leaky_scan initial state h0 [*S]", finite=False)
        check_finite(h0, "leaky_scan initial state h0 [*S]")
        if tuple(h0.shape) != tuple(x.shape[1:]):
            raise InputError(
                f"leaky_scan h0 must have the feature shape {tuple(x.shape[1:])} of x, "
                f"got {tuple(h0.shape)}"
            )
        if h0.device != x.device:
            raise InputError(f"leaky_scan h0 is on {h0.device} but x is on {x.device}")


def leaky_scan_reference(
    x: torch.Tensor, decay: torch.Tensor, h0: torch.Tensor | None = None
) -> torch.Tensor:
    """Reference: the plain step loop ``y_t = decay * y_{t-1} + x_t``."""
    if x.shape[0] == 0:
        return x * 0
    y = x.new_zeros(x.shape[1:]) if h0 is None else h0.to(x.dtype)
    decay = decay.to(x.dtype)
    out = []
    for t in range(x.shape[0]):
        y = decay * y + x[t]
        out.append(y)
    return torch.stack(out)


def leaky_scan_doubling(
    x: torch.Tensor, decay: torch.Tensor, h0: torch.Tensor | None = None
) -> torch.Tensor:
    """Hillis-Steele doubling scan: after the pass with offset ``k``, ``y_t`` holds every term up
    to ``2k - 1`` steps back, each weighted by ``decay ** distance``. ``ceil(log2 T)`` passes."""
    decay = decay.to(x.dtype)
    if h0 is not None:
        x = torch.cat([(x[0] + decay * h0.to(x.dtype)).unsqueeze(0), x[1:]])
    y = x
    power = decay
    k = 1
    steps = x.shape[0]
    while k < steps:
        y = torch.cat([y[:k], y[k:] + power * y[:-k]])
        power = power * power
        k *= 2
    return y


def _empty_guard(fn: Any) -> Any:
    """``T = 0``: an empty output from every backend (no kernel launch, no compile)."""

    def run(x: torch.Tensor, decay: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[0] == 0:
            return x * 0
        out: torch.Tensor = fn(x, decay, h0)
        return out

    return run


def _load_compile() -> Any:
    return _empty_guard(torch.compile(leaky_scan_doubling, dynamic=True))


def _load_triton() -> Any:
    from neurosim.functional._triton_scan import leaky_scan_triton

    return _empty_guard(leaky_scan_triton)


def _example(
    device: torch.device, dtype: torch.dtype, generator: torch.Generator
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    x = torch.randn(37, 3, 5, generator=generator, dtype=torch.float64).to(device, dtype)
    decay = torch.rand(3, 5, generator=generator, dtype=torch.float64).mul(0.9).to(device, dtype)
    h0 = torch.randn(3, 5, generator=generator, dtype=torch.float64).to(device, dtype)
    return (x, decay, h0), {}


def _bad_inputs(device: torch.device) -> list[tuple[tuple[Any, ...], dict[str, Any], str]]:
    x = torch.randn(4, 3, device=device)
    return [
        ((x, torch.rand(5, device=device)), {}, "does not broadcast"),
        ((x.clone().fill_(float("nan")), torch.rand(3, device=device)), {}, "non-finite"),
        ((x.long(), torch.rand(3, device=device)), {}, "floating-point"),
        ((x, torch.rand(3, device=device), torch.zeros(4, device=device)), {}, "h0 must have"),
        ((x, torch.rand(2, 4, 3, device=device)), {}, "more dimensions"),
    ]


kernels.register(
    Operation(
        name="leaky_scan",
        reference=leaky_scan_reference,
        validate=validate_leaky_scan,
        example=_example,
        bad_inputs=_bad_inputs,
        grad_args=(0, 1, 2),
        doc="y_t = decay * y_{t-1} + x_t over a time-major sequence",
    )
)
kernels.register_backend("leaky_scan", compile_backend(_load_compile))
kernels.register_backend("leaky_scan", triton_backend(_load_triton))


def leaky_scan(
    x: torch.Tensor,
    decay: torch.Tensor | float,
    h0: torch.Tensor | None = None,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Run ``y_t = decay * y_{t-1} + x_t`` over ``x [T, *S]`` and return ``y [T, *S]``.

    Args:
        x: time-major input ``[T, *S]``.
        decay: per-feature decay, a float or a tensor broadcastable to ``S``.
        h0: initial state ``[*S]`` (zeros when ``None``).
        backend: ``"auto"``, ``"torch"``, ``"compile"`` or ``"triton"``.

    ``T = 0`` returns an empty ``[0, *S]`` output.

    >>> leaky_scan(torch.tensor([[1.0], [0.0], [0.0]]), 0.5, backend="torch").flatten().tolist()
    [1.0, 0.5, 0.25]
    """
    if not isinstance(decay, torch.Tensor):
        if not isinstance(x, torch.Tensor):
            check_tensor(x, "leaky_scan input x [T, *S]")
        decay = torch.tensor(float(decay), dtype=x.dtype, device=x.device)
    return kernels.call("leaky_scan", x, decay, h0, backend=backend)
