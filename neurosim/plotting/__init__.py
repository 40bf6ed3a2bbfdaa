"""Plots for notebooks and headless runs (matplotlib; no display needed).

One module per topic, each a set of functions ``plot_*(data..., *, title, ax=None) -> Figure``
that take plain arrays or tensors (never a results file or a model), label their axes with units
and put the run's name in the title:

* :mod:`neurosim.plotting.style` - figure creation and saving shared by every module.

Topic modules (spikes, continual learning, place recognition, SDR theory, fields and renders,
training curves) are imported explicitly, e.g. ``from neurosim.plotting.continual import
plot_accuracy_matrix``, so importing this package stays cheap.
"""
