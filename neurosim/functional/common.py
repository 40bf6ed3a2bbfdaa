"""Helpers shared by every neuron of :mod:`neurosim.functional`: the multi-step result type,
parameter and state validation, and the arithmetic dtype.

Validation contract (every public neuron function and kernel operation follows it):

* **Always checked, free of host-device synchronisation**: types, shapes (including the
  time-major / batch-major hint), dtypes, devices, option names, Python-float parameters.
* **Checked only in debug mode** (:func:`neurosim.backend.debug.debug_checks`,
  ``NEUROSIM_DEBUG=1``): NaN/inf in input, state and parameter tensors. Such a check reads a value
  back from the device (``bool(isfinite(x.sum()))``), which stalls a CUDA stream once per layer,
  so the hot path never does it. Outside debug mode a non-finite input gives non-finite outputs,
  as in any torch layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from neurosim.backend import InputError, check_tensor
from neurosim.backend.debug import debug_enabled

RESETS: tuple[str, ...] = ("subtract", "zero", "none")
"""Reset mechanisms, in the order of their integer codes used by the kernels."""

ParamValue = torch.Tensor | float
"""A neuron parameter: one float for all neurons, or a tensor broadcastable to ``[B, *F]``."""


class NeuronSequence(NamedTuple):
    """What a multi-step neuron call returns.

    Attributes:
        spikes: ``[T, B, *F]`` (for a non-spiking readout: the output, e.g. the membrane).
        membrane: membrane trace ``[T, B, *F]`` (post-reset in the immediate form).
        state: the state after the last step, to continue the sequence (for ``T = 0``: the
            initial state, unchanged).
    """

    spikes: torch.Tensor
    membrane: torch.Tensor
    state: Any


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The arithmetic dtype for a storage dtype: fp64 stays fp64, everything else runs in fp32
    (bf16/fp16 tensors are stored reduced but integrated in fp32, as in the Triton kernel)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def as_tensor(value: ParamValue, like: torch.Tensor) -> torch.Tensor:
    """``value`` as a tensor in ``like``'s dtype (a float becomes a 0-d tensor on its device)."""
    if isinstance(value, torch.Tensor):
        return value.to(like.dtype)
    return torch.tensor(float(value), dtype=like.dtype, device=like.device)


def check_finite(x: torch.Tensor, name: str) -> None:
    """In debug mode, raise :class:`InputError` if ``x`` holds NaN or inf; else do nothing.

    One sum instead of an element-wise ``isfinite`` pass (a finite sum proves every element
    finite); only a non-finite sum pays for the element-wise count in the message.
    """
    if not debug_enabled():
        return
    if x.numel() and x.is_floating_point() and not bool(torch.isfinite(x.detach().sum())):
        check_tensor(x, name)


def check_parameter(value: object, name: str, shape: Sequence[int], device: torch.device) -> None:
    """A neuron parameter is a finite float or a tensor broadcastable to ``shape`` on ``device``
    (finiteness of a tensor is checked in debug mode only)."""
    if isinstance(value, torch.Tensor):
        check_tensor(value, name, finite=False)
        if value.device != device:
            raise InputError(f"{name} is on {value.device} but the input is on {device}")
        try:
            out = torch.broadcast_shapes(value.shape, tuple(shape))
        except RuntimeError:
            out = None
        if out is None or tuple(out) != tuple(shape):
            raise InputError(
                f"{name} of shape {tuple(value.shape)} does not broadcast to the per-step shape "
                f"{tuple(shape)} [B, *F] of the input"
            )
        check_finite(value, name)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InputError(f"{name} must be finite, got {value}")
    else:
        raise InputError(f"{name} must be a float or a tensor, got {type(value).__name__}")


def check_option(value: object, name: str, allowed: Sequence[str]) -> None:
    """Raise :class:`InputError` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise InputError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


def check_state_shape(v: torch.Tensor, name: str, x: torch.Tensor, *, multi_step: bool) -> None:
    """A state tensor must match one step of ``x``; explain a time/batch-major mix-up."""
    check_tensor(v, name, finite=False)
    step_shape = tuple(x.shape[1:]) if multi_step else tuple(x.shape)
    if tuple(v.shape) == step_shape:
        if v.device != x.device:
            raise InputError(f"{name} is on {v.device} but the input is on {x.device}")
        check_finite(v, name)
        return
    hint = ""
    if multi_step and x.dim() >= 2 and tuple(v.shape) == (x.shape[0], *x.shape[2:]):
        hint = (
            f"; the state's batch size {v.shape[0]} equals the input's first dimension, so the "
            f"input looks batch-major [B, T, ...]: multi-step input is time-major [T, B, ...] "
            f"(transpose it with x.transpose(0, 1) or build the module with time_major=False)"
        )
    raise InputError(
        f"{name} has shape {tuple(v.shape)} but one time step of the input has shape "
        f"{step_shape}" + hint
    )


def check_input(x: object, name: str, *, multi_step: bool) -> torch.Tensor:
    """A neuron input: a floating tensor ``[B, *F]`` (single step) or ``[T, B, *F]`` (multi-step,
    ``T = 0`` allowed); finiteness in debug mode only."""
    tensor = check_tensor(x, name, min_ndim=2 if multi_step else 1, finite=False)
    check_finite(tensor, name)
    return tensor


def step_zeros(x: torch.Tensor, *, multi_step: bool) -> torch.Tensor:
    """Zeros shaped, typed and placed like one time step of ``x`` (also for ``T = 0``)."""
    return x.new_zeros(x.shape[1:] if multi_step else x.shape)


def last_step(sequence: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    """``sequence[-1]``, or ``initial`` when the sequence has no steps (``T = 0``)."""
    return sequence[-1] if sequence.shape[0] else initial
