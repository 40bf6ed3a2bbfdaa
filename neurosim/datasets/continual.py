"""Continual-learning task sequences built from MNIST-layout digits (permuted and split MNIST).

A benchmark is a list of :class:`ContinualTask` s, each with its own training and test digits.
Both constructions start from one :class:`~neurosim.datasets.mnist.MnistSplit` (the 10,000
MNIST test digits in ``../shared/data/mnist``, the full 60,000 training digits, or the
embedded scikit-learn digits of :func:`~neurosim.datasets.mnist.load_sklearn_digits`) and make
**one** fixed split of its indices into training and test digits
(:func:`~neurosim.datasets.mnist.split_indices`, seeded by ``split_seed``). Every task takes its
training digits from the training part and its test digits from the test part, so no digit that
any task trains on is ever a test digit of any task, and ``train_index`` / ``test_index`` (indices
into the source) let a test prove it.

* :func:`permuted_tasks` (permuted MNIST, Goodfellow et al. 2013): every task holds all digits of
  the source, with its pixels reordered by a fixed permutation. The permutations come from
  :func:`pixel_permutations` (a ``torch.Generator`` seeded by ``permutation_seed``). **Task 0 is
  the identity (plain MNIST) when** ``identity_first=True`` **(the default)**; with ``False`` every
  task, the first included, is a random permutation (as in the GPM and HLOP reference code).
  With 10,000 source digits and ``n_test=2000``, each task has 8,000 training and 2,000 test
  digits, the calibration setting of the HLOP issue.
* :func:`split_tasks` (split MNIST, Zenke et al. 2017): task ``k`` holds the digits of one class
  pair, by default ``(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)``. Labels stay the global digits;
  :meth:`ContinualTask.local_labels` maps them to ``0 .. len(classes) - 1`` for a per-task
  (multi-head) readout.

Images are kept as ``uint8`` rows ``[N, 784]`` (a tenth of the float size: ten permuted tasks of
10,000 digits take 78 MB); :func:`to_float` scales a batch to ``[0, 1]``.

Example::

    from neurosim.datasets.mnist import load_mnist
    tasks = permuted_tasks(load_mnist("../shared/data/mnist"), n_tasks=10)
    tasks[3].train_x.shape, tasks[3].test_x.shape    # (8000, 784), (2000, 784) uint8
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from neurosim.backend import InputError
from neurosim.datasets.mnist import MnistSplit, split_indices

SPLIT_PAIRS: tuple[tuple[int, ...], ...] = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))
"""The class pairs of the usual 5-task split MNIST."""


class ContinualTask(NamedTuple):
    """One task of a continual-learning sequence.

    Attributes:
        name: e.g. ``"permuted-3"`` or ``"split-4/5"``.
        train_x: ``[N_train, D]`` uint8 training inputs (pixels, permuted for permuted tasks).
        train_y: ``[N_train]`` int64 global labels (digits ``0..9``).
        test_x: ``[N_test, D]`` uint8 test inputs.
        test_y: ``[N_test]`` int64 global labels.
        classes: the labels this task contains, in the order of a per-task head's outputs.
        train_index: ``[N_train]`` int64 indices of the training digits in the source.
        test_index: ``[N_test]`` int64 indices of the test digits in the source.
        permutation: ``[D]`` int64 pixel order (``x_task = x_source[:, permutation]``), or
            ``None`` for a task without permutation (split tasks).
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[int, ...]
    train_index: torch.Tensor
    test_index: torch.Tensor
    permutation: torch.Tensor | None

    def local_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Global labels -> positions in :attr:`classes` (``0 .. len(classes) - 1``).

        For split task ``(2, 3)``, labels ``[3, 2, 3]`` become ``[1, 0, 1]``. A label outside
        the task's classes is an :class:`InputError`.
        """
        lookup = torch.full((max(self.classes) + 1,), -1, dtype=torch.int64)
        lookup[list(self.classes)] = torch.arange(len(self.classes))
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= len(lookup)):
            raise InputError(f"labels outside task {self.name!r} classes {self.classes}")
        local = lookup.to(labels.device)[labels]
        if labels.numel() and int(local.min()) < 0:
            raise InputError(f"labels outside task {self.name!r} classes {self.classes}")
        return local


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in ``[0, 1]`` (other dtypes are returned as float32 unchanged)."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x.to(torch.float32)


def pixel_permutations(
    n_tasks: int, n_pixels: int = 784, *, seed: int = 0, identity_first: bool = True
) -> torch.Tensor:
    """``[n_tasks, n_pixels]`` int64 pixel orders, one per task, from a generator seeded ``seed``.

    Row 0 is ``arange(n_pixels)`` when ``identity_first``; every other row is
    ``torch.randperm(n_pixels)`` drawn in order from one ``torch.Generator().manual_seed(seed)``
    (so the first ``k`` tasks are the same for any ``n_tasks >= k``).
    """
    if n_tasks < 1:
        raise InputError(f"n_tasks must be >= 1, got {n_tasks}")
    if n_pixels < 2:
        raise InputError(f"n_pixels must be >= 2, got {n_pixels}")
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for task in range(n_tasks):
        if task == 0 and identity_first:
            rows.append(torch.arange(n_pixels))
        else:
            rows.append(torch.randperm(n_pixels, generator=generator))
    return torch.stack(rows)


def _flat_source(data: MnistSplit, n_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(data, MnistSplit):
        raise InputError(f"expected an MnistSplit (images, labels), got {type(data).__name__}")
    images, labels = data.images, data.labels
    if images.dtype != torch.uint8 or images.dim() < 2:
        raise InputError(
            f"images must be uint8 [N, H, W] or [N, D], got {images.dtype} {tuple(images.shape)}"
        )
    if labels.dim() != 1 or len(labels) != len(images):
        raise InputError(
            f"labels must be [N] with N = {len(images)} images, got {tuple(labels.shape)}"
        )
    if n_samples < 0:
        raise InputError(f"n_samples must be >= 0 (0 = all), got {n_samples}")
    n = len(labels) if n_samples == 0 else min(n_samples, len(labels))
    return images[:n].reshape(n, -1), labels[:n].to(torch.int64)


def permuted_tasks(
    data: MnistSplit,
    n_tasks: int = 10,
    *,
    n_test: int = 2000,
    split_seed: int = 0,
    permutation_seed: int = 0,
    identity_first: bool = True,
    n_samples: int = 0,
) -> list[ContinualTask]:
    """Permuted MNIST: ``n_tasks`` pixel permutations of the same digits (see module docstring).

    Args:
        data: the source digits.
        n_tasks: number of tasks (permutations).
        n_test: test digits per task (the same source digits in every task, permuted).
        split_seed: seed of the one train/test split of the source indices.
        permutation_seed: seed of :func:`pixel_permutations`.
        identity_first: task 0 keeps the original pixel order.
        n_samples: use only the first this many source digits (0 = all).

    Returns:
        ``n_tasks`` tasks named ``permuted-<k>`` with ``classes = (0, ..., 9)``.
    """
    x, y = _flat_source(data, n_samples)
    train_idx, test_idx = split_indices(len(y), n_test, split_seed)
    perms = pixel_permutations(
        n_tasks, x.shape[1], seed=permutation_seed, identity_first=identity_first
    )
    classes = tuple(int(c) for c in torch.unique(y).tolist())
    train_src, test_src = x[train_idx], x[test_idx]
    tasks = []
    for k in range(n_tasks):
        perm = perms[k]
        tasks.append(
            ContinualTask(
                name=f"permuted-{k}",
                train_x=train_src[:, perm].contiguous(),
                train_y=y[train_idx],
                test_x=test_src[:, perm].contiguous(),
                test_y=y[test_idx],
                classes=classes,
                train_index=train_idx,
                test_index=test_idx,
                permutation=perm,
            )
        )
    return tasks


def split_tasks(
    data: MnistSplit,
    pairs: Sequence[Sequence[int]] = SPLIT_PAIRS,
    *,
    n_test: int = 2000,
    split_seed: int = 0,
    n_samples: int = 0,
) -> list[ContinualTask]:
    """Split MNIST: one task per class group (default the five digit pairs).

    The source is split once into ``len - n_test`` training and ``n_test`` test digits; task
    ``k`` takes the digits of ``pairs[k]`` from each part (about a fifth of each for pairs).

    Args:
        data: the source digits.
        pairs: the classes of each task; a class may appear in one task only.
        n_test: size of the test part of the one split of the source.
        split_seed: seed of that split.
        n_samples: use only the first this many source digits (0 = all).

    Returns:
        one task per group, named ``split-a/b``, with ``classes = tuple(group)``.
    """
    x, y = _flat_source(data, n_samples)
    groups = [tuple(int(c) for c in group) for group in pairs]
    if not groups or any(len(g) < 1 for g in groups):
        raise InputError(f"pairs must be a non-empty list of class groups, got {pairs!r}")
    flat = [c for g in groups for c in g]
    if len(set(flat)) != len(flat):
        raise InputError(f"a class appears in more than one task: {groups}")
    present = set(torch.unique(y).tolist())
    missing = sorted(set(flat) - present)
    if missing:
        raise InputError(
            f"classes {missing} have no digits in the source (it has {sorted(present)})"
        )
    train_idx, test_idx = split_indices(len(y), n_test, split_seed)
    tasks = []
    for group in groups:
        members = torch.tensor(group)
        tr = train_idx[torch.isin(y[train_idx], members)]
        te = test_idx[torch.isin(y[test_idx], members)]
        if len(tr) == 0 or len(te) == 0:
            raise InputError(
                f"split task {group} has {len(tr)} training and {len(te)} test digits; "
                "use more samples or a larger n_test"
            )
        tasks.append(
            ContinualTask(
                name="split-" + "/".join(str(c) for c in group),
                train_x=x[tr].contiguous(),
                train_y=y[tr],
                test_x=x[te].contiguous(),
                test_y=y[te],
                classes=group,
                train_index=tr,
                test_index=te,
                permutation=None,
            )
        )
    return tasks


BENCHMARKS = ("permuted", "split")


def continual_tasks(benchmark: str, data: MnistSplit, **kwargs: object) -> list[ContinualTask]:
    """:func:`permuted_tasks` (``"permuted"``) or :func:`split_tasks` (``"split"``) by name."""
    if benchmark == "permuted":
        return permuted_tasks(data, **kwargs)  # type: ignore[arg-type]
    if benchmark == "split":
        return split_tasks(data, **kwargs)  # type: ignore[arg-type]
    raise InputError(f"continual benchmark must be one of {BENCHMARKS}, got {benchmark!r}")
