"""Place-recognition metrics of saved similarity matrices (``.npy``, ``[queries, references]``).

Scores a peer's output (e.g. ``benchmarks/lens_corridor.py``) with the same metrics and ground
truth as ``neurosim run place_recognition``::

    python benchmarks/place_similarity.py /tmp/lens_sim_0_single.npy /tmp/lens_sim_1_single.npy

One row per file, then the mean over files. ``--sequence-length L`` applies the experiment's
sequence matcher first (what ``sequence_length=L`` does to every method there).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from experiments.data import data_root
from experiments.families.place_recognition import score_similarity
from neurosim.backend import InputError
from neurosim.datasets.place import load_corridor

KEYS = ("recall@1", "recall@5", "recall@10", "pr_auc", "pr_auc_pairwise", "recall@100p")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="similarity .npy files [queries, references]")
    parser.add_argument("--data-root", default=None, help="shared data root (default: resolved)")
    parser.add_argument("--sequence-length", type=int, default=1)
    opts = parser.parse_args(argv)

    truth = load_corridor(data_root(opts.data_root)).ground_truth()
    rows = []
    print("file " + " ".join(KEYS))
    for name in opts.files:
        s = np.load(name)
        if s.shape != truth.shape:
            raise InputError(
                f"{name}: similarity of shape {s.shape}; expected [queries, references] = "
                f"{list(truth.shape)} for Corridor"
            )
        m = score_similarity(s, truth, opts.sequence_length)
        rows.append([m[k] for k in KEYS])
        print(Path(name).name, " ".join(f"{v:.3f}" for v in rows[-1]))
    if len(rows) > 1:
        arr = np.asarray(rows)
        print("mean", " ".join(f"{v:.3f}" for v in arr.mean(0)))
        print("std", " ".join(f"{v:.3f}" for v in arr.std(0, ddof=1)))


if __name__ == "__main__":
    main()
