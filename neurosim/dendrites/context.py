"""Context vectors for dendritic segments: task prototypes computed from data, or given.

Iyer et al. (2022) give the dendrites of a permuted-MNIST network the *prototype* of the current
task, the mean of its training inputs, ``p_t = mean_i x_i^(t)``. During training the task is
known and its prototype is the context of every input; at test time each input takes the
prototype nearest to it (Euclidean distance), so no task label is needed::

    protos = TaskPrototypes(784)
    protos.add(task0_train_x); protos.add(task1_train_x)   # one row per task
    context = protos.infer(test_x)                          # [B, 784], nearest prototype each
"""

from __future__ import annotations

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor


def task_prototype(x: torch.Tensor) -> torch.Tensor:
    """Mean input ``[C]`` of a task's inputs ``x [N, C]`` (accumulated in float64)."""
    check_tensor(x, "task inputs x [N, C]", ndim=2)
    if x.shape[0] == 0:
        raise InputError("a task prototype needs at least one input")
    return x.to(torch.float64).mean(0).to(x.dtype)


def nearest_prototype(x: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Index ``[B]`` of the prototype ``[T, C]`` nearest to each input ``x [B, C]`` (L2)."""
    check_tensor(x, "inputs x [B, C]", ndim=2)
    check_tensor(prototypes, "prototypes [T, C]", ndim=2)
    if prototypes.shape[0] == 0 or prototypes.shape[1] != x.shape[1]:
        raise InputError(f"prototypes must be [T >= 1, C = {x.shape[1]}], got "
                         f"{tuple(prototypes.shape)}")  # fmt: skip
    if prototypes.device != x.device:
        raise InputError(f"prototypes are on {prototypes.device} but x is on {x.device}")
    return torch.cdist(x, prototypes.to(x.dtype)).argmin(dim=1)


class TaskPrototypes(nn.Module):
    """A growing table of task prototypes ``[T, C]`` (a buffer, saved in ``state_dict``).

    Args:
        features: context size ``C``.
        max_tasks: capacity of the table.
    """

    table: torch.Tensor
    count: torch.Tensor

    def __init__(self, features: int, max_tasks: int = 100) -> None:
        super().__init__()
        if features < 1 or max_tasks < 1:
            raise InputError(f"TaskPrototypes needs features, max_tasks >= 1, got {features}, "
                             f"{max_tasks}")  # fmt: skip
        self.register_buffer("table", torch.zeros(max_tasks, features))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @property
    def prototypes(self) -> torch.Tensor:
        """``[T, C]`` the prototypes added so far."""
        return self.table[: int(self.count)]

    @torch.no_grad()
    def add(self, x: torch.Tensor) -> int:
        """Store the prototype of a new task's inputs ``x [N, C]`` (or a given ``[C]``); returns
        its index."""
        proto = x if x.dim() == 1 else task_prototype(x)
        check_tensor(proto, "prototype [C]", ndim=1)
        if proto.shape[0] != self.table.shape[1]:
            raise InputError(
                f"prototype has {proto.shape[0]} features; expected {self.table.shape[1]}"
            )
        index = int(self.count)
        if index >= self.table.shape[0]:
            raise InputError(f"TaskPrototypes is full ({self.table.shape[0]} tasks)")
        self.table[index] = proto.to(self.table)
        self.count += 1
        return index

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """The nearest prototype ``[B, C]`` of each input ``x [B, C]``."""
        return self.prototypes[nearest_prototype(x, self.prototypes)]
