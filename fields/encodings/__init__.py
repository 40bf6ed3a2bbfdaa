"""Coordinate encodings: ``encoding(x [N, D]) -> features [N, encoding.out_dim]``.

:data:`ENCODINGS` lists one :class:`EncodingSpec` per encoding: how to build a small instance for
a given input dimension, and what the generic contract test
(``tests/fields/test_encoding_contract.py``) may expect of it. A new encoding appends its spec
with :func:`register_encoding` (below, beside its import) and is tested automatically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from fields.encodings.fourier import FourierFeatures
from fields.encodings.hashgrid import HashGrid, HashGridConfig, HashGridLevel, hashgrid_encode


@dataclass(frozen=True)
class EncodingSpec:
    """How to build and what to expect of one encoding (a factory, never an instance).

    Attributes:
        name: unique, used as the test id.
        build: ``build(in_dim, generator) -> module`` with an ``out_dim`` attribute; small sizes.
        in_dims: the input dimensions ``D`` it supports (the contract test tries each).
        domain: ``(lo, hi)`` of a bounded input domain: points outside raise ``InputError``;
            ``None`` when any finite input is valid. Test points are drawn inside ``[0, 1]^D``
            (and inside ``domain``).
        rejects_nan: NaN inputs raise ``InputError``.
        grad_input: outputs are differentiable with respect to the input points.
    """

    name: str
    build: Callable[[int, torch.Generator], nn.Module]
    in_dims: tuple[int, ...] = (1, 2, 3)
    domain: tuple[float, float] | None = None
    rejects_nan: bool = True
    grad_input: bool = True


ENCODINGS: list[EncodingSpec] = []
"""Specs of every encoding in :mod:`fields.encodings` (appended to by :func:`register_encoding`)."""


def register_encoding(spec: EncodingSpec) -> EncodingSpec:
    """Append ``spec`` to :data:`ENCODINGS` (names are unique)."""
    if any(s.name == spec.name for s in ENCODINGS):
        raise ValueError(f"an encoding spec named {spec.name!r} is already registered")
    ENCODINGS.append(spec)
    return spec


register_encoding(
    EncodingSpec(
        "fourier",
        lambda d, g: FourierFeatures(d, num_frequencies=8, sigma=3.0, generator=g),
        in_dims=(1, 2, 3, 4),
    )
)
register_encoding(
    EncodingSpec(
        "hashgrid",
        lambda d, g: HashGrid(
            d,
            n_levels=4,
            n_features_per_level=2,
            log2_hashmap_size=8,
            base_resolution=3,
            per_level_scale=2.0,
            generator=g,
        ),
        in_dims=(1, 2, 3, 4),
        domain=(0.0, 1.0),
    )
)
register_encoding(
    EncodingSpec(
        "hashgrid-smoothstep",
        lambda d, g: HashGrid(
            d,
            n_levels=3,
            n_features_per_level=4,
            log2_hashmap_size=7,
            base_resolution=4,
            per_level_scale=1.7,
            interpolation="smoothstep",
            generator=g,
        ),
        in_dims=(2, 3),
        domain=(0.0, 1.0),
    )
)

__all__ = [
    "ENCODINGS",
    "EncodingSpec",
    "FourierFeatures",
    "HashGrid",
    "HashGridConfig",
    "HashGridLevel",
    "hashgrid_encode",
    "register_encoding",
]

# NeuRBF adaptive radial bases (fields/encodings/rbf.py)
from fields.encodings.rbf import AdaptiveRBF, NeuRBFHybrid  # noqa: E402

register_encoding(
    EncodingSpec(
        "rbf",
        lambda d, g: AdaptiveRBF(d, num_kernels=16, features=6, neighbors=3, generator=g),
        in_dims=(1, 2, 3, 4),
        domain=(0.0, 1.0),
    )
)
register_encoding(
    EncodingSpec(
        "neurbf",
        lambda d, g: NeuRBFHybrid(
            AdaptiveRBF(
                d, num_kernels=9, features=4, kind="gaussian", learn_positions=True, generator=g
            ),
            HashGrid(
                d,
                n_levels=2,
                n_features_per_level=2,
                log2_hashmap_size=6,
                base_resolution=4,
                generator=g,
            ),
            generator=g,
        ),
        in_dims=(1, 2, 3),
        domain=(0.0, 1.0),
    )
)
__all__ += ["AdaptiveRBF", "NeuRBFHybrid"]

# Tri-plane (fields/encodings/triplane.py): three axis-aligned feature planes, 3-D only
from fields.encodings.triplane import TriPlane  # noqa: E402


def _triplane_builder(aggregation: str) -> Callable[[int, torch.Generator], nn.Module]:
    def build(d: int, g: torch.Generator) -> nn.Module:
        return TriPlane(d, resolution=5, features=3, aggregation=aggregation, generator=g)  # type: ignore[arg-type]

    return build


for _aggregation in ("sum", "product", "concat"):
    register_encoding(
        EncodingSpec(
            f"triplane-{_aggregation}",
            _triplane_builder(_aggregation),
            in_dims=(3,),
            domain=(0.0, 1.0),
        )
    )
__all__ += ["TriPlane"]
