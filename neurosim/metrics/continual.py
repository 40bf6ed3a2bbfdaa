"""Continual-learning bookkeeping: the accuracy matrix and the metrics read from it.

The accuracy matrix ``R`` of a run over ``T`` tasks is ``T x T``: ``R[i, j]`` is the test
accuracy on task ``j`` measured right after training on task ``i`` (rows: time; columns: tasks).
Entries not measured are NaN (e.g. tasks not yet seen, ``j > i``). The metrics follow Lopez-Paz
& Ranzato (2017, GEM) and Chaudhry et al. (2018):

.. math::
    \\mathrm{ACC} = \\frac{1}{T} \\sum_{j=1}^{T} R_{T,j}, \\qquad
    \\mathrm{BWT} = \\frac{1}{T-1} \\sum_{j=1}^{T-1} (R_{T,j} - R_{j,j}), \\qquad
    \\mathrm{LA} = \\frac{1}{T} \\sum_{j=1}^{T} R_{j,j},

and forgetting ``F = mean_{j<T} (max_{j <= i < T} R[i, j] - R[T, j])``. ``ACC`` is the mean
final accuracy, ``BWT`` how much the final model lost (negative) or gained on earlier tasks
since it learned them, ``LA`` the mean just-learned accuracy.

Worked example (``T = 2``): ``R = [[0.9, nan], [0.7, 0.8]]`` gives ``ACC = (0.7 + 0.8) / 2 =
0.75``, ``BWT = 0.7 - 0.9 = -0.2``, ``LA = (0.9 + 0.8) / 2 = 0.85``, ``F = 0.9 - 0.7 = 0.2``.
"""

from __future__ import annotations

import numpy as np

from neurosim.backend import InputError


def check_accuracy_matrix(matrix: object, *, name: str = "accuracy matrix") -> np.ndarray:
    """``matrix`` as a float64 ``[T, T]`` array with entries in ``[0, 1]`` or NaN.

    Raises:
        InputError: not square 2-D, empty, an infinite entry, or an entry outside ``[0, 1]``.
    """
    r = np.asarray(matrix, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] == 0:
        raise InputError(f"{name} must be a square [T, T] array with T >= 1, got shape {r.shape}")
    finite = r[~np.isnan(r)]
    if np.isinf(r).any() or ((finite < 0) | (finite > 1)).any():
        raise InputError(
            f"{name} entries must be accuracies in [0, 1] (or NaN if not measured); "
            f"got values from {np.nanmin(r)} to {np.nanmax(r)}"
        )
    return r


def _need(r: np.ndarray, values: np.ndarray, what: str) -> np.ndarray:
    if np.isnan(values).any():
        raise InputError(
            f"{what} of the {r.shape[0]}-task accuracy matrix has unmeasured (NaN) entries"
        )
    return values


def average_accuracy(matrix: object) -> float:
    """ACC: mean accuracy over all tasks after training on the last one (the last row)."""
    r = check_accuracy_matrix(matrix)
    return float(np.mean(_need(r, r[-1], "the last row")))


def learning_accuracy(matrix: object) -> float:
    """LA: mean accuracy on each task right after learning it (the diagonal)."""
    r = check_accuracy_matrix(matrix)
    return float(np.mean(_need(r, np.diag(r), "the diagonal")))


def backward_transfer(matrix: object) -> float:
    """BWT: mean over the first ``T - 1`` tasks of (final - just-learned) accuracy.

    Zero for a single task (nothing earlier to transfer to).
    """
    r = check_accuracy_matrix(matrix)
    t = r.shape[0]
    if t == 1:
        return 0.0
    final = _need(r, r[-1, : t - 1], "the last row")
    learned = _need(r, np.diag(r)[: t - 1], "the diagonal")
    return float(np.mean(final - learned))


def forgetting(matrix: object) -> float:
    """Mean over the first ``T - 1`` tasks of (best earlier accuracy - final accuracy).

    The best earlier accuracy of task ``j`` is the maximum of ``R[j:T-1, j]`` (measured rows
    only); zero for a single task.
    """
    r = check_accuracy_matrix(matrix)
    t = r.shape[0]
    if t == 1:
        return 0.0
    _need(r, np.diag(r)[: t - 1], "the diagonal")
    final = _need(r, r[-1, : t - 1], "the last row")
    best = np.array([np.nanmax(r[j : t - 1, j]) for j in range(t - 1)])
    drops = best - final
    return float(np.mean(drops))


class AccuracyMatrix:
    """Fills an accuracy matrix as training proceeds (see the module docstring).

    >>> m = AccuracyMatrix(2)
    >>> m.record(0, 0, 0.9); m.record(1, 0, 0.7); m.record(1, 1, 0.8)
    >>> round(m.acc(), 3), round(m.bwt(), 3)
    (0.75, -0.2)
    """

    def __init__(self, n_tasks: int) -> None:
        if n_tasks < 1:
            raise InputError(f"an accuracy matrix needs n_tasks >= 1, got {n_tasks}")
        self.values = np.full((n_tasks, n_tasks), np.nan)

    @classmethod
    def from_array(cls, matrix: object) -> AccuracyMatrix:
        """Wrap an existing ``[T, T]`` matrix (validated, copied)."""
        r = check_accuracy_matrix(matrix)
        out = cls(r.shape[0])
        out.values[:] = r
        return out

    @property
    def n_tasks(self) -> int:
        return int(self.values.shape[0])

    def record(self, trained: int, evaluated: int, accuracy: float) -> None:
        """Store the accuracy on task ``evaluated`` after training on task ``trained``."""
        t = self.n_tasks
        if not (0 <= trained < t and 0 <= evaluated < t):
            raise InputError(
                f"task indices must be in 0..{t - 1}, got trained={trained}, evaluated={evaluated}"
            )
        value = float(accuracy)
        if not 0.0 <= value <= 1.0:
            raise InputError(f"accuracy must be in [0, 1], got {value}")
        self.values[trained, evaluated] = value

    def record_row(self, trained: int, accuracies: object) -> None:
        """Store the accuracies on tasks ``0 .. len(accuracies) - 1`` after task ``trained``."""
        row = np.asarray(accuracies, dtype=np.float64).reshape(-1)
        for j, value in enumerate(row):
            self.record(trained, j, float(value))

    def acc(self) -> float:
        """:func:`average_accuracy` of the matrix."""
        return average_accuracy(self.values)

    def bwt(self) -> float:
        """:func:`backward_transfer` of the matrix."""
        return backward_transfer(self.values)

    def learning_accuracy(self) -> float:
        """:func:`learning_accuracy` of the matrix."""
        return learning_accuracy(self.values)

    def forgetting(self) -> float:
        """:func:`forgetting` of the matrix."""
        return forgetting(self.values)
