"""Coordinate fields composed from plain-data specs: encoding -> (optional CAM) decoder.

A spec is a mapping with a ``type`` and that type's keyword arguments, so a YAML config builds a
model without code::

    encoding: {type: fourier, num_frequencies: 128, sigma: 10}
    decoder:  {type: mlp, hidden: 128, layers: 4}
    cam:      {coord_dims: [0, 1], resolution: 8}      # optional

.. math:: y = \\mathrm{dec}(\\mathrm{enc}(x);\\ \\mathrm{CAM}(x_S))

Encodings: ``identity``, ``fourier`` (:class:`~fields.encodings.fourier.FourierFeatures`),
``hashgrid`` (:class:`~fields.encodings.hashgrid.HashGrid`), ``rbf``
(:class:`~fields.encodings.rbf.AdaptiveRBF`), ``neurbf`` (:class:`~fields.encodings.rbf.NeuRBFHybrid`
of an adaptive RBF and a small hash grid). Decoders: ``mlp`` (:class:`~fields.decoders.MLP`,
with NeuRBF's optional ``first_sine`` residual sinusoid after the first layer) and ``siren``
(:class:`~fields.siren.Siren`).

:func:`sized_model` gives the specs of the named baselines (``ffn``, ``ffn_cam``, ``siren``,
``hashgrid``, ``neurbf``) sized to a common parameter budget, for like-for-like tables.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import nn

from fields.cam import CAMDecoder
from fields.decoders import MLP
from fields.encodings.fourier import FourierFeatures
from fields.encodings.rbf import AdaptiveRBF, NeuRBFHybrid
from fields.metrics import count_parameters
from fields.siren import Siren
from neurosim.backend import InputError, check_tensor

Spec = Mapping[str, Any]


class Identity(nn.Module):
    """The raw coordinates as features (``out_dim = in_dim``)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


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


def _hashgrid_class() -> type[nn.Module]:
    from fields.encodings.hashgrid import HashGrid

    cls: type[nn.Module] = HashGrid
    return cls


def _call_with(
    kind: str, factory: Callable[..., Any], options: Mapping[str, Any], **fixed: Any
) -> Any:
    """Call ``factory(**fixed, **options)``, turning unknown option names into an InputError."""
    params = inspect.signature(factory).parameters
    accepted = {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    unknown = sorted(set(options) - accepted)
    if unknown:
        allowed = sorted(accepted - set(fixed) - {"self", "generator"})
        raise InputError(f"unknown option(s) {unknown} for {kind}; expected some of {allowed}")
    return factory(**fixed, **options)


def _split(spec: Spec | None, what: str, default: str) -> tuple[str, dict[str, Any]]:
    if spec is None:
        return default, {}
    if not isinstance(spec, Mapping):
        raise InputError(f"{what} spec must be a mapping with a 'type', got {type(spec).__name__}")
    options = dict(spec)
    kind = str(options.pop("type", default))
    return kind, options


ENCODINGS = ("identity", "fourier", "hashgrid", "rbf", "neurbf")
DECODERS = ("mlp", "siren")


def build_encoding(
    spec: Spec | None, in_dim: int, generator: torch.Generator | None = None
) -> nn.Module:
    """An encoding module (with ``out_dim``) from ``{"type": ..., **options}``.

    ``neurbf`` takes ``rbf`` and ``grid`` sub-mappings (``grid: null`` for RBF features only).
    """
    kind, opts = _split(spec, "encoding", "identity")
    if kind == "identity":
        return _call_with(kind, Identity, opts, in_dim=in_dim)  # type: ignore[no-any-return]
    if kind == "fourier":
        return _call_with(kind, FourierFeatures, opts, in_dim=in_dim, generator=generator)  # type: ignore[no-any-return]
    if kind == "hashgrid":
        return _call_with(kind, _hashgrid_class(), opts, in_dim=in_dim, generator=generator)  # type: ignore[no-any-return]
    if kind == "rbf":
        return _call_with(kind, AdaptiveRBF, opts, in_dim=in_dim, generator=generator)  # type: ignore[no-any-return]
    if kind == "neurbf":
        rbf_opts = dict(opts.pop("rbf", {}))
        grid_spec = opts.pop("grid", {"type": "hashgrid", "n_levels": 2})
        rbf = _call_with("neurbf.rbf", AdaptiveRBF, rbf_opts, in_dim=in_dim, generator=generator)
        grid = None if grid_spec is None else build_encoding(grid_spec, in_dim, generator)
        return _call_with(kind, NeuRBFHybrid, opts, rbf=rbf, grid=grid, generator=generator)  # type: ignore[no-any-return]
    raise InputError(f"unknown encoding type {kind!r}; expected one of {ENCODINGS}")


def build_decoder(
    spec: Spec | None, in_dim: int, out_dim: int, generator: torch.Generator | None = None
) -> nn.Sequential:
    """A sequential decoder from ``{"type": "mlp" | "siren", **options}``.

    ``mlp`` options are :class:`~fields.decoders.MLP`'s plus ``first_sine: [low, high]``, which
    replaces the first activation by :class:`SineResidual`.
    """
    kind, opts = _split(spec, "decoder", "mlp")
    if kind == "mlp":
        first_sine = opts.pop("first_sine", None)
        mlp: MLP = _call_with(kind, MLP, opts, in_dim=in_dim, out_dim=out_dim)
        if generator is not None:
            _reinit_linears(mlp, generator)
        if first_sine is not None:
            if len(mlp) < 3:
                raise InputError("decoder first_sine needs an MLP with at least 2 layers")
            low, high = (float(v) for v in first_sine)
            first = mlp[0]
            assert isinstance(first, nn.Linear)
            mlp[1] = SineResidual(first.out_features, low, high)
        return mlp
    if kind == "siren":
        return _call_with(kind, Siren, opts, in_dim=in_dim, out_dim=out_dim, generator=generator)  # type: ignore[no-any-return]
    raise InputError(f"unknown decoder type {kind!r}; expected one of {DECODERS}")


def _reinit_linears(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default ``nn.Linear`` initialisation, drawn from ``generator`` (reproducible)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                m.weight.copy_((torch.rand(m.weight.shape, generator=generator) * 2 - 1) * bound)
                if m.bias is not None:
                    m.bias.copy_((torch.rand(m.bias.shape, generator=generator) * 2 - 1) * bound)


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
        dec = _call_with("cam", CAMDecoder, opts, decoder=dec)
    return Field(enc, dec, in_dim, out_dim)


# ---------------------------------------------------------------------------------------------
# named baselines at a parameter budget
# ---------------------------------------------------------------------------------------------
MODELS = ("ffn", "ffn_cam", "siren", "hashgrid", "neurbf")


def _mlp_params(in_dim: int, hidden: int, layers: int, out_dim: int) -> int:
    dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
    return sum((dims[i] + 1) * dims[i + 1] for i in range(layers))


def _largest(fits: Callable[[int], bool], low: int, high: int) -> int:
    """The largest integer in ``[low, high]`` with ``fits`` true (``fits`` monotone; ``low`` if none)."""
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def _hashgrid_params(in_dim: int, options: Mapping[str, Any]) -> int:
    grid = build_encoding({"type": "hashgrid", **options}, in_dim)
    return count_parameters(grid, trainable_only=False)


def sized_model(
    name: str, budget: int, in_dim: int, out_dim: int, **overrides: Any
) -> dict[str, Any]:
    """Specs ``{"encoding", "decoder", "cam"}`` of a named baseline sized to ``budget`` parameters.

    * ``ffn``: Fourier features (``num_frequencies`` 128, ``sigma`` 10) and a 4-layer ReLU MLP
      whose width fills the budget.
    * ``ffn_cam``: the same with CAM (grid ``cam_resolution`` per axis, default 4, over every
      coordinate); width re-solved so that the CAM grid is inside the budget.
    * ``siren``: a 4-layer SIREN on raw coordinates, width filling the budget.
    * ``hashgrid``: ``hash_levels`` (16) levels x 2 features and a ``mlp_hidden`` (64) wide
      3-layer MLP; the largest power-of-two table that keeps the total within 10% over the
      budget (table sizes double, so an exact fit is rarely possible).
    * ``neurbf``: a 2-level grid (2^12 table; finest resolution ``2^(12/D)`` so that it is
      dense, coarsest a quarter of it), the same MLP with the first-layer
      sinusoid, and as many adaptive kernels (32 features, 4 neighbours) as the rest allows
      (centres and shape matrices counted, though fixed during training).

    ``overrides`` may set: ``num_frequencies``, ``sigma``, ``layers``, ``cam_resolution``,
    ``max_resolution``, ``features``, ``neighbors``, ``kind``, ``learn_positions``,
    ``grid_log2_hashmap_size`` (NeuRBF's grid table), ``hash_levels``, ``mlp_hidden``.
    """
    if budget < 1000:
        raise InputError(f"parameter budget must be at least 1000, got {budget}")
    allowed = {
        "num_frequencies",
        "sigma",
        "layers",
        "cam_resolution",
        "max_resolution",
        "features",
        "neighbors",
        "kind",
        "learn_positions",
        "grid_log2_hashmap_size",
        "hash_levels",
        "mlp_hidden",
    }
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise InputError(
            f"unknown sized_model option(s) {unknown}; expected some of {sorted(allowed)}"
        )
    layers = int(overrides.get("layers", 4))
    if name in ("ffn", "ffn_cam"):
        nf = int(overrides.get("num_frequencies", 128))
        sigma = float(overrides.get("sigma", 10.0))
        feat = 2 * nf + in_dim
        res = int(overrides.get("cam_resolution", 4))
        cam_per_width = 2 * (layers - 1) * res**in_dim if name == "ffn_cam" else 0
        hidden = _largest(
            lambda h: _mlp_params(feat, h, layers, out_dim) + cam_per_width * h <= budget, 4, 4096
        )
        spec: dict[str, Any] = {
            "encoding": {"type": "fourier", "num_frequencies": nf, "sigma": sigma},
            "decoder": {"type": "mlp", "hidden": hidden, "layers": layers},
            "cam": None,
        }
        if name == "ffn_cam":
            spec["cam"] = {"coord_dims": list(range(in_dim)), "resolution": res}
        return spec
    if name == "siren":
        hidden = _largest(lambda h: _mlp_params(in_dim, h, layers, out_dim) <= budget, 4, 4096)
        return {
            "encoding": {"type": "identity"},
            "decoder": {"type": "siren", "hidden": hidden, "layers": layers},
            "cam": None,
        }
    max_res = int(overrides.get("max_resolution", 2048 if in_dim <= 2 else 512))
    mlp_hidden = int(overrides.get("mlp_hidden", 64))
    if name == "hashgrid":
        levels, fpl = int(overrides.get("hash_levels", 16)), 2
        mlp = _mlp_params(levels * fpl, mlp_hidden, 3, out_dim)

        def grid_opts(t: int) -> dict[str, Any]:
            # Keep the coarsest level dense (base^D <= table): with every level hashed there is
            # no collision-free low-frequency component, and small fields fill empty space with
            # hash noise (a 30K-parameter 3-D grid with base 16 in a 2^9 table: SDF IoU 0.21,
            # with base 8: 0.98 on the generated torus).
            base = min(16, max(2, round((2**t) ** (1.0 / in_dim)) + 1))
            while base > 2 and base**in_dim > 2**t:
                base -= 1
            return {
                "n_levels": levels,
                "n_features_per_level": fpl,
                "log2_hashmap_size": t,
                "base_resolution": base,
                "per_level_scale": None,
                "max_resolution": max_res,
            }

        # tables come in powers of two: take the largest within 10% over the budget
        log2 = _largest(
            lambda t: _hashgrid_params(in_dim, grid_opts(t)) + mlp <= 1.1 * budget, 3, 24
        )
        return {
            "encoding": {"type": "hashgrid", **grid_opts(log2)},
            "decoder": {"type": "mlp", "hidden": mlp_hidden, "layers": 3},
            "cam": None,
        }
    if name == "neurbf":
        features = int(overrides.get("features", 32))
        log2_grid = int(overrides.get("grid_log2_hashmap_size", 12))
        # the finest level fits its table densely unless max_resolution says otherwise: a hashed
        # fine level this small is mostly collisions (measured: -2.7 dB on the 256^2 image)
        dense_res = max(2, round(2 ** (log2_grid / in_dim)))
        while dense_res**in_dim > 2**log2_grid:
            dense_res -= 1
        grid_max = int(overrides.get("max_resolution", dense_res))
        grid = {
            "type": "hashgrid",
            "n_levels": 2,
            "n_features_per_level": 2,
            "log2_hashmap_size": log2_grid,
            "base_resolution": max(2, min(16, grid_max // 4)),
            "per_level_scale": None,
            "max_resolution": grid_max,
        }
        grid_params = _hashgrid_params(in_dim, grid)
        mlp = _mlp_params(4 + features, mlp_hidden, 3, out_dim)
        per_kernel = features + in_dim + in_dim * in_dim
        rest = budget - grid_params - mlp - (4 + features)
        if rest < 16 * per_kernel:
            raise InputError(
                f"parameter budget {budget} leaves too few for NeuRBF kernels (needs > {budget - rest + 16 * per_kernel})"
            )
        neighbors = int(overrides.get("neighbors", 4))
        return {
            "encoding": {
                "type": "neurbf",
                "rbf": {
                    "num_kernels": rest // per_kernel,
                    "features": features,
                    "neighbors": neighbors,
                    "kind": str(overrides.get("kind", "inverse_quadratic")),
                    "learn_positions": bool(overrides.get("learn_positions", False)),
                },
                "grid": grid,
            },
            "decoder": {
                "type": "mlp",
                "hidden": mlp_hidden,
                "layers": 3,
                "first_sine": [10.0, 100.0],
            },
            "cam": None,
        }
    raise InputError(f"unknown model {name!r}; expected one of {MODELS}")
