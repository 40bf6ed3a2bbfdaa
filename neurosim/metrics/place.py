"""Place-recognition metrics on a similarity matrix and a ground truth (plain arrays).

Conventions: ``similarity [Q, R]`` (higher = more alike) between ``Q`` queries and ``R``
reference places; ``ground_truth [Q, R]`` boolean, ``True`` where the reference counts as the
same place as the query. Build it with :func:`ground_truth_matrix` from a frame tolerance
(``|q - r| <= tolerance``, 0 = exact) or from a given set of matching references per query.
Queries with no matching reference are left out of every metric (they cannot be recalled).

* :func:`recall_at_n`: fraction of queries with a match among their ``N`` most similar
  references (ties broken towards the lower reference index, as a stable sort does).
* :func:`pr_curve` / :func:`average_precision`:

  - ``mode="pairwise"`` (default): every (query, reference) pair is a retrieval with score
    ``similarity[q, r]`` and label ``ground_truth[q, r]``; precision-recall and average
    precision are scikit-learn's ``precision_recall_curve`` / ``average_precision_score``.
  - ``mode="best_match"``: each query keeps its single best reference; accepting the matches
    whose score is above a threshold gives ``precision = TP / accepted`` and
    ``recall = TP / queries`` (the single-match VPR curve, e.g. VPR-Bench, Schubert et al.'s
    tutorial); its average precision is ``sum_k (R_k - R_{k-1}) P_k`` over the sorted scores.

* :func:`recall_at_100_precision`: the largest recall of the best-match curve at precision 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from neurosim.backend import InputError

PR_MODES = ("pairwise", "best_match")


def _to_numpy(x: object, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()  # type: ignore[attr-defined]
    a = np.asarray(x)
    if a.ndim != 2:
        raise InputError(f"{name} must be a 2-D [queries, references] array, got shape {a.shape}")
    return a


def ground_truth_matrix(
    n_query: int,
    n_reference: int,
    *,
    tolerance: int | None = 0,
    matches: Mapping[int, Iterable[int]] | Sequence[Iterable[int]] | None = None,
) -> np.ndarray:
    """Boolean ``[Q, R]``: from ``matches`` (query index -> matching reference indices) when
    given, else ``|q - r| <= tolerance`` (query ``q`` was taken at reference ``q``).

    Example: ``ground_truth_matrix(3, 3, tolerance=1)`` is tridiagonal.
    """
    if n_query < 1 or n_reference < 1:
        raise InputError(f"need at least one query and reference, got {n_query}, {n_reference}")
    gt = np.zeros((n_query, n_reference), dtype=bool)
    if matches is not None:
        items = matches.items() if isinstance(matches, Mapping) else enumerate(matches)
        for q, refs in items:
            q = int(q)
            if not 0 <= q < n_query:
                raise InputError(f"ground truth names query {q}, outside [0, {n_query})")
            for r in refs:
                if not 0 <= int(r) < n_reference:
                    raise InputError(
                        f"ground truth of query {q} names reference {r}, outside [0, {n_reference})"
                    )
                gt[q, int(r)] = True
        return gt
    if tolerance is None or tolerance < 0:
        raise InputError(f"tolerance must be a non-negative int, got {tolerance!r}")
    rows = np.arange(n_query)[:, None]
    cols = np.arange(n_reference)[None, :]
    return np.abs(rows - cols) <= tolerance


def _check(similarity: object, ground_truth: object) -> tuple[np.ndarray, np.ndarray]:
    s = _to_numpy(similarity, "similarity").astype(np.float64)
    g = _to_numpy(ground_truth, "ground_truth").astype(bool)
    if s.shape != g.shape:
        raise InputError(
            f"similarity {s.shape} and ground_truth {g.shape} must have the same [Q, R] shape"
        )
    if not np.all(np.isfinite(s)):
        raise InputError("similarity contains NaN or inf; expected finite scores")
    if not g.any():
        raise InputError("ground_truth has no matching pair; no metric is defined")
    return s, g


def recall_at_n(
    similarity: object, ground_truth: object, n_values: Sequence[int] = (1, 5, 10)
) -> dict[int, float]:
    """``{N: fraction of queries whose N most similar references include a match}``.

    Example: similarity ``[[0.9, 0.1], [0.8, 0.2]]`` with an identity ground truth gives
    ``{1: 0.5, 2: 1.0}`` for ``n_values=(1, 2)``.
    """
    s, g = _check(similarity, ground_truth)
    valid = g.any(axis=1)
    order = np.argsort(-s, axis=1, kind="stable")
    hits = np.take_along_axis(g, order, axis=1)[valid]
    out: dict[int, float] = {}
    for n in n_values:
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"recall_at_n N must be a positive int, got {n!r}")
        out[int(n)] = float(hits[:, : int(n)].any(axis=1).mean())
    return out


def _best_match(s: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = g.any(axis=1)
    s, g = s[valid], g[valid]
    best = np.argmax(s, axis=1)
    rows = np.arange(len(best))
    return s[rows, best], g[rows, best]


def pr_curve(
    similarity: object, ground_truth: object, *, mode: str = "pairwise"
) -> tuple[np.ndarray, np.ndarray]:
    """``(precision, recall)`` arrays of the precision-recall curve (module docstring),
    ordered by decreasing recall for ``pairwise`` (scikit-learn's order) and increasing recall
    for ``best_match``."""
    s, g = _check(similarity, ground_truth)
    if mode == "pairwise":
        from sklearn.metrics import precision_recall_curve

        precision, recall, _ = precision_recall_curve(g.ravel(), s.ravel())
        return precision, recall
    if mode == "best_match":
        scores, correct = _best_match(s, g)
        order = np.argsort(-scores, kind="stable")
        scores, correct = scores[order], correct[order]
        # group equal scores: a threshold accepts all of them or none
        last = np.r_[np.flatnonzero(np.diff(scores) != 0), len(scores) - 1]
        tp = np.cumsum(correct)[last]
        accepted = last + 1
        precision = np.r_[1.0, tp / accepted]
        recall = np.r_[0.0, tp / len(scores)]
        return precision, recall
    raise InputError(f"pr_curve mode must be one of {PR_MODES}, got {mode!r}")


def average_precision(similarity: object, ground_truth: object, *, mode: str = "pairwise") -> float:
    """Area under the precision-recall curve as average precision, ``sum_k (R_k - R_{k-1}) P_k``
    (``pairwise``: scikit-learn's ``average_precision_score`` on all pairs)."""
    s, g = _check(similarity, ground_truth)
    if mode == "pairwise":
        from sklearn.metrics import average_precision_score

        return float(average_precision_score(g.ravel(), s.ravel()))
    precision, recall = pr_curve(s, g, mode=mode)
    return float(np.sum(np.diff(recall) * precision[1:]))


def recall_at_100_precision(similarity: object, ground_truth: object) -> float:
    """Largest best-match recall reached while every accepted match is correct (0 if the most
    confident match is already wrong)."""
    precision, recall = pr_curve(similarity, ground_truth, mode="best_match")
    perfect = precision >= 1.0
    return float(recall[perfect].max()) if perfect.any() else 0.0


def place_metrics(
    similarity: object,
    ground_truth: object,
    n_values: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """``R@N`` for each ``N``, best-match and pairwise average precision, recall at 100 %
    precision, as a flat dict (``recall@1``, ..., ``pr_auc`` (best match, the single-match VPR
    curve), ``pr_auc_pairwise``, ``recall@100p``)."""
    out = {f"recall@{n}": v for n, v in recall_at_n(similarity, ground_truth, n_values).items()}
    out["pr_auc"] = average_precision(similarity, ground_truth, mode="best_match")
    out["pr_auc_pairwise"] = average_precision(similarity, ground_truth, mode="pairwise")
    out["recall@100p"] = recall_at_100_precision(similarity, ground_truth)
    return out
