"""One contract test over every encoding in the registry ``fields.encodings.ENCODINGS``.

Each registered :class:`~fields.encodings.Encoding` is built through its spec path
(``build_encoding({"type": name, **example})``) from each of its small ``examples``, for each
input dimension it supports, and must: map ``x [N, D]`` to ``[N, out_dim]`` in the parameters' dtype (fp32 and
fp64), give finite gradients to its parameters and (where declared) to the points, reject bad
input with ``InputError`` (wrong dimension, non-tensor, integer dtype, NaN, points outside a
bounded domain), trace under ``torch.compile`` in one graph (``fullgraph=True``; dynamo with
the ``aot_eager`` backend, so forward and backward graphs are built without paying for code
generation), restore from its ``state_dict``, and compute the same on CUDA as on the CPU.
A new encoding is covered by registering it (:func:`fields.encodings.register_encoding`).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from fields.encodings import ENCODINGS, Encoding
from neurosim.backend import InputError


class EncodingSpec:
    """One example of one registered encoding (what each test case builds)."""

    def __init__(self, entry: Encoding, variant: str) -> None:
        self.entry = entry
        self.variant = variant
        self.name = entry.name + (f"-{variant}" if variant else "")
        self.in_dims = entry.in_dims
        self.domain = entry.domain
        self.rejects_nan = entry.rejects_nan
        self.grad_input = entry.grad_input

    def build(self, d: int, generator: torch.Generator) -> nn.Module:
        return self.entry.example(d, generator, self.variant)


EXAMPLES = [EncodingSpec(entry, v) for entry in ENCODINGS.values() for v in entry.examples]
CASES = [pytest.param(spec, d, id=f"{spec.name}-{d}d") for spec in EXAMPLES for d in spec.in_dims]
SPECS = [pytest.param(spec, id=spec.name) for spec in EXAMPLES]


def _build(spec: EncodingSpec, d: int, seed: int = 0) -> nn.Module:
    module = spec.build(d, torch.Generator().manual_seed(seed))
    assert isinstance(module, nn.Module)
    assert isinstance(getattr(module, "out_dim", None), int) and module.out_dim > 0
    return module


def _points(
    spec: EncodingSpec, n: int, d: int, seed: int = 1, dtype: Any = torch.float32
) -> torch.Tensor:
    x = torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if spec.domain is not None:
        lo, hi = spec.domain
        x = x.clamp(max(lo, 0.0), min(hi, 1.0))
    return x.to(dtype)


def test_every_encoding_is_listed() -> None:
    names = [spec.name for spec in EXAMPLES]
    assert len(names) == len(set(names))
    assert {"identity", "fourier", "hashgrid", "rbf", "neurbf"} <= set(ENCODINGS)


@pytest.mark.parametrize(("spec", "d"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
def test_shapes_dtypes_and_gradients(spec: EncodingSpec, d: int, dtype: torch.dtype) -> None:
    module = _build(spec, d).to(dtype)
    x = _points(spec, 33, d, dtype=dtype).requires_grad_(spec.grad_input)
    y = module(x)
    assert y.shape == (33, module.out_dim)
    assert y.dtype == dtype and y.device == x.device
    assert bool(torch.isfinite(y).all())
    cot = torch.randn(y.shape, generator=torch.Generator().manual_seed(2), dtype=dtype)
    (y * cot).sum().backward()
    trainable = [p for p in module.parameters() if p.requires_grad]
    for p in trainable:
        assert p.grad is not None and bool(torch.isfinite(p.grad).all())
    if trainable:
        assert any(float(p.grad.abs().sum()) > 0 for p in trainable if p.grad is not None)
    if spec.grad_input:
        assert x.grad is not None and x.grad.shape == x.shape
        assert bool(torch.isfinite(x.grad).all()) and float(x.grad.abs().sum()) > 0
    # an empty batch is a valid batch
    empty = module(_points(spec, 0, d, dtype=dtype))
    assert empty.shape == (0, module.out_dim)


@pytest.mark.parametrize("spec", SPECS)
def test_bad_input_is_a_clear_error(spec: EncodingSpec) -> None:
    d = spec.in_dims[0]
    module = _build(spec, d)
    x = _points(spec, 8, d)
    wrong_d = max(spec.in_dims) + 1
    with pytest.raises(InputError):
        module(_points(spec, 8, wrong_d))
    with pytest.raises(InputError):
        module(x.to(torch.int64))
    with pytest.raises(InputError):
        module(x.tolist())
    if spec.rejects_nan:
        bad = x.clone()
        bad[3, 0] = float("nan")
        with pytest.raises(InputError, match="NaN|non-finite"):
            module(bad)
    if spec.domain is not None:
        lo, hi = spec.domain
        for value in (hi + 0.25, lo - 0.25):
            bad = x.clone()
            bad[5, d - 1] = value
            with pytest.raises(InputError):
                module(bad)


@pytest.mark.parametrize("spec", SPECS)
def test_compiles_in_one_graph_forward_and_backward(spec: EncodingSpec) -> None:
    d = spec.in_dims[-1]
    module = _build(spec, d)
    x = _points(spec, 16, d).requires_grad_(spec.grad_input)
    expected = module(x)
    torch._dynamo.reset()
    compiled = torch.compile(module, backend="aot_eager", fullgraph=True)
    got = compiled(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    got.sum().backward()
    for p in module.parameters():
        if p.requires_grad:
            assert p.grad is not None and bool(torch.isfinite(p.grad).all())


@pytest.mark.parametrize("spec", SPECS)
def test_state_dict_round_trip_and_seeded_build(spec: EncodingSpec) -> None:
    d = spec.in_dims[0]
    a, b, a_again = _build(spec, d, seed=0), _build(spec, d, seed=1), _build(spec, d, seed=0)
    x = _points(spec, 10, d)
    torch.testing.assert_close(a(x), a_again(x))  # the generator decides the initialisation
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    torch.testing.assert_close(b(x), a(x))


@pytest.mark.gpu
@pytest.mark.parametrize(("spec", "d"), CASES)
def test_cuda_matches_cpu(spec: EncodingSpec, d: int) -> None:
    module = _build(spec, d)
    x = _points(spec, 257, d)
    expected = module(x)
    got = module.to("cuda")(x.to("cuda"))
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-4, atol=1e-5)
