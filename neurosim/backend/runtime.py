"""The run-time policy: device, precision, seed and determinism, chosen once and passed down."""

from __future__ import annotations

import contextlib
import platform
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from neurosim.backend.device import autocast, resolve_device, resolve_dtype
from neurosim.backend.seed import seed_everything, set_deterministic


@dataclass(frozen=True)
class Runtime:
    """Where and how tensors are computed.

    Build it once (``Runtime.create(device="auto", precision="bf16", seed=0)``) and hand it to the
    code that allocates tensors or samples; nothing in neurosim reads a global device.

    Attributes:
        device: resolved ``torch.device``.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``; the autocast type of :meth:`autocast`.
        seed: the seed that :meth:`create` applied.
        deterministic: whether torch deterministic algorithms are on.
        generator: a CPU ``torch.Generator`` seeded with ``seed`` for explicit sampling.
    """

    device: torch.device
    precision: str = "fp32"
    seed: int = 0
    deterministic: bool = False
    generator: torch.Generator = field(default_factory=torch.Generator, compare=False, repr=False)

    @classmethod
    def create(
        cls,
        device: str | torch.device | None = "auto",
        precision: str = "fp32",
        seed: int = 0,
        deterministic: bool = False,
    ) -> Runtime:
        """Resolve the device, validate the precision, seed every RNG and set determinism."""
        resolved = resolve_device(device)
        resolve_dtype(precision)
        generator = seed_everything(seed)
        set_deterministic(deterministic)
        return cls(resolved, precision, seed, deterministic, generator)

    @property
    def dtype(self) -> torch.dtype:
        """The reduced (autocast) dtype of this policy; parameters stay fp32."""
        return resolve_dtype(self.precision)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Mixed-precision region for this runtime's device and precision (no-op for fp32)."""
        with autocast(self.device, self.precision):
            yield

    def describe(self) -> dict[str, Any]:
        """Plain-data description of the policy and the software it runs on (for results files)."""
        info: dict[str, Any] = {
            "device": str(self.device),
            "precision": self.precision,
            "seed": self.seed,
            "deterministic": self.deterministic,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        }
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
            info["cuda"] = str(torch.version.cuda)
        return info
