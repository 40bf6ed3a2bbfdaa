"""Place-recognition metrics on hand-made cases with known answers, and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from neurosim.backend import InputError
from neurosim.metrics.place import (
    average_precision,
    ground_truth_matrix,
    place_metrics,
    pr_curve,
    recall_at_100_precision,
    recall_at_n,
)


def test_ground_truth_from_tolerance_and_from_sets() -> None:
    gt = ground_truth_matrix(3, 4, tolerance=1)
    assert gt.astype(int).tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1]]
    assert ground_truth_matrix(2, 3, matches={0: [2], 1: []}).astype(int).tolist() == [
        [0, 0, 1],
        [0, 0, 0],
    ]
    with pytest.raises(InputError, match="reference 5"):
        ground_truth_matrix(2, 3, matches=[[5], [0]])


def test_recall_at_n_by_hand() -> None:
    s = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.1, 0.2, 0.3]])
    gt = np.eye(3, dtype=bool)
    # query 0: best is 0 (hit); query 1: ranks 0, 1 -> hit at 2; query 2: best is 2 (hit)
    assert recall_at_n(s, gt, (1, 2, 3)) == {1: pytest.approx(2 / 3), 2: 1.0, 3: 1.0}
    gt_missing = gt.copy()
    gt_missing[1] = False  # a query without any match is left out
    assert recall_at_n(s, gt_missing, (1,)) == {1: 1.0}


def test_best_match_precision_recall_by_hand() -> None:
    # 4 queries; best matches scored 0.9 (right), 0.8 (wrong), 0.7 (right), 0.6 (wrong)
    s = np.array(
        [[0.9, 0.0, 0.0, 0.0], [0.0, 0.0, 0.8, 0.0], [0.0, 0.0, 0.7, 0.0], [0.6, 0.0, 0.0, 0.0]]
    )
    gt = np.eye(4, dtype=bool)
    precision, recall = pr_curve(s, gt, mode="best_match")
    assert precision.tolist() == pytest.approx([1.0, 1.0, 0.5, 2 / 3, 0.5])
    assert recall.tolist() == pytest.approx([0.0, 0.25, 0.25, 0.5, 0.5])
    # AP = 0.25 * 1 + 0.25 * 2/3
    assert average_precision(s, gt, mode="best_match") == pytest.approx(0.25 + 0.25 * 2 / 3)
    assert recall_at_100_precision(s, gt) == pytest.approx(0.25)


def test_pairwise_average_precision_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    s = rng.random((30, 40))
    gt = ground_truth_matrix(30, 40, tolerance=2)
    s[gt] += 0.3 * rng.random(gt.sum())  # informative but imperfect
    assert average_precision(s, gt, mode="pairwise") == pytest.approx(
        average_precision_score(gt.ravel(), s.ravel())
    )
    # a perfect ranking: every positive pair scores above every negative
    assert average_precision(gt.astype(float), gt, mode="pairwise") == pytest.approx(1.0)
    m = place_metrics(s, gt)
    assert set(m) == {
        "recall@1", "recall@5", "recall@10", "pr_auc", "pr_auc_pairwise", "recall@100p",
    }  # fmt: skip


def test_metric_inputs_are_checked() -> None:
    with pytest.raises(InputError, match="same"):
        recall_at_n(np.zeros((2, 3)), np.eye(2, dtype=bool))
    with pytest.raises(InputError, match="NaN"):
        average_precision(np.full((2, 2), np.nan), np.eye(2, dtype=bool))
    with pytest.raises(InputError, match="no matching"):
        average_precision(np.zeros((2, 2)), np.zeros((2, 2), dtype=bool))
    with pytest.raises(InputError, match="mode"):
        pr_curve(np.zeros((2, 2)), np.eye(2, dtype=bool), mode="area")
