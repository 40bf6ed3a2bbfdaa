"""Coordinate neural fields on the neurosim tensor backend (imports only ``neurosim.backend``)."""

from fields.decoders import MLP
from fields.encodings.fourier import FourierFeatures
from fields.encodings.hashgrid import HashGrid, HashGridConfig, hashgrid_encode

__all__ = ["MLP", "FourierFeatures", "HashGrid", "HashGridConfig", "hashgrid_encode"]
