"""One factory for neuron scan operations: give it the step maths, get every backend.

A neuron whose multi-step path is a scan over time declares a :class:`ScanSpec` and calls
:func:`register_scan`. The factory registers one kernel-registry operation (``spec.name``) with

* ``torch``: the reference, ``spec.step`` (autograd through every step) in a Python loop;
* ``loop``: an eager loop over ``spec.forward_step`` without autograd, and a hand-written backward
  that walks time in reverse with ``spec.backward_step`` (no autograd graph of ``T`` steps);
* ``compile``: the same loop with both step functions under ``torch.compile`` (``auto`` on CUDA);
* ``triton`` / ``numba``: hand-written kernels of the same maths, when the spec names a loader
  (``auto`` picks Triton on CUDA and numba on the CPU).

and the shared plumbing: argument binding and validation (shapes, devices, options; NaN/inf in
debug mode only, see :mod:`neurosim.functional.common`), the arithmetic dtype (fp32 for bf16/fp16
storage), parameter broadcasting and gradient reduction to each parameter's shape, and empty
sequences (``T = 0`` returns empty outputs from every backend).

The operation's positional signature is ``(x, *states, *params)`` followed by keyword
``options``; it returns one ``[T, B, *F]`` tensor per name in ``spec.outputs``.

The step functions see tuples in the compute dtype, all broadcast to the per-step shape:

* ``initial(states, params, **options) -> prev``: the "previous outputs" before step 0 (one per
  output; e.g. the LIF's pending reset ``H(v0 - theta)`` and ``v0``).
* ``step(x_t, prev, params, **options) -> outs``: the reference maths, under autograd.
* ``forward_step(x_t, prev, params, **options) -> (outs, saved)``: the same maths without
  autograd; ``saved`` holds extra per-step tensors the backward needs (e.g. the pre-reset
  membrane); the loop stores them only when a gradient is needed.
* ``backward_step(grads, outs, saved, prev, params, **options) -> (dx, dprev, dparams)``: the
  vector-Jacobian product of one step. ``grads`` are the total gradients of this step's outputs
  (output gradient plus what later steps sent back), ``dprev`` what flows to the previous
  step's outputs (``None`` for none), ``dparams`` this step's parameter gradients (per neuron).

The gradient of each initial state is the gradient that reaches the previous output it seeds
(``spec.state_outputs``). ``docs/extending_neurons.md`` builds a neuron with this factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from neurosim.backend import (
    Backend,
    InputError,
    Operation,
    compile_backend,
    kernels,
    numba_backend,
    triton_backend,
)
from neurosim.functional.common import (
    check_input,
    check_parameter,
    check_state_shape,
    compute_dtype,
)

Tensors = tuple[torch.Tensor, ...]
Fn = Callable[..., Any]


@dataclass(frozen=True)
class ScanSpec:
    """Everything the factory needs to build a scan operation (see the module docstring).

    Attributes:
        name: kernel-registry operation name, e.g. ``"lif_scan"``.
        states: names of the initial-state arguments after ``x`` (``("v0",)``).
        params: names of the per-neuron parameter arguments (``("beta", "threshold")``).
        outputs: names of the ``[T, B, *F]`` outputs (``("spikes", "membrane")``).
        state_outputs: for each state, the index of the output that carries it over time.
        options: the keyword options and their defaults (static: strings, bools, floats).
        initial, step, forward_step, backward_step: the maths (module docstring).
        check_options: ``check_options(**options)`` raises :class:`InputError` for bad values.
        example, bad_inputs: for the kernel contract test (see :class:`~neurosim.backend.Operation`).
        doc: one line for ``kernels.operation(name).doc``.
        triton, numba: loaders of hand-written kernels with the operation's signature (optional).
        tolerance: per-dtype ``(rtol, atol)`` of backends against the reference (default: the
            registry's).
    """

    name: str
    states: tuple[str, ...]
    params: tuple[str, ...]
    outputs: tuple[str, ...]
    state_outputs: tuple[int, ...]
    options: Mapping[str, Any]
    initial: Fn
    step: Fn
    forward_step: Fn
    backward_step: Fn
    check_options: Callable[..., None]
    example: Fn
    bad_inputs: Fn
    doc: str = ""
    triton: Callable[[], Fn] | None = None
    numba: Callable[[], Fn] | None = None
    tolerance: dict[torch.dtype, tuple[float, float]] | None = field(default=None)

    def bind(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[torch.Tensor, Tensors, Tensors, dict[str, Any]]:
        """Split a call into ``(x, states, params, options)``; unknown keywords are an error."""
        names = ("x", *self.states, *self.params)
        values = dict(zip(names, args, strict=False))
        if len(args) > len(names):
            raise InputError(
                f"{self.name} takes {len(names)} positional arguments {names}, got {len(args)}"
            )
        options = dict(self.options)
        for key, value in kwargs.items():
            if key in names and key not in values:
                values[key] = value
            elif key in options:
                options[key] = value
            else:
                raise InputError(
                    f"{self.name} got an unknown argument {key!r}; expected {names} and the "
                    f"options {tuple(self.options)}"
                )
        missing = [n for n in names if n not in values]
        if missing:
            raise InputError(f"{self.name} is missing the argument(s) {missing}")
        x = values["x"]
        states = tuple(values[n] for n in self.states)
        params = tuple(values[n] for n in self.params)
        return x, states, params, options


@dataclass(frozen=True)
class ScanOperation:
    """Handle returned by :func:`register_scan`: call the operation and get the final state."""

    spec: ScanSpec

    def __call__(
        self,
        x: torch.Tensor,
        states: Tensors,
        params: Tensors,
        *,
        backend: str = "auto",
        **options: Any,
    ) -> tuple[Tensors, Tensors]:
        """Run the operation; returns ``(outputs, final_states)`` where each final state is the
        last step of its output (for ``T = 0``: the initial state, unchanged)."""
        outputs: Tensors = kernels.call(self.spec.name, x, *states, *params, backend=backend,
                                        **options)  # fmt: skip
        finals = tuple(
            outputs[i][-1] if x.shape[0] else s
            for i, s in zip(self.spec.state_outputs, states, strict=True)
        )
        return outputs, finals


def empty_outputs(x: torch.Tensor, count: int) -> Tensors:
    """``count`` outputs of a ``T = 0`` sequence: empty ``[0, B, *F]`` tensors in ``x``'s dtype
    (connected to ``x``'s graph, so a loss over them back-propagates zeros)."""
    return tuple(x[:0] * 0 for _ in range(count))


def _guard_empty(spec: ScanSpec, fn: Fn) -> Fn:
    def run(*args: Any, **kwargs: Any) -> Any:
        x = args[0] if args else kwargs["x"]
        if x.shape[0] == 0:
            return empty_outputs(x, len(spec.outputs))
        return fn(*args, **kwargs)

    return run


def _validate(spec: ScanSpec) -> Fn:
    def validate(*args: Any, **kwargs: Any) -> None:
        x, states, params, options = spec.bind(args, kwargs)
        check_input(x, f"{spec.name} input x [T, B, *F]", multi_step=True)
        for name, value in zip(spec.states, states, strict=True):
            check_state_shape(value, f"{spec.name} initial state {name}", x, multi_step=True)
        for name, value in zip(spec.params, params, strict=True):
            check_parameter(value, f"{spec.name} {name}", x.shape[1:], x.device)
        spec.check_options(**options)

    return validate


def _reference(spec: ScanSpec) -> Fn:
    def reference(*args: Any, **kwargs: Any) -> Tensors:
        x, states, params, options = spec.bind(args, kwargs)
        if x.shape[0] == 0:
            return empty_outputs(x, len(spec.outputs))
        shape = x.shape[1:]
        ps = tuple(p.to(x.dtype).expand(shape) for p in params)
        prev = spec.initial(tuple(s.to(x.dtype) for s in states), ps, **options)
        traces: list[list[torch.Tensor]] = [[] for _ in spec.outputs]
        for t in range(x.shape[0]):
            prev = spec.step(x[t], prev, ps, **options)
            for trace, value in zip(traces, prev, strict=True):
                trace.append(value)
        return tuple(torch.stack(trace) for trace in traces)

    reference.__doc__ = f"Reference of ``{spec.name}``: the autograd step in a Python loop."
    return reference


def _loop_function(spec: ScanSpec, fwd: Fn, bwd: Fn) -> type:
    n_states, n_out = len(spec.states), len(spec.outputs)

    class ScanLoop(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, options: tuple[tuple[str, Any], ...], x: torch.Tensor,
                    *tensors: torch.Tensor) -> Tensors:  # fmt: skip
            opts = dict(options)
            states, params = tensors[:n_states], tensors[n_states:]
            shape, cd = x.shape[1:], compute_dtype(x.dtype)
            ps = tuple(p.to(cd).expand(shape) for p in params)
            prev = spec.initial(tuple(s.to(cd) for s in states), ps, **opts)
            outs = [torch.empty_like(x) for _ in range(n_out)]
            saved: list[torch.Tensor] = []
            keep = any(ctx.needs_input_grad[1:])
            for t in range(x.shape[0]):
                prev, extra = fwd(x[t].to(cd), prev, ps, **opts)
                for buffer, value in zip(outs, prev, strict=True):
                    buffer[t] = value
                if keep:
                    if not saved:
                        saved = [x.new_empty(x.shape, dtype=cd) for _ in extra]
                    for buffer, value in zip(saved, extra, strict=True):
                        buffer[t] = value
            ctx.n_saved = len(saved)
            ctx.options = opts
            ctx.save_for_backward(*outs, *saved, *states, *params)
            return tuple(outs)

        @staticmethod
        def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[Any, ...]:
            tensors = ctx.saved_tensors
            opts = ctx.options
            outs = tensors[:n_out]
            saved = tensors[n_out : n_out + ctx.n_saved]
            states = tensors[n_out + ctx.n_saved : n_out + ctx.n_saved + n_states]
            params = tensors[n_out + ctx.n_saved + n_states :]
            steps, shape = outs[0].shape[0], outs[0].shape[1:]
            cd = compute_dtype(outs[0].dtype)
            ps = tuple(p.to(cd).expand(shape) for p in params)
            zero = torch.zeros(shape, dtype=cd, device=outs[0].device)
            initial = spec.initial(tuple(s.to(cd) for s in states), ps, **opts)
            carry: list[torch.Tensor | None] = [None] * n_out
            sums = [torch.zeros(shape, dtype=cd, device=zero.device) for _ in params]
            gx = torch.empty(outs[0].shape, dtype=outs[0].dtype, device=zero.device)
            for t in range(steps - 1, -1, -1):
                total = []
                for k in range(n_out):
                    grad_k = grads[k]
                    g = grad_k[t].to(cd) if grad_k is not None else None
                    c = carry[k]
                    total.append(zero if g is None and c is None else
                                 (g if c is None else (c if g is None else g + c)))  # fmt: skip
                prev = initial if t == 0 else tuple(o[t - 1].to(cd) for o in outs)
                dx, dprev, dps = bwd(
                    tuple(total), tuple(o[t].to(cd) for o in outs),
                    tuple(s[t] for s in saved), prev, ps, **opts,
                )  # fmt: skip
                gx[t] = dx
                carry = list(dprev)
                for acc, g in zip(sums, dps, strict=True):
                    if g is not None:
                        acc += g
            needs = ctx.needs_input_grad
            d_states = []
            for i, s in enumerate(states):
                c = carry[spec.state_outputs[i]]
                d_states.append(
                    (c if c is not None else zero).to(s.dtype) if needs[2 + i] else None
                )
            d_params = [
                acc.sum_to_size(p.shape).to(p.dtype) if needs[2 + n_states + i] else None
                for i, (acc, p) in enumerate(zip(sums, params, strict=True))
            ]
            return (None, gx, *d_states, *d_params)

    ScanLoop.__name__ = f"{spec.name}_loop"
    return ScanLoop


def _loop_backend(spec: ScanSpec, fwd: Fn, bwd: Fn) -> Fn:
    function = _loop_function(spec, fwd, bwd)

    def run(*args: Any, **kwargs: Any) -> Tensors:
        x, states, params, options = spec.bind(args, kwargs)
        out: Tensors = function.apply(tuple(options.items()), x, *states, *params)  # type: ignore[attr-defined]
        return out

    return run


def register_scan(spec: ScanSpec) -> ScanOperation:
    """Register ``spec`` as a kernel operation with every backend it supports (module docstring).

    Returns a :class:`ScanOperation` that runs it and returns the final state too.
    """
    reference = _reference(spec)
    positions = tuple(range(1 + len(spec.states) + len(spec.params)))
    op = Operation(
        name=spec.name,
        reference=reference,
        validate=_validate(spec),
        example=spec.example,
        bad_inputs=spec.bad_inputs,
        grad_args=positions,
        doc=spec.doc,
    )
    if spec.tolerance is not None:
        op.tolerance.update(spec.tolerance)
    kernels.register(op)

    def load_loop() -> Fn:
        return _guard_empty(spec, _loop_backend(spec, spec.forward_step, spec.backward_step))

    def load_compile() -> Fn:
        fwd = torch.compile(spec.forward_step, dynamic=False)
        bwd = torch.compile(spec.backward_step, dynamic=False)
        return _guard_empty(spec, _loop_backend(spec, fwd, bwd))

    # ``loop`` is the fallback everywhere (the CPU default when numba is missing; on CUDA when
    # neither Triton nor torch.compile is available).
    kernels.register_backend(spec.name, Backend("loop", load_loop, priority=5))
    kernels.register_backend(spec.name, compile_backend(load_compile))
    if spec.triton is not None:
        load_triton = spec.triton
        kernels.register_backend(
            spec.name, triton_backend(lambda: _guard_empty(spec, load_triton()))
        )
    if spec.numba is not None:
        load_numba = spec.numba
        kernels.register_backend(spec.name, numba_backend(lambda: _guard_empty(spec, load_numba())))
    return ScanOperation(spec)
