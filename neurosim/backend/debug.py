"""The one debug switch: checks that need to read values back from the device.

Shape, dtype and device checks cost nothing and always run. Checks that look at the *values* of
a tensor (NaN/inf in an input) need a host-device synchronisation (``bool(t)``), which stalls a
CUDA stream once per layer; they run only while debug checks are on:

>>> from neurosim.backend.debug import debug_checks, debug_enabled
>>> debug_enabled()
False
>>> with debug_checks():
...     debug_enabled()
True

Turn them on for a whole process with the environment variable ``NEUROSIM_DEBUG=1``, for a block
with ``with debug_checks():``, or for the rest of the process with ``set_debug_checks(True)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEBUG: ContextVar[bool] = ContextVar(
    "neurosim_debug_checks", default=os.environ.get("NEUROSIM_DEBUG", "0") not in ("", "0")
)


def debug_enabled() -> bool:
    """Whether value checks that synchronise with the device (NaN/inf scans) run now."""
    return _DEBUG.get()


def set_debug_checks(enabled: bool) -> None:
    """Turn the value checks on or off for the current context (thread / task) from now on."""
    _DEBUG.set(bool(enabled))


@contextmanager
def debug_checks(enabled: bool = True) -> Iterator[None]:
    """Within the block, value checks (NaN/inf scans of inputs) run (``enabled=False``: not)."""
    token = _DEBUG.set(bool(enabled))
    try:
        yield
    finally:
        _DEBUG.reset(token)
