"""Coordinate encodings and their one registry: ``encoding(x [N, D]) -> [N, encoding.out_dim]``.

Every encoding is one :class:`Encoding` entry in :data:`ENCODINGS`, added by
:func:`register_encoding`. The entry carries everything the rest of the package needs:

* ``build``: the constructor a spec ``{"type": name, **options}`` calls (options are checked
  against its signature), used by :func:`build_encoding` and so by
  :func:`fields.models.build_field` and the ``custom`` model of the experiments;
* ``lr``: the default Adam learning rate of its trainable parameters (the experiments' configs
  take their defaults from here);
* ``examples``: small option sets that the generic contract test
  (``tests/fields/test_encoding_contract.py``) builds and checks: shapes, dtypes, gradients,
  bad input, ``torch.compile`` in one graph, state round trip, CUDA = CPU;
* ``baselines``: named models built on it, each with its budget sizing
  (``size(budget, in_dim, out_dim, **options) -> specs``, see :mod:`fields.encodings.sizing`)
  and its decoder's default learning rate; :func:`fields.models.sized_model` and the
  ``model=`` key of ``fields_image`` / ``fields_sdf`` find them here.

So adding an encoding is one registration (``docs/extending_encodings.md`` walks through one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fields.encodings import sizing
from fields.encodings.fourier import FourierFeatures
from fields.encodings.hashgrid import HashGrid, HashGridConfig, HashGridLevel, hashgrid_encode
from fields.encodings.identity import Identity
from fields.encodings.rbf import AdaptiveRBF, NeuRBFHybrid
from fields.spec import Spec, call_with, split_spec
from neurosim.backend import InputError


@dataclass(frozen=True)
class Baseline:
    """A named model on an encoding, sized to a parameter budget.

    Attributes:
        size: ``size(budget, in_dim, out_dim, **options) -> {"encoding", "decoder", "cam"}``
            specs; its keyword options are the overrides it accepts.
        decoder_lr: default learning rate of the decoder.
        encoding_lr: default learning rate of the encoding (``None``: the encoding's ``lr``).
        cam_lr: default learning rate of a CAM grid (``None``: 10 x ``decoder_lr``, as the CAM
            authors' code trains its grid 10x faster than the MLP).
        description: one line for docs and listings.
    """

    size: Callable[..., dict[str, Any]]
    decoder_lr: float
    encoding_lr: float | None = None
    cam_lr: float | None = None
    description: str = ""


@dataclass(frozen=True)
class Encoding:
    """One registered encoding (see the module docstring).

    Attributes:
        name: the spec ``type``.
        build: ``build(in_dim, generator=..., **options) -> module`` with an ``out_dim``.
        lr: default Adam learning rate of the encoding's trainable parameters.
        examples: ``variant -> options`` of small instances for the contract test.
        in_dims: input dimensions ``D`` it supports (the contract test tries each).
        domain: ``(lo, hi)`` of a bounded input domain (points outside raise ``InputError``);
            ``None`` when any finite input is valid.
        rejects_nan: NaN inputs raise ``InputError``.
        grad_input: outputs are differentiable with respect to the points.
        baselines: ``model name -> Baseline``.
        description: one line for docs and listings.
    """

    name: str
    build: Callable[..., nn.Module]
    lr: float
    examples: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: {"": {}})
    in_dims: tuple[int, ...] = (1, 2, 3)
    domain: tuple[float, float] | None = None
    rejects_nan: bool = True
    grad_input: bool = True
    baselines: Mapping[str, Baseline] = field(default_factory=dict)
    description: str = ""

    def example(self, in_dim: int, generator: torch.Generator, variant: str = "") -> nn.Module:
        """The small instance ``variant`` of :attr:`examples`, built through the spec path."""
        return build_encoding({"type": self.name, **self.examples[variant]}, in_dim, generator)


ENCODINGS: dict[str, Encoding] = {}
"""``name -> Encoding``: the one registry of field encodings."""


def register_encoding(entry: Encoding) -> Encoding:
    """Add ``entry`` to :data:`ENCODINGS` (encoding and baseline names must be new)."""
    if entry.name in ENCODINGS:
        raise InputError(f"an encoding named {entry.name!r} is already registered")
    taken = model_names()
    for name, base in entry.baselines.items():
        if name in taken or name == "custom":
            raise InputError(f"a model named {name!r} is already registered")
        for what, lr in (("decoder_lr", base.decoder_lr), ("encoding_lr", base.encoding_lr)):
            if lr is not None and not (math.isfinite(lr) and lr > 0):
                raise InputError(f"baseline {name!r} {what} must be positive, got {lr}")
    if not (math.isfinite(entry.lr) and entry.lr > 0):
        raise InputError(f"encoding {entry.name!r} lr must be a positive number, got {entry.lr}")
    if not entry.examples:
        raise InputError(f"encoding {entry.name!r} needs at least one example for its tests")
    ENCODINGS[entry.name] = entry
    return entry


def get_encoding(name: str) -> Encoding:
    """The registered encoding ``name`` (an unknown name lists the registered ones)."""
    try:
        return ENCODINGS[name]
    except KeyError:
        raise InputError(
            f"unknown encoding type {name!r}; expected one of {sorted(ENCODINGS)}"
        ) from None


def build_encoding(
    spec: Spec | None, in_dim: int, generator: torch.Generator | None = None
) -> nn.Module:
    """An encoding module (with ``out_dim``) from ``{"type": name, **options}`` (default identity)."""
    kind, options = split_spec(spec, "encoding", "identity")
    entry = get_encoding(kind)
    module: nn.Module = call_with(kind, entry.build, options, in_dim=in_dim, generator=generator)
    return module


def model_names() -> list[str]:
    """Names of every registered baseline (named model), in registration order."""
    return [name for entry in ENCODINGS.values() for name in entry.baselines]


def get_baseline(name: str) -> tuple[Encoding, Baseline]:
    """``(encoding, baseline)`` of the named model ``name``."""
    for entry in ENCODINGS.values():
        if name in entry.baselines:
            return entry, entry.baselines[name]
    raise InputError(f"unknown model {name!r}; expected one of {model_names()}")


def default_lrs(model: str) -> dict[str, float]:
    """Default learning rates ``{"encoding", "decoder", "cam"}`` of a named model."""
    entry, base = get_baseline(model)
    return {
        "encoding": base.encoding_lr if base.encoding_lr is not None else entry.lr,
        "decoder": base.decoder_lr,
        "cam": base.cam_lr if base.cam_lr is not None else 10.0 * base.decoder_lr,
    }


# ---------------------------------------------------------------------------------------------
# the built-in encodings
# ---------------------------------------------------------------------------------------------
_DEFAULT_NEURBF_GRID: dict[str, Any] = {"type": "hashgrid", "n_levels": 2}


def build_neurbf(
    in_dim: int,
    generator: torch.Generator | None = None,
    rbf: Mapping[str, Any] | None = None,
    grid: Spec | None = _DEFAULT_NEURBF_GRID,
    bias_init: float = 1e-4,
) -> NeuRBFHybrid:
    """NeuRBF hybrid from ``rbf`` (:class:`AdaptiveRBF` options) and ``grid`` (an encoding spec;
    ``None`` for RBF features only)."""
    part = call_with("neurbf.rbf", AdaptiveRBF, dict(rbf or {}), in_dim=in_dim, generator=generator)
    grid_module = None if grid is None else build_encoding(grid, in_dim, generator)
    return NeuRBFHybrid(part, grid_module, bias_init=bias_init, generator=generator)


register_encoding(
    Encoding(
        "identity",
        Identity,
        lr=1e-3,
        in_dims=(1, 2, 3, 4),
        baselines={
            "siren": Baseline(
                sizing.size_siren, decoder_lr=1e-4, description="SIREN on raw coordinates"
            )
        },
        description="the raw coordinates",
    )
)
register_encoding(
    Encoding(
        "fourier",
        FourierFeatures,
        lr=1e-3,
        examples={"": {"num_frequencies": 8, "sigma": 3.0}},
        in_dims=(1, 2, 3, 4),
        baselines={
            "ffn": Baseline(
                sizing.size_ffn, decoder_lr=1e-3, description="Fourier features + ReLU MLP"
            ),
            "ffn_cam": Baseline(
                sizing.size_ffn_cam,
                decoder_lr=1e-3,
                description="Fourier features + ReLU MLP with coordinate-aware modulation",
            ),
        },
        description="Gaussian random Fourier features (Tancik et al. 2020)",
    )
)
register_encoding(
    Encoding(
        "hashgrid",
        HashGrid,
        lr=1e-2,
        examples={
            "": {
                "n_levels": 4,
                "n_features_per_level": 2,
                "log2_hashmap_size": 8,
                "base_resolution": 3,
                "per_level_scale": 2.0,
            },
            "smoothstep": {
                "n_levels": 3,
                "n_features_per_level": 4,
                "log2_hashmap_size": 7,
                "base_resolution": 4,
                "per_level_scale": 1.7,
                "interpolation": "smoothstep",
            },
        },
        in_dims=(1, 2, 3, 4),
        domain=(0.0, 1.0),
        baselines={
            "hashgrid": Baseline(
                sizing.size_hashgrid, decoder_lr=1e-2, description="hash grid + small MLP"
            )
        },
        description="multiresolution hash grid (Instant-NGP; tiny-cuda-nn layout)",
    )
)
register_encoding(
    Encoding(
        "rbf",
        AdaptiveRBF,
        lr=5e-3,
        examples={"": {"num_kernels": 16, "features": 6, "neighbors": 3}},
        in_dims=(1, 2, 3, 4),
        domain=(0.0, 1.0),
        description="NeuRBF adaptive radial bases alone",
    )
)
register_encoding(
    Encoding(
        "neurbf",
        build_neurbf,
        lr=5e-3,
        examples={
            "": {
                "rbf": {
                    "num_kernels": 9,
                    "features": 4,
                    "kind": "gaussian",
                    "learn_positions": True,
                },
                "grid": {
                    "type": "hashgrid",
                    "n_levels": 2,
                    "n_features_per_level": 2,
                    "log2_hashmap_size": 6,
                    "base_resolution": 4,
                },
            }
        },
        in_dims=(1, 2, 3),
        domain=(0.0, 1.0),
        baselines={
            "neurbf": Baseline(
                sizing.size_neurbf,
                decoder_lr=1e-2,
                description="NeuRBF: adaptive RBFs + 2-level grid + MLP with sinusoid",
            )
        },
        description="NeuRBF hybrid: adaptive radial bases beside a small grid",
    )
)

__all__ = [
    "ENCODINGS",
    "AdaptiveRBF",
    "Baseline",
    "Encoding",
    "FourierFeatures",
    "HashGrid",
    "HashGridConfig",
    "HashGridLevel",
    "Identity",
    "NeuRBFHybrid",
    "build_encoding",
    "default_lrs",
    "get_baseline",
    "get_encoding",
    "hashgrid_encode",
    "model_names",
    "register_encoding",
]

# Tri-plane (fields/encodings/triplane.py): three axis-aligned feature planes, 3-D only
from fields.encodings.triplane import TriPlane  # noqa: E402

register_encoding(
    Encoding(
        "triplane",
        TriPlane,
        lr=1e-2,
        examples={
            aggregation: {"resolution": 5, "features": 3, "aggregation": aggregation}
            for aggregation in ("sum", "product", "concat")
        },
        in_dims=(3,),
        domain=(0.0, 1.0),
        description="tri-plane: three axis-aligned feature planes sampled bilinearly",
    )
)
__all__ += ["TriPlane"]
