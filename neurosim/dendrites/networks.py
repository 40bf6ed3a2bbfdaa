"""Networks of dendritic layers for multi-task and continual learning.

* :class:`DendriticMLP` - ``input -> L x DendriticLayer (k-WTA) -> sparse linear head``, the
  active-dendrites network of Iyer et al. (2022). Its switches give the paper's baselines with
  one class: ``dendrites=False`` (same sparse k-WTA network, no segments), ``kw_density=None``
  (ReLU instead of k-WTA), and ``dendrites=False, kw_density=None, weight_density=1`` (a plain
  dense ReLU MLP).
* :class:`SpikingDendriticMLP` - the spiking variant: ``L x SpikingDendriticLayer`` (LIF, k-WTA
  over membranes, direct input current) and a linear head on the mean spike count of the last
  layer.

Both take ``forward(x [B, in], context [C] or [B, C]) -> logits [B, out]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from neurosim.backend import InputError
from neurosim.dendrites.layers import DendriticLayer, SpikingDendriticLayer
from neurosim.functional.surrogate import DEFAULT_SURROGATE, Surrogate
from neurosim.sparse import KWinners, SparseLinear


class _FeedForwardLayer(nn.Module):
    """Sparse linear + k-WTA (or ReLU), ignoring the context (the no-dendrites baseline)."""

    def __init__(self, linear: SparseLinear, kwinners: KWinners | None) -> None:
        super().__init__()
        self.linear = linear
        self.kwinners = kwinners

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        return self.kwinners(y) if self.kwinners is not None else torch.relu(y)


def _check_sizes(input_size: int, hidden_sizes: Sequence[int], output_size: int) -> list[int]:
    sizes = [int(h) for h in hidden_sizes]
    if input_size < 1 or output_size < 1 or not sizes or min(sizes) < 1:
        raise InputError(f"need input_size, output_size >= 1 and non-empty hidden_sizes >= 1, "
                         f"got {input_size}, {hidden_sizes}, {output_size}")  # fmt: skip
    return sizes


class DendriticMLP(nn.Module):
    """Active-dendrites MLP (see the module docstring).

    Args:
        input_size, hidden_sizes, output_size: layer sizes (e.g. 784, [2048, 2048], 10).
        num_segments: segments per hidden unit (typically the number of tasks).
        context_size: context features (784 for image prototypes).
        dendrites: hidden layers have dendritic segments; ``False`` gives the same network
            without them (the context is ignored).
        kw_density: fraction of k-WTA winners per hidden layer; ``None`` uses ReLU.
        weight_density: connected fraction of every feed-forward weight matrix (head included).
        segment_density: connected fraction of every segment's context weights.
        gating: ``absmax``, ``max`` or ``additive``.
        boost_strength, boost_strength_factor, duty_cycle_period: k-WTA boosting.
        generator: draws the sparsity masks.
        context_density: expected non-zero fraction of the context (for the initialisation).
    """

    def __init__(
        self,
        input_size: int,
        hidden_sizes: Sequence[int],
        output_size: int,
        num_segments: int,
        context_size: int,
        *,
        dendrites: bool = True,
        kw_density: float | None = 0.05,
        weight_density: float = 0.5,
        segment_density: float = 1.0,
        gating: str = "absmax",
        boost_strength: float = 0.0,
        boost_strength_factor: float = 1.0,
        duty_cycle_period: int = 1000,
        generator: torch.Generator | None = None,
        context_density: float = 1.0,
    ) -> None:
        super().__init__()
        sizes = _check_sizes(input_size, hidden_sizes, output_size)
        self.context_size = context_size
        self.dendrites = dendrites
        layers: list[nn.Module] = []
        fan_in, density = input_size, 1.0
        for size in sizes:
            if dendrites:
                layer: nn.Module = DendriticLayer(
                    fan_in, size, num_segments, context_size, weight_density=weight_density,
                    segment_density=segment_density, gating=gating, kw_density=kw_density,
                    boost_strength=boost_strength, boost_strength_factor=boost_strength_factor,
                    duty_cycle_period=duty_cycle_period, generator=generator,
                    input_density=density, context_density=context_density,
                )  # fmt: skip
            else:
                kwinners = None
                if kw_density is not None:
                    kwinners = KWinners(size, density=kw_density, boost_strength=boost_strength,
                                        boost_strength_factor=boost_strength_factor,
                                        duty_cycle_period=duty_cycle_period)  # fmt: skip
                linear = SparseLinear(fan_in, size, weight_density, generator=generator,
                                      input_density=density)  # fmt: skip
                layer = _FeedForwardLayer(linear, kwinners)
            layers.append(layer)
            fan_in, density = size, (kw_density if kw_density is not None else 1.0)
        self.layers = nn.ModuleList(layers)
        self.head = SparseLinear(fan_in, output_size, weight_density, generator=generator,
                                 input_density=density)  # fmt: skip

    def hidden(self, x: torch.Tensor, context: torch.Tensor) -> list[torch.Tensor]:
        """Activity of every hidden layer (``[B, hidden]`` each)."""
        out = []
        for layer in self.layers:
            x = layer(x, context)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``x [B, in]``, ``context [C]`` or ``[B, C]`` -> logits ``[B, out]``."""
        for layer in self.layers:
            x = layer(x, context)
        return self.head(x)


class SpikingDendriticMLP(nn.Module):
    """Spiking active-dendrites MLP: direct input current, LIF layers with dendritic gating of
    their current and k-WTA over membranes, a linear head on the last layer's spike rate.

    Args:
        input_size, hidden_sizes, output_size, num_segments, context_size: as :class:`DendriticMLP`.
        kw_density: fraction of neurons allowed to fire per step (``None``: every neuron).
        weight_density, segment_density, gating, generator: as :class:`DendriticMLP`.
        boost_strength, boost_strength_factor, duty_cycle_period: as :class:`DendriticMLP`.
        context_density: as :class:`DendriticMLP`.
        time_steps: simulation steps ``T`` per input.
        beta, threshold, surrogate: LIF neurons (immediate subtract reset).
        input_gain: scales the first layer's current (pixels are ~0..3 after normalisation).
    """

    def __init__(
        self,
        input_size: int,
        hidden_sizes: Sequence[int],
        output_size: int,
        num_segments: int,
        context_size: int,
        *,
        kw_density: float | None = 0.05,
        weight_density: float = 0.5,
        segment_density: float = 1.0,
        gating: str = "absmax",
        boost_strength: float = 0.0,
        boost_strength_factor: float = 1.0,
        duty_cycle_period: int = 1000,
        time_steps: int = 8,
        beta: float = 0.9,
        threshold: float = 1.0,
        surrogate: Surrogate = DEFAULT_SURROGATE,
        generator: torch.Generator | None = None,
        context_density: float = 1.0,
    ) -> None:
        super().__init__()
        sizes = _check_sizes(input_size, hidden_sizes, output_size)
        self.time_steps = time_steps
        layers = []
        fan_in, density = input_size, 1.0
        for size in sizes:
            layers.append(
                SpikingDendriticLayer(
                    fan_in,
                    size,
                    num_segments,
                    context_size,
                    weight_density=weight_density,
                    segment_density=segment_density,
                    gating=gating,
                    kw_density=kw_density,
                    boost_strength=boost_strength,
                    boost_strength_factor=boost_strength_factor,
                    duty_cycle_period=duty_cycle_period,
                    beta=beta,
                    threshold=threshold,
                    surrogate=surrogate,
                    time_steps=time_steps,
                    generator=generator,
                    input_density=density,
                    context_density=context_density,
                )
            )
            fan_in, density = size, (kw_density if kw_density is not None else 1.0)
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(fan_in, output_size)

    def spikes(self, x: torch.Tensor, context: torch.Tensor) -> list[torch.Tensor]:
        """Spikes ``[T, B, hidden]`` of every layer for a constant input ``x [B, in]``."""
        out = []
        h: torch.Tensor = x
        for layer in self.layers:
            h = layer(h, context)[0]
            out.append(h)
        return out

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``x [B, in]``, ``context [C]`` or ``[B, C]`` -> logits ``[B, out]`` (from the rate)."""
        return self.head(self.spikes(x, context)[-1].mean(0))
