"""ACC / BWT / LA / forgetting on hand-made accuracy matrices (values worked out by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurosim.backend import InputError
from neurosim.metrics import (
    AccuracyMatrix,
    average_accuracy,
    backward_transfer,
    forgetting,
    learning_accuracy,
)

NAN = math.nan

# Three tasks. Row i = after training task i. By hand:
#   ACC = (0.6 + 0.7 + 0.9) / 3 = 0.7333...
#   BWT = ((0.6 - 0.9) + (0.7 - 0.8)) / 2 = (-0.3 - 0.1) / 2 = -0.2
#   LA  = (0.9 + 0.8 + 0.9) / 3 = 0.8666...
#   F   = ((max(0.9, 0.85) - 0.6) + (0.8 - 0.7)) / 2 = (0.3 + 0.1) / 2 = 0.2
R3 = [
    [0.9, NAN, NAN],
    [0.85, 0.8, NAN],
    [0.6, 0.7, 0.9],
]


def test_metrics_of_a_hand_made_matrix() -> None:
    assert average_accuracy(R3) == pytest.approx(2.2 / 3)
    assert backward_transfer(R3) == pytest.approx(-0.2)
    assert learning_accuracy(R3) == pytest.approx(2.6 / 3)
    assert forgetting(R3) == pytest.approx(0.2)


def test_positive_backward_transfer_and_forgetting_from_a_later_peak() -> None:
    # task 0 improves after task 1 (0.5 -> 0.7) then ends at 0.6: BWT = +0.1, but forgetting
    # counts the drop from the best earlier value 0.7: 0.1
    r = [[0.5, 0.1, 0.1], [0.7, 0.9, 0.2], [0.6, 0.9, 1.0]]  # upper entries (forward) ignored
    assert backward_transfer(r) == pytest.approx(((0.6 - 0.5) + (0.9 - 0.9)) / 2)
    assert forgetting(r) == pytest.approx(((0.7 - 0.6) + (0.9 - 0.9)) / 2)
    assert average_accuracy(r) == pytest.approx(2.5 / 3)


def test_single_task_and_the_filling_helper() -> None:
    assert backward_transfer([[0.7]]) == 0.0 and forgetting([[0.7]]) == 0.0
    m = AccuracyMatrix(3)
    m.record_row(0, [0.9])
    m.record_row(1, [0.85, 0.8])
    with pytest.raises(InputError, match="last row"):
        m.acc()  # not finished
    m.record_row(2, [0.6, 0.7, 0.9])
    np.testing.assert_allclose(m.values, np.array(R3), equal_nan=True)
    assert m.acc() == pytest.approx(2.2 / 3) and m.bwt() == pytest.approx(-0.2)
    assert AccuracyMatrix.from_array(R3).forgetting() == pytest.approx(0.2)


def test_bad_matrices_are_named() -> None:
    with pytest.raises(InputError, match="square"):
        average_accuracy([[0.5, 0.5]])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        average_accuracy([[1.5]])
    with pytest.raises(InputError, match="diagonal"):
        backward_transfer([[NAN, NAN], [0.5, 0.6]])
    m = AccuracyMatrix(2)
    with pytest.raises(InputError, match="task indices"):
        m.record(2, 0, 0.5)
    with pytest.raises(InputError, match="accuracy"):
        m.record(0, 0, 97.0)  # a percentage, not a fraction
