"""A long-horizon spiking "adding" task generated on the fly, in the style of SHD-Adding.

SHD-Adding (Spieler et al., ICLR 2024) concatenates two spoken digits of the Spiking Heidelberg
Digits and asks for their sum at the end. Here the two "digits" are synthetic spike patterns, so
that the task needs no download and the distance between them is a free parameter::

    | pattern of value a | delay: background spikes only | pattern of value b | tail |
      pattern_steps         delay                          pattern_steps        tail
    target (at the last step): a + b  in 0 .. 2 (n_values - 1)  (2 n_values - 1 classes)

Each value ``v`` has a fixed spatio-temporal template: a ``[pattern_steps, channels]`` Bernoulli
raster with ``template_rate`` spikes per step and channel, drawn once from ``template_seed``.
Every presentation is a noisy copy: the whole pattern starts up to ``jitter`` steps late,
each template spike is dropped with probability ``drop``, and background spikes at
``noise_rate`` per step and channel cover the whole sequence. Samples come from an explicit
``torch.Generator`` (training and evaluation use different seeds).

Example::

    task = SpikeAddingTask(delay=100)
    templates = task.templates()
    x, values, target = task.sample(64, templates, torch.Generator().manual_seed(0))
    x.shape, target.shape            # (T, 64, 32) with T = 2 * 25 + 100 + 5 = 155, (64,)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from neurosim.backend import InputError


class AddingBatch(NamedTuple):
    """One batch of the adding task.

    Attributes:
        x: spikes ``[T, B, channels]`` (float 0/1), time-major.
        values: the two numbers ``[B, 2]`` (int64).
        target: their sum ``[B]`` (int64), the class to predict at the last step.
    """

    x: torch.Tensor
    values: torch.Tensor
    target: torch.Tensor


@dataclass(frozen=True)
class SpikeAddingTask:
    """Sizes and noise of the task (see the module docstring)."""

    channels: int = 32
    n_values: int = 10
    pattern_steps: int = 25
    delay: int = 100
    tail: int = 5
    template_rate: float = 0.1
    jitter: int = 2
    drop: float = 0.1
    noise_rate: float = 0.005
    template_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("channels", "n_values", "pattern_steps"):
            if getattr(self, name) < 1:
                raise InputError(f"adding task {name} must be >= 1, got {getattr(self, name)}")
        if self.n_values < 2:
            raise InputError(f"adding task n_values must be >= 2, got {self.n_values}")
        for name in ("delay", "tail", "jitter"):
            if getattr(self, name) < 0:
                raise InputError(f"adding task {name} must be >= 0, got {getattr(self, name)}")
        if self.jitter > self.tail:
            raise InputError(
                f"adding task jitter {self.jitter} must be <= tail {self.tail} (a late second "
                "pattern must still end inside the sequence)"
            )
        for name in ("template_rate", "drop", "noise_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"adding task {name} must be a probability in [0, 1], got {value}")

    @property
    def steps(self) -> int:
        """Sequence length ``T = 2 pattern_steps + delay + tail``."""
        return 2 * self.pattern_steps + self.delay + self.tail

    @property
    def num_classes(self) -> int:
        """Possible sums ``0 .. 2 (n_values - 1)``."""
        return 2 * self.n_values - 1

    @property
    def second_onset(self) -> int:
        """First step of the second pattern."""
        return self.pattern_steps + self.delay

    def templates(self) -> torch.Tensor:
        """The fixed patterns ``[n_values, pattern_steps, channels]`` (bool), from
        ``template_seed``."""
        g = torch.Generator().manual_seed(self.template_seed)
        shape = (self.n_values, self.pattern_steps, self.channels)
        return torch.rand(shape, generator=g) < self.template_rate

    def sample(
        self, batch: int, templates: torch.Tensor, generator: torch.Generator
    ) -> AddingBatch:
        """``batch`` noisy sequences (CPU tensors; move them to the model's device)."""
        if batch < 1:
            raise InputError(f"adding task batch must be >= 1, got {batch}")
        expected = (self.n_values, self.pattern_steps, self.channels)
        if tuple(templates.shape) != expected:
            raise InputError(f"templates have shape {tuple(templates.shape)}; expected {expected}")
        g = generator
        steps, p = self.steps, self.pattern_steps
        values = torch.randint(0, self.n_values, (batch, 2), generator=g)
        x = torch.rand(steps, batch, self.channels, generator=g) < self.noise_rate
        shifts = torch.randint(0, self.jitter + 1, (batch, 2), generator=g)
        keep = torch.rand(2, p, batch, self.channels, generator=g) >= self.drop
        for i, onset in enumerate((0, self.second_onset)):
            pattern = templates[values[:, i]].transpose(0, 1) & keep[i]  # [P, B, C]
            # sample b's pattern starts shifts[b, i] steps after the onset
            t = torch.arange(p)[:, None] + onset + shifts[:, i][None, :]  # [P, B]
            b = torch.arange(batch)[None, :].expand(p, batch)
            x[t, b] |= pattern
        return AddingBatch(x.float(), values, values.sum(1))
