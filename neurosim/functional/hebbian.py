"""Hebbian / anti-Hebbian subspace learning (Oja's subspace rule) and presynaptic signals.

A set of ``k`` lateral "subspace neurons" with weights ``H [k, d]`` reads a presynaptic activity
``x [d]`` as ``y = H x`` and learns by Oja's subspace rule (Oja 1989; the rule of HLOP, Xiao et
al., ICLR 2024, Eq. 3):

.. math::
    \\Delta H = \\eta \\, (y x^\\top - y y^\\top H) = \\eta \\, y (x - H^\\top y)^\\top,

a Hebbian term ``y x^T`` and an anti-Hebbian (lateral) term ``-y y^T H``. Averaged over the
data, its stable fixed points are the ``H`` whose rows are an orthonormal basis of the span of
the top ``k`` eigenvectors of the uncentred second moment ``C = E[x x^T]``: the principal
subspace of the activity (no centring: HLOP protects the inputs themselves, mean included).

**Frozen rows.** HLOP keeps the rows learned on earlier tasks fixed and adds new rows for each
task. With ``H = [H_f; H_n]`` (``n_frozen`` frozen rows first), only ``H_n`` changes. The frozen
neurons' output is subtracted from the input first (deflation), and the new neurons run Oja's
rule on what is left:

.. math::
    \tilde x = x - H_f^\top H_f x, \\qquad y_n = H_n \tilde x, \\qquad
    \\Delta H_n = \\eta \\, (y_n \tilde x^\top - y_n y_n^\top H_n).

When the new rows are orthogonal to the frozen ones (:func:`add_rows` starts them so, and the
update keeps them so: it lies in the span of ``\tilde x`` and of ``H_n``), ``y_n = H_n x`` and
this is exactly the full rule's update of the new rows, ``\\eta (y_n x^T - y_n y^T H)`` with
``y = H x``, for orthonormal frozen rows. Using ``\tilde x`` also in ``y_n`` keeps rounding from
leaking the large frozen-span energy into the new rows. ``\tilde x`` is computed once per batch;
each iteration then costs ``O(N d k_new)``. The new rows converge to the principal subspace of
the residual (what the frozen rows do not yet span).

**Step size.** With ``normalize=True`` (default) the rate is divided by the batch's mean residual
energy ``E ||\\tilde x||^2 = trace(C_res) >= lambda_max(C_res)``, which makes the rule invariant
to the scale of the activity and stable for ``eta < 1`` (the reference code instead picks a rate
per layer by hand: 0.001 for pixels, 0.01 for spikes). Optional momentum averages the updates
(``m = 0.9`` in the reference code).

Presynaptic signals for spiking layers (time-major ``s [T, B, ...]``):

* ``"spikes"``: every time step is one sample (``T * B`` rows), the signal BPTT sees;
* ``"rate"``: the exponentially weighted firing rate ``sum_t lambda^(T-1-t) s_t / sum_t
  lambda^(T-1-t)`` (``B`` rows; ``lambda = 1`` is the plain rate; the reference code's weighted
  firing rate for online training);
* ``"trace"``: the online eligibility trace ``a_t = lambda a_(t-1) + s_t`` at every step
  (``T * B`` rows), the presynaptic trace of OTTT-style online training.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from neurosim.backend import InputError, check_tensor
from neurosim.functional.projection import project_rows

SIGNALS = ("spikes", "rate", "trace")
"""Presynaptic signal choices of :func:`presynaptic_signal`."""


class HebbianParameters(NamedTuple):
    """Parameters of :func:`subspace_update`.

    Attributes:
        eta: learning rate (relative to the residual energy when ``normalize``).
        iterations: updates per batch (the reference code uses 5).
        momentum: momentum of the update in ``[0, 1)`` (0 = none; the reference code uses 0.9).
        normalize: divide ``eta`` by the batch's mean residual energy (see module docstring).
    """

    eta: float = 0.5
    iterations: int = 1
    momentum: float = 0.0
    normalize: bool = True


DEFAULT_HEBBIAN = HebbianParameters()
"""``eta=0.5``, one iteration, no momentum, normalised step."""


class HebbianState(NamedTuple):
    """State of a set of subspace neurons.

    Attributes:
        weight: ``H [k, d]``; rows ``0 .. n_frozen - 1`` are frozen.
        n_frozen: number of frozen leading rows.
        velocity: momentum buffer of the free rows ``[k - n_frozen, d]``.
    """

    weight: torch.Tensor
    n_frozen: int
    velocity: torch.Tensor


def check_hebbian_parameters(p: HebbianParameters) -> None:
    """Range checks (raise :class:`InputError` naming the field)."""
    if not (isinstance(p.eta, (int, float)) and p.eta > 0 and p.eta == p.eta):
        raise InputError(f"Hebbian eta must be a positive number, got {p.eta!r}")
    if not (isinstance(p.iterations, int) and p.iterations >= 1):
        raise InputError(f"Hebbian iterations must be an integer >= 1, got {p.iterations!r}")
    if not 0.0 <= p.momentum < 1.0:
        raise InputError(f"Hebbian momentum must be in [0, 1), got {p.momentum!r}")


def oja_subspace_delta(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The batch-mean Oja subspace update ``mean_rows(y x^T - y y^T H)``, ``y = H x``.

    Args:
        weight: ``H [k, d]``.
        x: ``[N, d]`` rows of presynaptic activity.

    Returns:
        ``[k, d]`` (multiply by the learning rate and add to ``H``).
    """
    y = x @ weight.T
    return (y.T @ x - (y.T @ y) @ weight) / x.shape[0]


def init_state(d: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
               ) -> HebbianState:  # fmt: skip
    """An empty set of subspace neurons for ``d``-dimensional activity (``k = 0`` rows)."""
    if d < 1:
        raise InputError(f"the presynaptic dimension must be >= 1, got {d}")
    empty = torch.zeros(0, d, device=device, dtype=dtype or torch.float32)
    return HebbianState(empty, 0, empty.clone())


def add_rows(state: HebbianState, rows: int, generator: torch.Generator | None = None
             ) -> HebbianState:  # fmt: skip
    """Append ``rows`` new free rows, orthonormal and orthogonal to the existing ones.

    The new rows are a random orthonormal basis (QR of a Gaussian matrix drawn from
    ``generator``) of a subspace orthogonal to the current rows, so a fresh start never
    duplicates what is already spanned. The total is capped at ``d`` rows.
    """
    weight = state.weight
    k, d = weight.shape
    rows = min(int(rows), d - k)
    if rows <= 0:
        return state
    draw = torch.randn(d, rows, generator=generator, dtype=torch.float64)
    draw = draw.to(device=weight.device)
    existing = weight.to(torch.float64)
    if k:
        q_old, _ = torch.linalg.qr(existing.T)
        draw = draw - q_old @ (q_old.T @ draw)
    q, _ = torch.linalg.qr(draw)
    new = q.T.to(weight.dtype)
    return HebbianState(
        torch.cat([weight, new]),
        state.n_frozen,
        torch.cat([state.velocity, torch.zeros_like(new)]),
    )


def freeze(state: HebbianState) -> HebbianState:
    """Freeze every row (HLOP's merge at the end of a task); momentum is dropped."""
    k, d = state.weight.shape
    return HebbianState(state.weight, k, state.weight.new_zeros(0, d))


def subspace_update(
    state: HebbianState,
    x: torch.Tensor,
    params: HebbianParameters = DEFAULT_HEBBIAN,
    residual: torch.Tensor | None = None,
) -> HebbianState:
    """``params.iterations`` Oja subspace updates of the free rows on the rows ``x [N, d]``.

    See the module docstring for the rule, the frozen rows and the step size. Runs without
    autograd; ``x`` may be of any float dtype (it is cast to ``H``'s). No host-device sync.
    ``residual`` may pass a precomputed ``x - H_f^T H_f x`` (same shape as ``x``).
    """
    weight = state.weight
    nf = state.n_frozen
    if weight.shape[0] == nf or x.shape[0] == 0:
        return state
    with torch.no_grad():
        x = x.detach().to(weight.dtype).reshape(-1, weight.shape[1])
        if residual is None:
            res = project_rows(x, weight[:nf])
        else:
            res = residual.detach().to(weight.dtype).reshape(x.shape)
        free = weight[nf:]
        eta: torch.Tensor | float = params.eta
        if params.normalize:
            energy = res.pow(2).sum(1).mean()
            eta = params.eta / energy.clamp_min(torch.finfo(weight.dtype).tiny)
        velocity = state.velocity
        n = x.shape[0]
        for _ in range(params.iterations):
            y = res @ free.T
            if free.shape[0] > n:  # more neurons than rows: y^T (x - y H), no k x k x d product
                delta = (y.T @ (res - y @ free)) / n
            else:
                delta = (y.T @ res - (y.T @ y) @ free) / n
            if params.momentum > 0:
                velocity = params.momentum * velocity + (1.0 - params.momentum) * delta
                delta = velocity
            free = free + eta * delta
        return HebbianState(torch.cat([weight[:nf], free]), nf, velocity)


# ---------------------------------------------------------------------------------------------
# presynaptic signals


def exponential_rate(spikes: torch.Tensor, decay: float = 1.0) -> torch.Tensor:
    """Exponentially weighted firing rate of ``spikes [T, B, ...]`` -> ``[B, ...]``.

    ``sum_t w_t s_t / sum_t w_t`` with ``w_t = decay ** (T - 1 - t)`` (the latest step weighs
    most); ``decay = 1`` is the plain mean rate. E.g. ``decay = 0.5``, ``s = [1, 0]`` ->
    ``(0.5 * 1 + 1 * 0) / 1.5 = 1/3``.
    """
    t = spikes.shape[0]
    w = decay ** torch.arange(t - 1, -1, -1, dtype=torch.float64)
    w = (w / w.sum()).to(device=spikes.device, dtype=spikes.dtype)
    return torch.tensordot(w, spikes, dims=([0], [0]))


def eligibility_trace(spikes: torch.Tensor, decay: float) -> torch.Tensor:
    """Online presynaptic trace ``a_t = decay * a_(t-1) + s_t`` (``a_(-1) = 0``), ``[T, B, ...]``.

    E.g. ``decay = 0.5``, ``s = [1, 0, 1]`` -> ``a = [1, 0.5, 1.25]``.
    """
    out = torch.empty_like(spikes)
    acc = torch.zeros_like(spikes[0])
    for t in range(spikes.shape[0]):
        acc = decay * acc + spikes[t]
        out[t] = acc
    return out


def presynaptic_signal(activity: torch.Tensor, signal: str = "spikes", decay: float = 0.5
                       ) -> torch.Tensor:  # fmt: skip
    """The rows a Hebbian layer learns from, for a time-major activity ``[T, B, ..., d]``.

    ``"spikes"`` and ``"trace"`` return ``[T * B * ..., d]``; ``"rate"`` returns ``[B * ..., d]``
    (see the module docstring). ``decay`` is ``lambda`` of the rate and the trace.
    """
    if signal not in SIGNALS:
        raise InputError(f"presynaptic signal must be one of {SIGNALS}, got {signal!r}")
    check_tensor(activity, "presynaptic activity [T, B, ..., d]", min_ndim=2, finite=False)
    if not 0.0 <= decay <= 1.0:
        raise InputError(f"signal decay must be in [0, 1], got {decay}")
    if signal == "rate":
        x = exponential_rate(activity, decay)
    elif signal == "trace":
        x = eligibility_trace(activity, decay)
    else:
        x = activity
    return x.reshape(-1, activity.shape[-1])
