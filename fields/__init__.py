"""Coordinate neural fields on the neurosim tensor backend (imports only ``neurosim.backend``)."""

from fields.decoders import MLP
from fields.encodings.fourier import FourierFeatures

__all__ = ["MLP", "FourierFeatures"]
