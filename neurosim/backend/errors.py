"""Exceptions shared by every part of neurosim.

Each error names the thing that was wrong and what was expected, so a user can fix the input
without reading a traceback from deep inside torch, h5py or triton.
"""

from __future__ import annotations


class NeurosimError(Exception):
    """Base class of every error neurosim raises on purpose."""


class InputError(NeurosimError, ValueError):
    """A tensor, parameter or option had the wrong shape, dtype, device, value or type."""


class BackendUnavailableError(NeurosimError, RuntimeError):
    """A requested kernel backend or device cannot be used here (the cause is chained)."""
