"""Dendritic layers: thin ``nn.Module`` wrappers over :mod:`neurosim.functional.dendrites`.

* :class:`DendriticLayer` - sparse feed-forward map, ``K`` dendritic segments per unit gated by
  a context (``absmax`` / ``max`` / ``additive``), then k-WTA with optional boosting
  (:class:`neurosim.sparse.KWinners`). ``forward(x, context) -> [..., N]``.
* :class:`SpikingDendriticLayer` - the same gated current drives LIF neurons in which only the
  ``k`` highest membranes may fire each step; ``forward(x, context)`` takes a current or spike
  sequence ``[T, B, in]`` (or a constant ``[B, in]`` repeated ``time_steps`` times) and returns
  the spikes ``[T, B, N]``; trained with surrogate gradients.

The sparsity masks (``weight_mask``, ``segment_mask``) are drawn once from ``generator`` and
stay fixed: masked weights are zero and get zero gradient. Weights are drawn from torch's global
RNG: build the layer under :func:`neurosim.backend.seeded` for reproducible weights. The
k-WTA duty cycles are updated by :func:`neurosim.sparse.update_duty_cycles` (a trainer
callback), never implicitly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor
from neurosim.functional.dendrites import (
    GATINGS,
    PATHS,
    DendriticParameters,
    check_dendritic,
    feedforward,
    gate,
    kwta_lif_multi_step,
    segment_activations,
)
from neurosim.functional.lif import RESETS, LIFParameters, LIFState, NeuronSequence, check_option
from neurosim.functional.sparse import mask_indices, sparse_linear_coo, sparse_mask
from neurosim.functional.surrogate import DEFAULT_SURROGATE, Surrogate, check_surrogate
from neurosim.sparse import KWinners


def _uniform_(t: torch.Tensor, fan_in: float) -> None:
    bound = 1.0 / math.sqrt(max(fan_in, 1.0))
    with torch.no_grad():
        t.uniform_(-bound, bound)


class _DendriticWeights(nn.Module):
    """Sparse feed-forward weights and dendritic segments shared by both layer kinds."""

    weight_mask: torch.Tensor
    segment_mask: torch.Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_segments: int,
        context_features: int,
        *,
        weight_density: float,
        segment_density: float,
        gating: str,
        bias: bool,
        path: str,
        generator: torch.Generator | None,
        input_density: float,
        context_density: float,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features),
                            ("num_segments", num_segments),
                            ("context_features", context_features)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"dendritic layer {name} must be an int >= 1, got {value!r}")
        check_option(gating, "dendritic gating", GATINGS)
        check_option(path, "dendritic path", PATHS)
        for name, density in (("input_density", input_density),
                              ("context_density", context_density)):  # fmt: skip
            if not 0 < density <= 1:
                raise InputError(f"dendritic layer {name} must be in (0, 1], got {density}")
        self.in_features = in_features
        self.out_features = out_features
        self.num_segments = num_segments
        self.context_features = context_features
        self.gating = gating
        self.path = path
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.segments = nn.Parameter(torch.empty(out_features, num_segments, context_features))
        w_mask = sparse_mask(out_features, in_features, weight_density, generator=generator)
        s_mask = sparse_mask(out_features * num_segments, context_features, segment_density,
                             generator=generator)  # fmt: skip
        # fully connected parts skip the mask product (a no-op that costs a pass over the weights)
        self.dense_weight = bool(w_mask.all())
        self.dense_segments = bool(s_mask.all())
        self.register_buffer("weight_mask", w_mask.cpu())
        self.register_buffer("segment_mask", s_mask.cpu().reshape(self.segments.shape))
        # sparse-aware Kaiming-uniform: fan-in counts the connected, non-zero inputs only
        kept = float(w_mask.sum()) / out_features
        _uniform_(self.weight, kept * input_density)
        if self.bias is not None:
            _uniform_(self.bias, kept * input_density)
        _uniform_(self.segments, float(s_mask.sum()) / s_mask.shape[0] * context_density)
        with torch.no_grad():
            self.weight.mul_(self.weight_mask.to(self.weight.dtype))
            self.segments.mul_(self.segment_mask.to(self.segments.dtype))

    def parameters_now(self) -> DendriticParameters:
        """The functional :class:`DendriticParameters` of this layer."""
        return DendriticParameters(
            self.weight,
            self.segments,
            self.bias,
            None if self.dense_weight else self.weight_mask,
            None if self.dense_segments else self.segment_mask,
            self.gating,
        )

    def _feedforward(self, x: torch.Tensor) -> torch.Tensor:
        if self.path == "sparse":
            return sparse_linear_coo(x, self.weight, self._indices("weight"), self.bias)
        return feedforward(x, self.parameters_now())

    def _segments(self, context: torch.Tensor) -> torch.Tensor:
        if self.path == "sparse":
            n, k, c = self.segments.shape
            flat = self.segments.reshape(n * k, c)
            d = sparse_linear_coo(context, flat, self._indices("segments"))
            return d.reshape(*context.shape[:-1], n, k)
        return segment_activations(context, self.parameters_now())

    def _indices(self, which: str) -> torch.Tensor:
        cache = getattr(self, "_index_cache", None)
        key = (which, self.weight_mask.device)
        if cache is None or cache[0] != key:
            mask = self.weight_mask if which == "weight" else self.segment_mask.flatten(0, 1)
            cache = (key, mask_indices(mask))
            object.__setattr__(self, "_index_cache", cache)
        return cache[1]

    def segment_activations(self, context: torch.Tensor) -> torch.Tensor:
        """``[C] -> [N, K]`` or ``[..., C] -> [..., N, K]``."""
        return self._segments(context)

    def gated(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Gated feed-forward activity ``[..., N]`` (before k-WTA / the neurons)."""
        check_dendritic(x, context, self.parameters_now())
        return gate(self._feedforward(x), self._segments(context), self.gating)

    @torch.no_grad()
    def rezero_weights(self) -> None:
        """Set the masked weights to zero (they stay zero unless changed by hand)."""
        self.weight.mul_(self.weight_mask.to(self.weight.dtype))
        self.segments.mul_(self.segment_mask.to(self.segments.dtype))

    def extra_repr(self) -> str:
        return (f"in={self.in_features}, out={self.out_features}, segments={self.num_segments}, "
                f"context={self.context_features}, gating={self.gating!r}, path={self.path!r}")  # fmt: skip


class DendriticLayer(_DendriticWeights):
    """Active-dendrite layer (Iyer et al. 2022): sparse linear, context-gated, k-WTA.

    Args:
        in_features, out_features: sizes.
        num_segments: dendritic segments per unit ``K``.
        context_features: context size ``C``.
        weight_density: fraction of each unit's inputs connected (fixed mask).
        segment_density: fraction of each segment's context inputs connected.
        gating: ``"absmax"`` (default), ``"max"`` or ``"additive"``.
        k / kw_density: winners of the k-WTA (``None`` for both: ReLU instead of k-WTA).
        boost_strength, boost_strength_factor, duty_cycle_period: k-WTA boosting
            (:class:`neurosim.sparse.KWinners`).
        bias: learn a feed-forward bias.
        path: ``"dense"`` (masked dense products) or ``"sparse"`` (sparse COO products).
        generator: draws the masks.
        input_density, context_density: expected fraction of non-zero inputs / context
            features, for the sparse-aware initialisation ``U(-h, h)``,
            ``h = 1 / sqrt(density * connected fan-in)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_segments: int,
        context_features: int,
        *,
        weight_density: float = 0.5,
        segment_density: float = 1.0,
        gating: str = "absmax",
        k: int | None = None,
        kw_density: float | None = None,
        boost_strength: float = 0.0,
        boost_strength_factor: float = 1.0,
        duty_cycle_period: int = 1000,
        bias: bool = True,
        path: str = "dense",
        generator: torch.Generator | None = None,
        input_density: float = 1.0,
        context_density: float = 1.0,
    ) -> None:
        super().__init__(
            in_features, out_features, num_segments, context_features,
            weight_density=weight_density, segment_density=segment_density, gating=gating,
            bias=bias, path=path, generator=generator, input_density=input_density,
            context_density=context_density,
        )  # fmt: skip
        self.kwinners: KWinners | None = None
        if k is not None or kw_density is not None:
            self.kwinners = KWinners(
                out_features, k, density=kw_density, boost_strength=boost_strength,
                boost_strength_factor=boost_strength_factor, duty_cycle_period=duty_cycle_period,
            )  # fmt: skip

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``x [..., in]``, ``context [C]`` or ``[..., C]`` -> ``[..., N]``."""
        y = self.gated(x, context)
        return self.kwinners(y) if self.kwinners is not None else torch.relu(y)


class SpikingDendriticLayer(_DendriticWeights):
    """Dendritic gating of the input current of LIF neurons with k-WTA over membranes.

    The current ``I_t = gate(W x_t + b, context . U)`` drives LIF neurons
    (:mod:`neurosim.functional.lif` maths, immediate reset); at each step only the ``k`` units
    with the highest membrane (times the duty-cycle boost in training) may spike
    (:func:`neurosim.functional.dendrites.kwta_lif_step`).

    Args:
        in_features, out_features, num_segments, context_features: as :class:`DendriticLayer`.
        weight_density, segment_density, gating, bias, path, generator: as :class:`DendriticLayer`.
        input_density, context_density: as :class:`DendriticLayer`.
        k / kw_density: units allowed to fire per step (``None`` for both: all ``N``).
        boost_strength, boost_strength_factor, duty_cycle_period: boosting of the choice of
            winners; the duty cycle counts each (step, input) as one input.
        beta, threshold, reset, surrogate, detach_reset: the LIF neurons.
        time_steps: steps ``T`` when ``forward`` gets a constant input ``[B, in]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_segments: int,
        context_features: int,
        *,
        weight_density: float = 0.5,
        segment_density: float = 1.0,
        gating: str = "absmax",
        k: int | None = None,
        kw_density: float | None = None,
        boost_strength: float = 0.0,
        boost_strength_factor: float = 1.0,
        duty_cycle_period: int = 1000,
        beta: float = 0.9,
        threshold: float = 1.0,
        reset: str = "subtract",
        surrogate: Surrogate = DEFAULT_SURROGATE,
        detach_reset: bool = False,
        time_steps: int = 8,
        bias: bool = True,
        path: str = "dense",
        generator: torch.Generator | None = None,
        input_density: float = 1.0,
        context_density: float = 1.0,
    ) -> None:
        super().__init__(
            in_features, out_features, num_segments, context_features,
            weight_density=weight_density, segment_density=segment_density, gating=gating,
            bias=bias, path=path, generator=generator, input_density=input_density,
            context_density=context_density,
        )  # fmt: skip
        check_option(reset, "LIF reset", RESETS)
        check_surrogate(surrogate, "spiking dendritic surrogate")
        if not 0 <= beta <= 1 or not math.isfinite(threshold) or threshold <= 0:
            raise InputError(f"need beta in [0, 1] and threshold > 0, got {beta}, {threshold}")
        if not isinstance(time_steps, int) or time_steps < 1:
            raise InputError(f"time_steps must be an int >= 1, got {time_steps!r}")
        self.lif = LIFParameters(beta=float(beta), threshold=float(threshold), reset=reset,
                                 detach_reset=detach_reset, surrogate=surrogate)  # fmt: skip
        self.time_steps = time_steps
        self.kwinners: KWinners | None = None
        if k is not None or kw_density is not None:
            self.kwinners = KWinners(
                out_features, k, density=kw_density, boost_strength=boost_strength,
                boost_strength_factor=boost_strength_factor, duty_cycle_period=duty_cycle_period,
            )  # fmt: skip

    def current(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Gated input current ``[T, B, N]`` for ``x [T, B, in]`` (or ``[B, in]``: repeated)."""
        check_tensor(x, "spiking dendritic input x [T, B, in] or [B, in]", ndim=(2, 3))
        # the context is static: segment activations once per input, not per step
        check_dendritic(x[0] if x.dim() == 3 else x, context, self.parameters_now())
        current = gate(self._feedforward(x), self._segments(context), self.gating)
        if x.dim() == 2:
            current = current.unsqueeze(0).expand(self.time_steps, *current.shape)
        return current

    def simulate(
        self, x: torch.Tensor, context: torch.Tensor, state: LIFState | None = None
    ) -> NeuronSequence:
        """Spikes ``[T, B, N]``, membranes ``[T, B, N]`` and the final :class:`LIFState`."""
        current = self.current(x, context)
        kw = self.kwinners
        if kw is None:
            k, boost = self.out_features, None
        elif self.training:
            k, boost = kw.k, kw.boost()
        else:
            k, boost = kw.k_inference, None
        out = kwta_lif_multi_step(current, state, self.lif, k, boost)
        if kw is not None and self.training:
            kw.record_wins(out.wins, current.shape[0] * current.shape[1])
        return NeuronSequence(out.spikes, out.membrane, out.state)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, state: LIFState | None = None
    ) -> tuple[torch.Tensor, LIFState]:
        """``(spikes [T, B, N], final state)``."""
        out = self.simulate(x, context, state)
        return out.spikes, out.state
