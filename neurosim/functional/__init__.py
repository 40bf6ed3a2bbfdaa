"""Pure maths: step functions, scans and learning rules (no nn.Module, no hidden state)."""

from neurosim.functional.scan import leaky_scan, leaky_scan_doubling, leaky_scan_reference

__all__ = ["leaky_scan", "leaky_scan_doubling", "leaky_scan_reference"]
