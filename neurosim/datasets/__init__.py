"""Dataset readers that need only a path (no download, no dependency on ``experiments``)."""

from neurosim.datasets.mnist import MNIST_LAYOUT, MnistSplit, load_mnist, split_indices

__all__ = ["MNIST_LAYOUT", "MnistSplit", "load_mnist", "split_indices"]
