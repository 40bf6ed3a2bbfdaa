"""Plots for notebooks and headless runs (matplotlib; no display needed).

One module per topic, each a set of functions ``plot_*(data..., *, title, ax=None) -> Figure``
that take plain arrays or tensors (never a results file or a model), label their axes with units
and put the run's name in the title:

* :mod:`neurosim.plotting.style` - figure creation and saving shared by every module;
* :mod:`neurosim.plotting.spikes` - spike rasters, membrane traces, firing-rate histograms;
* :mod:`neurosim.plotting.curves` - training curves (log axis, smoothing), sweep comparisons;
* :mod:`neurosim.plotting.fields` - field slices (SDF zero level sets), image reconstructions;
* :mod:`neurosim.plotting.continual` - continual-learning accuracy matrices and ACC/BWT;

and the other topic modules beside them. Each is imported explicitly, e.g. ``from
neurosim.plotting.spikes import plot_spike_raster``, so importing this package stays cheap.
Reading these from a run's ``results.h5`` is :mod:`experiments.show`.
"""
