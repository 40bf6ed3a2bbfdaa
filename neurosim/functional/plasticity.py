"""Learning rules without autograd: STDP with traces, adaptive thresholds, weight normalisation.

Pure functions of explicit tensors (no hidden state, no ``nn.Module``); every rule is batched
over any leading dimensions, e.g. a module dimension ``M`` of an ensemble of independent
networks. Weights are laid out ``w [..., n_pre, n_post]`` (presynaptic rows, postsynaptic
columns), so the postsynaptic input is ``x_post = s_pre @ w``.

STDP (Diehl & Cook 2015, "pre-and-post" traces with the triplet-style potentiation)
---------------------------------------------------------------------------------------

Traces decay with ``tau_pre``, ``tau_post1``, ``tau_post2`` (ms) and are **set** to 1 at a
spike (nearest-spike; ``trace="add"`` adds 1 instead, all-to-all). One step of ``dt`` ms with
pre spikes ``s`` and post spikes ``o`` does, in this order (Brian2's event order, pre before
post within a step):

.. math::
    x_k \\leftarrow x_k e^{-dt/\\tau_k} \\quad (k = pre, post1, post2) \\\\
    \\Delta w_{ij} \\mathrel{-}= \\nu_{pre}\\, s_i\\, x_{post1,j}
      \\qquad x_{pre} \\leftarrow 1 \\text{ where } s \\\\
    \\Delta w_{ij} \\mathrel{+}= \\nu_{post}\\, x_{pre,i}\\, o_j\\, x_{post2,j}^{-}
      \\qquad x_{post1}, x_{post2} \\leftarrow 1 \\text{ where } o

``x_post2^-`` is the post2 trace *before* this post spike (so the first post spike of a train
potentiates nothing: Diehl & Cook's rule needs earlier postsynaptic activity); with
``triplet=False`` it is replaced by 1 (the pair rule). Weights are clipped to ``[0, w_max]``
by :func:`stdp_apply`.

Worked example (``dt = 1 ms``, ``tau_pre = 20``, ``tau_post2 = 40``): a pre spike at 0 ms and
post spikes at 10 and 20 ms change ``w`` by ``nu_post * exp(-20/20) * exp(-10/40)``
(``= 0.01 * 0.3679 * 0.7788 = 2.865e-3`` for ``nu_post = 0.01``) at 20 ms, and by nothing at
10 ms.

:func:`stdp_step` returns the update of one step; :func:`stdp_window` returns the summed update
of a whole window of ``T`` steps in two matrix products (identical to summing
:func:`stdp_step`, and much faster when the weights may stay fixed during the window, e.g. one
stimulus presentation).

Other rules
-----------

* :func:`normalize_columns`: scale each postsynaptic neuron's incoming weights to a fixed sum
  (Diehl & Cook: 78 for 784 inputs), ``w_ij <- w_ij * total / sum_i w_ij``, or (``p=2``) to a
  fixed Euclidean norm, ``w_ij <- w_ij * total / sqrt(sum_i w_ij^2)``.
* :func:`adaptive_threshold_step`: ``theta <- theta e^{-dt/tau_theta} + theta_plus * o``.
* :func:`homeostatic_threshold_step`: intrinsic plasticity towards a target rate,
  ``thr <- max(thr + eta (rate - target), floor)``.
* :func:`lateral_inhibition`: the input an all-to-all (except self) inhibitory layer sends,
  ``w * (sum_k s_k - s_j)``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from neurosim.backend import InputError, Operation, check_tensor, kernels, numba_backend

TRACE_MODES = ("set", "add")
NORM_ORDERS = (1, 2)


class STDPParameters(NamedTuple):
    """Parameters of :func:`stdp_step` (times in ms).

    Attributes:
        tau_pre, tau_post1, tau_post2: trace time constants (Diehl & Cook: 20, 20, 40 ms).
        nu_pre: depression per pre spike, times the post1 trace (Diehl & Cook: 1e-4).
        nu_post: potentiation per post spike, times the pre trace (Diehl & Cook: 1e-2).
        w_max: upper clip of the weights (lower clip is 0).
        dt: time step (ms).
        trace: ``"set"`` (trace jumps to 1 at a spike, Diehl & Cook) or ``"add"`` (adds 1).
        triplet: potentiation uses the post2 trace before the spike (Diehl & Cook) or not.
    """

    tau_pre: float = 20.0
    tau_post1: float = 20.0
    tau_post2: float = 40.0
    nu_pre: float = 1e-4
    nu_post: float = 1e-2
    w_max: float = 1.0
    dt: float = 0.5
    trace: str = "set"
    triplet: bool = True

    @classmethod
    def diehl_cook(cls, dt: float = 0.5, **kwargs: object) -> STDPParameters:
        """Diehl & Cook (2015): traces 20/20/40 ms, ``nu_pre = 1e-4``, ``nu_post = 1e-2``,
        ``w_max = 1``, nearest-spike traces, triplet potentiation."""
        return cls(dt=dt, **kwargs)  # type: ignore[arg-type]

    def validate(self) -> STDPParameters:
        """Return ``self`` or raise :class:`InputError` naming the bad field."""
        for name in ("tau_pre", "tau_post1", "tau_post2", "dt", "w_max"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"STDP {name} must be a positive finite number, got {value!r}")
        for name in ("nu_pre", "nu_post"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise InputError(f"STDP {name} must be a finite number, got {value!r}")
        if self.trace not in TRACE_MODES:
            raise InputError(f"STDP trace must be one of {TRACE_MODES}, got {self.trace!r}")
        return self

    def decays(self) -> tuple[float, float, float]:
        """Per-step decay factors ``exp(-dt / tau)`` of the pre, post1 and post2 traces."""
        return (
            math.exp(-self.dt / self.tau_pre),
            math.exp(-self.dt / self.tau_post1),
            math.exp(-self.dt / self.tau_post2),
        )


class STDPState(NamedTuple):
    """Traces: ``pre [..., n_pre]``, ``post1 [..., n_post]``, ``post2 [..., n_post]``."""

    pre: torch.Tensor
    post1: torch.Tensor
    post2: torch.Tensor

    @classmethod
    def zeros(cls, pre: torch.Tensor, post: torch.Tensor) -> STDPState:
        """All traces zero, shaped like one step of pre and post spikes."""
        return cls(torch.zeros_like(pre), torch.zeros_like(post), torch.zeros_like(post))


def _mark(trace: torch.Tensor, spikes: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "set":
        return trace * (1.0 - spikes) + spikes
    return trace + spikes


def _check_pair(
    pre: torch.Tensor, post: torch.Tensor, name: str, lead: int, *, floating: bool = True
) -> None:
    check_tensor(pre, f"{name} pre spikes [..., n_pre]", min_ndim=lead + 1, floating=floating)
    check_tensor(post, f"{name} post spikes [..., n_post]", min_ndim=lead + 1, floating=floating)
    if pre.shape[:-1] != post.shape[:-1]:
        raise InputError(
            f"{name}: pre spikes {tuple(pre.shape)} and post spikes {tuple(post.shape)} must "
            f"share their leading dimensions"
        )


def _state(state: STDPState | None, pre: torch.Tensor, post: torch.Tensor, name: str) -> STDPState:
    if state is None:
        return STDPState.zeros(pre, post)
    if not isinstance(state, STDPState):
        raise InputError(f"{name} state must be an STDPState, got {type(state).__name__}")
    if state.pre.shape != pre.shape or state.post1.shape != post.shape:
        raise InputError(
            f"{name} state traces {tuple(state.pre.shape)}/{tuple(state.post1.shape)} do not "
            f"match one step of spikes {tuple(pre.shape)}/{tuple(post.shape)}"
        )
    return state


def stdp_step(
    pre: torch.Tensor,
    post: torch.Tensor,
    state: STDPState | None = None,
    p: STDPParameters = STDPParameters(),  # noqa: B008 - immutable NamedTuple
) -> tuple[torch.Tensor, STDPState]:
    """One step of the trace STDP rule (module docstring).

    Args:
        pre: presynaptic spikes ``[..., n_pre]`` (0/1).
        post: postsynaptic spikes ``[..., n_post]``.
        state: traces (``None``: all zero).
        p: :class:`STDPParameters`.

    Returns:
        ``(dw [..., n_pre, n_post], new_state)``; apply with :func:`stdp_apply`.
    """
    _check_pair(pre, post, "stdp_step", 0)
    p = p.validate()
    st = _state(state, pre, post, "stdp_step")
    return _stdp_step(pre, post, st, p)


def _stdp_step(
    pre: torch.Tensor, post: torch.Tensor, st: STDPState, p: STDPParameters
) -> tuple[torch.Tensor, STDPState]:
    a_pre, a_post1, a_post2 = p.decays()
    x_pre = st.pre * a_pre
    x_post1 = st.post1 * a_post1
    x_post2 = st.post2 * a_post2
    dw = -p.nu_pre * pre.unsqueeze(-1) * x_post1.unsqueeze(-2)
    x_pre = _mark(x_pre, pre, p.trace)
    gate = post * x_post2 if p.triplet else post
    dw = dw + p.nu_post * x_pre.unsqueeze(-1) * gate.unsqueeze(-2)
    x_post1 = _mark(x_post1, post, p.trace)
    x_post2 = _mark(x_post2, post, p.trace)
    return dw, STDPState(x_pre, x_post1, x_post2)


def stdp_window(
    pre: torch.Tensor,
    post: torch.Tensor,
    state: STDPState | None = None,
    p: STDPParameters = STDPParameters(),  # noqa: B008 - immutable NamedTuple
    *,
    backend: str = "auto",
) -> tuple[torch.Tensor, STDPState]:
    """The summed STDP update of ``T`` steps, ``pre [T, ..., n_pre]``, ``post [T, ..., n_post]``.

    Equals ``sum_t stdp_step(pre[t], post[t])[0]`` (traces carried), computed as two
    time-contracted matrix products instead of ``T`` outer products (``backend="torch"``), or on
    the CPU by default with numba from the spikes themselves (the ``numba`` backend of the
    ``stdp_window`` operation: each post spike adds the pre trace to its column, each pre spike
    the post trace to its row). Use it when the weights stay fixed during the window and the
    update is applied at its end.

    Returns:
        ``(dw [..., n_pre, n_post], state after the last step)``.
    """
    _check_pair(pre, post, "stdp_window", 1, floating=False)
    st = _state(state, pre[0], post[0], "stdp_window")
    dw, x_pre, x_post1, x_post2 = kernels.call(
        "stdp_window", pre, post, st.pre, st.post1, st.post2, p, backend=backend
    )
    return dw, STDPState(x_pre, x_post1, x_post2)


def validate_stdp_window(
    pre: torch.Tensor,
    post: torch.Tensor,
    x_pre: torch.Tensor,
    x_post1: torch.Tensor,
    x_post2: torch.Tensor,
    p: STDPParameters,
) -> None:
    """Check the arguments of the ``stdp_window`` operation (spikes may be boolean)."""
    _check_pair(pre, post, "stdp_window", 1, floating=False)
    if not isinstance(p, STDPParameters):
        raise InputError(f"stdp_window expected STDPParameters, got {type(p).__name__}")
    p.validate()
    for trace, like, name in (
        (x_pre, pre, "pre"),
        (x_post1, post, "post1"),
        (x_post2, post, "post2"),
    ):
        check_tensor(trace, f"stdp_window {name} trace", device=pre.device)
        if trace.shape != like.shape[1:]:
            raise InputError(
                f"stdp_window {name} trace has shape {tuple(trace.shape)}; expected one step "
                f"of spikes {tuple(like.shape[1:])}"
            )


def stdp_window_reference(
    pre: torch.Tensor,
    post: torch.Tensor,
    x_pre: torch.Tensor,
    x_post1: torch.Tensor,
    x_post2: torch.Tensor,
    p: STDPParameters,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``stdp_window`` operation's torch reference: ``(dw, pre, post1, post2 traces)``;
    boolean spikes count as 0/1 in the traces' dtype."""
    pre, post = pre.to(x_pre.dtype), post.to(x_post1.dtype)
    dw, st = _stdp_window(pre, post, STDPState(x_pre, x_post1, x_post2), p)
    return dw, st.pre, st.post1, st.post2


def _stdp_window(
    pre: torch.Tensor, post: torch.Tensor, st: STDPState, p: STDPParameters
) -> tuple[torch.Tensor, STDPState]:
    a_pre, a_post1, a_post2 = p.decays()
    steps = pre.shape[0]
    pre_after = torch.empty_like(pre)  # pre trace after this step's pre spikes
    post1_before = torch.empty_like(post)  # post1 trace at this step, before its post spikes
    gate = torch.empty_like(post)  # post spikes times post2 before them (or the spikes)
    x_pre, x_post1, x_post2 = st
    for t in range(steps):
        x_pre = _mark(x_pre * a_pre, pre[t], p.trace)
        x_post1 = x_post1 * a_post1
        x_post2 = x_post2 * a_post2
        pre_after[t] = x_pre
        post1_before[t] = x_post1
        gate[t] = post[t] * x_post2 if p.triplet else post[t]
        x_post1 = _mark(x_post1, post[t], p.trace)
        x_post2 = _mark(x_post2, post[t], p.trace)
    # sum_t a[t, ..., i] b[t, ..., j] as one batched product over the leading dimensions
    potentiation = torch.einsum("t...i,t...j->...ij", pre_after, gate)
    depression = torch.einsum("t...i,t...j->...ij", pre, post1_before)
    dw = p.nu_post * potentiation - p.nu_pre * depression
    return dw, STDPState(x_pre, x_post1, x_post2)


def stdp_apply(w: torch.Tensor, dw: torch.Tensor, p: STDPParameters) -> torch.Tensor:
    """``clip(w + dw, 0, w_max)`` (a new tensor; use ``w.copy_(...)`` to update in place)."""
    return (w + dw).clamp_(0.0, p.w_max)


def normalize_columns(w: torch.Tensor, total: float | torch.Tensor, p: int = 1) -> torch.Tensor:
    """Scale each column (each postsynaptic neuron's incoming weights) to a fixed norm.

    ``w [..., n_pre, n_post] -> w * total / ||w[..., :, j]||_p``; all-zero columns stay zero.
    ``p = 1`` (Diehl & Cook) fixes each column's sum (weights are non-negative); ``p = 2`` fixes
    its Euclidean length, so a neuron's input drive ``w . x`` ranks inputs by their cosine with
    its weights (times ``|x|``) rather than by a dot product with a fixed-sum template.
    Examples: ``[[1, 0], [3, 0]]`` with ``total = 2`` becomes ``[[0.5, 0], [1.5, 0]]``; with
    ``p = 2`` and ``total = 10``, ``[[3, 0], [4, 0]]`` becomes ``[[6, 0], [8, 0]]``.
    """
    check_tensor(w, "normalize_columns weights [..., n_pre, n_post]", min_ndim=2)
    if p not in NORM_ORDERS:
        raise InputError(f"normalize_columns p must be one of {NORM_ORDERS}, got {p!r}")
    return _normalize_columns(w, total, p)


def _normalize_columns(w: torch.Tensor, total: float | torch.Tensor, p: int = 1) -> torch.Tensor:
    if p == 1:
        norms = w.sum(dim=-2, keepdim=True)
    else:
        norms = w.square().sum(dim=-2, keepdim=True).sqrt()
    factor = torch.where(norms > 0, total / norms.clamp_min(1e-30), torch.ones_like(norms))
    return w * factor


def adaptive_threshold_step(
    theta: torch.Tensor, spikes: torch.Tensor, *, theta_plus: float, tau_theta: float, dt: float
) -> torch.Tensor:
    """``theta e^{-dt/tau_theta} + theta_plus * spikes`` (Diehl & Cook's homeostatic threshold).

    Example: ``theta = 1``, a spike, ``theta_plus = 0.05``, ``tau_theta = 1e7``, ``dt = 0.5``
    gives ``1 * exp(-5e-8) + 0.05 = 1.04999995``.
    """
    if tau_theta <= 0 or dt <= 0:
        raise InputError(f"tau_theta and dt must be positive, got {tau_theta}, {dt}")
    return theta * math.exp(-dt / tau_theta) + theta_plus * spikes


def homeostatic_threshold_step(
    threshold: torch.Tensor,
    rate: torch.Tensor,
    *,
    target: float | torch.Tensor,
    eta: float,
    floor: float | None = 0.0,
) -> torch.Tensor:
    """Intrinsic plasticity: ``threshold + eta * (rate - target)``, clipped below at ``floor``.

    A neuron firing above its target rate raises its threshold; below it, lowers it.
    Example: ``threshold = 0.2``, ``rate = 0.9``, ``target = 0.5``, ``eta = 0.1`` gives 0.24.
    """
    out = threshold + eta * (rate - target)
    return out if floor is None else out.clamp_min(floor)


def lateral_inhibition(spikes: torch.Tensor, weight: float | torch.Tensor) -> torch.Tensor:
    """Input from an all-to-all inhibitory population with no self-connection:
    ``weight * (sum_k s_k - s_j)`` for each neuron ``j`` (over the last dimension).

    Example: spikes ``[1, 0, 1]`` with ``weight = 17`` give ``[17, 34, 17]``.
    """
    return weight * (spikes.sum(dim=-1, keepdim=True) - spikes)


def _window_example(
    device: torch.device, dtype: torch.dtype, generator: torch.Generator
) -> tuple[tuple[object, ...], dict[str, object]]:
    steps, modules, n_pre, n_post = 50, 3, 11, 5
    pre = (torch.rand(steps, modules, n_pre, generator=generator) < 0.2).to(dtype)
    post = (torch.rand(steps, modules, n_post, generator=generator) < 0.1).to(dtype)
    traces = [
        torch.rand(modules, n, generator=generator, dtype=torch.float64).to(dtype)
        for n in (n_pre, n_post, n_post)
    ]
    p = STDPParameters.diehl_cook(dt=1.0, nu_post=0.05)
    return (*(t.to(device) for t in (pre, post, *traces)), p), {}


def _window_bad_inputs(device: torch.device) -> list[tuple[tuple[object, ...], dict, str]]:
    pre, post = torch.zeros(4, 2, 3, device=device), torch.zeros(4, 2, 5, device=device)
    traces = (torch.zeros(2, 3, device=device), *(torch.zeros(2, 5, device=device),) * 2)
    p = STDPParameters()
    return [
        ((pre, post[:, :1], *traces, p), {}, "share their leading dimensions"),
        ((pre, post, torch.zeros(3, device=device), *traces[1:], p), {}, "pre trace has shape"),
        ((pre, post, *traces, "p"), {}, "expected STDPParameters"),
        ((pre, post, *traces, STDPParameters(trace="max")), {}, "trace must be one of"),
    ]


def _load_window_numba() -> Any:
    from neurosim.functional._numba_wta import stdp_window_numba

    return stdp_window_numba


kernels.register(
    Operation(
        name="stdp_window",
        reference=stdp_window_reference,
        validate=validate_stdp_window,
        example=_window_example,
        bad_inputs=_window_bad_inputs,
        grad_args=(),
        doc="summed trace-STDP update of a window of pre/post spikes (dw and the traces)",
    )
)
kernels.register_backend("stdp_window", numba_backend(_load_window_numba))
