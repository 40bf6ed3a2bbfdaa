"""Dataset readers that need only a path (no download, no dependency on ``experiments``)."""

from neurosim.datasets.continual import (
    SPLIT_PAIRS,
    ContinualTask,
    continual_tasks,
    permuted_tasks,
    pixel_permutations,
    split_tasks,
    to_float,
)
from neurosim.datasets.mnist import (
    MNIST_LAYOUT,
    MnistSplit,
    load_mnist,
    load_sklearn_digits,
    split_indices,
)

__all__ = [
    "MNIST_LAYOUT",
    "SPLIT_PAIRS",
    "ContinualTask",
    "MnistSplit",
    "continual_tasks",
    "load_mnist",
    "load_sklearn_digits",
    "permuted_tasks",
    "pixel_permutations",
    "split_indices",
    "split_tasks",
    "to_float",
]
