"""Data-parallel helpers: rank, world size, sharding, metric reduction, DDP wrapping.

With one process (no ``torch.distributed`` process group) every function is the identity, so a
family written with them runs unchanged on one or many ranks. Families draw the *global* batch
from their generator (identical on every rank, the generators being seeded alike) and keep
``shard(batch)``, this rank's contiguous part; with a loss that is a mean over the batch and DDP's
gradient averaging, N ranks then take the same steps as one process with the global batch.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from neurosim.backend import InputError


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is initialised."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return torch.distributed.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return torch.distributed.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Whether this is rank 0, the one that writes results, plots and checkpoints."""
    return rank() == 0


def shard(batch: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """This rank's contiguous share of ``batch`` along ``dim``.

    The size along ``dim`` must divide by the world size (so every rank's loss is a mean over
    equally many items and DDP's average equals the global mean).
    """
    n = world_size()
    if n == 1:
        return batch
    size = batch.shape[dim]
    if size % n:
        raise InputError(
            f"global batch of {size} does not divide over {n} ranks; "
            "pick a batch size that is a multiple of the number of processes"
        )
    return batch.narrow(dim, rank() * (size // n), size // n)


def reduce_mean(
    metrics: Mapping[str, float], device: torch.device | None = None
) -> dict[str, float]:
    """Mean of each scalar metric over all ranks (the identity with one process)."""
    if world_size() == 1 or not metrics:
        return {k: float(v) for k, v in metrics.items()}
    keys = sorted(metrics)
    values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(values)
    values /= world_size()
    return {k: float(v) for k, v in zip(keys, values.tolist(), strict=True)}


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` on ``device`` (CUDA: one device per rank)."""
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        return DistributedDataParallel(model, device_ids=[device])
    return DistributedDataParallel(model)
