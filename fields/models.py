"""Coordinate fields composed from plain-data specs: encoding -> (optional CAM) decoder.

A spec is a mapping with a ``type`` and that type's keyword arguments, so a YAML config builds a
model without code::

    encoding: {type: fourier, num_frequencies: 128, sigma: 10}
    decoder:  {type: mlp, hidden: 128, layers: 4}
    cam:      {coord_dims: [0, 1], resolution: 32}      # optional

.. math:: y = \\mathrm{dec}(\\mathrm{enc}(x);\\ \\mathrm{CAM}(x_S))

Encodings come from the one registry :data:`fields.encodings.ENCODINGS` (``identity``,
``fourier``, ``hashgrid``, ``rbf``, ``neurbf``, and whatever else is registered). Decoders:
``mlp`` (:class:`~fields.decoders.MLP`, with NeuRBF's optional ``first_sine`` residual sinusoid
after the first layer) and ``siren`` (:class:`~fields.siren.Siren`).

:func:`sized_model` gives the specs of a registered named baseline (``ffn``, ``ffn_cam``,
``siren``, ``hashgrid``, ``neurbf``, ...) sized to a parameter budget, for like-for-like tables.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import nn

from fields.cam import CAMDecoder
from fields.decoders import MLP, reinit_linears
from fields.encodings import build_encoding, get_baseline, model_names
from fields.encodings.rbf import AdaptiveRBF, NeuRBFHybrid
from fields.siren import Siren
from fields.spec import Spec, accepted_options, call_with, split_spec
from neurosim.backend import InputError, check_tensor

DECODERS = ("mlp", "siren")


class SineResidual(nn.Module):
    """NeuRBF's first-layer activation ``h + sin(m * h)`` with per-feature log-spaced ``m``.

    Args:
        features: width of ``h``.
        low, high: frequency range of ``m`` (NeuRBF's images: 10 to 100).
    """

    freqs: torch.Tensor

    def __init__(self, features: int, low: float = 10.0, high: float = 100.0) -> None:
        super().__init__()
        if not 0 < low <= high:
            raise InputError(f"SineResidual needs 0 < low <= high, got ({low}, {high})")
        freqs = torch.logspace(math.log10(low), math.log10(high), features, dtype=torch.float64)
        self.register_buffer("freqs", freqs.float())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + torch.sin(h * self.freqs.to(h.dtype))


def build_decoder(
    spec: Spec | None, in_dim: int, out_dim: int, generator: torch.Generator | None = None
) -> nn.Sequential:
    """A sequential decoder from ``{"type": "mlp" | "siren", **options}``.

    ``mlp`` options are :class:`~fields.decoders.MLP`'s plus ``first_sine: [low, high]``, which
    replaces the first activation by :class:`SineResidual`.
    """
    kind, opts = split_spec(spec, "decoder", "mlp")
    if kind == "mlp":
        first_sine = opts.pop("first_sine", None)
        mlp: MLP = call_with(kind, MLP, opts, in_dim=in_dim, out_dim=out_dim)
        if generator is not None:
            reinit_linears(mlp, generator)
        if first_sine is not None:
            if len(mlp) < 3:
                raise InputError("decoder first_sine needs an MLP with at least 2 layers")
            low, high = (float(v) for v in first_sine)
            first = mlp[0]
            assert isinstance(first, nn.Linear)
            mlp[1] = SineResidual(first.out_features, low, high)
        return mlp
    if kind == "siren":
        return call_with(kind, Siren, opts, in_dim=in_dim, out_dim=out_dim, generator=generator)  # type: ignore[no-any-return]
    raise InputError(f"unknown decoder type {kind!r}; expected one of {DECODERS}")


class Field(nn.Module):
    """``x [N, D] -> y [N, out_dim]``: encoding, then a decoder (CAM-modulated when configured).

    Args:
        encoding: module with ``out_dim``.
        decoder: a sequential decoder or a :class:`~fields.cam.CAMDecoder`.
        in_dim, out_dim: coordinate and output dimensions.
    """

    def __init__(self, encoding: nn.Module, decoder: nn.Module, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.encoding = encoding
        self.decoder = decoder
        self.in_dim = in_dim
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "Field input x [N, D]", ndim=2)
        if x.shape[1] != self.in_dim:
            raise InputError(
                f"Field expected {self.in_dim}-D coordinates, got shape {tuple(x.shape)}"
            )
        features = self.encoding(x)
        if isinstance(self.decoder, CAMDecoder):
            out: torch.Tensor = self.decoder(features, x)
        else:
            out = self.decoder(features)
        return out

    @property
    def rbf(self) -> AdaptiveRBF | None:
        """The adaptive RBF part of the encoding, if any (for signal-driven initialisation)."""
        if isinstance(self.encoding, AdaptiveRBF):
            return self.encoding
        if isinstance(self.encoding, NeuRBFHybrid):
            return self.encoding.rbf
        return None


def build_field(
    in_dim: int,
    out_dim: int,
    encoding: Spec | None = None,
    decoder: Spec | None = None,
    cam: Spec | None = None,
    generator: torch.Generator | None = None,
) -> Field:
    """Compose a :class:`Field` from specs (see the module docstring).

    ``cam`` holds :class:`~fields.cam.CAMDecoder` options (``coord_dims`` defaults to every
    coordinate); ``None`` or an empty mapping means no CAM.
    """
    if in_dim < 1 or out_dim < 1:
        raise InputError(f"build_field needs in_dim >= 1 and out_dim >= 1, got {in_dim}, {out_dim}")
    enc = build_encoding(encoding, in_dim, generator)
    dec: nn.Module = build_decoder(decoder, int(cast(int, enc.out_dim)), out_dim, generator)
    if cam:
        opts = dict(cam)
        opts.setdefault("coord_dims", list(range(in_dim)))
        dec = call_with("cam", CAMDecoder, opts, decoder=dec)
    return Field(enc, dec, in_dim, out_dim)


# ---------------------------------------------------------------------------------------------
# named baselines at a parameter budget
# ---------------------------------------------------------------------------------------------
def baseline_options() -> set[str]:
    """Every option name some registered baseline's sizing accepts."""
    names: set[str] = set()
    for model in model_names():
        names |= accepted_options(get_baseline(model)[1].size) - {"budget", "in_dim", "out_dim"}
    return names


def sized_model(
    name: str, budget: int, in_dim: int, out_dim: int, **overrides: Any
) -> dict[str, Any]:
    """Specs ``{"encoding", "decoder", "cam"}`` of the named baseline ``name`` at ``budget``.

    The sizing is the baseline's registered ``size`` function (built-in ones:
    :mod:`fields.encodings.sizing`). ``overrides`` may hold any option some registered
    baseline accepts; each baseline takes the ones it knows (so one ``model_options`` mapping
    serves a sweep over models), and a name no baseline knows is an :class:`InputError`.
    """
    if budget < 1000:
        raise InputError(f"parameter budget must be at least 1000, got {budget}")
    _, base = get_baseline(name)
    allowed = baseline_options()
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise InputError(
            f"unknown sized_model option(s) {unknown}; expected some of {sorted(allowed)}"
        )
    mine = accepted_options(base.size)
    options = {k: v for k, v in overrides.items() if k in mine}
    spec: dict[str, Any] = base.size(budget, in_dim, out_dim, **options)
    return spec
