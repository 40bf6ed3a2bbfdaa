"""Experiment runner: typed configs, registry, CLI, HDF5 results, checkpoints and sweeps."""
