"""Sparse-representation modules: thin ``nn.Module`` wrappers over :mod:`neurosim.functional.sparse`.

* :class:`KWinners` - k-winners-take-all with boosting by duty cycle. In training mode each
  forward adds its winners to a pending count; :meth:`KWinners.update_duty_cycle` folds the
  pending counts into the duty cycle (run it after every optimizer step, e.g. as an
  ``AFTER_STEP`` callback of :class:`experiments.trainer.Trainer`, or through
  :func:`update_duty_cycles` on a whole model). Nothing is updated in eval mode.
* :class:`SparseLinear` - a linear map whose sparsity mask is drawn once and stays fixed: the
  masked weights are zero from the start, receive zero gradient and stay zero through training
  (``path="dense"`` multiplies by the mask; ``path="sparse"`` uses a sparse COO product).
* :class:`SDRSampler` - random SDRs of ``n`` cells with ``a`` active from an owned generator.

Example::

    layer = nn.Sequential(SparseLinear(784, 256, density=0.5, generator=g), KWinners(256, k=13))
    y = layer(x)                         # [B, 256], 13 non-zeros per row
    update_duty_cycles(layer)            # after the optimizer step
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor
from neurosim.functional.sparse import (
    DutyCycleState,
    KWTAParameters,
    boost_factors,
    check_kwta_parameters,
    check_sparse_linear,
    kwta_mask,
    mask_indices,
    sample_sdr_indices,
    sample_sdrs,
    sparse_linear_coo,
    sparse_mask,
    target_density,
    update_duty_cycle,
)

PATHS = ("dense", "sparse")


def resolve_k(n: int, k: int | None, density: float | None) -> int:
    """Winners from ``k`` or from ``density`` (``round(density * n)``, at least 1)."""
    if (k is None) == (density is None):
        raise InputError(f"give exactly one of k and density for {n} units, got k={k}, "
                         f"density={density}")  # fmt: skip
    if k is None:
        assert density is not None
        if not 0 < density <= 1:
            raise InputError(f"k-WTA density must be in (0, 1], got {density}")
        return max(1, round(density * n))
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= n:
        raise InputError(f"k-WTA k must be an int in 1..{n}, got {k!r}")
    return k


class KWinners(nn.Module):
    """k-winners-take-all over the last dimension, with optional boosting by duty cycle.

    Args:
        n: units (size of the last dimension).
        k: winners per input; or give ``density`` (``k = round(density * n)``).
        density: fraction of winners.
        boost_strength: ``beta`` of ``boost = exp(beta (target_density - duty_cycle))``.
        boost_strength_factor: :meth:`decay_boost` multiplies ``boost_strength`` by this.
        duty_cycle_period: window of the duty-cycle running mean, in inputs.
        k_inference: winners in eval mode (default ``k``).

    Buffers (saved in ``state_dict``): ``duty_cycle [n]``, ``seen``, ``boost_strength``, and
    the pending (not yet folded) win counts ``pending_wins [n]``, ``pending_samples``.
    """

    boost_strength: torch.Tensor
    duty_cycle: torch.Tensor
    seen: torch.Tensor
    pending_wins: torch.Tensor
    pending_samples: torch.Tensor

    def __init__(
        self,
        n: int,
        k: int | None = None,
        *,
        density: float | None = None,
        boost_strength: float = 0.0,
        boost_strength_factor: float = 1.0,
        duty_cycle_period: int = 1000,
        k_inference: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(n, int) or n < 1:
            raise InputError(f"KWinners n must be an int >= 1, got {n!r}")
        self.n = n
        self.k = resolve_k(n, k, density)
        self.k_inference = self.k if k_inference is None else resolve_k(n, k_inference, None)
        check_kwta_parameters(KWTAParameters(self.k, float(boost_strength), duty_cycle_period), n)
        if not 0 < boost_strength_factor <= 1:
            raise InputError(
                f"KWinners boost_strength_factor must be in (0, 1], got {boost_strength_factor}"
            )
        self.boost_strength_factor = float(boost_strength_factor)
        self.duty_cycle_period = int(duty_cycle_period)
        self.register_buffer("boost_strength", torch.tensor(float(boost_strength)))
        self.register_buffer("duty_cycle", torch.zeros(n))
        self.register_buffer("seen", torch.zeros((), dtype=torch.int64))
        self.register_buffer("pending_wins", torch.zeros(n))
        self.register_buffer("pending_samples", torch.zeros((), dtype=torch.int64))

    @property
    def target_density(self) -> float:
        return target_density(KWTAParameters(self.k), self.n)

    def boost(self) -> torch.Tensor:
        """Current boost factors ``[n]`` (ones when the boost strength is zero)."""
        return boost_factors(self.duty_cycle, self.target_density, self.boost_strength)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., n]`` -> winners' values, zeros elsewhere."""
        check_tensor(x, "KWinners input x [..., n]", min_ndim=1, finite=False)
        if x.shape[-1] != self.n:
            raise InputError(f"KWinners expects {self.n} units in the last dimension, got "
                             f"shape {tuple(x.shape)}")  # fmt: skip
        k = self.k if self.training else self.k_inference
        mask = kwta_mask(x, k, self.boost() if self.training else None)
        if self.training:
            self.record_wins(mask.reshape(-1, self.n).sum(0), mask.numel() // self.n)
        return x * mask.to(x.dtype) if k < self.n else x

    @torch.no_grad()
    def record_wins(self, wins: torch.Tensor, samples: int) -> None:
        """Add ``wins [n]`` over ``samples`` inputs to the pending counts (what ``forward`` does
        in training; layers that choose their own winners, e.g. spiking ones, call it)."""
        self.pending_wins += wins.to(self.pending_wins.dtype)
        self.pending_samples += samples

    @torch.no_grad()
    def update_duty_cycle(self) -> None:
        """Fold the wins counted since the last call into the duty cycle (then clear them)."""
        state = update_duty_cycle(
            DutyCycleState(self.duty_cycle, self.seen),
            self.pending_wins,
            self.pending_samples,
            self.duty_cycle_period,
        )
        self.duty_cycle.copy_(state.duty_cycle)
        self.seen.copy_(state.seen)
        self.pending_wins.zero_()
        self.pending_samples.zero_()

    @torch.no_grad()
    def decay_boost(self) -> None:
        """``boost_strength *= boost_strength_factor`` (e.g. at the end of each epoch)."""
        self.boost_strength.mul_(self.boost_strength_factor)

    def extra_repr(self) -> str:
        return (f"n={self.n}, k={self.k}, boost_strength={float(self.boost_strength):g}, "
                f"duty_cycle_period={self.duty_cycle_period}")  # fmt: skip


def update_duty_cycles(model: nn.Module) -> int:
    """:meth:`KWinners.update_duty_cycle` on every :class:`KWinners` in ``model``; returns how many.

    Usable as a trainer callback: ``trainer.add_callback("after_step", lambda s: update_duty_cycles(model))``.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, KWinners):
            module.update_duty_cycle()
            count += 1
    return count


def decay_boosts(model: nn.Module) -> int:
    """:meth:`KWinners.decay_boost` on every :class:`KWinners` in ``model``; returns how many."""
    count = 0
    for module in model.modules():
        if isinstance(module, KWinners):
            module.decay_boost()
            count += 1
    return count


class SparseLinear(nn.Module):
    """``y = x (W * M)^T + b`` with a fixed random mask ``M`` (``density`` of each row kept).

    Args:
        in_features, out_features: sizes.
        density: fraction of each output unit's inputs that are connected (1 = dense).
        bias: learn a bias.
        path: ``"dense"`` (masked dense matmul; fastest unless very sparse) or ``"sparse"``
            (sparse COO product of the kept weights). Both give the same values and gradients.
        generator: draws the mask (and nothing else); ``None`` uses torch's global RNG.
        init: ``"kaiming"`` draws the kept weights from ``U(-h, h)``, ``h = 1 / sqrt(fan_in)``
            where ``fan_in`` counts kept inputs only (times ``input_density``, the expected
            fraction of non-zero inputs), so the output scale does not depend on the sparsity;
            ``"torch"`` keeps ``nn.Linear``'s initialisation (then zeroes masked weights).
        input_density: expected fraction of non-zero inputs for ``init="kaiming"``.

    Weight initialisation draws from torch's global RNG; build the module under
    ``neurosim.backend.seeded(seed)`` for reproducible weights.
    """

    mask: torch.Tensor
    indices: torch.Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        density: float = 1.0,
        *,
        bias: bool = True,
        path: str = "dense",
        generator: torch.Generator | None = None,
        init: str = "kaiming",
        input_density: float = 1.0,
    ) -> None:
        super().__init__()
        if path not in PATHS:
            raise InputError(f"SparseLinear path must be one of {PATHS}, got {path!r}")
        if init not in ("kaiming", "torch"):
            raise InputError(f"SparseLinear init must be 'kaiming' or 'torch', got {init!r}")
        if not 0 < input_density <= 1:
            raise InputError(f"SparseLinear input_density must be in (0, 1], got {input_density}")
        self.in_features = in_features
        self.out_features = out_features
        self.density = float(density)
        self.path = path
        mask = sparse_mask(out_features, in_features, density, generator=generator)
        linear = nn.Linear(in_features, out_features, bias=bias)
        self.weight = linear.weight
        self.bias = linear.bias
        self.dense = bool(mask.all())
        self.register_buffer("mask", mask.cpu())
        self.register_buffer("indices", mask_indices(mask.cpu()))
        with torch.no_grad():
            if init == "kaiming":
                fan_in = max(1.0, mask.sum(1).float().mean().item() * input_density)
                bound = 1.0 / math.sqrt(fan_in)
                self.weight.uniform_(-bound, bound)
                if self.bias is not None:
                    self.bias.uniform_(-bound, bound)
        self.rezero_weights()

    @torch.no_grad()
    def rezero_weights(self) -> None:
        """Set every masked weight to zero (they already are unless changed by hand)."""
        self.weight.mul_(self.mask.to(self.weight.dtype))

    def masked_weight(self) -> torch.Tensor:
        """``W * M`` (the effective weight; ``W`` itself when every weight is connected)."""
        if self.dense:
            return self.weight
        return self.weight * self.mask.to(self.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., in]`` -> ``[..., out]``."""
        check_sparse_linear(x, self.weight, self.mask, self.bias)
        if self.path == "sparse":
            return sparse_linear_coo(x, self.weight, self.indices, self.bias)
        return nn.functional.linear(x, self.masked_weight(), self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"density={self.density:g}, path={self.path!r}")  # fmt: skip


class SDRSampler(nn.Module):
    """Random SDRs of ``n`` cells with ``a`` active, from an owned ``torch.Generator``.

    ``sampler(batch)`` returns ``[batch, n]`` bool; :meth:`indices` the ``[batch, a]`` active
    indices. The generator's state is part of ``state_dict`` (``generator_state``), so a
    restored sampler continues the same sequence.

    Examples:
        >>> s = SDRSampler(2048, 40, seed=0)
        >>> s(5).sum(1).tolist()
        [40, 40, 40, 40, 40]
    """

    def __init__(
        self, n: int, a: int, *, seed: int = 0, device: torch.device | str = "cpu"
    ) -> None:
        super().__init__()
        sample_sdr_indices(0, n, a)  # validates n and a
        self.n = n
        self.a = a
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def forward(self, batch: int) -> torch.Tensor:
        return sample_sdrs(batch, self.n, self.a, generator=self.generator)

    def indices(self, batch: int) -> torch.Tensor:
        return sample_sdr_indices(batch, self.n, self.a, generator=self.generator)

    def get_extra_state(self) -> dict[str, torch.Tensor]:
        return {"generator_state": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator_state"])

    def extra_repr(self) -> str:
        return f"n={self.n}, a={self.a}, device={self.generator.device}"
