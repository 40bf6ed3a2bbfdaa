"""The Expressive Leaky Memory (ELM) neuron (Spieler et al., ICLR 2024), and Branch-ELM.

Per time step, with input ``x_t [B, D]`` (spikes or currents):

.. math::
    b_t &= \\kappa_s \\odot b_{t-1} + R^\\top (w_s \\odot x_t)
        \\qquad\\text{(synaptic traces, summed per branch)} \\\\
    \\Delta m_t &= \\tanh_c\\big(\\mathrm{MLP}([\\, b_t,\\ \\kappa_m \\odot m_{t-1} \\,])\\big),
        \\qquad \\tanh_c(z) = 1.7159 \\tanh(2z/3) \\\\
    m_t &= \\kappa_m \\odot m_{t-1} + g \\odot \\Delta m_t
        \\qquad\\text{(memory units)} \\\\
    y_t &= W_y m_t + c_y \\qquad\\text{(linear readout)}

with ``kappa = exp(-dt / tau)``, non-negative synaptic weights ``w_s`` (one per synapse) and the
memory gain ``g``:

* ``v1`` (the paper): ``g = lambda * (1 - kappa_m)``;
* ``v2`` (the reference's ``expressive_leaky_memory_neuron_v2``): ``g = 1 - kappa_lambda`` with
  ``kappa_lambda = exp(-dt * lambda / tau_m)``.

The MLP has ``L`` hidden layers of width ``H`` (ReLU or SiLU) and a linear output of width
``d_m``. ``R`` routes synapses to branches: plain ELM has one synapse per input and one branch per
synapse (``R = I``); Branch-ELM sums ``synapses_per_branch`` synapses per branch, where synapse
``j`` reads input ``index[j]`` (``routing``: ``None`` = contiguous, ``"random"``, or the
reference's ``"neuronio"`` interleaving of excitatory/inhibitory inputs with overlapping windows;
see :func:`elm_routing`).

Per-branch traces
-----------------
The paper keeps one trace per synapse, ``s_t = kappa_s s_{t-1} + w_s x_t``, and sums them within a
branch. With one ``tau_s`` per branch (the reference fixes ``tau_s = 5`` for all synapses and never
learns it) the sum commutes with the decay, so ``b_t = sum_{j in branch} s_{j,t}`` obeys the
recurrence above exactly; we keep ``b`` (``[B, branches]``) instead of ``s`` (``[B, synapses]``).
``tests/spiking/test_elm.py`` checks this against a per-synapse loop written from the paper.

Fast multi-step path
--------------------
The synaptic part is linear and does not depend on the memory, so :func:`elm_multi_step` computes
it for all steps at once: one ``[T*B, D] @ [D, branches]`` product with the routing matrix
(``R[i, b] = sum of w_s[j] over the synapses j of branch b that read input i``; never the
``[T, B, synapses]`` routed tensor) and one linear scan. The first MLP layer's input part and the
readout are single large matmuls too. Only the nonlinear memory recurrence runs step by step: the
kernel operation ``elm_memory_scan`` (backends ``torch``: the autograd step loop, the reference;
``loop``: preallocated buffers, ``out=`` kernels and a hand-written backward, the default on
CUDA; ``numba`` (:mod:`neurosim.functional._numba_elm`): the same two loops compiled, each
step's products through BLAS, the default on the CPU; ``cuda_graph``: the same loops captured once per shape into CUDA graphs and replayed, opt-in on a
GPU; see :mod:`neurosim.functional._elm_graph`).

Shapes: single step ``x [B, D]``; multi-step ``x [T, B, D]`` (time-major).

Example: with every MLP weight and bias zero, ``Delta m = tanh_c(0) = 0`` and without input the
memory only decays, ``m_t = kappa_m^t m_0``: for ``tau_m = dt / ln 2`` it halves every step,
``1, 0.5, 0.25, ...`` (tested with other taus in ``tests/spiking/test_elm.py``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from neurosim.backend import (
    Backend,
    InputError,
    Operation,
    check_tensor,
    kernels,
    memory,
    numba_backend,
)
from neurosim.functional.lif import check_option, compute_dtype
from neurosim.functional.scan import leaky_scan

ACTIVATIONS: tuple[str, ...] = ("relu", "silu")
ROUTINGS: tuple[str | None, ...] = (None, "random", "neuronio")
VERSIONS: tuple[str, ...] = ("v1", "v2")
TANH_SCALE = 1.7159
"""Output scale of the scaled tanh ``1.7159 tanh(2z/3)`` (LeCun et al. 1998) used for ``Delta m``."""
TANH_SLOPE = 2.0 / 3.0
"""Input scale of the scaled tanh."""


class ELMParameters(NamedTuple):
    """Everything an ELM step needs, as tensors (the module builds it from its parameters).

    Attributes:
        synapse_weight: ``w_s [S]``, non-negative (the module applies a ReLU to its raw weights).
        synapse_decay: ``kappa_s``, a scalar or ``[branches]``.
        memory_decay: ``kappa_m [d_m]``.
        memory_gain: ``g [d_m]`` (``v1``: ``lambda (1 - kappa_m)``; ``v2``: ``1 - kappa_lambda``).
        mlp_weights: ``(W_1 [H, branches + d_m], W_2 [H, H], ..., W_out [d_m, H])``.
        mlp_biases: the matching biases.
        readout_weight: ``W_y [d_out, d_m]``.
        readout_bias: ``c_y [d_out]``.
        num_branch: number of branches (``= S`` for plain ELM).
        num_input: input features ``D`` the neuron reads.
        routing_index: ``[S]`` input read by each synapse, or ``None`` (synapse ``j`` reads input
            ``j``; needs ``S = D``).
        routing_mask: ``[S]`` 1 for synapses that exist, 0 for padding (or ``None``).
        activation: ``"relu"`` or ``"silu"``.
    """

    synapse_weight: torch.Tensor
    synapse_decay: torch.Tensor
    memory_decay: torch.Tensor
    memory_gain: torch.Tensor
    mlp_weights: tuple[torch.Tensor, ...]
    mlp_biases: tuple[torch.Tensor, ...]
    readout_weight: torch.Tensor
    readout_bias: torch.Tensor
    num_branch: int
    num_input: int
    routing_index: torch.Tensor | None = None
    routing_mask: torch.Tensor | None = None
    activation: str = "relu"

    @property
    def num_synapse(self) -> int:
        return int(self.synapse_weight.shape[0])

    @property
    def num_memory(self) -> int:
        return int(self.memory_decay.shape[0])


class ELMState(NamedTuple):
    """State of an ELM neuron: branch traces ``b [B, branches]`` and memory ``m [B, d_m]``."""

    b: torch.Tensor
    m: torch.Tensor

    @property
    def v(self) -> torch.Tensor:
        """The memory ``m`` (the name monitors read as the "membrane" of a neuron)."""
        return self.m


class ELMSequence(NamedTuple):
    """What :func:`elm_multi_step` returns.

    Attributes:
        output: readout ``y [T, B, d_out]``.
        memory: memory trajectory ``m [T, B, d_m]``.
        state: the state after the last step.
        branch: branch traces ``b [T, B, branches]``, or ``None`` where they were not formed
            (:func:`elm_multi_step` with ``record_branch=False``).
    """

    output: torch.Tensor
    memory: torch.Tensor
    state: ELMState
    branch: torch.Tensor | None = None


def scaled_tanh(z: torch.Tensor) -> torch.Tensor:
    """``1.7159 * tanh(2 z / 3)``: slope 1.14 at 0, saturating at +-1.7159."""
    return TANH_SCALE * torch.tanh(TANH_SLOPE * z)


def activate(z: torch.Tensor, activation: str) -> torch.Tensor:
    """The MLP's hidden activation (``relu`` or ``silu``)."""
    return torch.relu(z) if activation == "relu" else torch.nn.functional.silu(z)


# --------------------------------------------------------------------------------------------
# routing


def interleave_indices(num_input: int) -> torch.Tensor:
    """Synapse order of the reference's NeuronIO routing: inputs ``0, h, 1, h+1, 2, ...`` with
    ``h = num_input // 2`` (the first half are excitatory, the second inhibitory inputs, so
    neighbouring synapses alternate between the two).

    >>> interleave_indices(6).tolist()
    [0, 3, 1, 4, 2, 5]
    """
    k = torch.arange(num_input)
    return (k % 2) * (num_input // 2) + k // 2


def window_indices(
    num_input: int, num_windows: int, per_window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Overlapping windows of ``per_window`` consecutive positions, ``ceil(num_input /
    num_windows)`` apart; positions past the end are clamped and masked out.

    Returns ``(positions [num_windows * per_window], valid [num_windows * per_window])``.

    >>> p, v = window_indices(5, 2, 4)
    >>> p.tolist(), v.int().tolist()
    ([0, 1, 2, 3, 3, 4, 4, 4], [1, 1, 1, 1, 1, 1, 0, 0])
    """
    stride = math.ceil(num_input / num_windows)
    pos = torch.arange(num_windows)[:, None] * stride + torch.arange(per_window)[None, :]
    valid = pos < num_input
    return pos.clamp(max=num_input - 1).flatten(), valid.flatten()


def elm_routing(
    num_input: int,
    num_branch: int,
    synapses_per_branch: int,
    mode: str | None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Which input each synapse reads: ``(index [S] long, mask [S] float)`` with
    ``S = num_branch * synapses_per_branch`` (synapses of branch ``b`` are ``b*spb .. b*spb+spb-1``).

    Modes:
        ``None``: synapse ``j`` reads input ``j`` (needs ``S = num_input``); returns ``(None, None)``.
        ``"random"``: each synapse reads a uniformly drawn input (with repeats), from ``generator``.
        ``"neuronio"``: the reference's NeuronIO routing: inputs interleaved excitatory/inhibitory
            (:func:`interleave_indices`), then branch ``b`` reads the window of positions
            ``b * ceil(D / branches) + [0, spb)`` (:func:`window_indices`); windows overlap when
            ``spb`` exceeds the stride, and positions past ``D`` are padding (mask 0).
    """
    if mode not in ROUTINGS:
        raise InputError(f"ELM routing must be one of {ROUTINGS}, got {mode!r}")
    for name, value in (("num_input", num_input), ("num_branch", num_branch),
                        ("synapses_per_branch", synapses_per_branch)):  # fmt: skip
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"ELM {name} must be a positive int, got {value!r}")
    num_synapse = num_branch * synapses_per_branch
    if mode is None:
        if num_synapse != num_input:
            raise InputError(
                f"ELM without routing needs branches x synapses_per_branch = inputs, got "
                f"{num_branch} x {synapses_per_branch} = {num_synapse} for {num_input} inputs; "
                f"choose routing='random' or 'neuronio' to route inputs to synapses"
            )
        return None, None
    if mode == "random":
        index = torch.randint(num_input, (num_synapse,), generator=generator)
        return index, torch.ones(num_synapse)
    if math.ceil(num_input / num_branch) > synapses_per_branch:
        raise InputError(
            f"ELM neuronio routing needs synapses_per_branch >= ceil(inputs / branches) = "
            f"{math.ceil(num_input / num_branch)} so that every input reaches a branch, got "
            f"{synapses_per_branch}"
        )
    positions, valid = window_indices(num_input, num_branch, synapses_per_branch)
    return interleave_indices(num_input)[positions], valid.to(torch.get_default_dtype())


def routing_matrix(p: ELMParameters, dtype: torch.dtype) -> torch.Tensor:
    """``R [D, branches]``: ``R[i, b]`` sums ``w_s[j] * mask[j]`` over the synapses ``j`` of
    branch ``b`` that read input ``i`` (differentiable in ``w_s``)."""
    spb = p.num_synapse // p.num_branch
    w = p.synapse_weight.to(dtype)
    if p.routing_mask is not None:
        w = w * p.routing_mask.to(dtype)
    index = p.routing_index
    if index is None:
        index = torch.arange(p.num_synapse, device=w.device)
    branch = torch.arange(p.num_synapse, device=w.device) // spb
    r = torch.zeros(p.num_input, p.num_branch, dtype=dtype, device=w.device)
    return r.index_put((index, branch), w, accumulate=True)


def synaptic_drive(x: torch.Tensor, p: ELMParameters) -> torch.Tensor:
    """``R^T (w_s * x)`` for ``x [..., D]``: ``[..., branches]`` without forming the
    ``[..., synapses]`` routed tensor (plain ELM: an element-wise product; contiguous branches: a
    reshape and a sum; routed: one matmul with :func:`routing_matrix`)."""
    w = p.synapse_weight.to(x.dtype)
    if p.routing_index is None:
        if p.num_branch == p.num_synapse:
            return x * w
        return (x * w).unflatten(-1, (p.num_branch, -1)).sum(-1)
    r = routing_matrix(p, x.dtype)
    return (x.reshape(-1, x.shape[-1]) @ r).reshape(*x.shape[:-1], p.num_branch)


# --------------------------------------------------------------------------------------------
# validation


def check_elm_parameters(p: object, num_input: int, device: torch.device) -> ELMParameters:
    """Validate :class:`ELMParameters` against an input width and device (clear errors)."""
    if not isinstance(p, ELMParameters):
        raise InputError(f"ELM parameters must be ELMParameters, got {type(p).__name__}")
    check_option(p.activation, "ELM activation", ACTIVATIONS)
    nb, dm = p.num_branch, p.num_memory
    check_tensor(p.synapse_weight, "ELM synapse_weight w_s [S]", ndim=1, device=device)
    s = p.num_synapse
    if nb < 1 or s % nb:
        raise InputError(f"ELM has {s} synapses, not a multiple of its {nb} branches")
    check_tensor(p.memory_decay, "ELM memory_decay kappa_m [d_m]", ndim=1, device=device)
    check_tensor(p.memory_gain, "ELM memory_gain [d_m]", device=device)
    check_tensor(p.synapse_decay, "ELM synapse_decay kappa_s", ndim=(0, 1), device=device)
    if p.synapse_decay.dim() == 1 and p.synapse_decay.shape[0] not in (1, nb):
        raise InputError(
            f"ELM synapse_decay has {p.synapse_decay.shape[0]} values; expected 1 or one per "
            f"branch ({nb})"
        )
    if len(p.mlp_weights) < 2 or len(p.mlp_biases) != len(p.mlp_weights):
        raise InputError(
            f"ELM needs >= 2 MLP weights with one bias each, got {len(p.mlp_weights)} weights "
            f"and {len(p.mlp_biases)} biases"
        )
    hidden = p.mlp_weights[0].shape[0]
    expected = [(hidden, nb + dm)] + [(hidden, hidden)] * (len(p.mlp_weights) - 2) + [(dm, hidden)]
    for i, (w, b, shape) in enumerate(zip(p.mlp_weights, p.mlp_biases, expected, strict=True)):
        check_tensor(w, f"ELM MLP weight {i}", ndim=2, device=device)
        check_tensor(b, f"ELM MLP bias {i}", ndim=1, device=device)
        if tuple(w.shape) != shape or b.shape[0] != shape[0]:
            raise InputError(
                f"ELM MLP layer {i} has weight {tuple(w.shape)} and bias {tuple(b.shape)}; "
                f"expected weight {shape} and bias ({shape[0]},) for {nb} branches and "
                f"{dm} memory units"
            )
    check_tensor(p.readout_weight, "ELM readout_weight [d_out, d_m]", ndim=2, device=device)
    if p.readout_weight.shape[1] != dm or p.readout_bias.shape != p.readout_weight.shape[:1]:
        raise InputError(
            f"ELM readout weight {tuple(p.readout_weight.shape)} / bias "
            f"{tuple(p.readout_bias.shape)} do not match {dm} memory units"
        )
    if num_input != p.num_input:
        raise InputError(
            f"ELM input has {num_input} features but the neuron reads {p.num_input}; expected "
            f"x [..., {p.num_input}]"
        )
    if p.routing_index is None:
        if p.num_input != s:
            raise InputError(
                f"ELM without routing has one synapse per input: {s} synapses for "
                f"{p.num_input} inputs"
            )
    else:
        if p.routing_index.shape != (s,) or p.routing_index.dtype != torch.long:
            raise InputError(f"ELM routing_index must be a long tensor of shape ({s},)")
        if p.routing_index.device != device:
            raise InputError(f"ELM routing_index is on {p.routing_index.device}, not {device}")
        if p.routing_mask is None or p.routing_mask.shape != (s,):
            raise InputError(f"ELM routing_mask must be a tensor of shape ({s},)")
    return p


def _check_state(state: object, batch: int, p: ELMParameters, x: torch.Tensor) -> ELMState:
    if state is None:
        cd = compute_dtype(x.dtype)
        return ELMState(
            torch.zeros(batch, p.num_branch, dtype=cd, device=x.device),
            torch.zeros(batch, p.num_memory, dtype=cd, device=x.device),
        )
    if not isinstance(state, ELMState):
        raise InputError(f"ELM state must be an ELMState, got {type(state).__name__}")
    for name, t, width in (("b", state.b, p.num_branch), ("m", state.m, p.num_memory)):
        check_tensor(t, f"ELM state {name}", ndim=2, device=x.device)
        if tuple(t.shape) != (batch, width):
            raise InputError(
                f"ELM state {name} has shape {tuple(t.shape)}; expected ({batch}, {width}) "
                f"(batch {batch} of the input)"
            )
    return state


def _check_input(x: object, what: str, ndim: int, p: ELMParameters) -> torch.Tensor:
    hint = ""
    if isinstance(x, torch.Tensor) and x.dim() == ndim + 1 and ndim == 2:
        hint = " (a sequence goes to elm_multi_step, one step [B, D] to elm_step)"
    if isinstance(x, torch.Tensor) and x.dim() != ndim:
        raise InputError(f"{what} must have {ndim} dimensions, got shape {tuple(x.shape)}{hint}")
    return check_tensor(x, what, ndim=ndim)


# --------------------------------------------------------------------------------------------
# single step (the reference maths)


def _mlp(h: torch.Tensor, p: ELMParameters) -> torch.Tensor:
    last = len(p.mlp_weights) - 1
    for i, (w, b) in enumerate(zip(p.mlp_weights, p.mlp_biases, strict=True)):
        h = torch.nn.functional.linear(h, w.to(h.dtype), b.to(h.dtype))
        if i < last:
            h = activate(h, p.activation)
    return h


def elm_step(
    x: torch.Tensor, state: ELMState | None, p: ELMParameters
) -> tuple[torch.Tensor, ELMState]:
    """One ELM step (see the module docstring): ``x [B, D] -> (y [B, d_out], ELMState)``."""
    _check_input(x, "ELM input x [B, D]", 2, p)
    check_elm_parameters(p, x.shape[-1], x.device)
    st = _check_state(state, x.shape[0], p, x)
    return _step(x, st, p)


def _step(x: torch.Tensor, st: ELMState, p: ELMParameters) -> tuple[torch.Tensor, ELMState]:
    cd = st.m.dtype
    km = p.memory_decay.to(cd)
    b = p.synapse_decay.to(cd) * st.b + synaptic_drive(x.to(cd), p)
    delta = scaled_tanh(_mlp(torch.cat([b, km * st.m], dim=-1), p))
    m = km * st.m + p.memory_gain.to(cd) * delta
    y = torch.nn.functional.linear(m, p.readout_weight.to(cd), p.readout_bias.to(cd))
    return y, ELMState(b, m)


# --------------------------------------------------------------------------------------------
# the elm_memory_scan operation: the nonlinear memory recurrence


def validate_elm_memory_scan(
    p: torch.Tensor,
    m0: torch.Tensor,
    w_mem: torch.Tensor,
    w_hidden: torch.Tensor,
    b_hidden: torch.Tensor,
    w_out: torch.Tensor,
    b_out: torch.Tensor,
    decay: torch.Tensor,
    gain: torch.Tensor,
    activation: str = "relu",
) -> None:
    """Check the arguments of ``elm_memory_scan`` (see :func:`elm_memory_scan_reference`)."""
    check_tensor(p, "elm_memory_scan input p [T, B, H]", ndim=3)
    steps, batch, hidden = p.shape
    check_tensor(m0, "elm_memory_scan initial memory m0 [B, d_m]", ndim=2, device=p.device)
    dm = m0.shape[1]
    if m0.shape[0] != batch:
        hint = " (is p time-major [T, B, H]?)" if m0.shape[0] == steps else ""
        raise InputError(
            f"elm_memory_scan m0 has batch {m0.shape[0]} but p {tuple(p.shape)} has batch "
            f"{batch}{hint}"
        )
    shapes = {
        "w_mem": (w_mem, (hidden, dm)),
        "w_out": (w_out, (dm, hidden)),
        "b_out": (b_out, (dm,)),
    }
    for name, (t, shape) in shapes.items():
        check_tensor(t, f"elm_memory_scan {name}", device=p.device)
        if tuple(t.shape) != shape:
            raise InputError(f"elm_memory_scan {name} has shape {tuple(t.shape)}; expected {shape}")
    check_tensor(w_hidden, "elm_memory_scan w_hidden [L-1, H, H]", ndim=3, device=p.device)
    check_tensor(b_hidden, "elm_memory_scan b_hidden [L-1, H]", ndim=2, device=p.device)
    layers = w_hidden.shape[0]
    if tuple(w_hidden.shape[1:]) != (hidden, hidden) or tuple(b_hidden.shape) != (layers, hidden):
        raise InputError(
            f"elm_memory_scan w_hidden {tuple(w_hidden.shape)} / b_hidden "
            f"{tuple(b_hidden.shape)}; expected [L-1, {hidden}, {hidden}] and [L-1, {hidden}]"
        )
    for name, t in (("decay", decay), ("gain", gain)):
        check_tensor(t, f"elm_memory_scan {name}", device=p.device)
        try:
            ok = tuple(torch.broadcast_shapes(t.shape, (dm,))) == (dm,)
        except RuntimeError:
            ok = False
        if not ok:
            raise InputError(
                f"elm_memory_scan {name} of shape {tuple(t.shape)} does not broadcast to the "
                f"{dm} memory units"
            )
    check_option(activation, "elm_memory_scan activation", ACTIVATIONS)


def elm_memory_scan_reference(
    p: torch.Tensor,
    m0: torch.Tensor,
    w_mem: torch.Tensor,
    w_hidden: torch.Tensor,
    b_hidden: torch.Tensor,
    w_out: torch.Tensor,
    b_out: torch.Tensor,
    decay: torch.Tensor,
    gain: torch.Tensor,
    activation: str = "relu",
) -> torch.Tensor:
    """Reference (the autograd step loop). For ``t = 0 .. T-1``::

        a = act(p[t] + m @ w_mem.T)
        a = act(a @ w_hidden[l].T + b_hidden[l])      for l = 0 .. L-2
        m = decay * m + gain * tanh(a @ w_out.T + b_out)

    Returns the memory trajectory ``M [T, B, d_m]`` (``m`` after each step). The ELM maps to it
    with ``p = b W_1b^T + c_1`` (the branch part of the first layer), ``w_mem = W_1m diag(kappa_m)``,
    ``w_out = (2/3) W_out``, ``b_out = (2/3) c_out`` and ``gain = 1.7159 g``.
    """
    m = m0.to(p.dtype)
    out = []
    for t in range(p.shape[0]):
        a = activate(p[t] + m @ w_mem.to(p.dtype).t(), activation)
        for layer in range(w_hidden.shape[0]):
            a = activate(a @ w_hidden[layer].to(p.dtype).t() + b_hidden[layer], activation)
        delta = torch.tanh(a @ w_out.to(p.dtype).t() + b_out)
        m = decay * m + gain * delta
        out.append(m)
    return torch.stack(out)


def _act_grad(z: torch.Tensor, activation: str) -> torch.Tensor:
    """Derivative of the activation at pre-activation ``z`` (ReLU: 0 at 0, as torch)."""
    if activation == "relu":
        return (z > 0).to(z.dtype)
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


class ForwardWeights(NamedTuple):
    """The memory scan's weights laid out for the forward loop (all in the compute dtype)."""

    wm_t: torch.Tensor  # [d_m, H]
    wh_t: tuple[torch.Tensor, ...]  # [H, H] each
    bh: tuple[torch.Tensor, ...]  # [B, H] each
    wo_t: torch.Tensor  # [H, d_m], times 2
    bo: torch.Tensor  # [B, d_m], times 2
    kappa: torch.Tensor  # [d_m]
    neg_g: torch.Tensor  # [B, d_m]
    two_g: torch.Tensor  # [d_m]


class BackwardWeights(NamedTuple):
    """The memory scan's weights laid out for the backward loop."""

    kappa: torch.Tensor  # [d_m]
    wm: torch.Tensor  # [H, d_m]
    wh: tuple[torch.Tensor, ...]  # [H, H] each
    wo: torch.Tensor  # [d_m, H]


def forward_loop(
    p: torch.Tensor,
    m0: torch.Tensor,
    w: ForwardWeights,
    hs: list[torch.Tensor],
    sig: torch.Tensor,
    mem: torch.Tensor,
    scratch: torch.Tensor,
    zo: torch.Tensor,
    relu: bool,
) -> None:
    """The forward time loop of ``elm_memory_scan`` into preallocated buffers (no allocation).

    ``hs[l] [T, B, H]`` receives layer ``l``'s post-ReLU activations (``relu``; the backward
    reads the ReLU mask from them) or its SiLU pre-activations; ``sig [T, B, d_m]`` the output
    sigmoids, ``mem [T, B, d_m]`` the memory; ``scratch [B, H]`` and ``zo [B, d_m]`` are work space.
    """
    layers = len(w.wh_t)
    p_t = p.unbind(0)
    h_t = [h.unbind(0) for h in hs]
    s_t, m_t = sig.unbind(0), mem.unbind(0)
    m, a = m0, scratch
    for t in range(p.shape[0]):
        for layer in range(layers + 1):
            if relu:
                if layer == 0:
                    torch.addmm(p_t[t], m, w.wm_t, out=scratch)
                else:
                    torch.addmm(w.bh[layer - 1], a, w.wh_t[layer - 1], out=scratch)
                a = torch.clamp_min(scratch, 0.0, out=h_t[layer][t])
            else:
                if layer == 0:
                    z = torch.addmm(p_t[t], m, w.wm_t, out=h_t[0][t])
                else:
                    z = torch.addmm(w.bh[layer - 1], a, w.wh_t[layer - 1], out=h_t[layer][t])
                torch.sigmoid(z, out=scratch)
                a = scratch.mul_(z)
        torch.addmm(w.bo, a, w.wo_t, out=zo)
        torch.sigmoid(zo, out=s_t[t])
        torch.addcmul(w.neg_g, m, w.kappa, out=m_t[t])
        m = m_t[t].addcmul_(s_t[t], w.two_g)


def backward_loop(
    gext: torch.Tensor,
    w: BackwardWeights,
    dtanh: torch.Tensor,
    dact: list[torch.Tensor],
    gm: torch.Tensor,
    gzo: torch.Tensor,
    gz: list[torch.Tensor],
    ga: torch.Tensor,
) -> None:
    """The reverse time loop: ``gm[t % len(gm)] = dL/dm_t`` in full (``gm`` is ``[T, B, d_m]`` to
    keep every step, or ``[2, B, d_m]`` as a ping-pong pair), ``gzo[t]`` the gradient at the
    output pre-activation, ``gz[l][t]`` at each hidden pre-activation (no allocation). ``dact``
    are the activation derivatives (or ReLU masks, bool)."""
    steps = gext.shape[0]
    layers = len(w.wh)
    keep = gm.shape[0]
    g_t = gext.unbind(0)
    gm_t, gzo_t = gm.unbind(0), gzo.unbind(0)
    gz_t = [x.unbind(0) for x in gz]
    dtanh_t = dtanh.unbind(0)
    dact_t = [x.unbind(0) for x in dact]
    gm_t[(steps - 1) % keep].copy_(g_t[steps - 1])
    for t in range(steps - 1, -1, -1):
        here = gm_t[t % keep]
        torch.mul(here, dtanh_t[t], out=gzo_t[t])
        torch.mm(gzo_t[t], w.wo, out=ga)
        for layer in range(layers, 0, -1):
            torch.mul(ga, dact_t[layer][t], out=gz_t[layer][t])
            torch.mm(gz_t[layer][t], w.wh[layer - 1], out=ga)
        torch.mul(ga, dact_t[0][t], out=gz_t[0][t])
        if t > 0:
            before = gm_t[(t - 1) % keep]
            torch.addcmul(g_t[t - 1], here, w.kappa, out=before)
            before.addmm_(gz_t[0][t], w.wm)


class EagerLoops:
    """Runs :func:`forward_loop` / :func:`backward_loop` directly on fresh buffers (the ``loop``
    backend); :mod:`neurosim.functional._elm_graph` replays them from CUDA graphs instead."""

    def forward(
        self, p: torch.Tensor, m0: torch.Tensor, w: ForwardWeights, relu: bool
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        steps, batch, hidden = p.shape
        dm = m0.shape[1]

        def new(*shape: int) -> torch.Tensor:  # huge pages on the CPU: written once, step by step
            return memory.empty(shape, p.dtype, p.device)

        hs = [new(steps, batch, hidden) for _ in range(len(w.wh_t) + 1)]
        sig, mem = new(steps, batch, dm), new(steps, batch, dm)
        forward_loop(p, m0, w, hs, sig, mem, new(batch, hidden), new(batch, dm), relu)
        return hs, sig, mem

    def backward(
        self,
        gext: torch.Tensor,
        w: BackwardWeights,
        dtanh: torch.Tensor,
        dact: list[torch.Tensor],
        keep_all: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        steps, batch, dm = dtanh.shape

        def new(*shape: int) -> torch.Tensor:
            return memory.empty(shape, dtanh.dtype, dtanh.device)

        gm = new(steps if keep_all else 2, batch, dm)
        gzo = new(steps, batch, dm)
        gz = [new(*x.shape) for x in dact]
        ga = new(batch, dact[0].shape[2])
        backward_loop(gext, w, dtanh, dact, gm, gzo, gz, ga)
        return gm, gzo, gz


class _MemoryScanLoop(torch.autograd.Function):
    """The memory recurrence with preallocated buffers, ``out=`` kernels and a hand backward.

    ``tanh(v) = 2 sigmoid(2 v) - 1`` (ATen's float ``tanh`` costs ~5x its ``sigmoid`` on the CPU),
    so each step is ``addmm, act, [addmm, act]*, addmm, sigmoid, addcmul, addcmul_``:
    ``m_t = (kappa m_{t-1} - g) + 2 g sigmoid(2 z_t)``. Forward saves the hidden activations
    (ReLU) or pre-activations (SiLU) ``[T, B, H]`` per layer, the sigmoids ``S [T, B, d_m]`` and
    the memories ``M``; the backward walks time in reverse with one small matmul per layer and
    step plus the recurrent one, and forms every weight gradient afterwards as one large matmul
    over all ``T * B`` rows. Large temporaries are kept few (on the CPU each fresh buffer costs
    page faults). ``loops`` runs the two time loops (:class:`EagerLoops`, or CUDA-graph replays).
    """

    @staticmethod
    def forward(
        ctx: Any,
        p: torch.Tensor,
        m0: torch.Tensor,
        w_mem: torch.Tensor,
        w_hidden: torch.Tensor,
        b_hidden: torch.Tensor,
        w_out: torch.Tensor,
        b_out: torch.Tensor,
        decay: torch.Tensor,
        gain: torch.Tensor,
        activation: str,
        loops: Any,
    ) -> torch.Tensor:
        in_dtype = p.dtype
        cd = compute_dtype(in_dtype)
        batch, hidden = p.shape[1:]
        dm = m0.shape[1]
        layers = w_hidden.shape[0]
        g = gain.to(cd).expand(dm)
        weights = ForwardWeights(
            wm_t=w_mem.to(cd).t().contiguous(),
            wh_t=tuple(w_hidden[i].to(cd).t().contiguous() for i in range(layers)),
            bh=tuple(b_hidden[i].to(cd).expand(batch, hidden).contiguous() for i in range(layers)),
            wo_t=(2 * w_out.to(cd)).t().contiguous(),
            bo=(2 * b_out.to(cd)).expand(batch, dm).contiguous(),
            kappa=decay.to(cd).expand(dm).contiguous(),
            neg_g=(-g).expand(batch, dm).contiguous(),
            two_g=(2 * g).contiguous(),
        )
        hs, sig, mem = loops.forward(
            p.to(cd).contiguous(), m0.to(cd).contiguous(), weights, activation == "relu"
        )
        ctx.save_for_backward(m0, w_mem, w_hidden, w_out, decay, gain, sig, mem, *hs)
        ctx.activation = activation
        ctx.in_dtype = in_dtype
        ctx.loops = loops
        return mem if mem.dtype == in_dtype else mem.to(in_dtype)

    @staticmethod
    def backward(ctx: Any, grad_mem: torch.Tensor) -> tuple[Any, ...]:
        m0, w_mem, w_hidden, w_out, decay, gain, sig, mem, *hs = ctx.saved_tensors
        activation = ctx.activation
        relu = activation == "relu"
        cd = sig.dtype
        dm = sig.shape[2]
        hidden = hs[0].shape[2]
        layers = len(hs) - 1
        needs = ctx.needs_input_grad
        g = gain.to(cd).expand(dm)
        weights = BackwardWeights(
            kappa=decay.to(cd).expand(dm).contiguous(),
            wm=w_mem.to(cd).contiguous(),
            wh=tuple(w_hidden[i].to(cd).contiguous() for i in range(layers)),
            wo=w_out.to(cd).contiguous(),
        )
        # d m_t / d (a W_out^T + b_out) = gain * (1 - tanh^2) = gain * 4 s (1 - s), all steps at once
        dtanh = (1 - sig).mul_(sig).mul_(4 * g)
        # ReLU: the mask of the saved activations (bool); SiLU: its derivative at the saved z
        dact = [h > 0 for h in hs] if relu else [_act_grad(z, activation) for z in hs]
        keep_all = bool(needs[7] or needs[8])
        gm, gzo, gz = ctx.loops.backward(
            grad_mem.to(cd).contiguous(), weights, dtanh, dact, keep_all
        )
        del dtanh, dact

        def flat(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(-1, t.shape[-1])

        grad_p = gz[0].to(ctx.in_dtype) if needs[0] else None
        grad_m0 = None
        if needs[1]:
            grad_m0 = torch.addmm(gm[0] * weights.kappa, gz[0][0], weights.wm).to(m0.dtype)
        grad_wm = None
        if needs[2]:  # sum_t gz0_t^T m_{t-1}, m_{-1} = m0, without concatenating
            grad_wm = torch.addmm(gz[0][0].t() @ m0.to(cd), flat(gz[0][1:]).t(), flat(mem[:-1])).to(
                w_mem.dtype
            )
        acts = hs if relu else [activate(z, activation) for z in hs]
        grad_wh = grad_bh = None
        if needs[3] or needs[4]:
            if layers:
                grad_wh = torch.stack([flat(gz[i + 1]).t() @ flat(acts[i]) for i in range(layers)])
                grad_bh = torch.stack([gz[i + 1].sum((0, 1)) for i in range(layers)])
            else:
                grad_wh = torch.zeros(0, hidden, hidden, dtype=cd, device=sig.device)
                grad_bh = torch.zeros(0, hidden, dtype=cd, device=sig.device)
            grad_wh, grad_bh = grad_wh.to(w_hidden.dtype), grad_bh.to(w_hidden.dtype)
        grad_wo = (flat(gzo).t() @ flat(acts[-1])).to(w_out.dtype) if needs[5] else None
        grad_bo = gzo.sum((0, 1)).to(w_out.dtype) if needs[6] else None
        grad_decay = grad_gain = None
        if needs[7]:
            m_prev = torch.cat([m0.to(cd).unsqueeze(0), mem[:-1]])
            grad_decay = (gm * m_prev).sum((0, 1)).sum_to_size(decay.shape).to(decay.dtype)
        if needs[8]:
            grad_gain = (gm * (2 * sig - 1)).sum((0, 1)).sum_to_size(gain.shape).to(gain.dtype)
        return (
            grad_p, grad_m0, grad_wm, grad_wh, grad_bh, grad_wo, grad_bo, grad_decay, grad_gain,
            None, None,
        )  # fmt: skip


def run_memory_scan(
    loops: Any,
    p: torch.Tensor,
    m0: torch.Tensor,
    w_mem: torch.Tensor,
    w_hidden: torch.Tensor,
    b_hidden: torch.Tensor,
    w_out: torch.Tensor,
    b_out: torch.Tensor,
    decay: torch.Tensor,
    gain: torch.Tensor,
    activation: str = "relu",
) -> torch.Tensor:
    """:class:`_MemoryScanLoop` with the given time-loop runner (autocast off inside)."""
    with torch.autocast(p.device.type, enabled=False):
        out: torch.Tensor = _MemoryScanLoop.apply(  # type: ignore[no-untyped-call]
            p, m0, w_mem, w_hidden, b_hidden, w_out, b_out, decay, gain, activation, loops
        )
    return out


elm_memory_scan_loop = functools.partial(run_memory_scan, EagerLoops())
"""The ``loop`` backend: :class:`_MemoryScanLoop` with :class:`EagerLoops` (same results as the
reference); the ``numba`` and ``cuda_graph`` backends are the same call with other loops."""


def _example(
    device: torch.device, dtype: torch.dtype, generator: torch.Generator
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    steps, batch, hidden, dm = 17, 3, 6, 4

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale

    args = (
        rand(steps, batch, hidden),
        rand(batch, dm),
        rand(hidden, dm, scale=0.5),
        rand(1, hidden, hidden, scale=0.4),
        rand(1, hidden, scale=0.1),
        rand(dm, hidden, scale=0.5),
        rand(dm, scale=0.1),
        torch.rand(dm, generator=generator, dtype=torch.float64) * 0.5 + 0.45,
        torch.rand(dm, generator=generator, dtype=torch.float64) + 0.1,
    )
    return tuple(t.to(device, dtype) for t in args), {"activation": "silu"}


def _bad_inputs(device: torch.device) -> list[tuple[tuple[Any, ...], dict[str, Any], str]]:
    p = torch.randn(5, 2, 6, device=device)
    m0 = torch.zeros(2, 4, device=device)
    wm, wo = torch.zeros(6, 4, device=device), torch.zeros(4, 6, device=device)
    wh, bh = torch.zeros(0, 6, 6, device=device), torch.zeros(0, 6, device=device)
    bo, k = torch.zeros(4, device=device), torch.full((4,), 0.9, device=device)
    good = (p, m0, wm, wh, bh, wo, bo, k, k)
    nan = p.clone().fill_(float("nan"))
    return [
        ((nan, *good[1:]), {}, "non-finite"),
        ((p, torch.zeros(5, 4, device=device), *good[2:]), {}, "time-major"),
        ((p, m0, wo, *good[3:]), {}, "w_mem has shape"),
        ((*good[:7], torch.full((3,), 0.9, device=device), k), {}, "does not broadcast"),
        (good, {"activation": "tanh"}, "activation must be one of"),
    ]


kernels.register(
    Operation(
        name="elm_memory_scan",
        reference=elm_memory_scan_reference,
        validate=validate_elm_memory_scan,
        example=_example,
        bad_inputs=_bad_inputs,
        grad_args=(0, 1, 2, 3, 4, 5, 6, 7, 8),
        doc="ELM memory recurrence m_t = decay m + gain tanh(MLP(p_t, m)) over [T, B, H]",
    )
)
kernels.register_backend(
    "elm_memory_scan", Backend("loop", lambda: elm_memory_scan_loop, priority=5)
)


def _load_numba() -> Any:
    from neurosim.functional._numba_elm import elm_memory_scan_numba

    return elm_memory_scan_numba


kernels.register_backend("elm_memory_scan", numba_backend(_load_numba))


def _load_cuda_graph() -> Any:
    from neurosim.functional._elm_graph import elm_memory_scan_cuda_graph

    return elm_memory_scan_cuda_graph


def _cuda_graph_available(device: torch.device) -> str | None:
    if not torch.cuda.is_available():
        return "CUDA graphs need a CUDA device (torch.cuda.is_available() is False)"
    return None


kernels.register_backend(
    "elm_memory_scan",
    Backend(
        "cuda_graph",
        _load_cuda_graph,
        devices=frozenset({"cuda"}),
        auto_devices=frozenset(),  # opt-in: name it
        priority=15,
        available=_cuda_graph_available,
    ),
)


# --------------------------------------------------------------------------------------------
# branch traces: a linear scan with a hand-written backward


class _TraceScan(torch.autograd.Function):
    """``y_t = decay * y_{t-1} + x_t`` with one fused ``addcmul`` per step, forward and backward
    (the autograd step loop of ``leaky_scan``'s reference costs O(T^2) memory traffic in its
    backward, one zero-filled ``[T, B, N]`` gradient per step)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, decay: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        k = decay.to(x.dtype).expand(x.shape[2:]).contiguous()
        kernels_ = _numba_trace(x)
        if kernels_ is not None:  # CPU: one compiled loop instead of T dispatched addcmuls
            y = memory.empty(x.shape, x.dtype)
            h = h0.to(x.dtype).expand(x.shape[1:])
            kernels_.trace_forward(x.detach().numpy(), k.numpy(), h.detach().numpy(), y.numpy())
            ctx.save_for_backward(y, decay, h0)
            return y
        y = x.new_empty(x.shape)  # contiguous time-major, whatever the layout of x
        prev = h0.to(x.dtype)
        for x_t, y_t in zip(x.unbind(0), y.unbind(0), strict=True):
            prev = torch.addcmul(x_t, prev, k, out=y_t)
        ctx.save_for_backward(y, decay, h0)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        y, decay, h0 = ctx.saved_tensors
        k = decay.to(grad.dtype).expand(grad.shape[2:]).contiguous()
        kernels_ = _numba_trace(grad)
        if kernels_ is not None:
            gx = memory.empty(grad.shape, grad.dtype)
            kernels_.trace_backward(grad.detach().numpy(), k.numpy(), gx.numpy())
        else:
            gx = grad.new_empty(grad.shape)
            carry = grad.new_zeros(grad.shape[1:])
            for g_t, gx_t in zip(reversed(grad.unbind(0)), reversed(gx.unbind(0)), strict=True):
                carry = torch.addcmul(g_t, carry, k, out=gx_t)
        needs = ctx.needs_input_grad
        grad_decay = None
        if needs[1]:
            prev = torch.cat([h0.to(y.dtype).unsqueeze(0), y[:-1]])
            grad_decay = (gx * prev).sum((0, 1)).sum_to_size(decay.shape).to(decay.dtype)
        grad_h0 = (gx[0] * k).to(h0.dtype) if needs[2] else None
        return gx if needs[0] else None, grad_decay, grad_h0


SPARSE_INPUT_DENSITY = 0.1
"""On the CPU, plain ELM multiplies its input by the first layer's weights visiting only the
non-zero inputs when at most this share of them is non-zero (spike trains; the benchmark's
input has 2%): the dense product of ``[T B, D] x [D, H]`` is then mostly multiplications by 0."""


class _SpikeTrace(torch.autograd.Function):
    """``pre_t = sum_(s <= t) kappa^(t-s) a x_s + c`` (``a [H, D]``, one decay ``kappa``
    without gradient) through the non-zero entries of ``x [T, B, D]``, in one numba pass:
    plain ELM's first-layer input on spikes, the trace taken after the product (they
    commute), with no ``[T, B, H]`` temporaries besides the output."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, a: torch.Tensor, c: torch.Tensor, decay: float, kernels_: Any
    ) -> torch.Tensor:
        a_t = a.detach().t().contiguous()
        steps, batch = x.shape[:2]
        hidden = a.shape[0]
        out = memory.empty((steps, batch, hidden), a.dtype)
        bias = c.detach().to(a.dtype).expand(hidden).contiguous()
        carry = a.new_empty(batch, hidden)
        kernels_.spike_trace(
            x.detach().numpy(), a_t.numpy(), decay, bias.numpy(), out.numpy(), carry.numpy()
        )
        ctx.save_for_backward(x, a)
        ctx.decay, ctx.kernels = decay, kernels_
        ctx.c_shape = c.shape
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        x, a = ctx.saved_tensors
        grad_x = grad_a = grad_c = None
        g = grad.detach().to(a.dtype).contiguous()
        if ctx.needs_input_grad[0]:  # d pre / d x_s = sum_(t >= s) kappa^(t-s) a: trace back
            back = trace_scan(g.flip(0), a.new_full((g.shape[2],), ctx.decay),
                              g.new_zeros(g.shape[1:])).flip(0)  # fmt: skip
            grad_x = (back @ a).to(x.dtype)
        if ctx.needs_input_grad[1]:
            grad_a_t = torch.zeros(a.shape[1], a.shape[0], dtype=a.dtype)
            carry = a.new_empty(g.shape[1], g.shape[2])
            ctx.kernels.spike_trace_grad(
                x.detach().numpy(), g.numpy(), ctx.decay, grad_a_t.numpy(), carry.numpy()
            )
            grad_a = grad_a_t.t()
        if ctx.needs_input_grad[2]:
            grad_c = g.sum((0, 1)).sum_to_size(ctx.c_shape)
        return grad_x, grad_a, grad_c, None, None


def _sparse_input_kernels(x: torch.Tensor, p: ELMParameters) -> Any:
    """The numba kernels when plain ELM's input may take the sparse path (CPU, float32/64,
    one synaptic decay for all inputs, at most ``SPARSE_INPUT_DENSITY`` of the first 32 steps'
    inputs non-zero), else ``None``. The count reads back one number (no device sync on the
    CPU); a sample that misjudges the rest costs speed, never correctness."""
    decay = p.synapse_decay
    if x.numel() == 0 or decay.device.type != "cpu":
        return None
    if decay.requires_grad and torch.is_grad_enabled():  # the fused pass has no decay gradient
        return None
    if decay.numel() > 1 and not bool((decay == decay.reshape(-1)[0]).all()):
        return None  # one value for every branch
    kernels_ = _numba_trace(x)
    if kernels_ is None:
        return None
    sample = x[: min(x.shape[0], 32)]  # the first steps decide (a full count costs ~1 ms)
    if int(torch.count_nonzero(sample)) > SPARSE_INPUT_DENSITY * sample.numel():
        return None
    return kernels_


def _numba_trace(x: torch.Tensor) -> Any:
    """The numba trace loops (:mod:`neurosim.functional._numba_elm`) for a CPU float32/64
    tensor when numba imports, else ``None`` (the ``addcmul`` loop runs)."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return None
    try:
        from neurosim.functional import _numba_elm
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    return _numba_elm


def trace_scan(
    x: torch.Tensor, decay: torch.Tensor, h0: torch.Tensor, backend: str = "loop"
) -> torch.Tensor:
    """Branch traces ``y_t = decay * y_{t-1} + x_t`` over ``x [T, B, N]`` from ``h0 [B, N]``.

    ``backend="loop"`` (default) is :class:`_TraceScan`; any other name runs the registry's
    ``leaky_scan`` with that backend (``torch``, ``compile``, ``triton``, ``auto``).
    """
    if backend == "loop":
        with torch.autocast(x.device.type, enabled=False):
            out: torch.Tensor = _TraceScan.apply(x, decay, h0)  # type: ignore[no-untyped-call]
        return out
    return leaky_scan(x, decay, h0, backend=backend)


# --------------------------------------------------------------------------------------------
# multi-step


def memory_scan_arguments(
    p: ELMParameters, dtype: torch.dtype
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
    """Map ELM parameters onto ``elm_memory_scan``: ``(scan weights, W_1b, c_1)``.

    The scan weights are ``(w_mem, w_hidden, b_hidden, w_out, b_out, decay, gain)`` with the
    decay folded into ``w_mem`` and the scaled-tanh constants into ``w_out``, ``b_out``, ``gain``.
    """
    nb = p.num_branch
    w1, c1 = p.mlp_weights[0].to(dtype), p.mlp_biases[0].to(dtype)
    km = p.memory_decay.to(dtype)
    hidden = w1.shape[0]
    inner_w = [w.to(dtype) for w in p.mlp_weights[1:-1]]
    inner_b = [b.to(dtype) for b in p.mlp_biases[1:-1]]
    w_hidden = torch.stack(inner_w) if inner_w else w1.new_zeros(0, hidden, hidden)
    b_hidden = torch.stack(inner_b) if inner_b else w1.new_zeros(0, hidden)
    scan = (
        w1[:, nb:] * km,
        w_hidden,
        b_hidden,
        p.mlp_weights[-1].to(dtype) * TANH_SLOPE,
        p.mlp_biases[-1].to(dtype) * TANH_SLOPE,
        km,
        p.memory_gain.to(dtype) * TANH_SCALE,
    )
    return scan, w1[:, :nb], c1


def _time_major_drive(x: torch.Tensor, p: ELMParameters) -> torch.Tensor:
    """:func:`synaptic_drive` of ``x [T, B, D]`` as a contiguous ``[T, B, branches]``.

    A batch-major input seen time-major (``x_bt.transpose(0, 1)``) is routed in its own layout and
    only the (narrower) drive is transposed, so the input is never copied.
    """
    if not x.is_contiguous() and x.transpose(0, 1).is_contiguous():
        return synaptic_drive(x.transpose(0, 1), p).transpose(0, 1).contiguous()
    return synaptic_drive(x, p).contiguous()


def elm_multi_step(
    x: torch.Tensor,
    state: ELMState | None,
    p: ELMParameters,
    *,
    backend: str = "auto",
    trace_backend: str = "loop",
    record_branch: bool = False,
) -> ELMSequence:
    """ELM over a time-major sequence ``x [T, B, D]`` (see the module docstring).

    Same results as :func:`elm_step` applied ``T`` times (tested, gradients included), computed
    as: synaptic drive for all steps (one matmul), branch traces (:func:`trace_scan`, backend
    ``trace_backend``), the first MLP layer's branch part (one matmul), the memory recurrence
    (``elm_memory_scan``, backend ``backend``), the readout (one matmul).

    Plain ELM (one synapse per input, no routing) started from rest (``state=None``) traces the
    raw input instead, ``x~_t = kappa_s x~_{t-1} + x_t``, and applies ``w_s`` with the first
    layer (``pre = x~ (W_1b diag(w_s))^T``): the same numbers, but the backward needs one large
    matmul fewer (no gradient with respect to the traces of an input that needs none).

    ``record_branch``: also return the branch traces ``b [T, B, branches]`` (``branch`` is
    ``None`` otherwise on that path).
    """
    _check_input(x, "ELM input x [T, B, D]", 3, p)
    check_elm_parameters(p, x.shape[-1], x.device)
    steps, batch = x.shape[:2]
    if steps == 0:
        raise InputError("ELM input x [T, B, D] has no time steps (T = 0)")
    st = _check_state(state, batch, p, x)
    cd = st.m.dtype
    scan, w1b, c1 = memory_scan_arguments(p, cd)
    kappa_s = p.synapse_decay.to(cd).expand(p.num_branch)
    plain = p.routing_index is None and p.num_branch == p.num_synapse
    branch: torch.Tensor | None
    sparse = (
        _sparse_input_kernels(x, p)
        if plain and state is None and not record_branch and trace_backend == "loop"
        else None
    )
    if sparse is not None:
        # spikes: the trace is linear and shares one decay, so trace the first layer's input
        # drive instead, sum_s kappa^(t-s) (A x_s) = A x~_t, computed from the non-zeros of x
        xc = x.to(cd)
        w_s = p.synapse_weight.to(cd)
        decay_s = p.synapse_decay.to(cd).reshape(-1)[:1]  # the one value (no gradient)
        pre = _SpikeTrace.apply(  # type: ignore[no-untyped-call]
            xc, w1b * w_s, c1, float(decay_s), sparse
        )
        # the last branch state x~_(T-1) w_s, a weighted sum over time
        powers = decay_s ** torch.arange(steps - 1, -1, -1, dtype=cd, device=x.device)
        branch, last_b = None, torch.einsum("t,tbd->bd", powers, xc) * w_s
    elif plain and state is None and not record_branch:
        xc = x.to(cd)  # a batch-major input stays a strided view: the scan reads it step by step
        traced = trace_scan(xc, kappa_s, xc.new_zeros(xc.shape[1:]), trace_backend)
        w_s = p.synapse_weight.to(cd)
        pre = torch.nn.functional.linear(traced, w1b * w_s, c1)
        branch, last_b = None, traced[-1] * w_s
    else:
        drive = _time_major_drive(x.to(cd), p)
        branch = trace_scan(drive, kappa_s, st.b.to(cd), trace_backend)
        pre = torch.nn.functional.linear(branch, w1b, c1)
        last_b = branch[-1]
    memory = kernels.call("elm_memory_scan", pre, st.m, *scan, activation=p.activation,
                          backend=backend)  # fmt: skip
    output = torch.nn.functional.linear(
        memory, p.readout_weight.to(memory.dtype), p.readout_bias.to(memory.dtype)
    )
    return ELMSequence(output, memory, ELMState(last_b, memory[-1]), branch)


def elm_reference_sequence(
    x: torch.Tensor, state: ELMState | None, p: ELMParameters
) -> ELMSequence:
    """:func:`elm_step` applied ``T`` times under autograd (the slow, obviously-right path)."""
    _check_input(x, "ELM input x [T, B, D]", 3, p)
    check_elm_parameters(p, x.shape[-1], x.device)
    st = _check_state(state, x.shape[1], p, x)
    outs, mems, branches = [], [], []
    for t in range(x.shape[0]):
        y, st = _step(x[t], st, p)
        outs.append(y)
        mems.append(st.m)
        branches.append(st.b)
    return ELMSequence(torch.stack(outs), torch.stack(mems), st, torch.stack(branches))


def memory_time_constants(
    num_memory: int, tau_min: float, tau_max: float, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``num_memory`` log-spaced time constants from ``tau_min`` to ``tau_max`` (inclusive).

    >>> memory_time_constants(3, 1.0, 100.0).tolist()
    [1.0, 10.0, 100.0]
    """
    if not (0 < tau_min <= tau_max) or not math.isfinite(tau_max):
        raise InputError(
            f"ELM memory taus need 0 < tau_min <= tau_max < inf, got {tau_min}, {tau_max}"
        )
    return torch.logspace(math.log10(tau_min), math.log10(tau_max), num_memory, dtype=dtype)


def check_sizes(sizes: Sequence[tuple[str, object]]) -> None:
    """Every named size is a positive int (else :class:`InputError`)."""
    for name, value in sizes:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"ELM {name} must be a positive int, got {value!r}")
