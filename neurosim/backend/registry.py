"""The kernel registry: one torch reference per operation, optional faster backends.

Every operation has a ``torch`` reference backend. Faster paths (``compile`` = torch.compile,
``triton``, ``tcnn``) register beside it with a lazy loader, so that a missing optional package
never breaks ``import neurosim``: it fails only when that backend is asked for, with the original
import error chained. ``backend="auto"`` picks the highest-priority backend that is available
for the tensors' device and says which one it picked; it never falls back silently from a backend
that was named explicitly.

>>> from neurosim.backend import kernels
>>> kernels.resolve("leaky_scan", "torch", torch.device("cpu")).backend
'torch'
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from neurosim.backend.errors import BackendUnavailableError, InputError

log = logging.getLogger("neurosim.backend")

Fn = Callable[..., Any]
Inputs = tuple[tuple[Any, ...], dict[str, Any]]


def module_missing(module: str, hint: str) -> Callable[[torch.device], str | None]:
    """An availability check that reports ``module`` not importable (with an install ``hint``)."""

    def check(device: torch.device) -> str | None:
        try:
            importlib.import_module(module)
        except Exception as exc:
            return f"{module} does not import ({type(exc).__name__}: {exc}); {hint}"
        return None

    return check


def triton_available(device: torch.device) -> str | None:
    """Triton runs on CUDA, or on the CPU under its interpreter (``TRITON_INTERPRET=1``)."""
    reason = module_missing("triton", "install the 'gpu' extra: pip install 'neurosim[gpu]'")(
        device
    )
    if reason:
        return reason
    if device.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        return "triton runs on the CPU only under its interpreter: set TRITON_INTERPRET=1 before import"
    return None


def compile_available(device: torch.device) -> str | None:
    """torch.compile needs a working dynamo for this Python (and a C compiler on the CPU)."""
    try:
        import torch._dynamo
    except Exception as exc:
        return f"torch.compile is unavailable ({type(exc).__name__}: {exc})"
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    return None


@dataclass(frozen=True)
class Backend:
    """One implementation of an operation.

    Attributes:
        name: ``"torch"``, ``"compile"``, ``"triton"``, ``"tcnn"``, ...
        load: returns the callable; runs lazily, on first use (imports live inside it).
        devices: device types it runs on at all.
        auto_devices: device types where ``backend="auto"`` may pick it (e.g. the Triton
            interpreter runs on the CPU for tests but is never auto-picked there).
        priority: higher is faster; ``auto`` takes the highest available.
        available: returns ``None`` when usable on a device, else the reason it is not.
        dtypes: the floating dtypes it computes in (``None``: every dtype of the operation);
            the contract test checks only these (e.g. tinycudann computes in fp32/fp16).
    """

    name: str
    load: Callable[[], Fn]
    devices: frozenset[str] = frozenset({"cpu", "cuda"})
    auto_devices: frozenset[str] = frozenset({"cpu", "cuda"})
    priority: int = 0
    available: Callable[[torch.device], str | None] = lambda device: None
    dtypes: frozenset[torch.dtype] | None = None


def compile_backend(load: Callable[[], Fn]) -> Backend:
    """The ``compile`` backend with the shared policy: usable on every device, but ``auto``
    takes it on CUDA only (on the CPU, compiling costs tens of seconds, more than it saves)."""
    return Backend(
        "compile",
        load,
        auto_devices=frozenset({"cuda"}),
        priority=10,
        available=compile_available,
    )


def triton_backend(load: Callable[[], Fn]) -> Backend:
    """The ``triton`` backend with the shared policy: the fastest on CUDA, runnable on the CPU
    under the interpreter (tests) but never picked by ``auto`` there."""
    return Backend(
        "triton",
        load,
        auto_devices=frozenset({"cuda"}),
        priority=20,
        available=triton_available,
    )


def numba_backend(load: Callable[[], Fn]) -> Backend:
    """The ``numba`` backend with the shared policy: compiled CPU loops (one pass over memory for
    the forward and one for the backward), the ``auto`` choice on the CPU where numba imports;
    never used for other devices. The first call of a dtype compiles (seconds; numba caches the
    machine code on disk for later processes)."""
    return Backend(
        "numba",
        load,
        devices=frozenset({"cpu"}),
        auto_devices=frozenset({"cpu"}),
        priority=8,
        available=module_missing("numba", "install numba: pip install 'numba>=0.60'"),
    )


@dataclass
class Operation:
    """An operation: its reference maths, its input checks and what the contract test needs.

    Attributes:
        name: registry key.
        reference: the torch reference implementation (the truth every backend is tested against).
        validate: called with the call's arguments before any backend runs; raises ``InputError``.
        example: ``example(device, dtype, generator) -> (args, kwargs)`` for contract tests.
        bad_inputs: ``bad_inputs(device) -> [(args, kwargs, message_fragment)]`` for contract tests.
        grad_args: indices of positional arguments that take gradients.
        dtypes: dtypes the contract test runs.
        tolerance: ``dtype -> (rtol, atol)`` against the reference.
        device_of: which positional argument decides the device.
        doc: one line for ``describe``.
    """

    name: str
    reference: Fn
    validate: Callable[..., None]
    example: Callable[[torch.device, torch.dtype, torch.Generator], Inputs]
    bad_inputs: Callable[[torch.device], list[tuple[tuple[Any, ...], dict[str, Any], str]]]
    grad_args: tuple[int, ...] = (0,)
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64)
    tolerance: dict[torch.dtype, tuple[float, float]] = field(
        default_factory=lambda: {
            torch.float64: (1e-9, 1e-9),
            torch.float32: (1e-4, 1e-5),
            torch.bfloat16: (2e-2, 2e-2),
            torch.float16: (2e-3, 2e-3),
        }
    )
    device_of: int = 0
    doc: str = ""
    backends: dict[str, Backend] = field(default_factory=dict)


@dataclass(frozen=True)
class Selection:
    """The result of resolving a backend: which one, its callable and why it was chosen."""

    operation: str
    backend: str
    fn: Fn
    reason: str


class KernelRegistry:
    """Operations and their backends. See the module docstring."""

    def __init__(self) -> None:
        self._ops: dict[str, Operation] = {}
        self._loaded: dict[tuple[str, str], Fn] = {}

    # registration -----------------------------------------------------------------------
    def register(self, op: Operation) -> Operation:
        """Register an operation; its ``torch`` reference backend is added automatically."""
        if op.name in self._ops:
            raise InputError(f"operation {op.name!r} is already registered")
        reference = op.reference
        op.backends.setdefault("torch", Backend("torch", lambda: reference, priority=0))
        self._ops[op.name] = op
        return op

    def register_backend(self, op_name: str, backend: Backend) -> None:
        """Add a backend to a registered operation."""
        op = self.operation(op_name)
        if backend.name in op.backends:
            raise InputError(f"operation {op_name!r} already has a backend {backend.name!r}")
        op.backends[backend.name] = backend

    # queries ----------------------------------------------------------------------------
    def operations(self) -> list[str]:
        """Names of every registered operation."""
        return sorted(self._ops)

    def operation(self, name: str) -> Operation:
        """The :class:`Operation` called ``name``."""
        try:
            return self._ops[name]
        except KeyError:
            raise InputError(
                f"unknown operation {name!r}; registered: {', '.join(self.operations()) or 'none'}"
            ) from None

    def backends(self, op_name: str) -> list[str]:
        """Backend names of an operation, fastest first."""
        op = self.operation(op_name)
        return [b.name for b in sorted(op.backends.values(), key=lambda b: -b.priority)]

    def availability(self, op_name: str, device: torch.device) -> dict[str, str | None]:
        """``backend -> None`` when usable on ``device``, else the reason it is not."""
        op = self.operation(op_name)
        return {name: self._status(op.backends[name], device) for name in self.backends(op_name)}

    @staticmethod
    def _status(backend: Backend, device: torch.device) -> str | None:
        if device.type not in backend.devices:
            return f"runs on {sorted(backend.devices)}, not on {device.type}"
        return backend.available(device)

    # resolution -------------------------------------------------------------------------
    def _load(self, op: Operation, backend: Backend) -> Fn:
        key = (op.name, backend.name)
        if key not in self._loaded:
            self._loaded[key] = backend.load()
        return self._loaded[key]

    def resolve(self, op_name: str, backend: str, device: torch.device) -> Selection:
        """Pick the backend for ``op_name`` on ``device``.

        ``backend="auto"`` takes the fastest backend available and allowed for auto on this device
        type; any other name must be available, else :class:`BackendUnavailableError` says why.
        """
        op = self.operation(op_name)
        if backend == "auto":
            # candidates in priority order; availability is checked only for backends that auto
            # may pick on this device (checking imports optional packages, e.g. torch._dynamo)
            skipped: dict[str, str] = {}
            for name in self.backends(op_name):
                candidate = op.backends[name]
                if device.type not in candidate.auto_devices:
                    continue
                reason_not = self._status(candidate, device)
                if reason_not is not None:
                    skipped[name] = reason_not
                    continue
                try:
                    fn = self._load(op, candidate)
                except Exception as exc:
                    log.warning("backend %r for %r failed to load: %s", name, op_name, exc)
                    skipped[name] = f"failed to load: {type(exc).__name__}: {exc}"
                    continue
                reason = f"auto picked {name!r} for {op_name!r} on {device}" + (
                    f" (unavailable: {skipped})" if skipped else ""
                )
                log.info(reason)
                return Selection(op_name, name, fn, reason)
            raise BackendUnavailableError(
                f"no backend of {op_name!r} runs on {device}: {self.availability(op_name, device)}"
            )
        status = self.availability(op_name, device)
        if backend not in op.backends:
            raise InputError(
                f"operation {op_name!r} has no backend {backend!r}; "
                f"expected 'auto' or one of {self.backends(op_name)}"
            )
        if status[backend] is not None:
            raise BackendUnavailableError(
                f"backend {backend!r} of {op_name!r} is unavailable on {device}: {status[backend]}"
            )
        try:
            fn = self._load(op, op.backends[backend])
        except Exception as exc:
            raise BackendUnavailableError(
                f"backend {backend!r} of {op_name!r} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        return Selection(op_name, backend, fn, f"{backend!r} requested for {op_name!r}")

    def call(self, op_name: str, *args: Any, backend: str = "auto", **kwargs: Any) -> Any:
        """Validate the arguments, resolve the backend on the inputs' device and run it."""
        op = self.operation(op_name)
        op.validate(*args, **kwargs)
        device = args[op.device_of].device
        return self.resolve(op_name, backend, device).fn(*args, **kwargs)


kernels = KernelRegistry()
"""The process-wide registry every neurosim and fields operation registers into."""
