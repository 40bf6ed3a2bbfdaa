"""neurosim: neuromorphic and neural-field simulation on one PyTorch tensor backend."""

from neurosim import backend, functional, neurons
from neurosim._version import __version__

__all__ = ["__version__", "backend", "functional", "neurons"]

from neurosim import datasets, interop, monitors

__all__ += ["datasets", "interop", "monitors"]
