"""Device and precision resolution.

Code never hard-codes ``"cuda"``: a device spec is resolved once, here, and the resulting
``torch.device`` is passed down.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch

from neurosim.backend.errors import BackendUnavailableError, InputError

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` (or a ``torch.device``) into a ``torch.device``.

    ``"auto"`` (or ``None``) picks ``cuda:0`` when a CUDA device is visible and the CPU otherwise.
    Asking for CUDA where none is visible raises :class:`BackendUnavailableError`.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "auto"):
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if isinstance(spec, torch.device):
        device = spec
    elif isinstance(spec, str):
        try:
            device = torch.device(spec.strip().lower())
        except RuntimeError as exc:
            raise InputError(
                f"device {spec!r} is not understood; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
            ) from exc
    else:
        raise InputError(
            f"device must be a string or torch.device, got {type(spec).__name__}; "
            "expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        )
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"device type {device.type!r} is not supported; expected 'cpu' or 'cuda'")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"device {str(device)!r} was requested but torch sees no CUDA device "
                f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use 'cpu' or 'auto'"
            )
        index = 0 if device.index is None else device.index
        count = torch.cuda.device_count()
        if index >= count:
            raise BackendUnavailableError(
                f"device 'cuda:{index}' was requested but only {count} CUDA device(s) are visible"
            )
        device = torch.device("cuda", index)
    return device


def resolve_dtype(precision: str) -> torch.dtype:
    """Map a precision name (``fp32``, ``bf16``, ``fp16``) to its torch dtype."""
    try:
        return PRECISIONS[precision]
    except KeyError:
        raise InputError(
            f"precision {precision!r} is not known; expected one of {sorted(PRECISIONS)}"
        ) from None


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Mixed-precision region for ``precision`` on ``device``; fp32 is a no-op.

    Parameters stay fp32; matmuls and convolutions run in the reduced type, as
    ``torch.autocast`` defines.
    """
    dtype = resolve_dtype(precision)
    if dtype is torch.float32:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
