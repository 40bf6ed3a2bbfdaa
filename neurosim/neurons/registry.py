"""The neuron registry: one entry per neuron type, iterated by the generic contract tests.

Adding a neuron is one registration: write its functional maths (``step``/``multi_step`` over
NamedTuple parameters and state, see :mod:`neurosim.functional`), a thin
:class:`~neurosim.neurons.base.SpikingNeuron` module, and call :func:`register_neuron` with a
:class:`NeuronSpec`. ``tests/spiking/test_neurons_contract.py`` then checks it like every other
neuron: single vs multi-step, continued sequences, layouts, dtypes, gradients, ``state_dict``,
bad input, ``T = 0`` on every backend of its scan operations, and no host-device sync in the
forward. ``docs/extending_neurons.md`` walks through an example.

This registry holds neuron *types* (classes and functions), never module instances.

>>> from neurosim.neurons import neuron_spec
>>> neuron_spec("lif").module.__name__
'LIF'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from neurosim.backend import InputError
from neurosim.neurons.base import SpikingNeuron

InputFn = Callable[[int, int, int, torch.dtype, torch.Generator], torch.Tensor]


def current_input(
    steps: int, batch: int, features: int, dtype: torch.dtype, generator: torch.Generator
) -> torch.Tensor:
    """A drive that makes threshold-1 neurons fire sometimes: ``N(0.4, 0.6^2)`` per element,
    ``[T, B, F]``."""
    x = torch.randn(steps, batch, features, generator=generator, dtype=torch.float64)
    return (x * 0.6 + 0.4).to(dtype)


@dataclass(frozen=True)
class NeuronSpec:
    """One neuron type.

    Attributes:
        name: registry key (``"lif"``).
        module: the :class:`~neurosim.neurons.base.SpikingNeuron` subclass.
        step: the functional single step ``step(x [B, *F], state, params) -> (out, state)``.
        multi_step: the functional multi-step ``multi_step(x [T, B, *F], state, params,
            backend=...) -> NeuronSequence``.
        parameters: the NamedTuple type of its parameters (``parameters()`` gives the defaults).
        state: the NamedTuple type of its state.
        example: a small constructor for tests, ``example(features, **module_kwargs)``: a module
            with per-neuron parameters (some learnable) that fires on :attr:`example_input`.
        example_input: ``(steps, batch, features, dtype, generator) -> x [T, B, F]``.
        spiking: whether the output is spikes (``False`` for readouts such as ``LI``).
        scan_ops: kernel operations its multi-step path runs (their backends are tested).
        variants: other configurations worth testing: ``{name: module keyword overrides}``.
    """

    name: str
    module: type[SpikingNeuron]
    step: Callable[..., Any]
    multi_step: Callable[..., Any]
    parameters: type
    state: type
    example: Callable[..., SpikingNeuron]
    example_input: InputFn = current_input
    spiking: bool = True
    scan_ops: tuple[str, ...] = ()
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


_NEURONS: dict[str, NeuronSpec] = {}


def register_neuron(spec: NeuronSpec) -> NeuronSpec:
    """Add a neuron type to the registry (names are unique); returns ``spec``."""
    if not isinstance(spec, NeuronSpec):
        raise InputError(f"register_neuron takes a NeuronSpec, got {type(spec).__name__}")
    if spec.name in _NEURONS:
        raise InputError(f"a neuron called {spec.name!r} is already registered")
    if not (isinstance(spec.module, type) and issubclass(spec.module, SpikingNeuron)):
        raise InputError(f"neuron {spec.name!r}: module must be a SpikingNeuron subclass")
    _NEURONS[spec.name] = spec
    return spec


def neuron_specs() -> list[NeuronSpec]:
    """Every registered neuron type, by name."""
    return [_NEURONS[name] for name in sorted(_NEURONS)]


def neuron_spec(name: str) -> NeuronSpec:
    """The registered neuron type called ``name``."""
    try:
        return _NEURONS[name]
    except KeyError:
        raise InputError(
            f"unknown neuron {name!r}; registered: {', '.join(sorted(_NEURONS)) or 'none'}"
        ) from None
