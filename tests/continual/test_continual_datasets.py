"""Permuted and split MNIST task construction: fixed permutations, one disjoint split, labels."""

from __future__ import annotations

import pytest
import torch

from experiments.data import dataset_path
from neurosim.backend import InputError
from neurosim.datasets import (
    MNIST_LAYOUT,
    MnistSplit,
    load_mnist,
    permuted_tasks,
    pixel_permutations,
    split_tasks,
    to_float,
)


def _synthetic(n: int = 300, seed: int = 0) -> MnistSplit:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % 10
    return MnistSplit(images, labels)


def test_permutations_are_fixed_by_the_seed_and_task_zero_is_the_identity() -> None:
    perms = pixel_permutations(4, 784, seed=3)
    assert perms.shape == (4, 784) and perms.dtype == torch.int64
    assert torch.equal(perms[0], torch.arange(784))
    for row in perms:
        assert torch.equal(row.sort().values, torch.arange(784))  # a permutation
    assert not torch.equal(perms[1], perms[2])
    assert torch.equal(perms, pixel_permutations(4, 784, seed=3))
    assert not torch.equal(perms[1], pixel_permutations(4, 784, seed=4)[1])
    # prefix-stable: more tasks do not change the first ones
    assert torch.equal(perms, pixel_permutations(6, 784, seed=3)[:4])
    # identity_first=False: the first task is permuted too (first draw of the same generator)
    shuffled = pixel_permutations(2, 784, seed=3, identity_first=False)
    assert not torch.equal(shuffled[0], torch.arange(784))
    assert torch.equal(shuffled[0], perms[1])


def test_permuted_mnist_on_the_shared_digits_is_8000_train_2000_test_per_task() -> None:
    source = load_mnist(dataset_path("mnist", layout=MNIST_LAYOUT), "t10k")
    tasks = permuted_tasks(source, n_tasks=3, n_test=2000, split_seed=0, permutation_seed=1)
    flat = source.images.reshape(10000, 784)
    for k, task in enumerate(tasks):
        assert task.name == f"permuted-{k}"
        assert task.train_x.shape == (8000, 784) and task.test_x.shape == (2000, 784)
        assert task.train_x.dtype == torch.uint8
        train, test = set(task.train_index.tolist()), set(task.test_index.tolist())
        assert not train & test and len(train | test) == 10000  # one split, disjoint, complete
        assert task.permutation is not None
        # pixel k of a task image is pixel permutation[k] of the source image
        i = int(task.train_index[17])
        assert torch.equal(task.train_x[17], flat[i][task.permutation])
        assert torch.equal(task.test_y, source.labels[task.test_index])
        assert task.classes == tuple(range(10))
    # the same split in every task: a test digit of one task is never trained on in another
    assert all(torch.equal(t.test_index, tasks[0].test_index) for t in tasks)
    assert torch.equal(tasks[0].train_x, flat[tasks[0].train_index])  # identity first


def test_split_tasks_hold_their_pair_and_partition_the_split() -> None:
    source = _synthetic(500)
    tasks = split_tasks(source, n_test=100, split_seed=2)
    assert [t.name for t in tasks] == [
        "split-0/1",
        "split-2/3",
        "split-4/5",
        "split-6/7",
        "split-8/9",
    ]
    train_all: set[int] = set()
    test_all: set[int] = set()
    for task in tasks:
        assert set(task.train_y.tolist()) == set(task.classes)
        assert set(task.test_y.tolist()) <= set(task.classes)
        assert torch.equal(task.train_y, source.labels[task.train_index])
        assert torch.equal(task.train_x, source.images.reshape(500, -1)[task.train_index])
        tr, te = set(task.train_index.tolist()), set(task.test_index.tolist())
        assert not (tr & train_all) and not (te & test_all)  # tasks do not share digits
        train_all |= tr
        test_all |= te
    assert not train_all & test_all
    assert len(train_all) == 400 and len(test_all) == 100  # every digit used once (all 10 classes)
    local = tasks[1].local_labels(torch.tensor([3, 2, 3]))
    assert local.tolist() == [1, 0, 1]
    with pytest.raises(InputError, match="outside task"):
        tasks[1].local_labels(torch.tensor([4]))


def test_to_float_scales_uint8_to_unit_interval() -> None:
    x = torch.tensor([[0, 51, 255]], dtype=torch.uint8)
    assert torch.allclose(to_float(x), torch.tensor([[0.0, 0.2, 1.0]]))


def test_bad_input_is_named() -> None:
    source = _synthetic(100)
    with pytest.raises(InputError, match="n_holdout"):
        permuted_tasks(source, n_test=100)
    with pytest.raises(InputError, match="more than one task"):
        split_tasks(source, [(0, 1), (1, 2)], n_test=20)
    with pytest.raises(InputError, match="no digits"):
        split_tasks(MnistSplit(source.images, source.labels % 5), n_test=20)
    with pytest.raises(InputError, match="uint8"):
        permuted_tasks(MnistSplit(source.images.float(), source.labels), n_test=20)
    with pytest.raises(InputError, match="n_tasks"):
        pixel_permutations(0)
    with pytest.raises(InputError, match="MnistSplit"):
        permuted_tasks((source.images, source.labels), n_test=20)  # type: ignore[arg-type]
