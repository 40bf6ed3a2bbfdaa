"""The one value-check switch (neurosim.backend.debug) and the hash grid's use of it."""

from __future__ import annotations

import threading

import pytest
import torch

from fields.encodings.hashgrid import HashGrid, HashGridConfig, hashgrid_encode
from neurosim.backend import (
    InputError,
    debug_checks,
    debug_checks_setting,
    set_debug_checks,
    value_checks,
)


def test_switch_defaults_to_cpu_only_and_nests() -> None:
    cpu = torch.zeros(2)
    accel = torch.zeros(2, device="meta")  # stands for any non-CPU device
    assert debug_checks_setting() is None
    assert value_checks(cpu) and not value_checks(accel) and not value_checks(cpu, accel)
    with debug_checks():
        assert value_checks(accel)
        with debug_checks(False):
            assert not value_checks(cpu)
        assert value_checks(cpu, accel)
    assert debug_checks_setting() is None
    try:
        set_debug_checks(True)
        assert value_checks(accel)
        seen: list[bool] = []
        thread = threading.Thread(target=lambda: seen.append(value_checks(accel)))
        thread.start()
        thread.join()
        assert seen == [True]  # the process-wide setting reaches other threads
    finally:
        set_debug_checks(None)
    with pytest.raises(TypeError):
        set_debug_checks("yes")  # type: ignore[arg-type]


def test_hashgrid_domain_check_follows_the_switch() -> None:
    grid = HashGrid(2, n_levels=2, log2_hashmap_size=6, base_resolution=4)
    bad = torch.tensor([[0.5, 1.5], [-0.25, 0.5], [float("nan"), 0.1]])
    with pytest.raises(InputError, match="NaN"):
        grid(bad)  # CPU, auto: checked
    with debug_checks(), pytest.raises(InputError, match="unit cube"):
        grid(bad[:2])
    with debug_checks(False):
        out = grid(bad)  # trusted: no check, and still memory-safe
    assert out.shape == (3, grid.out_dim)
    assert bool(torch.isfinite(out[:2]).all())
    # shape errors are metadata checks and always run
    with debug_checks(False), pytest.raises(InputError, match="coordinates per point"):
        hashgrid_encode(torch.rand(3, 3), grid.params, grid.config)


def test_triton_kernel_reads_inside_the_table_for_unchecked_points() -> None:
    """Out-of-domain points (what an unchecked accelerator call may get) index the table
    modulo its size on the Triton path too (the CPU interpreter would raise on an out-of-bounds
    pointer), and agree with the torch reference where both are defined."""
    cfg = HashGridConfig(2, n_levels=3, log2_hashmap_size=6, base_resolution=4)
    params = torch.randn(cfg.n_params, generator=torch.Generator().manual_seed(0))
    x = torch.tensor([[1.9, 0.5], [3.0, 2.5], [0.2, 0.7]])
    with debug_checks(False):
        ref = hashgrid_encode(x, params, cfg, backend="torch")
        got = hashgrid_encode(x, params, cfg, backend="triton")
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_hashgrid_training_step_never_synchronises_on_cuda() -> None:
    device = torch.device("cuda")
    grid = HashGrid(3, n_levels=4, log2_hashmap_size=10, base_resolution=4).to(device)
    x = torch.rand(4096, 3, device=device)
    grid(x).square().mean().backward()  # warm-up: compile, caches
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        grid(x).square().mean().backward()
    finally:
        torch.cuda.set_sync_debug_mode(previous)
