"""Evaluation metrics that are plain functions of arrays (no models, no experiments)."""

from neurosim.metrics.continual import (
    AccuracyMatrix,
    average_accuracy,
    backward_transfer,
    check_accuracy_matrix,
    forgetting,
    learning_accuracy,
)

__all__ = [
    "AccuracyMatrix",
    "average_accuracy",
    "backward_transfer",
    "check_accuracy_matrix",
    "forgetting",
    "learning_accuracy",
]
