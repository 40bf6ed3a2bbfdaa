"""The hash grid's value checks and the one debug switch (neurosim.backend.debug): checked on the
CPU, never a host read on accelerators outside debug mode, memory-safe when unchecked."""

from __future__ import annotations

import pytest
import torch

from fields.encodings.hashgrid import (
    HashGrid,
    HashGridConfig,
    hashgrid_encode,
    hashgrid_encode_reference,
    validate_hashgrid_encode,
)
from neurosim.backend import InputError, debug_checks, debug_enabled


def test_cpu_input_is_always_checked() -> None:
    grid = HashGrid(2, n_levels=2, log2_hashmap_size=6, base_resolution=4)
    assert not debug_enabled()
    with pytest.raises(InputError, match="NaN"):
        grid(torch.tensor([[float("nan"), 0.1]]))
    with pytest.raises(InputError, match="unit cube"):
        grid(torch.tensor([[0.5, 1.5]]))
    with debug_checks(), pytest.raises(InputError, match="unit cube"):
        grid(torch.tensor([[-0.25, 0.5]]))


def test_accelerator_values_are_read_only_in_debug_mode() -> None:
    """``meta`` tensors stand for any non-CPU device: they have no values, so any attempt to
    read one back fails. Outside debug mode validation reads nothing (shape checks still run);
    in debug mode it reads the extremes."""
    cfg = HashGridConfig(2, n_levels=2, log2_hashmap_size=6, base_resolution=4)
    x = torch.empty(5, 2, device="meta")
    params = torch.empty(cfg.n_params, device="meta")
    validate_hashgrid_encode(x, params, cfg)  # no value read: no error
    with pytest.raises(InputError, match="coordinates per point"):
        validate_hashgrid_encode(torch.empty(5, 3, device="meta"), params, cfg)
    with debug_checks(), pytest.raises((RuntimeError, NotImplementedError)):
        validate_hashgrid_encode(x, params, cfg)  # tries to read the values


def test_unchecked_out_of_domain_points_stay_inside_the_table() -> None:
    """Out-of-domain points (what an unchecked accelerator call may get) index each level's
    table modulo its size on the Triton path (the CPU interpreter fails on an out-of-bounds
    pointer), as on the torch path, and both agree."""
    from fields.encodings._triton_hashgrid import hashgrid_encode_triton

    cfg = HashGridConfig(2, n_levels=3, log2_hashmap_size=6, base_resolution=4)
    params = torch.randn(cfg.n_params, generator=torch.Generator().manual_seed(0))
    x = torch.tensor([[1.9, 0.5], [3.0, 2.5], [0.2, 0.7]])
    ref = hashgrid_encode_reference(x, params, cfg)
    got = hashgrid_encode_triton(x, params, cfg)
    assert bool(torch.isfinite(ref).all())
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    inside = hashgrid_encode(x[2:], params, cfg)  # the in-domain point, checked, agrees
    torch.testing.assert_close(inside, ref[2:])


@pytest.mark.gpu
def test_hashgrid_training_step_never_synchronises_on_cuda() -> None:
    device = torch.device("cuda")
    grid = HashGrid(3, n_levels=4, log2_hashmap_size=10, base_resolution=4).to(device)
    x = torch.rand(4096, 3, device=device)
    grid(x).square().mean().backward()  # warm-up: kernels and cached tables
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        grid(x).square().mean().backward()
    finally:
        torch.cuda.set_sync_debug_mode(previous)
