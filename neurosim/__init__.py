"""neurosim: neuromorphic and neural-field simulation on one PyTorch tensor backend.

``import neurosim`` loads only the backend and the functional core (so that ``fields``, which
imports ``neurosim.backend``, stays light); the module packages load on first attribute access
(``neurosim.neurons``, ``neurosim.monitors``, ...).
"""

from __future__ import annotations

import importlib
from typing import Any

from neurosim import backend, functional
from neurosim._version import __version__

_LAZY = ("neurons", "datasets", "interop", "monitors", "metrics", "plasticity", "place")

__all__ = ["__version__", "backend", "functional", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"neurosim.{name}")
    raise AttributeError(f"module 'neurosim' has no attribute {name!r}")
