"""Coordinate encodings: ``encoding(x [N, D]) -> features [N, encoding.out_dim]``."""

from fields.encodings.fourier import FourierFeatures

__all__ = ["FourierFeatures"]
