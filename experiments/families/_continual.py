"""What ``continual_hlop`` and ``active_dendrites`` share: both train every (seed, method) pair
through the same task sequence in one run, so a global step maps to a position in that sequence,
and both summarise one accuracy matrix per seed and method."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from neurosim.metrics.continual import average_accuracy, backward_transfer, learning_accuracy


def sequence_position(
    step: int, n_methods: int, n_tasks: int, steps_per_task: int
) -> tuple[int, int, int, int]:
    """``(seed index, method index, task, step within the task)`` of a global step: seeds
    outermost, then methods, then tasks."""
    run, within = divmod(step, n_tasks * steps_per_task)
    seed_i, method_i = divmod(run, n_methods)
    task, local = divmod(within, steps_per_task)
    return seed_i, method_i, task, local


def summarise_matrices(
    matrices: Mapping[str, np.ndarray], no_transfer: Collection[str] = ()
) -> dict[str, float]:
    """From one ``[seeds, T, T]`` accuracy matrix stack per method: ``acc_<method>``,
    ``bwt_<method>``, ``la_<method>`` (means over seeds) and, with several
    seeds, ``acc_<method>_sd`` and ``bwt_<method>_sd``; methods in ``no_transfer`` (e.g. joint
    training, which has no task order) get only the accuracy."""
    out: dict[str, float] = {}
    for method, mats in matrices.items():
        acc = [average_accuracy(m) for m in mats]
        out[f"acc_{method}"] = float(np.mean(acc))
        transfer = method not in no_transfer
        if transfer:
            bwt = [backward_transfer(m) for m in mats]
            out[f"bwt_{method}"] = float(np.mean(bwt))
            out[f"la_{method}"] = float(np.mean([learning_accuracy(m) for m in mats]))
        if len(mats) > 1:
            out[f"acc_{method}_sd"] = float(np.std(acc))
            if transfer:
                out[f"bwt_{method}_sd"] = float(np.std(bwt))
    return out
