"""Input validation helpers: every public op checks its tensors here and fails with a clear message."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neurosim.backend.errors import InputError


def check_tensor(
    x: object,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    min_ndim: int | None = None,
    floating: bool = True,
    finite: bool = True,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Check ``x`` and return it unchanged; raise :class:`InputError` naming ``name`` otherwise.

    Args:
        x: the value to check.
        name: how the error message refers to it (``"input x [T, B, N]"``).
        ndim: allowed number(s) of dimensions.
        min_ndim: the smallest allowed number of dimensions.
        floating: require a floating-point dtype.
        finite: reject NaN and infinities (one reduction; skipped inside torch.compile).
        device: require this device.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            raise InputError(
                f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                f"got shape {tuple(x.shape)}"
            )
    if min_ndim is not None and x.dim() < min_ndim:
        raise InputError(
            f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}"
        )
    if floating and not x.is_floating_point():
        raise InputError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if device is not None and x.device != device:
        raise InputError(f"{name} is on {x.device} but {device} was expected")
    # The finiteness test reads a value back (a data-dependent branch), which would break a
    # torch.compile graph; under compilation it is skipped (eager calls still check).
    if finite and x.is_floating_point() and x.numel() and not _compiling() and not is_finite(x):
        bad = int((~torch.isfinite(x)).sum())
        raise InputError(f"{name} contains {bad} non-finite value(s) (NaN or inf); expected finite")
    return x


def _compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and compiler.is_compiling())


def is_finite(x: torch.Tensor) -> bool:
    """Whether every element of ``x`` is finite, in one reduction in the common case.

    The sum of a tensor is finite only if every element is (NaN and inf propagate), so one
    ``sum`` answers "all finite"; only a non-finite sum (which may also be an overflow of large
    finite values) falls back to the element-wise test.
    """
    with torch.no_grad():
        if bool(torch.isfinite(x.detach().sum())):
            return True
        return bool(torch.isfinite(x.detach()).all())


def check_same_device(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Raise :class:`InputError` when two tensors live on different devices."""
    if a.device != b.device:
        raise InputError(
            f"{name_a} is on {a.device} but {name_b} is on {b.device}; expected one device"
        )
