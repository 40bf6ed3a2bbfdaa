"""One switch for the validation that reads tensor values back to the host.

Shape, dtype and device checks look only at metadata and always run. Value checks (NaN,
infinities, a coordinate outside its domain) need a reduction whose result the host reads:
on an accelerator that is a host-device synchronisation on every call, which the hot path
must not pay. They are therefore governed by one switch, shared by every public op:

* ``None`` (the default, "auto"): value checks run on CPU tensors, where reading a result
  back costs no synchronisation, and are skipped on accelerators;
* ``True`` (debug mode): value checks run everywhere;
* ``False``: value checks never run (inputs are trusted; the ops stay memory-safe but out-of-
  domain or non-finite inputs give unspecified values).

Set it for a block with :func:`debug_checks`, for the process with :func:`set_debug_checks`, or
with the environment variable ``NEUROSIM_DEBUG`` (``1``: on, ``0``: off) read at import.
Inside ``torch.compile`` value checks are skipped whatever the switch (they would break the
graph).

>>> import torch
>>> x = torch.zeros(3)
>>> value_checks(x)
True
>>> with debug_checks(False):
...     value_checks(x)
False
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch


def _from_environment() -> bool | None:
    value = os.environ.get("NEUROSIM_DEBUG", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


_default: bool | None = _from_environment()
_override: ContextVar[bool | None] = ContextVar("neurosim_debug_checks", default=None)
_UNSET = object()


def set_debug_checks(enabled: bool | None) -> None:
    """Set the process-wide switch: ``True`` (always check values), ``False`` (never) or
    ``None`` (auto: check CPU tensors only)."""
    global _default
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"set_debug_checks expects True, False or None, got {enabled!r}")
    _default = enabled


def debug_checks_setting() -> bool | None:
    """The switch in force here: ``True``, ``False`` or ``None`` (auto)."""
    override = _override.get()
    return _default if override is None else override


@contextmanager
def debug_checks(enabled: bool = True) -> Iterator[None]:
    """Turn value checks on (``True``, the debug mode) or off (``False``) inside a block.

    The setting is local to the current thread/context and restored on exit.
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"debug_checks expects True or False, got {enabled!r}")
    token = _override.set(enabled)
    try:
        yield
    finally:
        _override.reset(token)


def value_checks(*tensors: torch.Tensor) -> bool:
    """Whether a public op should check the values of ``tensors`` now (see the module doc):
    never inside ``torch.compile``; otherwise the switch, or in auto mode whether every tensor
    is on the CPU."""
    if torch.compiler.is_compiling():
        return False
    setting = debug_checks_setting()
    if setting is not None:
        return setting
    return all(t.device.type == "cpu" for t in tensors)
