"""Seeding and deterministic mode."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) and return a fresh CPU generator seeded alike.

    Prefer passing the returned generator (or one derived from it) to the code that samples, so
    that sampling does not depend on what else touched the global RNG.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        from neurosim.backend.errors import InputError

        raise InputError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - seeding the legacy global RNG on purpose
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def set_deterministic(enabled: bool) -> None:
    """Ask torch for deterministic algorithms (errors where an op has none) when ``enabled``.

    Enabling sets ``CUBLAS_WORKSPACE_CONFIG`` as cuBLAS requires and turns cuDNN benchmarking
    off; disabling turns the deterministic switches off and leaves cuDNN benchmarking as it was.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.deterministic = enabled


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Run a block with torch's global RNG seeded to ``seed``, then restore the RNG as it was.

    Use it where a library draws from the global RNG and takes no generator, such as the default
    initialisation of ``nn.Linear``: ``with seeded(cfg.seed): model = Net()`` gives the same
    weights for the same seed without changing the global RNG for anything else. ``device``
    (a CUDA device) is forked and seeded too.
    """
    devices = []
    if device is not None and torch.device(device).type == "cuda":
        devices = [torch.device(device)]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
